package router

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// A scheduled backlog survives a restart in its middle: every message is
// routed exactly once, none before its send_at; one whose validity ends
// before its send_at ends expired and is never routed; messages for now
// pass while the backlog waits.
func TestScheduleSurvivesRestart(t *testing.T) {
	for _, disk := range []string{"same disk", "empty disk"} {
		t.Run(disk, func(t *testing.T) { scheduleSurvivesRestart(t, disk == "same disk") })
	}
}

// scheduleSurvivesRestart restarts the router with the schedule's store it
// had, or with an empty one.
func scheduleSurvivesRestart(t *testing.T, sameDisk bool) {
	const n = 600
	var stateDir string
	if sameDisk {
		stateDir = t.TempDir()
	}
	h := newHarness(t, func(c *config.Config) { c.Router.StateDir = stateDir })
	bulkLane, otpLane, status := h.outbound("a", schemas.LaneBulk), h.outbound("a", schemas.LaneOTP), h.topic(schemas.TopicStatus)
	w := h.watch(bulkLane, otpLane, status)
	stop := h.start()
	h.warmUp(w, otpLane, bulkLane)

	start := time.Now().Add(3 * time.Second)
	sendAt := map[string]time.Time{}
	var msgs []*sluicepb.Message
	for i := range n {
		m := msg(fmt.Sprintf("sched-%d", i), []string{"acme", "beta"}[i%2], sluicepb.Priority_PRIORITY_TRANSACTIONAL)
		at := start.Add(time.Duration(i) * 8 * time.Second / n) // over 8 seconds
		m.SendAtMs = at.UnixMilli()
		m.ExpiresAtMs = at.Add(time.Hour).UnixMilli()
		sendAt[m.Id] = time.UnixMilli(m.SendAtMs)
		msgs = append(msgs, m)
	}
	late := msg("expires-first", "acme", sluicepb.Priority_PRIORITY_MARKETING)
	late.SendAtMs = start.Add(3 * time.Second).UnixMilli()
	late.ExpiresAtMs = start.Add(time.Second).UnixMilli()
	msgs = append(msgs, late)
	h.accept(msgs...)
	h.accept(msg("now-otp", "acme", sluicepb.Priority_PRIORITY_OTP))

	until(t, "the otp for now", func() bool { return ids(t, w.of(otpLane))["now-otp"] == 1 })
	if got := len(w.of(bulkLane)) - 1; got > 0 {
		t.Errorf("%d scheduled messages routed before the otp published after them", got)
	}
	until(t, "part of the backlog released", func() bool { return len(w.of(bulkLane)) > 1 })
	stop()
	released := len(w.of(bulkLane)) - 1
	h.start()
	until(t, "the whole backlog", func() bool { return len(w.of(bulkLane)) >= n+1 })
	t.Logf("restarted after %d of %d released", released, n)

	for id, count := range ids(t, w.of(bulkLane)) {
		if id == warmUpBulk {
			continue
		}
		if count != 1 {
			t.Errorf("%s routed %d times", id, count)
		}
		if id == late.Id {
			t.Errorf("%s routed after its validity", id)
		}
	}
	for _, r := range w.of(bulkLane) {
		if at, ok := sendAt[string(r.Key)]; ok && r.Time.Before(at) {
			t.Errorf("%s routed at %v, before its send_at %v", r.Key, r.Time, at)
		}
	}
	until(t, "the expired status", func() bool {
		return countStatus(t, w.of(status), message.StatusExpired, reasonValidity)[late.Id] > 0
	})
	if sched := countStatus(t, w.of(status), message.StatusScheduled, holdSendAt); len(sched) != n+1 {
		t.Errorf("%d messages have a scheduled status, want %d", len(sched), n+1)
	}
}

// Marketing to a country in its quiet hours waits, with a scheduled status;
// other priorities and other countries go at once.
func TestQuietHoursHoldMarketing(t *testing.T) {
	now := time.Now().UTC()
	h := newHarness(t, func(c *config.Config) {
		c.Router.QuietHours = []config.QuietHours{{
			Countries: []string{"GB"}, TimeZone: "UTC",
			Start: now.Add(-time.Hour).Format("15:04"), End: now.Add(time.Hour).Format("15:04"),
		}}
	})
	aBulk, bBulk, status := h.outbound("a", schemas.LaneBulk), h.outbound("b", schemas.LaneBulk), h.topic(schemas.TopicStatus)
	w := h.watch(aBulk, bBulk, status)
	h.start()
	quiet := msg("gb-marketing", "acme", sluicepb.Priority_PRIORITY_MARKETING)
	fr := msg("fr-marketing", "acme", sluicepb.Priority_PRIORITY_MARKETING)
	fr.Country, fr.To = "FR", "+33612345678"
	tx := msg("gb-transactional", "acme", sluicepb.Priority_PRIORITY_TRANSACTIONAL)
	h.accept(quiet, fr, tx)
	until(t, "the quiet-hours status and the other two routed", func() bool {
		routed := ids(t, append(w.of(aBulk), w.of(bBulk)...))
		return countStatus(t, w.of(status), message.StatusScheduled, holdQuietHours)[quiet.Id] == 1 &&
			routed[fr.Id] == 1 && routed[tx.Id] == 1
	})
	if got := ids(t, append(w.of(aBulk), w.of(bBulk)...)); got[quiet.Id] != 0 {
		t.Errorf("the marketing message in its quiet hours was routed: %v", got)
	}
}
