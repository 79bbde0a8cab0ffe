package sender

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Throttle response: a refusal halves the slot's rate (at most once per
// throttleGap, since a whole window of refusals arrives together), and the
// rate climbs back linearly to the full rate over throttleRamp.
const (
	throttleGap  = 500 * time.Millisecond
	throttleRamp = 5 * time.Second
	minRate      = 1 // parts per second: a slot never stops altogether
)

// pacer paces one bind slot at its share of the carrier's TPS, slowed down
// after the carrier says it is throttling. Its token bucket holds one
// millisecond's worth of tokens (at least one), so no one-second window ever
// sees more than rate × 1.001 + 1 parts, while a fast slot is not held to one
// timer wake-up per part (timers fire late by tens of microseconds or more,
// which would cap a slot far below, say, 100,000 parts/s). Callers wait one
// at a time (gate): a waiter reserves its token only when its turn comes, so
// a process that stalls (GC, a busy machine) does not wake up holding a
// queue of already-due reservations and send them in one burst.
type pacer struct {
	gate sync.Mutex
	mu   sync.Mutex
	full rate.Limit
	lim  *rate.Limiter
	cut  rate.Limit // the rate right after the last throttle
	at   time.Time  // the last throttle; zero: none
	now  func() time.Time
}

func newPacer(perSecond float64, now func() time.Time) *pacer {
	full := rate.Limit(perSecond)
	return &pacer{full: full, lim: rate.NewLimiter(full, max(1, int(perSecond/1000))), now: now}
}

// wait blocks until the slot may send one more part.
func (p *pacer) wait(ctx context.Context) error {
	p.gate.Lock()
	defer p.gate.Unlock()
	p.mu.Lock()
	now := p.now()
	if r := p.rateAt(now); r != p.lim.Limit() {
		p.lim.SetLimitAt(now, r)
	}
	p.mu.Unlock()
	return p.lim.Wait(ctx)
}

// throttled records a refusal with ESME_RTHROTTLED or ESME_RMSGQFUL.
func (p *pacer) throttled() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if !p.at.IsZero() && now.Sub(p.at) < throttleGap {
		return
	}
	p.cut = max(p.rateAt(now)/2, minRate)
	p.at = now
	p.lim.SetLimitAt(now, p.cut)
}

// rate is the current rate, for metrics and tests.
func (p *pacer) rate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return float64(p.rateAt(p.now()))
}

func (p *pacer) rateAt(now time.Time) rate.Limit {
	if p.at.IsZero() {
		return p.full
	}
	f := float64(now.Sub(p.at)) / float64(throttleRamp)
	if f >= 1 {
		return p.full
	}
	return min(p.cut+rate.Limit(f)*(p.full-p.cut), p.full)
}
