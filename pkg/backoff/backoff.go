// Package backoff is sluice's one way to wait between attempts: exponential,
// doubling from an initial wait up to a cap, each wait drawn from ±50 % of
// the current one (cenkalti/backoff's ExponentialBackOff), so that many
// retriers after one outage never retry in step.
package backoff

import (
	"context"
	"errors"
	"time"

	cb "github.com/cenkalti/backoff/v5"
)

// Backoff hands out the waits of one retrier. It is not safe for
// concurrent use.
type Backoff struct{ b cb.ExponentialBackOff }

// New starts at initial and doubles up to max.
func New(initial, max time.Duration) *Backoff {
	return &Backoff{b: cb.ExponentialBackOff{InitialInterval: initial, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: max}}
}

// Next is the wait before the next attempt.
func (b *Backoff) Next() time.Duration { return b.b.NextBackOff() }

// Reset starts again from the initial wait, after a success.
func (b *Backoff) Reset() { b.b.Reset() }

// Wait waits the next wait, or until ctx ends: then it returns ctx's error.
func (b *Backoff) Wait(ctx context.Context) error {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Retry calls op until it returns nil or ctx ends, waiting between attempts;
// onErr, when not nil, hears each failure first. When ctx ends it returns
// op's last error joined with ctx's.
func Retry(ctx context.Context, initial, max time.Duration, op func() error, onErr func(error)) error {
	b := New(initial, max)
	for {
		err := op()
		if err == nil {
			return nil
		}
		if onErr != nil {
			onErr(err)
		}
		if werr := b.Wait(ctx); werr != nil {
			return errors.Join(err, werr)
		}
	}
}
