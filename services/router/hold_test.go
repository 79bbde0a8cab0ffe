package router

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// A release marker read back on restore raises its tenant's quota count to
// what the marker says, when the changelog record written after it is
// missing (a crash between the two writes of a release batch).
func TestReleaseMarkersRestoreQuotaCounts(t *testing.T) {
	p := &partition{held: newHolding(), quota: map[string]*sluicepb.TenantState{
		"acme": {Tenant: "acme", Day: "2026-11-27", Count: 5, NextOffsets: map[string]int64{}},
	}}
	steps := []struct {
		tenant, day string
		count       uint64
		wantDay     string
		wantCount   uint64
	}{
		{"acme", "2026-11-27", 7, "2026-11-27", 7},  // ahead of the changelog
		{"acme", "2026-11-27", 3, "2026-11-27", 7},  // an older marker
		{"acme", "2026-11-26", 90, "2026-11-27", 7}, // yesterday's
		{"acme", "2026-11-28", 1, "2026-11-28", 1},  // a new day
		{"beta", "2026-11-27", 2, "2026-11-27", 2},  // no changelog record at all
	}
	for i, s := range steps {
		v, err := proto.Marshal(&sluicepb.Held{MessageId: "m", Released: true, QuotaDay: s.day, QuotaCount: s.count})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.readBack(kafka.Message{Key: []byte(s.tenant), Value: v, Offset: int64(i)}); err != nil {
			t.Fatal(err)
		}
		st := p.quota[s.tenant]
		if st.Day != s.wantDay || st.Count != s.wantCount {
			t.Errorf("step %d: %s at %s/%d, want %s/%d", i, s.tenant, st.Day, st.Count, s.wantDay, s.wantCount)
		}
	}
}

// The holding keeps one entry per message id, wakes entries at the earlier
// of due and expiry, and forgets entries whose release marker it reads.
func TestHolding(t *testing.T) {
	now := time.Now()
	h := newHolding()
	m := func(id string, expires time.Time) *sluicepb.Message {
		return &sluicepb.Message{Id: id, ExpiresAtMs: expires.UnixMilli()}
	}
	h.hold(m("late", now.Add(time.Hour)), now.Add(2*time.Second), holdSendAt, false, nil)
	h.hold(m("expiring", now.Add(time.Second)), now.Add(time.Minute), holdSendAt, false, nil)
	h.hold(m("late", now.Add(time.Hour)), now.Add(3*time.Second), holdSendAt, false, nil) // a replayed copy
	if h.len() != 2 {
		t.Fatalf("%d held, want 2", h.len())
	}
	if due := h.due(now, 10); len(due) != 0 {
		t.Fatalf("%d due now", len(due))
	}
	due := h.due(now.Add(1500*time.Millisecond), 10)
	if len(due) != 1 || due[0].msg.Id != "expiring" {
		t.Fatalf("due after 1.5 s: %v", due)
	}
	h.done(due[0])
	back, err := proto.Marshal(&sluicepb.Held{Message: m("expiring", now.Add(time.Second)), MessageId: "expiring", DueMs: now.Add(time.Minute).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	var rec sluicepb.Held
	if err := proto.Unmarshal(back, &rec); err != nil {
		t.Fatal(err)
	}
	h.readBack(&rec, 10, nil) // its entry read back after its release: stays released
	h.readBack(&sluicepb.Held{MessageId: "late", Released: true}, 11, nil)
	if h.len() != 0 {
		t.Errorf("%d still held, want none", h.len())
	}
}
