package router

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// testHolding is a schedule table in a store of its own.
func testHolding(t *testing.T) *holding {
	t.Helper()
	db, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return newHolding(db.Store(scheduleTable, 0, "schedule", heldMeta))
}

// A release marker read back on restore raises its tenant's quota count to
// what the marker says, when the changelog record written after it is
// missing (a crash between the two writes of a release batch).
func TestReleaseMarkersRestoreQuotaCounts(t *testing.T) {
	p := &partition{held: testHolding(t), quota: map[string]*sluicepb.TenantState{
		"acme": {Tenant: "acme", Day: "2026-11-27", Count: 5, NextOffsets: map[string]int64{}},
	}}
	steps := []struct {
		tenant, day string
		count       uint64
		wantDay     string
		wantCount   uint64
		wantRaised  bool
	}{
		{"acme", "2026-11-27", 7, "2026-11-27", 7, true},   // ahead of the changelog
		{"acme", "2026-11-27", 3, "2026-11-27", 7, false},  // an older marker
		{"acme", "2026-11-26", 90, "2026-11-27", 7, false}, // yesterday's
		{"acme", "2026-11-28", 1, "2026-11-28", 1, true},   // a new day
		{"beta", "2026-11-27", 2, "2026-11-27", 2, true},   // no changelog record at all
	}
	for i, s := range steps {
		v, err := proto.Marshal(&sluicepb.Held{MessageId: "m", Released: true, QuotaDay: s.day, QuotaCount: s.count})
		if err != nil {
			t.Fatal(err)
		}
		tx := p.held.st.Begin()
		raised, err := p.readBack(tx, kafka.Message{Key: []byte(s.tenant), Value: v, Offset: int64(i)})
		tx.Discard()
		if err != nil {
			t.Fatal(err)
		}
		st := p.quota[s.tenant]
		if st.Day != s.wantDay || st.Count != s.wantCount || (raised != "") != s.wantRaised {
			t.Errorf("step %d: %s at %s/%d (raised %q), want %s/%d (raised %v)", i, s.tenant, st.Day, st.Count, raised, s.wantDay, s.wantCount, s.wantRaised)
		}
	}
}

// The schedule table keeps one entry per message id, wakes entries at the
// earlier of due and expiry, forgets entries released or whose release
// marker it reads, and knows the first offset still held.
func TestHolding(t *testing.T) {
	now := time.Now()
	h := testHolding(t)
	m := func(id string, expires time.Time) *sluicepb.Message {
		return &sluicepb.Message{Id: id, Tenant: "acme", ExpiresAtMs: expires.UnixMilli()}
	}
	entry := func(id string, expires, due time.Time) *sluicepb.Held {
		return &sluicepb.Held{Message: m(id, expires), MessageId: id, DueMs: due.UnixMilli(), Reason: holdSendAt}
	}
	readBack := func(offset int64, rec *sluicepb.Held) {
		t.Helper()
		tx := h.st.Begin()
		defer tx.Discard()
		if err := h.readBack(tx, rec, offset, []kafka.Header{{Key: "traceparent", Value: []byte("00-x")}}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	due := func(at time.Time) *release {
		t.Helper()
		out, err := h.due(at, 10)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	low := func() int64 {
		t.Helper()
		l, err := h.low(99)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	readBack(3, entry("late", now.Add(time.Hour), now.Add(2*time.Second)))
	readBack(4, entry("expiring", now.Add(time.Second), now.Add(time.Minute)))
	readBack(5, entry("late", now.Add(time.Hour), now.Add(3*time.Second))) // a replayed copy
	if h.len() != 2 || low() != 3 {
		t.Fatalf("%d held from offset %d, want 2 from 3", h.len(), low())
	}
	if r := due(now); len(r.entries) != 0 {
		t.Fatalf("%d due now", len(r.entries))
	} else {
		r.abort()
	}
	r := due(now.Add(1500 * time.Millisecond))
	d := r.entries
	if len(d) != 1 || d[0].msg.Id != "expiring" || d[0].offset != 4 || string(d[0].headers[0].Value) != "00-x" {
		t.Fatalf("due after 1.5 s: %+v", d)
	}
	// A second release while the first is in flight passes over its entry.
	if r2 := due(now.Add(1500 * time.Millisecond)); len(r2.entries) != 0 {
		t.Fatalf("%d due again while in flight", len(r2.entries))
	} else {
		r2.abort()
	}
	r.done(d[0])
	if err := r.commit(); err != nil {
		t.Fatal(err)
	}
	readBack(10, entry("expiring", now.Add(time.Second), now.Add(time.Minute))) // read back after its release: stays released
	if h.len() != 1 || low() != 3 {
		t.Fatalf("%d held from offset %d, want 1 from 3", h.len(), low())
	}
	// A wake moved later stays in the table until then.
	r = due(now.Add(2500 * time.Millisecond))
	if d = r.entries; len(d) != 1 || d[0].msg.Id != "late" {
		t.Fatalf("due after 2.5 s: %+v", d)
	}
	r.later(d[0], now.Add(time.Minute), holdQuietHours, false)
	if err := r.commit(); err != nil {
		t.Fatal(err)
	}
	if r := due(now.Add(30 * time.Second)); len(r.entries) != 0 {
		t.Fatalf("%d due after 30 s", len(r.entries))
	} else {
		r.abort()
	}
	readBack(11, &sluicepb.Held{MessageId: "late", Released: true})
	if h.len() != 0 || low() != 99 {
		t.Errorf("%d still held from offset %d, want none", h.len(), low())
	}
	// A marker of a chunk releases every message it names (one not held
	// is no error).
	for i, id := range []string{"c1", "c2", "c3"} {
		readBack(int64(20+i), entry(id, now.Add(time.Hour), now.Add(time.Minute)))
	}
	readBack(30, &sluicepb.Held{Released: true, ReleasedIds: []string{"c1", "c3", "gone"}})
	if h.len() != 1 || low() != 21 {
		t.Errorf("%d held from offset %d after a chunk's marker, want c2 alone from 21", h.len(), low())
	}
}
