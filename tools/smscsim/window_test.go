package smscsim

import (
	"testing"
	"time"
)

func TestWindowPeakIsTheBusiestSecond(t *testing.T) {
	var w window
	t0 := time.Unix(1000, 0)
	// 10 events in [0, 0.9s], then 5 in [1.5s, 1.9s]: the busiest second
	// holds 10; [0.5s, 1.5s] holds 5 of the first burst and 1 of the second.
	for i := range 10 {
		w.add(t0.Add(time.Duration(i) * 100 * time.Millisecond))
	}
	for i := range 5 {
		w.add(t0.Add(1500*time.Millisecond + time.Duration(i)*100*time.Millisecond))
	}
	if w.peak != 10 {
		t.Errorf("peak = %d, want 10", w.peak)
	}
	if got := w.count(t0.Add(1950 * time.Millisecond)); got != 5+0 {
		t.Errorf("count at 1.95s = %d, want 5 (events after 0.95s)", got)
	}
	// A window straddling both bursts: events at 0.6..0.9 and 1.5 are in (0.55s, 1.55s].
	var w2 window
	for _, ms := range []int{600, 700, 800, 900, 1500, 1550} {
		w2.add(t0.Add(time.Duration(ms) * time.Millisecond))
	}
	if w2.peak != 6 {
		t.Errorf("straddling peak = %d, want 6", w2.peak)
	}
}
