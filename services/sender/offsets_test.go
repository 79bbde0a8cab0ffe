package sender

import "testing"

func TestOffsetsCommitOnlyTheFinishedPrefix(t *testing.T) {
	o := newOffsets()
	for _, off := range []int64{10, 11, 13, 14} { // 12 is a gap (e.g. compacted away)
		o.start(off)
	}
	steps := []struct {
		finish int64
		want   int64
	}{
		{11, -1}, // 10 still in flight
		{14, -1},
		{10, 12}, // 10 and 11 done: resume at 12
		{13, 15}, // the rest done: resume after 14
	}
	for _, s := range steps {
		o.finish(s.finish)
		if got := o.next(); got != s.want {
			t.Fatalf("after finishing %d: next = %d, want %d", s.finish, got, s.want)
		}
	}
}
