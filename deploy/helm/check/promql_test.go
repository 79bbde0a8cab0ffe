package check

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

const dashboardFile = "../../grafana/operations.json"

var promql = parser.NewParser(parser.Options{})

// grafanaVars stands in for the dashboard's variables in PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$carrier", ".*", "$group", ".*", "$namespace", ".*")

type dashboard struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ X, Y, W, H int } `json:"gridPos"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestOperationsDashboard: the dashboard loads, its panels have unique ids
// and do not overlap, every query goes to the chosen Prometheus, names only
// variables the dashboard defines, and parses as PromQL.
func TestOperationsDashboard(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{"__rate_interval": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	used := map[[2]int]int{}
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q: gridPos %+v outside the 24 columns", p.Title, p.GridPos)
		}
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, ok := used[[2]int{x, y}]; ok {
					t.Errorf("panel %q overlaps panel %d at %d,%d", p.Title, other, x, y)
				}
				used[[2]int{x, y}] = p.ID
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: no query or not on the chosen datasource", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			for _, m := range regexp.MustCompile(`\$\{?(\w+)`).FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[m[1]] {
					t.Errorf("panel %q: unknown variable $%s", p.Title, m[1])
				}
			}
			if _, err := promql.ParseExpr(grafanaVars.Replace(tg.Expr)); err != nil {
				t.Errorf("panel %q: %q: %v", p.Title, tg.Expr, err)
			}
		}
	}
	if queries < 20 {
		t.Errorf("%d queries, the dashboard lost its panels", queries)
	}
}

// TestAlertExpressions: every alert of the chart's PrometheusRule parses as
// PromQL and has a summary and a severity.
func TestAlertExpressions(t *testing.T) {
	objs, err := Render(chartDir, "sluice", "sms", kubeVersions[0], []string{chartDir + "/values-dev.yaml"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, o := range objs {
		if o.Kind() != "PrometheusRule" {
			continue
		}
		for _, g := range dig[[]any](o.Raw, "spec", "groups") {
			for _, r := range dig[[]any](g.(map[string]any), "rules") {
				rule := r.(map[string]any)
				alerts++
				name := fmt.Sprint(rule["alert"])
				if _, err := promql.ParseExpr(fmt.Sprint(rule["expr"])); err != nil {
					t.Errorf("alert %s: %v", name, err)
				}
				if dig[string](rule, "annotations", "summary") == "" || dig[string](rule, "labels", "severity") == "" {
					t.Errorf("alert %s: no summary or severity", name)
				}
			}
		}
	}
	if alerts == 0 {
		t.Fatal("no alerts rendered")
	}
}
