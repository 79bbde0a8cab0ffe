package batch_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/batch"
)

// run starts b until the test ends.
func run[T any](t *testing.T, b *batch.Batcher[T]) {
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { b.Run(ctx) })
	t.Cleanup(func() { stop(); wg.Wait() })
}

func TestBatcher(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		max       int
		linger    time.Duration
		callers   int
		fail      bool
		wantSends int
	}{
		// A linger longer than the test: the batch goes out when Max is reached.
		{name: "callers share one send", max: 10, linger: time.Hour, callers: 10, wantSends: 1},
		{name: "max splits the batches", max: 4, linger: time.Hour, callers: 8, wantSends: 2},
		{name: "a failed send fails every caller in it", max: 5, linger: time.Hour, callers: 5, fail: true, wantSends: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var sends [][]int
			b := batch.New(batch.Options{Max: tt.max, Linger: tt.linger}, func(_ context.Context, items []int) error {
				mu.Lock()
				defer mu.Unlock()
				sends = append(sends, slices.Clone(items))
				if tt.fail {
					return boom
				}
				return nil
			})
			run(t, b)
			errs := make(chan error, tt.callers)
			var wg sync.WaitGroup
			for i := range tt.callers {
				wg.Go(func() { errs <- b.Do(t.Context(), i) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if tt.fail != errors.Is(err, boom) {
					t.Errorf("Do = %v, want failure %v", err, tt.fail)
				}
			}
			var all []int
			for _, s := range sends {
				all = append(all, s...)
			}
			slices.Sort(all)
			if len(sends) != tt.wantSends || len(all) != tt.callers || all[0] != 0 || all[len(all)-1] != tt.callers-1 {
				t.Errorf("sends %v, want %d holding each of %d items once", sends, tt.wantSends, tt.callers)
			}
		})
	}
}

// A lone request goes out after the linger, and ctx's end answers a caller
// whose batch has not gone.
func TestBatcherLingerAndCancel(t *testing.T) {
	b := batch.New(batch.Options{Max: 100, Linger: time.Millisecond}, func(context.Context, []string) error { return nil })
	run(t, b)
	if err := b.Do(t.Context(), "a"); err != nil {
		t.Fatalf("Do after the linger: %v", err)
	}
	if err := b.Do(t.Context()); err != nil {
		t.Errorf("Do of nothing: %v", err)
	}

	stuck := batch.New(batch.Options{Max: 100, Linger: time.Hour}, func(context.Context, []string) error { return nil })
	run(t, stuck)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := stuck.Do(ctx, "b"); !errors.Is(err, context.Canceled) {
		t.Errorf("Do with ctx ended: %v, want context.Canceled", err)
	}
}

// What arrives while the one send in flight is under way joins the next send,
// even without a linger.
func TestBatcherGathersDuringASend(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	first := make(chan struct{})
	b := batch.New(batch.Options{Max: 100}, func(_ context.Context, items []int) error {
		mu.Lock()
		sizes = append(sizes, len(items))
		n := len(sizes)
		mu.Unlock()
		if n == 1 {
			close(first)
			<-release
		}
		return nil
	})
	run(t, b)
	var wg sync.WaitGroup
	wg.Go(func() { _ = b.Do(t.Context(), 0) })
	<-first
	for i := range 5 {
		wg.Go(func() { _ = b.Do(t.Context(), i+1) })
	}
	// The runner holds all five before the first send ends, whatever the
	// order the callers ran in: it takes them while waiting for the slot.
	waitQueued(t, b, 5)
	close(release)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sizes, []int{1, 5}) {
		t.Errorf("send sizes %v, want [1 5]", sizes)
	}
}

// waitQueued waits until b holds n requests for its next send.
func waitQueued[T any](t *testing.T, b *batch.Batcher[T], n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for batch.Held(b) < n {
		select {
		case <-ctx.Done():
			t.Fatalf("the batcher holds %d requests, want %d", batch.Held(b), n)
		case <-time.After(time.Millisecond):
		}
	}
}
