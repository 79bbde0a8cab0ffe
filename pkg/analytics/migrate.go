// Package analytics is sluice's ClickHouse store: it connects (native
// protocol), applies the schema migrations of schemas/clickhouse, writes
// status events to message_events and messages, and runs the analyst
// queries. Every statement names its database, so one connection serves any.
package analytics

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/schemas"
)

// Open connects to the ClickHouse server of cfg (Addr, Username, Password)
// and checks that it answers. The connection has no default database: pass
// cfg.Database to Migrate, NewWriter and Query.
func Open(ctx context.Context, cfg config.ClickHouse) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{cfg.Addr},
		Protocol:    clickhouse.Native, // HTTP fails on 18.16
		Auth:        clickhouse.Auth{Username: cfg.Username, Password: cfg.Password},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close() // the ping error is the one worth reporting
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

// Migration is one file of schemas/clickhouse/migrations.
type Migration struct {
	Version    uint32
	Name       string
	Checksum   string // SHA-256 of the file, hex
	Statements []string
}

const migrationsDir = "clickhouse/migrations"

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(schemas.FS(), migrationsDir+"/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []Migration
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, ok := strings.Cut(base, "_")
		version, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || label == "" {
			return nil, fmt.Errorf("migration %s: want NNN_name.sql", name)
		}
		data, err := fs.ReadFile(schemas.FS(), name)
		if err != nil {
			return nil, fmt.Errorf("read migration: %w", err)
		}
		sum := sha256.Sum256(data)
		ms = append(ms, Migration{
			Version: uint32(version), Name: label, Checksum: hex.EncodeToString(sum[:]),
			Statements: splitStatements(string(data)),
		})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return cmp.Compare(a.Version, b.Version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("two migrations numbered %03d", ms[i].Version)
		}
	}
	return ms, nil
}

// Migrate creates database if needed and applies the migrations it lacks, in
// order. Applied ones are recorded in schema_migrations with their checksum;
// a shipped migration that differs from the one applied is an error.
// Statements are idempotent (IF NOT EXISTS; an ADD COLUMN that finds its
// column there is done), so two processes migrating at once both succeed.
func Migrate(ctx context.Context, conn driver.Conn, database string) error {
	if err := checkDatabase(database); err != nil {
		return err
	}
	ms, err := Migrations()
	if err != nil {
		return err
	}
	if err := execRetry(ctx, conn, "CREATE DATABASE IF NOT EXISTS `"+database+"`"); err != nil {
		return fmt.Errorf("create database %s: %w", database, err)
	}
	applied, err := appliedMigrations(ctx, conn, database)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return fmt.Errorf("migration %03d_%s differs from the one applied to %s; add a new migration instead of editing it",
					m.Version, m.Name, database)
			}
			continue
		}
		if err := apply(ctx, conn, database, m); err != nil {
			return err
		}
	}
	return nil
}

func apply(ctx context.Context, conn driver.Conn, database string, m Migration) error {
	for _, stmt := range m.Statements {
		sql, err := expand(stmt, dbVar(database))
		if err != nil {
			return fmt.Errorf("migration %03d_%s: %w", m.Version, m.Name, err)
		}
		if err := execRetry(ctx, conn, sql); err != nil {
			return fmt.Errorf("migration %03d_%s: %w", m.Version, m.Name, err)
		}
	}
	if err := record(ctx, conn, database, m); err != nil {
		return fmt.Errorf("record migration %03d_%s: %w", m.Version, m.Name, err)
	}
	return nil
}

// errColumnExists is ClickHouse's ILLEGAL_COLUMN, which an ADD COLUMN of a
// column the table has already gets.
const errColumnExists = 44

// columnThere tells whether err is an ADD COLUMN finding its column added
// already (by another process migrating at the same time): old servers
// have no ADD COLUMN IF NOT EXISTS.
func columnThere(sql string, err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && ex.Code == errColumnExists && strings.Contains(sql, " ADD COLUMN ") &&
		strings.Contains(ex.Message, "already exists")
}

// record adds m to schema_migrations. A batch, not Exec with arguments: the
// driver would send the INSERT and then wait for data blocks forever.
func record(ctx context.Context, conn driver.Conn, database string, m Migration) error {
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO `"+database+"`.schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		return err
	}
	if err := batch.Append(m.Version, m.Name, m.Checksum, time.Now().UTC()); err != nil {
		_ = batch.Abort() // the append error is the one worth reporting
		return err
	}
	return batch.Send()
}

// appliedMigrations maps the versions recorded in schema_migrations to
// their checksums; none if the table does not exist yet.
func appliedMigrations(ctx context.Context, conn driver.Conn, database string) (map[uint32]string, error) {
	var exists uint64
	err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'schema_migrations'", database).Scan(&exists)
	if err != nil {
		return nil, fmt.Errorf("look for schema_migrations: %w", err)
	}
	applied := map[uint32]string{}
	if exists == 0 {
		return applied, nil
	}
	rows, err := conn.Query(ctx, "SELECT version, checksum FROM `"+database+"`.schema_migrations FINAL")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			v   uint32
			sum string
		)
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		applied[v] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, nil
}

// execRetry runs an idempotent statement, retrying a few times: old servers
// refuse a CREATE while another session creates the same table, and the
// retry then finds it exists.
func execRetry(ctx context.Context, conn driver.Conn, sql string) error {
	const attempts = 5
	var err error
	for i := range attempts {
		if err = conn.Exec(ctx, sql); err == nil || columnThere(sql, err) {
			return nil
		}
		if i == attempts-1 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(time.Duration(i+1) * 200 * time.Millisecond):
		}
	}
	return err
}
