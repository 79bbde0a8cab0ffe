package analytics_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// open connects to a database of this test's own, not migrated yet.
func open(t testing.TB) (driver.Conn, string) {
	t.Helper()
	addr, db := testenv.ClickHouseDatabase(t)
	conn, err := analytics.Open(t.Context(), config.ClickHouse{Addr: addr, Username: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, db
}

func tables(t *testing.T, conn driver.Conn, db string) map[string]string {
	t.Helper()
	rows, err := conn.Query(t.Context(), "SELECT name, engine FROM system.tables WHERE database = ?", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		got[name] = engine
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func checkSchema(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	got := tables(t, conn, db)
	want := map[string]string{
		"schema_migrations":       "ReplacingMergeTree",
		"message_events":          "ReplacingMergeTree",
		"messages":                "ReplacingMergeTree",
		"carrier_stats_minute":    "AggregatingMergeTree",
		"carrier_stats_minute_mv": "MaterializedView",
	}
	for name, engine := range want {
		if got[name] != engine {
			t.Errorf("table %s: engine %q, want %q", name, got[name], engine)
		}
	}
	if len(got) != len(want) {
		t.Errorf("tables %v, want %v", got, want)
	}
	ms, err := analytics.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var applied uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM "+db+".schema_migrations FINAL").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != uint64(len(ms)) {
		t.Errorf("%d migrations recorded, %d shipped", applied, len(ms))
	}
}

func TestMigrateTwice(t *testing.T) {
	conn, db := open(t)
	for range 2 {
		if err := analytics.Migrate(t.Context(), conn, db); err != nil {
			t.Fatal(err)
		}
	}
	checkSchema(t, conn, db)
}

// Migrate creates the database itself, and two processes may run it at once.
func TestMigrateRace(t *testing.T) {
	conn, base := open(t)
	db := base + "_race"
	t.Cleanup(func() {
		if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Error(err)
		}
	})
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = analytics.Migrate(t.Context(), conn, db) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	checkSchema(t, conn, db)
}

// A process that added a column and died before recording its migration
// leaves the next one an ADD COLUMN of a column that is there: done (old
// servers have no ADD COLUMN IF NOT EXISTS).
func TestMigrateAfterColumnAdded(t *testing.T) {
	conn, db := open(t)
	if err := analytics.Migrate(t.Context(), conn, db); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(t.Context(), "ALTER TABLE "+db+".schema_migrations DELETE WHERE version = 5"); err != nil {
		t.Fatal(err)
	}
	for {
		var left uint64
		if err := conn.QueryRow(t.Context(), "SELECT count() FROM "+db+".schema_migrations WHERE version = 5").Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond) // mutations run in the background on old servers
	}
	if err := analytics.Migrate(t.Context(), conn, db); err != nil {
		t.Fatalf("migrating again over the added column: %v", err)
	}
	checkSchema(t, conn, db)
}

func TestMigrateRefusesEditedMigration(t *testing.T) {
	conn, db := open(t)
	if err := analytics.Migrate(t.Context(), conn, db); err != nil {
		t.Fatal(err)
	}
	// As if 002 had been applied from a different file.
	err := conn.Exec(t.Context(), "INSERT INTO "+db+".schema_migrations (version, name, checksum, applied_at) "+
		"SELECT 2, 'message_events', 'other', now()")
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(t.Context(), "OPTIMIZE TABLE "+db+".schema_migrations FINAL"); err != nil {
		t.Fatal(err)
	}
	err = analytics.Migrate(t.Context(), conn, db)
	if err == nil || !strings.Contains(err.Error(), "002_message_events differs") {
		t.Errorf("Migrate = %v, want an edited-migration error", err)
	}
}

func TestMigrateRejectsBadDatabaseName(t *testing.T) {
	conn, _ := open(t)
	if err := analytics.Migrate(t.Context(), conn, "x`; DROP"); err == nil {
		t.Error("no error")
	}
}
