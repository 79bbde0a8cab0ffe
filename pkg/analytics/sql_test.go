package analytics

import (
	"slices"
	"testing"
	"time"
)

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name, sql string
		want      []string
	}{
		{"two", "CREATE a;\nCREATE b;\n", []string{"CREATE a", "CREATE b"}},
		{"no trailing semicolon", "SELECT 1", []string{"SELECT 1"}},
		{"comments only", "-- nothing; here\n\n", nil},
		{"semicolon in comment", "-- a; b\nSELECT 1 -- c; d\n;", []string{"-- a; b\nSELECT 1 -- c; d"}},
		{"semicolon in quotes", "SELECT ';', \"x;\", `y;` ;SELECT 'it\\'s;'", []string{"SELECT ';', \"x;\", `y;`", "SELECT 'it\\'s;'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitStatements(tt.sql); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vars := dbVar("sluice")
	vars["from:DateTime"] = dateTimeLiteral(time.Date(2026, 11, 27, 9, 0, 0, 900_000_000, time.FixedZone("CET", 3600)))
	got, err := expand("SELECT * FROM {db:Identifier}.t WHERE t >= {from:DateTime}", vars)
	want := "SELECT * FROM `sluice`.t WHERE t >= toDateTime('2026-11-27 08:00:00', 'UTC')"
	if err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	if _, err := expand("SELECT {to:DateTime}", vars); err == nil {
		t.Error("a placeholder without a value went through")
	}
}
