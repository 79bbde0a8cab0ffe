package state

import (
	"encoding/binary"
	"testing"
)

// deadlineMeta reads a row as its deadline (8 bytes) and a payload.
func deadlineMeta(v []byte) (int64, bool, error) { return int64(binary.BigEndian.Uint64(v)), true, nil }

func rowAt(deadline int64, payload string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(deadline)), payload...)
}

// TestDue fires rows in deadline order with their current values, skips a
// row replaced by a later deadline, and leaves what is not due, whether the
// timers carry their rows or not.
func TestDue(t *testing.T) {
	for _, bare := range []bool{false, true} {
		db, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		s := db.Store('x', 0, "log", deadlineMeta)
		if bare {
			s.BareTimers()
		}
		txn := s.Begin()
		for _, r := range []struct {
			key      string
			deadline int64
			payload  string
		}{{"b", 20, "b1"}, {"a", 10, "a1"}, {"c", 30, "c1"}, {"b", 40, "b2"}} {
			if err := txn.Apply(r.key, rowAt(r.deadline, r.payload), r.deadline, true); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		txn = s.Begin()
		var got []string
		n, err := txn.Due(35, 10, func(key string, v []byte) error {
			got = append(got, key+"="+string(v[8:]))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		if want := []string{"a=a1", "c=c1"}; n != 2 || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("bare %v: fired %d %v, want %v", bare, n, got, want)
		}
		txn = s.Begin()
		n, err = txn.Due(35, 10, func(string, []byte) error { return nil })
		txn.Discard()
		if err != nil || n != 0 {
			t.Errorf("bare %v: %d fired again (%v)", bare, n, err)
		}
		if s.Live() != 3 {
			t.Errorf("bare %v: live %d, want 3 (Due leaves the rows to fn)", bare, s.Live())
		}
		db.Close()
	}
}

// TestChangesKeepTheLastOfEachKey: a key written twice in one txn has one
// changelog record, its last write (a tombstone for a Del), in the place of
// its first.
func TestChangesKeepTheLastOfEachKey(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	txn := db.Store('x', 0, "log", deadlineMeta).Begin()
	defer txn.Discard()
	for _, w := range []struct {
		key, payload string // payload "": Del
	}{{"a", "a1"}, {"b", "b1"}, {"a", "a2"}, {"c", "c1"}, {"b", ""}} {
		if w.payload == "" {
			err = txn.Del(w.key)
		} else {
			err = txn.Put(w.key, rowAt(10, w.payload), 10, true)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, c := range txn.Changes() {
		if c.Topic != "log" {
			t.Errorf("change of %s to topic %q", c.Key, c.Topic)
		}
		v := "tombstone"
		if c.Value != nil {
			v = string(c.Value[8:])
		}
		got = append(got, string(c.Key)+"="+v)
	}
	want := []string{"a=a2", "b=tombstone", "c=c1"}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("changes %v, want %v", got, want)
		}
	}
}
