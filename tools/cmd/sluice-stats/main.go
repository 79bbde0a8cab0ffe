// Command sluice-stats prints the analyst reports (the queries of
// schemas/clickhouse/queries) as tables for a time range, read from
// ClickHouse.
//
//	sluice-stats -config sluice.yaml -from 2026-11-27 -to 2026-11-28
//	sluice-stats -clickhouse 127.0.0.1:9000 -since 6h -report delivery_rate,latency_by_carrier
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-stats:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer, now time.Time) error {
	fs := flag.NewFlagSet("sluice-stats", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "sluice.yaml to take the clickhouse section from (default: built-in defaults)")
	addr := fs.String("clickhouse", "", "ClickHouse native address, overrides the config")
	db := fs.String("database", "", "database, overrides the config")
	from := fs.String("from", "", "start of the range, inclusive: RFC 3339, \"2006-01-02 15:04:05\" or a date (UTC)")
	to := fs.String("to", "", "end of the range, exclusive (default: now)")
	since := fs.Duration("since", 24*time.Hour, "the range is the last SINCE, when -from is not given")
	reports := fs.String("report", "", "comma-separated reports to print (default: all); -list names them")
	list := fs.Bool("list", false, "list the reports and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	names, err := analytics.Queries()
	if err != nil {
		return err
	}
	if *list {
		_, err := fmt.Fprintln(out, strings.Join(names, "\n"))
		return err
	}
	if *reports != "" {
		wanted := strings.Split(*reports, ",")
		for _, r := range wanted {
			if !slices.Contains(names, r) {
				return fmt.Errorf("no report %q (have %s)", r, strings.Join(names, ", "))
			}
		}
		names = wanted
	}
	end, err := parseTime(*to, now)
	if err != nil {
		return fmt.Errorf("-to: %w", err)
	}
	start, err := parseTime(*from, end.Add(-*since))
	if err != nil {
		return fmt.Errorf("-from: %w", err)
	}
	if !start.Before(end) {
		return errors.New("the range is empty: -from must be before -to")
	}

	cfg := config.Default()
	if *cfgPath != "" {
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	ch := cfg.ClickHouse
	if *addr != "" {
		ch.Addr = *addr
	}
	if *db != "" {
		ch.Database = *db
	}
	conn, err := analytics.Open(ctx, ch)
	if err != nil {
		return err
	}
	defer conn.Close()

	fmt.Fprintf(out, "sluice-stats  %s  [%s, %s) UTC\n", ch.Database, start.Format(time.DateTime), end.Format(time.DateTime))
	for _, name := range names {
		cols, rows, err := analytics.Query(ctx, conn, ch.Database, name, start, end)
		if err != nil {
			return err
		}
		if err := printTable(out, name, cols, rows); err != nil {
			return err
		}
	}
	return nil
}

// parseTime reads a UTC time; "" is def.
func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def.UTC().Truncate(time.Second), nil
	}
	for _, layout := range []string{time.RFC3339, time.DateTime, "2006-01-02T15:04:05", "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (RFC 3339, \"2006-01-02 15:04:05\" or \"2006-01-02\")", s)
}

func printTable(out io.Writer, name string, cols []string, rows [][]any) error {
	fmt.Fprintf(out, "\n== %s (%d rows)\n", name, len(rows))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t")
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, v := range r {
			cells[i] = cell(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	return tw.Flush()
}

func cell(v any) string {
	switch v := v.(type) {
	case time.Time:
		if v.Second() == 0 {
			return v.UTC().Format("2006-01-02 15:04")
		}
		return v.UTC().Format(time.DateTime)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32)
	case string:
		if v == "" {
			return "-"
		}
		return v
	}
	return fmt.Sprint(v)
}
