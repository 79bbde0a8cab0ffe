package analytics

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/sluice-sms/sluice/schemas"
)

const queriesDir = "clickhouse/queries"

var queryName = regexp.MustCompile(`^[a-z0-9_]+$`)

// Queries returns the names of the analyst queries (the files of
// schemas/clickhouse/queries without ".sql"), sorted.
func Queries() ([]string, error) {
	files, err := fs.Glob(schemas.FS(), queriesDir+"/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list queries: %w", err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(path.Base(f), ".sql")
	}
	return names, nil
}

// Query runs the named analyst query over [from, to) (UTC, to the second)
// and returns its column names and rows. Values have the Go types the
// driver scans the columns into (uint64 for counts, float64 for rates and
// quantiles, string, time.Time).
func Query(ctx context.Context, conn driver.Conn, database, name string, from, to time.Time) (columns []string, rows [][]any, err error) {
	if err := checkDatabase(database); err != nil {
		return nil, nil, err
	}
	if !queryName.MatchString(name) {
		return nil, nil, fmt.Errorf("query name %q", name)
	}
	text, err := fs.ReadFile(schemas.FS(), queriesDir+"/"+name+".sql")
	if err != nil {
		return nil, nil, fmt.Errorf("query %s: %w", name, err)
	}
	vars := dbVar(database)
	vars["from:DateTime"] = dateTimeLiteral(from)
	vars["to:DateTime"] = dateTimeLiteral(to)
	sql, err := expand(string(text), vars)
	if err != nil {
		return nil, nil, fmt.Errorf("query %s: %w", name, err)
	}
	rs, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, nil, fmt.Errorf("query %s: %w", name, err)
	}
	defer rs.Close()
	columns = rs.Columns()
	types := rs.ColumnTypes()
	for rs.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rs.Scan(dest...); err != nil {
			return nil, nil, fmt.Errorf("query %s: %w", name, err)
		}
		row := make([]any, len(dest))
		for i, d := range dest {
			row[i] = reflect.ValueOf(d).Elem().Interface()
		}
		rows = append(rows, row)
	}
	if err := rs.Err(); err != nil {
		return nil, nil, fmt.Errorf("query %s: %w", name, err)
	}
	return columns, rows, nil
}
