package dlr

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// TestRetentionJob runs the job as the service does, with a clock of the
// test's: the pass at start drops the months older than 2 months before
// 10 April 2026 (January and before), the pass at the next tick, a month
// later, drops February; each drop is counted by table and logged.
func TestRetentionJob(t *testing.T) {
	conn, db := retentionDB(t)
	writeAt(t, conn, db, "2025-12-20", "2026-01-31", "2026-02-01", "2026-03-15", "2026-04-10")
	var now atomic.Pointer[time.Time]
	setNow := func(s string) {
		at, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		now.Store(&at)
	}
	setNow("2026-04-10")
	r, reader, logs := testRetention(t, conn, db, 2, func() time.Time { return *now.Load() })

	ctx, cancel := context.WithCancel(t.Context())
	// Unbuffered: a send returns once the pass before it is over, and the
	// job starts the next one.
	tick := make(chan time.Time)
	var wg sync.WaitGroup
	wg.Go(func() { r.run(ctx, tick) })
	tick <- time.Time{}
	// The pass at start is over; the one running now reads the old clock
	// or the new, set after this check.
	if got, want := strings.Join(testenv.ClickHousePartitions(t, conn, db, "message_events"), " "), "202602 202603 202604"; got != want {
		t.Errorf("after the first pass message_events has %s, want %s", got, want)
	}
	setNow("2026-05-10")
	tick <- time.Time{} // a pass on the new clock is running
	tick <- time.Time{} // and it is over
	cancel()
	wg.Wait()

	for _, table := range []string{"message_events", "carrier_stats_minute"} {
		if got, want := strings.Join(testenv.ClickHousePartitions(t, conn, db, table), " "), "202603 202604"; got != want {
			t.Errorf("%s has partitions %s, want %s", table, got, want)
		}
	}
	want := map[string]int64{"message_events": 3, "carrier_stats_minute": 3}
	if got := testenv.Counters(t, reader, "sluice_dlr_analytics_partitions_dropped", "table"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sluice_dlr_analytics_partitions_dropped = %v, want %v", got, want)
	}
	if n := strings.Count(logs.String(), `"msg":"analytics partition dropped`); n != 6 {
		t.Errorf("%d drops logged, want 6:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), `"table":"message_events","partition":"202512","rows":1`) {
		t.Errorf("the log does not say what was dropped:\n%s", logs)
	}
}

// TestRetentionFailureCounted: a pass that cannot reach ClickHouse is
// logged and counted, and the next one tries again.
func TestRetentionFailureCounted(t *testing.T) {
	conn, db := retentionDB(t)
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	r, reader, logs := testRetention(t, conn, db, 1, time.Now)
	r.pass(t.Context())
	r.pass(t.Context())
	if got := testenv.Counters(t, reader, "sluice_dlr_analytics_retention_failures", "table"); got[""] != 2 {
		t.Errorf("sluice_dlr_analytics_retention_failures = %v, want 2", got)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"analytics retention: expired partitions not dropped`) {
		t.Errorf("failure not logged:\n%s", logs)
	}
}

// retentionDB is a migrated database of the test's own.
func retentionDB(t *testing.T) (driver.Conn, string) {
	t.Helper()
	addr, db := testenv.ClickHouseDatabase(t)
	conn, err := analytics.Open(t.Context(), config.ClickHouse{Addr: addr, Username: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() }) // a second Close, after TestRetentionFailureCounted's, is harmless
	if err := analytics.Migrate(t.Context(), conn, db); err != nil {
		t.Fatal(err)
	}
	return conn, db
}

// testRetention is the job with metrics on a reader and logs in a buffer,
// read by the test once the job is over.
func testRetention(t *testing.T, conn driver.Conn, db string, months int, now func() time.Time) (*retention, *sdkmetric.ManualReader, *bytes.Buffer) {
	t.Helper()
	meter, reader := testenv.Meter(t)
	m, err := newRetentionMetrics(meter)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	return &retention{conn: conn, db: db, months: months, now: now, log: log, m: m}, reader, &logs
}

// writeAt writes one status event at noon UTC on each date.
func writeAt(t *testing.T, conn driver.Conn, db string, dates ...string) {
	t.Helper()
	var events []message.Status
	for i, d := range dates {
		at, err := time.Parse(time.DateOnly, d)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, message.Status{
			EventID: fmt.Sprintf("e%d", i), MessageID: fmt.Sprintf("m%d", i), Tenant: "acme", Carrier: "sim-a",
			Country: "GB", Status: message.StatusDelivered, Segments: 1, EventTime: at.Add(12 * time.Hour),
		})
	}
	if err := analytics.NewWriter(conn, db).Write(t.Context(), events); err != nil {
		t.Fatal(err)
	}
}
