package router

import (
	"context"
	"testing"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/telemetry"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// Every priority reaches its lane on the routed carrier with the carrier and
// the reason on the message and the trace context in the headers; a number
// no route covers ends rejected with no_route.
func TestRoutesLanesAndNoRoute(t *testing.T) {
	h := newHarness(t, nil)
	status := h.topic(schemas.TopicStatus)
	w := h.watch(h.outbound("a", schemas.LaneOTP), h.outbound("a", schemas.LaneBulk), status)
	h.start()

	const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	otp := msg("otp-1", "acme", sluicepb.Priority_PRIORITY_OTP)
	tx := msg("tx-1", "acme", sluicepb.Priority_PRIORITY_TRANSACTIONAL)
	mk := msg("mk-1", "beta", sluicepb.Priority_PRIORITY_MARKETING)
	lost := msg("nowhere-1", "acme", sluicepb.Priority_PRIORITY_OTP)
	lost.To = "+19995550100"
	h.accept(tx, mk, lost)
	v, _ := protoMarshal(t, otp)
	rec := kafka.Message{Topic: h.topic(schemas.TopicRouterOTP), Key: []byte(otp.Tenant), Value: v}
	rec.Headers = []kafka.Header{{Key: "traceparent", Value: []byte(traceparent)}}
	h.produce(rec)

	until(t, "three routed and one rejected", func() bool {
		return len(w.of(h.outbound("a", schemas.LaneOTP))) == 1 && len(w.of(h.outbound("a", schemas.LaneBulk))) == 2 &&
			len(countStatus(t, w.of(status), message.StatusRejected, reasonNoRoute)) == 1
	})
	otpRecs := w.of(h.outbound("a", schemas.LaneOTP))
	got := messages(t, otpRecs)[0]
	if got.Id != "otp-1" || got.Carrier != "a" || got.RouteReason != "prefix +44 weighted" {
		t.Errorf("otp lane holds %s on %q because %q", got.Id, got.Carrier, got.RouteReason)
	}
	ctx := telemetry.Extract(context.Background(), otpRecs[0].Headers)
	if id := traceID(ctx); id != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("trace id on the outbound record = %q, want the accepted record's", id)
	}
	bulk := ids(t, w.of(h.outbound("a", schemas.LaneBulk)))
	if bulk["tx-1"] != 1 || bulk["mk-1"] != 1 {
		t.Errorf("bulk lane = %v, want tx-1 and mk-1 once", bulk)
	}
	if n := countStatus(t, w.of(status), message.StatusRejected, reasonNoRoute); n["nowhere-1"] != 1 {
		t.Errorf("no_route rejections = %v", n)
	}
}

// What an older ingest left on sluice.accepted (keyed by message id) at an
// upgrade is drained into the tenant-keyed intakes and routed like the rest.
func TestLegacyAcceptedIsDrained(t *testing.T) {
	h := newHarness(t, nil)
	w := h.watch(h.outbound("a", schemas.LaneOTP), h.outbound("a", schemas.LaneBulk))
	var recs []kafka.Message
	for _, m := range []*sluicepb.Message{msg("old-otp", "acme", sluicepb.Priority_PRIORITY_OTP), msg("old-mk", "beta", sluicepb.Priority_PRIORITY_MARKETING)} {
		v, _ := protoMarshal(t, m)
		recs = append(recs, kafka.Message{Topic: h.topic(schemas.TopicAccepted), Key: []byte(m.Id), Value: v})
	}
	h.produce(recs...)
	h.start()
	until(t, "both routed", func() bool {
		return len(w.of(h.outbound("a", schemas.LaneOTP))) == 1 && len(w.of(h.outbound("a", schemas.LaneBulk))) == 1
	})
	if otp := ids(t, w.of(h.outbound("a", schemas.LaneOTP))); otp["old-otp"] != 1 {
		t.Errorf("otp lane = %v, want old-otp", otp)
	}
	if bulk := ids(t, w.of(h.outbound("a", schemas.LaneBulk))); bulk["old-mk"] != 1 {
		t.Errorf("bulk lane = %v, want old-mk", bulk)
	}
}
