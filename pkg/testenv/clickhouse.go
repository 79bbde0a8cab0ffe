package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/sluice-sms/sluice/pkg/chlocal"
)

// shared is the clickhouse-server started for this test binary, if any.
var shared struct {
	once sync.Once
	srv  *chlocal.Server
	err  error
}

// ClickHouse returns the native-protocol address of a ClickHouse server:
// SLUICE_TEST_CLICKHOUSE_ADDR when set, else a clickhouse-server started once
// for the whole test binary (stopped by Main). It fails the test when neither
// is possible; it never skips.
func ClickHouse(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(EnvClickHouseAddr); v != "" {
		return v
	}
	shared.once.Do(func() {
		// Not t.Context(): the server outlives this test.
		shared.srv, shared.err = chlocal.Start(context.Background(), chlocal.Options{})
		if errors.Is(shared.err, chlocal.ErrNotInstalled) {
			shared.err = fmt.Errorf("%w; or run the tests with `make test`, or point %s at a running server",
				shared.err, EnvClickHouseAddr)
		}
	})
	if shared.err != nil {
		t.Fatalf("testenv: %v", shared.err)
	}
	return shared.srv.Addr()
}

// ClickHouseDatabase creates a database of its own for this test and drops
// it when the test ends.
func ClickHouseDatabase(t testing.TB) (addr, db string) {
	t.Helper()
	addr = ClickHouse(t)
	db = "t_" + sanitize(t.Name(), '_', false) + "_" + randomHex()
	conn, err := OpenClickHouse(addr, "default")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("testenv: drop database %s: %v", db, err)
		}
		if err := conn.Close(); err != nil {
			t.Errorf("testenv: close clickhouse connection: %v", err)
		}
	})
	if err := conn.Exec(t.Context(), "CREATE DATABASE "+db); err != nil {
		t.Fatalf("testenv: create database %s: %v", db, err)
	}
	return addr, db
}

// OpenClickHouse opens a native-protocol connection as the default user.
func OpenClickHouse(addr, db string) (driver.Conn, error) { return chlocal.Open(addr, db) }

// WaitClickHouse returns once the server at addr answers a query; it
// retries until ctx ends.
func WaitClickHouse(ctx context.Context, addr string) error { return chlocal.Wait(ctx, addr) }

// stopClickHouse stops the shared server, if one was started.
func stopClickHouse() {
	if shared.srv != nil {
		shared.srv.Stop()
	}
}

// ClickHousePartitions lists the ids of a table's active partitions, from
// system.parts, in order.
func ClickHousePartitions(t testing.TB, conn driver.Conn, db, table string) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(), "SELECT DISTINCT partition_id FROM system.parts WHERE database = ? AND table = ? AND active ORDER BY partition_id", db, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}
