package analytics_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// BenchmarkWriter measures rows per second into ClickHouse: final status
// events in batches of 10,000 (the dlr service's default), each written to
// message_events and messages (so 2 rows per event, reported as events).
func BenchmarkWriter(b *testing.B) {
	conn, db := open(b)
	if err := analytics.Migrate(b.Context(), conn, db); err != nil {
		b.Fatal(err)
	}
	w := analytics.NewWriter(conn, db)
	const batch = 10000
	at := time.Now().UTC()
	events := make([]message.Status, 0, batch)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		m := &sluicepb.Message{Id: fmt.Sprintf("bench-%d", i), Tenant: "acme", CampaignId: "bench", Carrier: "sim-a", Country: "GB", Segments: 1, AcceptedAtMs: at.UnixMilli()}
		e := message.StatusOf(m, message.StatusDelivered, at)
		e.SubmittedAt, e.DoneAt = &at, &at
		events = append(events, e)
		if len(events) == batch || i == b.N-1 {
			if err := w.Write(b.Context(), events); err != nil {
				b.Fatal(err)
			}
			events = events[:0]
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
