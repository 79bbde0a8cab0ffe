package sender

import (
	"testing"
	"time"
)

// One line per interval, the first at once, each with the events held back
// since the previous one.
func TestLogLimiter(t *testing.T) {
	var clock time.Time
	l := newLogLimiter(10*time.Second, func() time.Time { return clock })
	tests := []struct {
		at       time.Duration
		ok       bool
		unlogged int64
	}{
		{0, true, 0},
		{0, false, 0},
		{9 * time.Second, false, 0},
		{10 * time.Second, true, 2}, // a full interval after the last line
		{15 * time.Second, false, 0},
		{19 * time.Second, false, 0},
		{time.Minute, true, 2},
		{2 * time.Minute, true, 0}, // quiet since: nothing held back
	}
	for i, tt := range tests {
		clock = time.Unix(0, 0).Add(tt.at)
		if ok, unlogged := l.allow(); ok != tt.ok || unlogged != tt.unlogged {
			t.Errorf("step %d at %v: allow() = %v, %d; want %v, %d", i, tt.at, ok, unlogged, tt.ok, tt.unlogged)
		}
	}
}
