package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestStats writes messages whose report is known and reads the tables
// sluice-stats prints.
func TestStats(t *testing.T) {
	addr, db := testenv.ClickHouseDatabase(t)
	conn, err := testenv.OpenClickHouse(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := analytics.Migrate(t.Context(), conn, db); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var events []message.Status
	// sim-a: delivered after 1 s and 3 s, undelivered after 2 s; sim-b: one
	// delivered after 4 s, one still waiting; one message outside the range.
	for i, m := range []struct {
		carrier, status string
		latency         time.Duration
		at              time.Time
	}{
		{"sim-a", message.StatusDelivered, time.Second, base},
		{"sim-a", message.StatusDelivered, 3 * time.Second, base},
		{"sim-a", message.StatusUndelivered, 2 * time.Second, base},
		{"sim-b", message.StatusDelivered, 4 * time.Second, base},
		{"sim-b", message.StatusSubmitted, 0, base},
		{"sim-b", message.StatusDelivered, time.Second, base.Add(-2 * time.Hour)},
	} {
		msg := &sluicepb.Message{Id: string(rune('a' + i)), Tenant: "acme", Carrier: m.carrier, Country: "GB", Segments: 1, AcceptedAtMs: m.at.UnixMilli()}
		submitted := m.at.Add(time.Second)
		ev := message.StatusOf(msg, message.StatusSubmitted, submitted)
		ev.SubmittedAt = &submitted
		events = append(events, ev)
		if m.status != message.StatusSubmitted {
			done := submitted.Add(m.latency)
			ev := message.StatusOf(msg, m.status, done)
			ev.SubmittedAt, ev.DoneAt = &submitted, &done
			events = append(events, ev)
		}
	}
	if err := analytics.NewWriter(conn, db).Write(t.Context(), events); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	args := []string{"-clickhouse", addr, "-database", db, "-from", "2026-11-27 09:00", "-to", "2026-11-27T11:00:00Z", "-report", "carrier_report,delivery_rate"}
	if err := run(t.Context(), args, &out, time.Now()); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"==", "carrier_report", "(2", "rows)"},
		{"carrier", "sent", "delivered", "failed", "unknown", "p50_ms", "p99_ms"},
		{"sim-a", "3", "2", "1", "0", "2000", "3000"},
		{"sim-b", "2", "1", "0", "0", "4000", "4000"},
		{"==", "delivery_rate", "(2", "rows)"},
		{"hour", "carrier", "country", "finished", "delivered", "delivery_rate"},
		{"2026-11-27", "10:00", "sim-a", "GB", "3", "2", "0.6667"},
		{"2026-11-27", "10:00", "sim-b", "GB", "1", "1", "1"},
	}
	var got [][]string
	for _, line := range strings.Split(out.String(), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			got = append(got, f)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("output:\n%s\nwant %d lines", out.String(), len(want))
	}
	for i := range want {
		if strings.Join(got[i], " ") != strings.Join(want[i], " ") {
			t.Errorf("line %d: %q, want %q\noutput:\n%s", i, got[i], want[i], out.String())
		}
	}

	if err := run(t.Context(), []string{"-report", "nope"}, &out, time.Now()); err == nil {
		t.Error("an unknown report is accepted")
	}
	if err := run(t.Context(), []string{"-from", "2026-11-28", "-to", "2026-11-27"}, &out, time.Now()); err == nil {
		t.Error("an empty range is accepted")
	}
}
