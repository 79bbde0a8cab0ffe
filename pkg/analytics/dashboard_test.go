package analytics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/analytics"
)

// TestDashboard runs every query of the analysts' Grafana dashboard, with
// the ClickHouse plugin's macros expanded the way the plugin does, on this
// ClickHouse server: they must run on 18.16 as on current releases.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile("../../deploy/grafana/analytics.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ RawSQL string }
		}
		Templating struct {
			List []struct {
				Name, Query string
			}
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	conn, db := open(t)
	if err := analytics.Migrate(t.Context(), conn, db); err != nil {
		t.Fatal(err)
	}
	specs := dataset(200)
	writeAll(t, analytics.NewWriter(conn, db), specs)
	from, to := base.Add(30*time.Minute), base.Add(150*time.Minute)

	timeFilter := regexp.MustCompile(`\$__timeFilter\(([a-z_]+)\)`)
	expand := func(sql string) string {
		sql = timeFilter.ReplaceAllString(sql, "$1 >= toDateTime('"+from.Format(time.DateTime)+"', 'UTC') AND $1 <= toDateTime('"+to.Format(time.DateTime)+"', 'UTC')")
		sql = strings.ReplaceAll(sql, "${carrier:singlequote}", "'sim-a', 'sim-b', 'sim-c'")
		return strings.ReplaceAll(sql, "sluice.", "`"+db+"`.")
	}
	run := func(name, sql string) int {
		t.Helper()
		if strings.Contains(expand(sql), "$") {
			t.Fatalf("%s: unexpanded macro in %s", name, expand(sql))
		}
		rows, err := conn.Query(t.Context(), expand(sql))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return n
	}
	for _, v := range dash.Templating.List {
		if v.Query != "" && strings.HasPrefix(v.Query, "SELECT") {
			if run("variable "+v.Name, v.Query) == 0 {
				t.Errorf("variable %s has no values", v.Name)
			}
		}
	}
	if len(dash.Panels) == 0 {
		t.Fatal("no panels")
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if n := run(p.Title, tg.RawSQL); n == 0 {
				t.Errorf("%s: no rows on the test data", p.Title)
			}
		}
	}
	// The one panel whose answer is a single number: messages awaiting a receipt.
	for _, p := range dash.Panels {
		if p.Title != "Awaiting a receipt" {
			continue
		}
		var n uint64
		if err := conn.QueryRow(t.Context(), expand(p.Targets[0].RawSQL)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		// The plugin's time filter is inclusive at both ends; the query file's is half-open.
		if want := len(wantAwaiting(specs, func(at time.Time) bool { return !at.IsZero() && !at.Before(from) && !at.After(to) })); want == 0 || n != uint64(want) {
			t.Errorf("awaiting a receipt: %d, want %d", n, want)
		}
	}
}
