package sender

import (
	"strconv"
	"testing"
)

func TestRecentIDs(t *testing.T) {
	r := newRecentIDs(3)
	steps := []struct {
		id      string
		attempt uint32
		isNew   bool
	}{
		{"a", 0, true},
		{"a", 0, false}, // a copy
		{"a", 1, true},  // a retry is a new attempt
		{"b", 0, true},
		{"c", 0, true}, // forgets (a, 0)
		{"a", 0, true}, // forgets (a, 1)
		{"c", 0, false},
		{"b", 0, false},
		{"a", 1, true},
	}
	for i, s := range steps {
		if got := r.add(s.id, s.attempt); got != s.isNew {
			t.Errorf("step %d: add(%s, %d) = %v, want %v", i, s.id, s.attempt, got, s.isNew)
		}
	}
	if len(r.seen) != 3 || len(r.ring) != 3 {
		t.Errorf("holds %d keys in a ring of %d, want 3 and 3", len(r.seen), len(r.ring))
	}
}

func TestRecentIDsBounded(t *testing.T) {
	r := newRecentIDs(100)
	for i := range 10000 {
		r.add(strconv.Itoa(i), 0)
	}
	if len(r.seen) != 100 {
		t.Errorf("holds %d keys, want 100", len(r.seen))
	}
	if r.add("9999", 0) || !r.add("9899", 0) {
		t.Error("kept the wrong keys: want the last 100")
	}
}
