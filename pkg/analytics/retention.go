package analytics

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Retention without TTL: ClickHouse 18.16 has none, so the tables
// partitioned by month shed their old months by DROP PARTITION instead.

// Partition is one month's active partition of a table partitioned by
// toYYYYMM(...).
type Partition struct {
	Table string
	ID    string    // partition_id in system.parts, e.g. "202601"
	Month time.Time // first day of the month, UTC
	Rows  uint64    // in its active parts, before merges fold replays
}

// expired tells whether the partition of month (its first day, UTC) holds
// only data older than months months before now. The month in which that
// cutoff falls straddles it and is kept: between months and months+1 months
// of data stay, and a row goes up to a month later than TTL would drop it.
func expired(month, now time.Time, months int) bool {
	now = now.UTC()
	// From the first of the month: AddDate from the 31st would overflow into
	// the month after.
	oldestKept := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -months, 0)
	return months > 0 && month.Before(oldestKept)
}

// DropExpired drops every partition of database's monthly-partitioned
// tables whose whole month is older than months months before now, and
// returns those it dropped; months 0 keeps everything. Dropping a partition
// that another process dropped first is not an error, so replicas may run
// it at once. A failed drop (a partition over the server's
// max_partition_size_to_drop, say) does not stop the others; the failures
// are returned together.
func DropExpired(ctx context.Context, conn driver.Conn, database string, months int, now time.Time) ([]Partition, error) {
	if months <= 0 {
		return nil, nil
	}
	if err := checkDatabase(database); err != nil {
		return nil, err
	}
	parts, err := monthlyPartitions(ctx, conn, database)
	if err != nil {
		return nil, err
	}
	var dropped []Partition
	var errs []error
	for _, p := range parts {
		if !expired(p.Month, now, months) {
			continue
		}
		if err := dropPartition(ctx, conn, database, p); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break // the rest would fail the same way
			}
			continue
		}
		dropped = append(dropped, p)
	}
	return dropped, errors.Join(errs...)
}

// dropPartition drops p by its partition_id, which DROP PARTITION ID takes
// on 18.16 and on current releases. A partition that is gone already is a
// no-op for ClickHouse.
func dropPartition(ctx context.Context, conn driver.Conn, database string, p Partition) error {
	// ID and Table come from system tables and passed monthID and
	// identifier, so they need no quoting.
	sql := fmt.Sprintf("ALTER TABLE `%s`.`%s` DROP PARTITION ID '%s'", database, p.Table, p.ID)
	if err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("drop partition %s of %s.%s: %w", p.ID, database, p.Table, err)
	}
	return nil
}

// monthlyPartitions lists the active partitions of database's tables whose
// partition key is toYYYYMM of a column, oldest first. Their months are
// UTC months: the columns are Date or DateTime('UTC'). Other
// tables (messages, with no partition key; schema_migrations) are left out.
func monthlyPartitions(ctx context.Context, conn driver.Conn, database string) ([]Partition, error) {
	tables, err := monthlyTables(ctx, conn, database)
	if err != nil || len(tables) == 0 {
		return nil, err
	}
	// Filtered here rather than by IN (?): how the driver binds a slice
	// differs between its versions.
	rows, err := conn.Query(ctx, `SELECT table, partition_id, any(partition), sum(rows)
		FROM system.parts WHERE database = ? AND active
		GROUP BY table, partition_id ORDER BY partition_id, table`, database)
	if err != nil {
		return nil, fmt.Errorf("list partitions of %s: %w", database, err)
	}
	defer rows.Close()
	var out []Partition
	for rows.Next() {
		var p Partition
		var value string
		if err := rows.Scan(&p.Table, &p.ID, &value, &p.Rows); err != nil {
			return nil, fmt.Errorf("list partitions of %s: %w", database, err)
		}
		month, ok := monthID(p.ID)
		if !tables[p.Table] || !ok || value != p.ID {
			continue // not a plain YYYYMM value: not ours to judge
		}
		p.Month = month
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list partitions of %s: %w", database, err)
	}
	return out, nil
}

// monthlyTables names database's tables partitioned by month. system.tables
// has partition_key on 18.16 and on current releases.
func monthlyTables(ctx context.Context, conn driver.Conn, database string) (map[string]bool, error) {
	rows, err := conn.Query(ctx, "SELECT name, partition_key FROM system.tables WHERE database = ?", database)
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", database, err)
	}
	defer rows.Close()
	names := map[string]bool{}
	for rows.Next() {
		var name, key string
		if err := rows.Scan(&name, &key); err != nil {
			return nil, fmt.Errorf("list tables of %s: %w", database, err)
		}
		// schema_migrations is not partitioned; naming it keeps it safe
		// should that ever change.
		if name != "schema_migrations" && identifier.MatchString(name) && monthlyKey(key) {
			names[name] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", database, err)
	}
	return names, nil
}

// monthlyKey tells whether a partition key (as system.tables shows it) is
// toYYYYMM of a bare column. A tuple with it, or arithmetic on it, makes
// partitions that are not whole months; a function inside it (addMonths,
// a time zone) can shift which month a row is in.
func monthlyKey(key string) bool { return monthlyKeyRE.MatchString(key) }

var monthlyKeyRE = regexp.MustCompile("^toYYYYMM\\(`?[A-Za-z_][A-Za-z0-9_]*`?\\)$")

// monthID reads a partition id of the form YYYYMM.
func monthID(id string) (time.Time, bool) {
	if len(id) != 6 {
		return time.Time{}, false
	}
	n, err := strconv.Atoi(id)
	if err != nil || n < 0 {
		return time.Time{}, false
	}
	month := time.Month(n % 100)
	if month < time.January || month > time.December {
		return time.Time{}, false
	}
	return time.Date(n/100, month, 1, 0, 0, 0, 0, time.UTC), true
}
