package smscsim

import "time"

// window counts events in the last second, exactly, and remembers the most it
// ever held. Not safe for concurrent use.
type window struct {
	times []time.Time
	head  int // times[head:] are the events of the last second
	peak  int64
}

// count returns how many events happened in the second before now.
func (w *window) count(now time.Time) int {
	cutoff := now.Add(-time.Second)
	for w.head < len(w.times) && !w.times[w.head].After(cutoff) {
		w.head++
	}
	if w.head > 1024 && w.head > len(w.times)/2 {
		w.times = append(w.times[:0], w.times[w.head:]...)
		w.head = 0
	}
	return len(w.times) - w.head
}

// add records an event at now (events must come in time order, or nearly:
// one late by microseconds only shortens its stay).
func (w *window) add(now time.Time) {
	n := w.count(now)
	w.times = append(w.times, now)
	w.peak = max(w.peak, int64(n+1))
}
