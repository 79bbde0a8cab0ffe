package router

import (
	"fmt"
	"testing"

	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// An otp published behind a marketing backlog of its tenant (same partition
// of the co-partitioned intakes) is routed before the backlog is through:
// the otp intake is a topic of its own that the partition serves first.
func TestOTPAheadOfMarketingBacklog(t *testing.T) {
	const backlog = 20000
	h := newHarness(t, nil)
	otpLane, bulkLane := h.outbound("a", schemas.LaneOTP), h.outbound("a", schemas.LaneBulk)
	w := h.watch(otpLane)
	var msgs []*sluicepb.Message
	for i := range backlog {
		msgs = append(msgs, msg(fmt.Sprintf("mk-%d", i), "acme", sluicepb.Priority_PRIORITY_MARKETING))
	}
	h.accept(msgs...)
	h.accept(msg("otp-behind", "acme", sluicepb.Priority_PRIORITY_OTP))
	h.start()
	until(t, "the otp behind the backlog", func() bool { return ids(t, w.of(otpLane))["otp-behind"] == 1 })
	if n := endTotal(t, h, bulkLane); n >= backlog {
		t.Fatalf("the whole backlog (%d) was routed before the otp behind it", n)
	}
	until(t, "the backlog through", func() bool { return endTotal(t, h, bulkLane) == backlog })
}
