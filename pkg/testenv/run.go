package testenv

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// Run runs a service (or any function that blocks until its ctx ends) in the
// background until stop is called or the test ends. An error it returns,
// other than its cancellation, fails the test.
func Run(t testing.TB, name string, run func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s stopped with: %v", name, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
