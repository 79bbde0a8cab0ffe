package sender

import (
	"testing"
	"time"
)

func TestPacerSlowsDownAndRampsBack(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newPacer(400, func() time.Time { return now })
	steps := []struct {
		advance  time.Duration
		throttle bool
		want     float64
	}{
		{0, false, 400},
		{0, true, 200},                 // halved
		{0, true, 200},                 // same burst of refusals: no second cut
		{throttleRamp / 2, false, 300}, // half way back
		{0, true, 150},                 // a new refusal halves the current rate
		{throttleRamp, false, 400},     // fully recovered
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if s.throttle {
			p.throttled()
		}
		if got := p.rate(); int(got+0.5) != int(s.want) {
			t.Fatalf("step %d: rate = %.1f, want %.0f", i, got, s.want)
		}
	}
}

func TestPacerNeverStops(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newPacer(3, func() time.Time { return now })
	for range 10 {
		now = now.Add(throttleGap)
		p.throttled()
	}
	if got := p.rate(); got != minRate {
		t.Fatalf("rate after many throttles = %v, want the floor %d", got, minRate)
	}
}
