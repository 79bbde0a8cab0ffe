package sendertest

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/testenv/freeport"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

// The sender's metrics on /metrics, per carrier: submits by result and lane,
// throttles, open binds, window occupancy and the submit latency histogram.
func TestSenderMetrics(t *testing.T) {
	sim := simCarrier("sim-a", 0, 0)
	sim.Errors = map[uint32]float64{smpp.StatusInvDstAddr: 0.5}
	h := newHarness(t, []smscsim.CarrierConfig{sim}, []config.Carrier{carrier(2, 1000, 10)})
	h.cfg.Sender.AdminAddr = freeport.Addr(t)
	outs := outcomes(h)
	subs := submits(h)
	h.runSender()
	h.send(messages(40, "sim-a", sluicepb.Priority_PRIORITY_OTP)...)
	st := h.waitSim("sim-a", "all answered", func(st smscsim.CarrierStats) bool { return st.Submits+st.Injected == 40 })
	outs.wait(h, "refusals recorded", func(r []*sluicepb.SegmentOutcome) bool { return len(r) == int(st.Injected) })
	subs.wait(h, "acceptances recorded", func(r []*sluicepb.SubmitResult) bool { return len(r) == int(st.Submits) })

	var body string
	for {
		resp, err := http.Get("http://" + h.cfg.Sender.AdminAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		body = string(b)
		if strings.Contains(body, `sluice_sender_submits_total{carrier="sim-a",lane="otp",result="rejected"`) {
			break
		}
		select {
		case <-h.ctx.Done():
			t.Fatalf("metrics never showed the submits:\n%s", body)
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, want := range []string{
		`sluice_sender_submits_total\{carrier="sim-a",lane="otp",result="ok"[^}]*\} ` + itoa(st.Submits) + `\b`,
		`sluice_sender_submits_total\{carrier="sim-a",lane="otp",result="rejected"[^}]*\} ` + itoa(st.Injected) + `\b`,
		`sluice_sender_binds_open\{carrier="sim-a"[^}]*\} 2\b`,
		`sluice_sender_window_inflight\{carrier="sim-a"[^}]*\} 0\b`,
		`sluice_sender_submit_seconds[a-z_]*_count\{carrier="sim-a"[^}]*\} 40\b`,
		`sluice_sender_submit_seconds[a-z_]*_bucket\{carrier="sim-a"[^}]*le="0.001"`,
	} {
		if !regexp.MustCompile(want).MatchString(body) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(body, "sluice_sender"))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
