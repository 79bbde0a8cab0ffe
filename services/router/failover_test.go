package router

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

func healthRecord(t testing.TB, carrier string, slot uint32, bound bool, since time.Time) kafka.Message {
	t.Helper()
	v, err := proto.Marshal(&sluicepb.CarrierHealth{Carrier: carrier, Slot: slot, Bound: bound, SinceMs: since.UnixMilli(), ReportedAtMs: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: fmt.Appendf(nil, "%s:%d", carrier, slot), Value: v}
}

func TestHealthDown(t *testing.T) {
	now := time.Now()
	long, recent := now.Add(-time.Hour), now.Add(-time.Second)
	tests := []struct {
		name    string
		reports []kafka.Message
		down    bool
	}{
		{"no reports: up", nil, false},
		{"every slot unbound for long: down", []kafka.Message{healthRecord(t, "a", 0, false, long), healthRecord(t, "a", 1, false, long)}, true},
		{"one slot bound: up", []kafka.Message{healthRecord(t, "a", 0, false, long), healthRecord(t, "a", 1, true, long)}, false},
		{"unbound only recently: up", []kafka.Message{healthRecord(t, "a", 0, false, recent)}, false},
		{"a bound slot's report replaces its unbound one", []kafka.Message{healthRecord(t, "a", 0, false, long), healthRecord(t, "a", 0, true, recent)}, false},
		{"tombstone forgets the slot", []kafka.Message{healthRecord(t, "a", 0, false, long), {Key: []byte("a:0")}}, false},
		{"other carriers' reports do not count", []kafka.Message{healthRecord(t, "b", 0, false, long)}, false},
	}
	for _, tt := range tests {
		h := newHealth()
		for _, r := range tt.reports {
			h.apply(r)
		}
		if got := h.down("a", now, 30*time.Second); got != tt.down {
			t.Errorf("%s: down = %v", tt.name, got)
		}
	}
}

// A carrier whose binds have all been down longer than failover_after (as
// the senders report on sluice.carrier.health) is skipped: its weight goes
// to the route's other carriers, or to the failover list; once a bind is
// back, traffic returns to it.
func TestFailoverOnCarrierHealth(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Router.FailoverAfter = 5 * time.Second })
	health := h.topic(schemas.TopicCarrierHealth)
	down := func(slot uint32) kafka.Message {
		r := healthRecord(t, "a", slot, false, time.Now().Add(-time.Minute))
		r.Topic = health
		return r
	}
	h.produce(down(0), down(1))
	aBulk, bBulk, cBulk := h.outbound("a", schemas.LaneBulk), h.outbound("b", schemas.LaneBulk), h.outbound("c", schemas.LaneBulk)
	w := h.watch(aBulk, bBulk, cBulk)
	h.start()

	var msgs []*sluicepb.Message
	for i := range 50 {
		uk := msg(fmt.Sprintf("uk-%d", i), "acme", sluicepb.Priority_PRIORITY_TRANSACTIONAL)
		fr := msg(fmt.Sprintf("fr-%d", i), "acme", sluicepb.Priority_PRIORITY_TRANSACTIONAL)
		fr.To, fr.Country = "+33612345678", "FR"
		msgs = append(msgs, uk, fr)
	}
	h.accept(msgs...)
	until(t, "100 routed", func() bool { return len(w.of(bBulk))+len(w.of(cBulk))+len(w.of(aBulk)) == 100 })
	if n := len(w.of(aBulk)); n != 0 {
		t.Errorf("%d messages routed to the carrier that is down", n)
	}
	for _, m := range messages(t, w.of(cBulk)) {
		if !strings.HasPrefix(m.Id, "uk-") || m.Carrier != "c" || m.RouteReason != "prefix +44 failover" {
			t.Errorf("%s on c: carrier %q, reason %q", m.Id, m.Carrier, m.RouteReason)
		}
	}
	for _, m := range messages(t, w.of(bBulk)) {
		if !strings.HasPrefix(m.Id, "fr-") || m.RouteReason != "prefix +33 weighted among carriers up" {
			t.Errorf("%s on b: reason %q", m.Id, m.RouteReason)
		}
	}
	if len(w.of(cBulk)) != 50 || len(w.of(bBulk)) != 50 {
		t.Errorf("c got %d, b got %d; want 50 each", len(w.of(cBulk)), len(w.of(bBulk)))
	}

	up := healthRecord(t, "a", 0, true, time.Now())
	up.Topic = health
	h.produce(up)
	var probes atomic.Int64
	until(t, "traffic back on a", func() bool {
		h.accept(msg(fmt.Sprintf("probe-%d", probes.Add(1)), "acme", sluicepb.Priority_PRIORITY_TRANSACTIONAL))
		time.Sleep(50 * time.Millisecond)
		return len(w.of(aBulk)) > 0
	})
}

// A message a sender sends back after a permanent routing error (its
// carrier appended to failed_carriers) goes to the route's next carrier,
// without counting again against its tenant's quota; when no carrier is
// left it ends failed.
func TestFailoverAfterRoutingError(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.Tenants = []config.Tenant{{ID: "acme", DailyQuota: 1}}
	})
	cBulk, status := h.outbound("c", schemas.LaneBulk), h.topic(schemas.TopicStatus)
	w := h.watch(cBulk, status)
	h.start()
	once := msg("refused-once", "acme", sluicepb.Priority_PRIORITY_TRANSACTIONAL)
	once.FailedCarriers = []string{"a"}
	everywhere := msg("refused-everywhere", "acme", sluicepb.Priority_PRIORITY_TRANSACTIONAL)
	everywhere.FailedCarriers = []string{"a", "c"}
	first := msg("first", "acme", sluicepb.Priority_PRIORITY_TRANSACTIONAL) // uses the quota of 1
	h.accept(first, once, everywhere)
	until(t, "the rerouted message and the failed one", func() bool {
		return len(w.of(cBulk)) == 1 && countStatus(t, w.of(status), "failed", reasonNoCarrierLeft)[everywhere.Id] == 1
	})
	got := messages(t, w.of(cBulk))[0]
	if got.Id != once.Id || got.RouteReason != "prefix +44 after a routing error, failover" {
		t.Errorf("carrier c got %s because %q", got.Id, got.RouteReason)
	}
}
