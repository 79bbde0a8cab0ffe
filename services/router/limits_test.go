package router

import (
	"slices"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// A tenant far over its throughput limit has its backlog held in the
// schedule: otp (its own and others') and other tenants' messages published
// after that backlog, on the same partitions, are routed while the backlog
// is still being paced out, and the paced tenant never exceeds its rate.
func TestThrottledBacklogHoldsNobodyUp(t *testing.T) {
	const rate, backlog = 200, 2000 // ten seconds of pacing
	h := newHarness(t, func(c *config.Config) {
		c.Tenants = append(c.Tenants, config.Tenant{ID: "bulky", RateLimit: rate})
	})
	otpLane, bulkLane := h.outbound("a", schemas.LaneOTP), h.outbound("a", schemas.LaneBulk)
	w := h.watch(otpLane, bulkLane)
	h.start()
	h.warmUp(w, otpLane, bulkLane)

	var msgs []*sluicepb.Message
	for i := range backlog {
		msgs = append(msgs, msg(idf("bulky-mk-%d", i), "bulky", sluicepb.Priority_PRIORITY_MARKETING))
	}
	h.accept(msgs...)
	h.accept(
		msg("bulky-otp", "bulky", sluicepb.Priority_PRIORITY_OTP),
		msg("acme-otp", "acme", sluicepb.Priority_PRIORITY_OTP),
		msg("acme-tx", "acme", sluicepb.Priority_PRIORITY_TRANSACTIONAL),
	)
	var routedBulky int
	until(t, "the otp and the other tenant's message", func() bool {
		otp := ids(t, w.of(otpLane))
		bulk := ids(t, w.of(bulkLane))
		routedBulky = len(bulk) - bulk["acme-tx"] - bulk[warmUpBulk]
		return otp["bulky-otp"] == 1 && otp["acme-otp"] == 1 && bulk["acme-tx"] == 1
	})
	if routedBulky >= backlog/2 {
		t.Errorf("%d of the %d paced messages were out before the otp and the other tenant's message", routedBulky, backlog)
	}
	t.Logf("%d of the %d paced messages were out when the otp and the other tenant's message were", routedBulky, backlog)
	until(t, "the whole backlog paced out", func() bool { return len(w.of(bulkLane)) == backlog+2 })

	// Never far over the rate: in any second, at most two seconds' worth.
	// Slots whose time passed while the router was starved of CPU go out
	// together when it runs again, so a busy machine sees catch-up bursts;
	// a limiter that let the backlog through at once (ten seconds' worth)
	// fails this.
	var times []time.Time
	for _, r := range w.of(bulkLane) {
		if k := string(r.Key); k != "acme-tx" && k != warmUpBulk {
			times = append(times, r.Time)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	limit := 2 * rate
	for i, j := 0, 0; i < len(times); i++ {
		for times[i].Sub(times[j]) >= time.Second {
			j++
		}
		if n := i - j + 1; n > limit {
			t.Fatalf("%d messages of the paced tenant within one second; limit %d/s, allowed %d", n, rate, limit)
		}
	}
	if span := times[len(times)-1].Sub(times[0]); span < time.Duration(backlog-rate)*time.Second/rate {
		t.Errorf("%d messages paced at %d/s went out within %v", backlog, rate, span)
	}
}

// Two router replicas share the partitions: each tenant's daily quota holds
// exactly, and the count survives a replica leaving (its partitions move).
func TestDailyQuotaExactAcrossReplicas(t *testing.T) {
	const quota, sent = 100, 150
	tenants := []string{"q1", "q2", "q3"}
	h := newHarness(t, func(c *config.Config) {
		for _, id := range tenants {
			c.Tenants = append(c.Tenants, config.Tenant{ID: id, DailyQuota: quota})
		}
	})
	bulkLane, status := h.outbound("a", schemas.LaneBulk), h.topic(schemas.TopicStatus)
	w := h.watch(bulkLane, status)
	stopFirst := h.start()
	h.start()

	publish := func(round string, n int) {
		var msgs []*sluicepb.Message
		for i := range n {
			for _, tenant := range tenants {
				msgs = append(msgs, msg(idf("%s-%s-%d", tenant, round, i), tenant, sluicepb.Priority_PRIORITY_TRANSACTIONAL))
			}
		}
		h.accept(msgs...)
	}
	publish("r1", sent)
	until(t, "every message of round 1 decided", func() bool {
		return len(w.of(bulkLane))+len(countStatus(t, w.of(status), message.StatusRejected, reasonQuota)) >= len(tenants)*sent
	})
	stopFirst()
	publish("r2", 20)
	until(t, "round 2 rejected", func() bool {
		return len(countStatus(t, w.of(status), message.StatusRejected, reasonQuota)) >= len(tenants)*(sent-quota+20)
	})

	routed := map[string]int{}
	for id, n := range ids(t, w.of(bulkLane)) {
		if n != 1 {
			t.Errorf("%s routed %d times", id, n)
		}
		routed[id[:2]]++
	}
	for _, tenant := range tenants {
		if routed[tenant] != quota {
			t.Errorf("tenant %s: %d routed, quota %d", tenant, routed[tenant], quota)
		}
	}
	if n := len(countStatus(t, w.of(status), message.StatusRejected, reasonQuota)); n != len(tenants)*(sent-quota+20) {
		t.Errorf("%d quota_exceeded rejections, want %d", n, len(tenants)*(sent-quota+20))
	}
}

// A held backlog released at a high rate keeps the partition busy with
// releases; otp that arrives meanwhile is still taken between two releases
// (regression: otp waited until the releases thinned out).
func TestOTPNotStarvedByReleases(t *testing.T) {
	const rate, backlog, otps = 2000, 20000, 20 // ten seconds of releases
	h := newHarness(t, func(c *config.Config) {
		c.Tenants = append(c.Tenants, config.Tenant{ID: "campaign", RateLimit: rate})
	})
	otpLane, bulkLane := h.outbound("a", schemas.LaneOTP), h.outbound("a", schemas.LaneBulk)
	w := h.watch(otpLane, bulkLane)
	h.start()
	h.warmUp(w, otpLane, bulkLane)
	var msgs []*sluicepb.Message
	for i := range backlog {
		msgs = append(msgs, msg(idf("mk-%d", i), "campaign", sluicepb.Priority_PRIORITY_MARKETING))
		if (i+1)%(backlog/otps) == 0 {
			msgs = append(msgs, msg(idf("otp-%d", i), "acme", sluicepb.Priority_PRIORITY_OTP))
		}
	}
	h.accept(msgs...)
	until(t, "every otp", func() bool { return len(w.of(otpLane)) == otps+1 })
	if out := len(w.of(bulkLane)) - 1; out >= backlog/2 {
		t.Errorf("%d of the %d held messages were released before the last otp went", out, backlog)
	} else {
		t.Logf("%d of the %d held messages released when the last otp went", out, backlog)
	}
}
