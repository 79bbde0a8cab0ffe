package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/tools/smscsim"
)

// TestCarrierFaults makes one simulated carrier (sim-c, half the traffic)
// disconnect, stall and throttle in turn while a campaign flows across all
// three, and checks the suite's promises after each, that the fault did hit
// the carrier, and that none sent anything to a retry lane: a dropped bind
// is redialled, an unanswered submit resent in place (or ended unknown for
// marketing), a throttled one slowed down and resubmitted.
func TestCarrierFaults(t *testing.T) {
	const carrier = "sim-c"
	// A short resp_timeout keeps the stall short: it lasts less than one
	// timeout, so each bind has at most one window of outcomes unknown.
	n, rate, down, timeout := 1200, 400.0, 2*time.Second, time.Minute
	if full {
		n, rate, down, timeout = envInt("SLUICE_CHAOS_N", 10000), float64(envInt("SLUICE_CHAOS_RATE", 2000)), 10*time.Second, 5*time.Minute
	}
	s := startStackWith(t, Options{RespTimeout: 2 * time.Second})
	// Each fault leaves at most one window per bind of the carrier's submits
	// without an answer, and only those are sent again.
	var window int64
	for _, c := range s.Cfg.Carriers {
		if c.ID == carrier {
			window = int64(c.Binds * c.Window)
		}
	}
	// What each fault must have done to the carrier.
	hit := map[string]func(before, after smscsim.CarrierStats) error{
		"disconnects": func(b, a smscsim.CarrierStats) error {
			if a.Disconnects == b.Disconnects || a.BindFailures == b.BindFailures {
				return fmt.Errorf("%d sessions dropped, %d binds refused; want some of each", a.Disconnects-b.Disconnects, a.BindFailures-b.BindFailures)
			}
			return nil
		},
		"stalls": func(b, a smscsim.CarrierStats) error {
			if a.Stalled == b.Stalled {
				return fmt.Errorf("no submit stalled")
			}
			return nil
		},
		"throttles": func(b, a smscsim.CarrierStats) error {
			if a.Injected == b.Injected {
				return fmt.Errorf("no submit throttled")
			}
			return nil
		},
	}
	var results []Result
	for i, kind := range CarrierFaultKinds {
		f, err := s.CarrierFault(carrier, kind, down)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(strings.ReplaceAll(f.Name, " ", "_"), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			c := Campaign(fmt.Sprintf("chaos-carrier-%d", i), n, uint64(100+i))
			before := s.Sim.Stats()[carrier]
			res, err := s.Run(ctx, f, c, rate, nil)
			results = append(results, res)
			after := s.Sim.Stats()[carrier]
			checkResult(t, res)
			if err := hit[kind](before, after); err != nil {
				t.Errorf("%s: %v", f.Name, err)
			}
			if dup := after.DuplicateSubmits - before.DuplicateSubmits; dup > window {
				t.Errorf("%s received %d submits twice, more than its binds × window %d", carrier, dup, window)
			}
			if res.Retried != 0 {
				t.Errorf("%d records went to a retry lane", res.Retried)
			}
			t.Logf("%s: %d submits accepted, %d stalled, %d refused, %d sessions dropped, %d binds refused", carrier,
				after.Submits-before.Submits, after.Stalled-before.Stalled, after.Injected-before.Injected,
				after.Disconnects-before.Disconnects, after.BindFailures-before.BindFailures)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	logResults(t, fmt.Sprintf("carrier faults (%d messages per fault at %.0f msg/s; window %d)", n, rate, s.Window()), results)
}
