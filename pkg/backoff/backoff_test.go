package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/backoff"
)

// Each wait is within ±50 % of a base that doubles from initial up to max,
// and Reset starts again from initial.
func TestWaits(t *testing.T) {
	b := backoff.New(100*time.Millisecond, time.Second)
	bases := []time.Duration{100, 200, 400, 800, 1000, 1000}
	check := func(i int, base time.Duration) {
		t.Helper()
		base *= time.Millisecond
		if w := b.Next(); w < base/2 || w > base*3/2+1 {
			t.Errorf("wait %d = %v, want %v ± 50 %%", i, w, base)
		}
	}
	for i, base := range bases {
		check(i, base)
	}
	b.Reset()
	check(0, 100)
}

// Retry stops at the first success, and when ctx ends it returns both the
// last error and ctx's.
func TestRetry(t *testing.T) {
	calls, failures := 0, 0
	err := backoff.Retry(t.Context(), time.Millisecond, time.Millisecond, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}, func(error) { failures++ })
	if err != nil || calls != 3 || failures != 2 {
		t.Errorf("Retry = %v after %d calls, %d failures heard; want nil after 3, 2", err, calls, failures)
	}

	ctx, cancel := context.WithCancel(t.Context())
	boom := errors.New("boom")
	err = backoff.Retry(ctx, time.Hour, time.Hour, func() error { cancel(); return boom }, nil)
	if !errors.Is(err, boom) || !errors.Is(err, context.Canceled) {
		t.Errorf("Retry after cancel = %v, want boom and context.Canceled", err)
	}
}
