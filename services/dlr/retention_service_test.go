package dlr_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/services/dlr"
)

// TestRetentionInService: with clickhouse.retention_months set, the dlr
// service drops expired months of the analytics tables as it starts.
func TestRetentionInService(t *testing.T) {
	cfg := testConfig(t)
	cfg.ClickHouse.RetentionMonths = 1
	conn, err := analytics.Open(t.Context(), cfg.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := analytics.Migrate(t.Context(), conn, cfg.ClickHouse.Database); err != nil {
		t.Fatal(err)
	}
	// Mid-month three months back: expired whatever the day today.
	now := time.Now().UTC()
	old := time.Date(now.Year(), now.Month(), 15, 12, 0, 0, 0, time.UTC).AddDate(0, -3, 0)
	var events []message.Status
	for i, at := range []time.Time{old, now} {
		events = append(events, message.Status{EventID: string(rune('a' + i)), MessageID: string(rune('a' + i)),
			Tenant: "acme", Carrier: "sim-a", Country: "GB", Status: message.StatusDelivered, Segments: 1, EventTime: at})
	}
	if err := analytics.NewWriter(conn, cfg.ClickHouse.Database).Write(t.Context(), events); err != nil {
		t.Fatal(err)
	}

	// The job logs its drops once they are all done.
	dropped := &logSignal{want: []byte(`"msg":"analytics partition dropped`), seen: make(chan struct{})}
	testenv.Run(t, "dlr", func(ctx context.Context) error {
		return dlr.Run(ctx, cfg, slog.New(slog.NewJSONHandler(dropped, nil)))
	})
	select {
	case <-dropped.seen:
	case <-time.After(50 * time.Second):
		t.Fatal("the dlr dropped nothing")
	}
	var parts []string
	for _, table := range []string{"carrier_stats_minute", "message_events"} {
		for _, id := range testenv.ClickHousePartitions(t, conn, cfg.ClickHouse.Database, table) {
			parts = append(parts, table+"/"+id)
		}
	}
	month := now.Format("200601")
	if want := []string{"carrier_stats_minute/" + month, "message_events/" + month}; !slices.Equal(parts, want) {
		t.Errorf("partitions left: %v, want %v", parts, want)
	}
}

// logSignal is a log destination that closes seen at the first line holding
// want.
type logSignal struct {
	want []byte
	seen chan struct{}
	once sync.Once
}

func (s *logSignal) Write(p []byte) (int, error) {
	if bytes.Contains(p, s.want) {
		s.once.Do(func() { close(s.seen) })
	}
	return len(p), nil
}
