// Package kannelbench measures the reference figure sluice's benchmarks are
// compared with: Kannel's bare submit rate (bearerbox fed by mtbatch) on
// sluice's SMSC simulator, on the same machine, in the same run.
package kannelbench

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/testenv/kannel"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

// SubmitRate returns how many submit_sm a second bearerbox gets accepted by
// a simulated carrier, with binds binds of max-pending-submits window and
// its store in a file (as Kannel runs in production), for n messages asking
// for a receipt: from the moment mtbatch starts until the simulator has
// accepted them all. A benchmark's timer runs only over that span.
func SubmitRate(ctx context.Context, t testing.TB, binds, window, n int) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// SMPP passwords are at most 8 characters.
	simCfg := smscsim.CarrierConfig{ID: "kannel-ref", SystemID: "kannel", Password: "kref-pw", Addr: "127.0.0.1:0", DLRDelay: time.Millisecond}
	sim, err := smscsim.StartWithLogger(ctx, []smscsim.CarrierConfig{simCfg}, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sim.Close() }()
	k := kannel.Start(ctx, t, kannel.Config{
		SMSCAddr: sim.Addr(simCfg.ID), SystemID: simCfg.SystemID, Password: simCfg.Password,
		Binds: binds, Window: window, StoreFile: true, LogLevel: 4,
	})
	wait := func(what string, cond func(smscsim.CarrierStats) bool) {
		for {
			st := sim.Stats()[simCfg.ID]
			if cond(st) {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("kannel: %s: never happened: %+v", what, st)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	wait("bearerbox bound", func(st smscsim.CarrierStats) bool { return st.BindsOpen == int64(binds) })
	if b, ok := t.(*testing.B); ok {
		// A benchmark's timer covers the submits only, not the set-up.
		b.StartTimer()
		defer b.StopTimer()
	}
	start := time.Now()
	k.MTBatch(ctx, t, n, "hello from kannel")
	wait("all submitted", func(st smscsim.CarrierStats) bool { return st.Submits >= int64(n) })
	return float64(n) / time.Since(start).Seconds()
}
