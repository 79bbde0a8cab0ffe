package analytics_test

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// retentionNow and the months below: keeping 3 months on 15 May 2026 keeps
// February (the cutoff, 15 February, falls in it) and later.
var retentionNow = time.Date(2026, 5, 15, 12, 0, 0, 0, time.UTC)

// Events at the edges of the months: the last second of January goes, the
// first second of February stays.
var retentionEvents = []time.Time{
	time.Date(2025, 11, 3, 8, 0, 0, 0, time.UTC),
	time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC),
	time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC),
	time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
	time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC),
	time.Date(2026, 5, 15, 11, 0, 0, 0, time.UTC),
}

// TestRetentionDropsOldMonths fills the analytics tables, and three tables
// partitioned otherwise, with months old and recent; two "replicas" then
// drop the expired months at once. Exactly the old months of the monthly
// tables are gone; messages, schema_migrations and the other tables keep
// every row; a further run finds nothing to drop.
func TestRetentionDropsOldMonths(t *testing.T) {
	conn, db := open(t)
	ctx := t.Context()
	if err := analytics.Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	writeMonths(t, conn, db)
	before := map[string]uint64{}
	for _, table := range []string{"messages", "schema_migrations", "by_tenant", "by_year", "by_shifted_month"} {
		before[table] = count(t, conn, db, table)
	}

	if dropped, err := analytics.DropExpired(ctx, conn, db, 0, retentionNow); err != nil || len(dropped) != 0 {
		t.Fatalf("months 0 dropped %v, %v; want nothing", dropped, err)
	}
	got := dropConcurrently(t, conn, db, 2)
	var want []string
	for _, table := range []string{"carrier_stats_minute", "message_events"} {
		for _, id := range []string{"202511", "202512", "202601"} {
			want = append(want, table+"/"+id)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("dropped %v, want %v", got, want)
	}

	kept := []string{"202602", "202603", "202605"}
	for _, table := range []string{"message_events", "carrier_stats_minute"} {
		if ids := testenv.ClickHousePartitions(t, conn, db, table); !slices.Equal(ids, kept) {
			t.Errorf("%s has partitions %v, want %v", table, ids, kept)
		}
	}
	if n := count(t, conn, db, "message_events"); n != 3 {
		t.Errorf("message_events has %d rows, want the 3 events of February on", n)
	}
	for table, n := range before {
		if got := count(t, conn, db, table); got != n {
			t.Errorf("%s has %d rows, had %d: it is not partitioned by month", table, got, n)
		}
	}
	if dropped, err := analytics.DropExpired(ctx, conn, db, 3, retentionNow); err != nil || len(dropped) != 0 {
		t.Errorf("a second run dropped %v, %v; want nothing", dropped, err)
	}
}

// writeMonths writes one status event per retentionEvents time, and the same
// times into tables partitioned otherwise: by (month, tenant), by year, and
// by a month shifted from the row's.
func writeMonths(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	var events []message.Status
	for i, at := range retentionEvents {
		events = append(events, message.Status{
			EventID: fmt.Sprintf("e%d", i), MessageID: fmt.Sprintf("m%d", i), Tenant: "acme",
			Carrier: "sim-a", Country: "GB", Status: message.StatusDelivered, Segments: 1, EventTime: at,
		})
	}
	if err := analytics.NewWriter(conn, db).Write(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	for _, ddl := range []string{
		"CREATE TABLE `" + db + "`.by_tenant (d Date, tenant String) ENGINE = MergeTree PARTITION BY (toYYYYMM(d), tenant) ORDER BY d",
		"CREATE TABLE `" + db + "`.by_year (d Date, tenant String) ENGINE = MergeTree PARTITION BY toYear(d) ORDER BY d",
		// Ids like months, but not the months of the rows.
		"CREATE TABLE `" + db + "`.by_shifted_month (d Date, tenant String) ENGINE = MergeTree PARTITION BY toYYYYMM(addMonths(d, -1)) ORDER BY d",
	} {
		if err := conn.Exec(t.Context(), ddl); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range []string{"by_tenant", "by_year", "by_shifted_month"} {
		batch, err := conn.PrepareBatch(t.Context(), "INSERT INTO `"+db+"`."+table+" (d, tenant)")
		if err != nil {
			t.Fatal(err)
		}
		for _, at := range retentionEvents {
			if err := batch.Append(at, "acme"); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
}

// dropConcurrently runs DropExpired from n goroutines at once, as n dlr
// replicas would, and returns what they dropped together, as "table/id".
func dropConcurrently(t *testing.T, conn driver.Conn, db string, n int) []string {
	t.Helper()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		dropped = map[string]bool{}
	)
	for range n {
		wg.Go(func() {
			ps, err := analytics.DropExpired(t.Context(), conn, db, 3, retentionNow)
			if err != nil {
				t.Errorf("DropExpired: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, p := range ps {
				dropped[p.Table+"/"+p.ID] = true
			}
		})
	}
	wg.Wait()
	return slices.Sorted(maps.Keys(dropped))
}

// count is the rows of a table's active parts, as system.parts counts them.
func count(t *testing.T, conn driver.Conn, db, table string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(t.Context(), "SELECT sum(rows) FROM system.parts WHERE database = ? AND table = ? AND active", db, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
