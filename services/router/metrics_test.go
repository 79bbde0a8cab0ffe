package router

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/testenv/freeport"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// The router's metrics count what it did: routed by carrier and lane,
// rejected by reason, and the messages it holds.
func TestMetrics(t *testing.T) {
	addr := freeport.Addr(t)
	h := newHarness(t, func(c *config.Config) { c.Router.AdminAddr = addr })
	otpLane, bulkLane := h.outbound("a", schemas.LaneOTP), h.outbound("a", schemas.LaneBulk)
	w := h.watch(otpLane, bulkLane)
	h.start()
	h.warmUp(w, otpLane, bulkLane)
	later := msg("later", "acme", sluicepb.Priority_PRIORITY_TRANSACTIONAL)
	later.SendAtMs = time.Now().Add(time.Hour).UnixMilli()
	nowhere := msg("nowhere", "acme", sluicepb.Priority_PRIORITY_MARKETING)
	nowhere.To = "+19995550100"
	h.accept(later, nowhere, msg("otp-2", "acme", sluicepb.Priority_PRIORITY_OTP))

	value := func(body, series string) float64 {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	var body string
	until(t, "the metrics", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return value(body, `sluice_router_routed_total{carrier="a",how="weighted",lane="otp"}`) == 2 &&
			value(body, `sluice_router_rejected_total{reason="no_route"}`) == 1 &&
			value(body, `sluice_router_schedule_backlog`) == 1 &&
			value(body, `sluice_router_held_total{reason="send_at"}`) == 1
	})
	if v := value(body, `sluice_router_routed_total{carrier="a",how="weighted",lane="bulk"}`); v != 1 {
		t.Errorf("bulk routed = %v, want 1 (the warm-up)", v)
	}
}
