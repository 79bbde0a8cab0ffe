package sendertest

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/testenv/freeport"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

// A campaign whose receipts come 1 ms after each submit, from an SMSC that
// lets far more deliver_sm go unanswered than the sender has receipt
// handlers: not one is refused, the refusal metric stays at 0, and every
// receipt reaches sluice.dlr.raw. With a tiny pool the binds must pause
// their reading, and still none is refused.
func TestReceiptBurstNoneRefused(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		handlers   int  // receipt_handlers; 0 for the default
		window     int  // deliver_sm the sim leaves unanswered at once
		wantPauses bool // the pool is too small for the burst: reading must pause
	}{
		{"default pool", 20_000, 0, 2048, false},
		// Two handlers store about 180 receipts/s on three brokers, so a
		// window of 2048 would queue a receipt for about 11 s: past the
		// sim's 10 s response timeout, which resends it, as a real SMSC
		// would. 512 is still far more than the pool and waits about 3 s.
		{"pool of 2", 5_000, 2, 512, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := simCarrier("sim-a", 0, 0)
			sim.DLRDelay = time.Millisecond
			sim.DLRWindow = tt.window
			c := carrier(2, 1_000_000, 100)
			c.ReceiptHandlers = tt.handlers
			h := newHarness(t, []smscsim.CarrierConfig{sim}, []config.Carrier{c})
			h.cfg.Sender.AdminAddr = freeport.Addr(t)
			subs := submits(h)
			dlrs := collect(h, h.topic(schemas.TopicDLRRaw), func() *sluicepb.RawDLR { return new(sluicepb.RawDLR) })
			h.runSender()
			h.waitSim("sim-a", "binds up", func(st smscsim.CarrierStats) bool { return st.BindsOpen == 2 })

			start := time.Now()
			h.send(messages(tt.n, "sim-a", sluicepb.Priority_PRIORITY_TRANSACTIONAL)...)
			st := h.waitSim("sim-a", "every receipt answered", func(st smscsim.CarrierStats) bool {
				return st.UniqueSubmits >= int64(tt.n) && st.DLRsRequested >= st.Submits && st.DLRsPending == 0
			})
			took := time.Since(start)
			t.Logf("%d messages and their receipts in %s (%.0f/s)", tt.n, took.Round(time.Millisecond), float64(tt.n)/took.Seconds())
			// A receipt the sim timed out on (its 10 s response wait, which a
			// loaded machine can pass while the binds pause) is sent again,
			// as a real SMSC would: each one sent must still be stored.
			if st.DLRsRefused != 0 || st.DLRsSent < st.DLRsRequested || st.DLRsAcked != st.DLRsRequested {
				t.Errorf("sim sent %d receipts, %d acknowledged, %d refused; want %d acknowledged (one per submit), none refused",
					st.DLRsSent, st.DLRsAcked, st.DLRsRefused, st.DLRsRequested)
			}
			if resent := st.DLRsSent - st.DLRsRequested; resent > 0 {
				t.Logf("%d receipts sent again after the sim's response timeout", resent)
			}

			ids := map[string]bool{}
			for _, r := range subs.wait(h, "every submit recorded", func(r []*sluicepb.SubmitResult) bool { return len(byMessage(r)) == tt.n }) {
				ids[r.SmscMessageId] = true
			}
			got := dlrs.wait(h, "every receipt stored", func(r []*sluicepb.RawDLR) bool { return int64(len(r)) >= st.DLRsSent })
			stored := map[string]bool{}
			for _, d := range got {
				if !ids[d.SmscMessageId] {
					t.Errorf("stored receipt %q matches no submit", d.SmscMessageId)
				}
				stored[d.SmscMessageId] = true
			}
			if int64(len(got)) != st.DLRsSent || int64(len(stored)) != st.DLRsRequested {
				t.Errorf("sluice.dlr.raw holds %d receipts for %d ids, want %d (as sent) for %d (one per submit)", len(got), len(stored), st.DLRsSent, st.DLRsRequested)
			}

			body := scrapeUntil(h, fmt.Sprintf(`sluice_sender_deliver_sm_store_seconds_count{carrier="sim-a"`))
			for _, reason := range []string{"publish_failed", "session_ended", "no_handler"} {
				if v, ok := metricValue(body, "sluice_sender_deliver_sm_refused_total", `carrier="sim-a"`, `reason="`+reason+`"`); !ok || v != 0 {
					t.Errorf("sluice_sender_deliver_sm_refused_total{carrier=sim-a,reason=%s} = %v (present %v), want 0", reason, v, ok)
				}
			}
			if v, _ := metricValue(body, "sluice_sender_deliver_sm_store_seconds_count", `carrier="sim-a"`); v != float64(st.DLRsSent) {
				t.Errorf("%v receipts timed, want %d (as sent)", v, st.DLRsSent)
			}
			pauses, _ := metricValue(body, "sluice_sender_deliver_sm_read_pause_seconds_count", `carrier="sim-a"`)
			if tt.wantPauses && pauses == 0 {
				t.Error("the binds never paused their reading: the burst never outgrew the pool, the case proves nothing")
			}
			t.Logf("store latency buckets (s, cumulative): %s; read pauses: %v", buckets(body, "sluice_sender_deliver_sm_store_seconds"), pauses)
		})
	}
}

// scrapeUntil returns the sender's /metrics once it contains want.
func scrapeUntil(h *harness, want string) string {
	h.t.Helper()
	for {
		resp, err := http.Get("http://" + h.cfg.Sender.AdminAddr + "/metrics")
		if err != nil {
			h.t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			h.t.Fatal(err)
		}
		if strings.Contains(string(b), want) {
			return string(b)
		}
		select {
		case <-h.ctx.Done():
			h.t.Fatalf("metrics never showed %s:\n%s", want, grepLines(string(b), "sluice_sender"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// metricValue is the value of the first series of name whose labels contain
// every one of labels.
func metricValue(body, name string, labels ...string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`)
next:
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		for _, l := range labels {
			if !strings.Contains(m[1], l) {
				continue next
			}
		}
		v, err := strconv.ParseFloat(m[2], 64)
		return v, err == nil
	}
	return 0, false
}

// buckets lists a histogram's cumulative bucket counts as le=count.
func buckets(body, name string) string {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `_bucket\{[^}]*le="([^"]+)"[^}]*\} (\S+)$`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1]+"="+m[2])
	}
	return strings.Join(out, " ")
}
