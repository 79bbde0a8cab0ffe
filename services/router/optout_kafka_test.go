package router

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// STOP from a subscriber puts (tenant, number) on the opt-out list in Kafka:
// the tenant's marketing to it ends rejected opted_out, its other traffic
// and other tenants' marketing still go; a STOP to an address no tenant owns
// concerns every tenant; START takes the number off again. The list outlives
// the router (each step restarts it).
func TestOptOutByMOKeywords(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.Router.OptOut.Addresses = []config.OptOutAddress{{Address: "ACME", Tenant: "acme"}}
	})
	optout, status := h.topic(schemas.TopicOptOut), h.topic(schemas.TopicStatus)
	aBulk, aOTP := h.outbound("a", schemas.LaneBulk), h.outbound("a", schemas.LaneOTP)
	w := h.watch(optout, status, aBulk, aOTP)
	stop := h.start()

	h.mo("447700900001", "ACME", "Stop")              // acme's subscriber, national digits
	h.mo("+447700900002", "SHORTCODE", "stop please") // an address of nobody's: every tenant
	h.mo("+447700900003", "ACME", "hello, stop")      // not a keyword
	until(t, "two opt-outs on the list", func() bool { return len(w.of(optout)) == 2 })
	stop()
	stop = h.start()

	to := func(m *sluicepb.Message, number string) *sluicepb.Message { m.To = number; return m }
	h.accept(
		to(msg("acme-mk-1", "acme", sluicepb.Priority_PRIORITY_MARKETING), "+447700900001"),
		to(msg("acme-tx-1", "acme", sluicepb.Priority_PRIORITY_TRANSACTIONAL), "+447700900001"),
		to(msg("acme-otp-1", "acme", sluicepb.Priority_PRIORITY_OTP), "+447700900001"),
		to(msg("beta-mk-1", "beta", sluicepb.Priority_PRIORITY_MARKETING), "+447700900001"),
		to(msg("beta-mk-2", "beta", sluicepb.Priority_PRIORITY_MARKETING), "+447700900002"),
		to(msg("acme-mk-3", "acme", sluicepb.Priority_PRIORITY_MARKETING), "+447700900003"),
	)
	until(t, "six messages decided", func() bool {
		return len(w.of(aBulk))+len(w.of(aOTP))+len(countStatus(t, w.of(status), message.StatusRejected, reasonOptedOut)) == 6
	})
	rejected := countStatus(t, w.of(status), message.StatusRejected, reasonOptedOut)
	if len(rejected) != 2 || rejected["acme-mk-1"] != 1 || rejected["beta-mk-2"] != 1 {
		t.Errorf("opted_out rejections = %v, want acme-mk-1 and beta-mk-2", rejected)
	}

	h.mo("+447700900001", "ACME", "START")
	until(t, "the opt-out tombstone", func() bool {
		recs := w.of(optout)
		return len(recs) == 3 && recs[2].Value == nil && string(recs[2].Key) == "acme|+447700900001"
	})
	stop()
	h.start()
	h.accept(to(msg("acme-mk-4", "acme", sluicepb.Priority_PRIORITY_MARKETING), "+447700900001"))
	until(t, "marketing after START routed", func() bool { return ids(t, w.of(aBulk))["acme-mk-4"] == 1 })
}

// mo publishes an MO as a sender does.
func (h *harness) mo(from, to, text string) {
	h.t.Helper()
	v, err := proto.Marshal(&sluicepb.MO{Carrier: "a", SourceAddr: from, DestAddr: to, Text: text, ReceivedAtMs: time.Now().UnixMilli()})
	if err != nil {
		h.t.Fatal(err)
	}
	h.produce(kafka.Message{Topic: h.topic(schemas.TopicMO), Key: []byte(from), Value: v})
}
