package testenv_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sluice-sms/sluice/pkg/testenv"
)

// fakeT records the failures Run reports.
type fakeT struct {
	testing.TB
	errors  []string
	cleanup []func()
}

func (f *fakeT) Helper()                        {}
func (f *fakeT) Cleanup(fn func())              { f.cleanup = append(f.cleanup, fn) }
func (f *fakeT) Errorf(format string, _ ...any) { f.errors = append(f.errors, format) }

func TestRun(t *testing.T) {
	t.Run("stop cancels and waits", func(t *testing.T) {
		f := &fakeT{TB: t}
		stopped := false
		stop := testenv.Run(f, "svc", func(ctx context.Context) error {
			<-ctx.Done()
			stopped = true
			return ctx.Err()
		})
		stop()
		stop() // twice is fine
		if !stopped || len(f.errors) != 0 {
			t.Errorf("stopped %v, errors %v", stopped, f.errors)
		}
	})
	t.Run("an error fails the test at cleanup", func(t *testing.T) {
		f := &fakeT{TB: t}
		testenv.Run(f, "svc", func(context.Context) error { return errors.New("broken") })
		for _, c := range f.cleanup {
			c()
		}
		if len(f.errors) != 1 {
			t.Errorf("errors %v, want one", f.errors)
		}
	})
}
