package router

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-sms/sluice/pkg/config"
)

func TestPickLongestPrefix(t *testing.T) {
	table := NewTable([]config.Route{
		{Prefix: "+4", Carriers: []config.RouteCarrier{{ID: "europe", Weight: 1}}},
		{Prefix: "+447", Carriers: []config.RouteCarrier{{ID: "uk-mobile", Weight: 1}}},
		{Prefix: "+44", Carriers: []config.RouteCarrier{{ID: "uk", Weight: 1}}},
	})
	tests := []struct{ to, want string }{
		{"+447400123456", "uk-mobile"},
		{"+441234567890", "uk"},
		{"+4915123456789", "europe"},
		{"+33612345678", ""},
	}
	for _, tt := range tests {
		got, _, ok := table.Pick(tt.to, "id", nil, nil)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("Pick(%s) = %q, %v; want %q", tt.to, got, ok, tt.want)
		}
	}
}

func TestPickWeightsAndDeterminism(t *testing.T) {
	table := NewTable([]config.Route{{Prefix: "+44", Carriers: []config.RouteCarrier{{ID: "a", Weight: 70}, {ID: "b", Weight: 30}}}})
	counts := map[string]int{}
	const n = 20000
	for i := range n {
		id := fmt.Sprintf("msg-%d", i)
		c, _, _ := table.Pick("+447400123456", id, nil, nil)
		again, _, _ := table.Pick("+447400123456", id, nil, nil)
		if c != again {
			t.Fatalf("message %s routed to %s then %s", id, c, again)
		}
		counts[c]++
	}
	if share := float64(counts["a"]) / n; math.Abs(share-0.7) > 0.02 {
		t.Errorf("carrier a got %.3f of the traffic, want 0.70±0.02 (%v)", share, counts)
	}
}

func TestPickFailover(t *testing.T) {
	table := NewTable([]config.Route{{
		Prefix:   "+44",
		Carriers: []config.RouteCarrier{{ID: "a", Weight: 70}, {ID: "b", Weight: 30}},
		Failover: []string{"c", "d"},
	}})
	tests := []struct {
		name     string
		down     []string
		want     []string // carriers that may be chosen
		wantHow  string
		wantOnly bool // every message goes to want[0]
	}{
		{"all up", nil, []string{"a", "b"}, "weighted", false},
		{"a down: b takes it all", []string{"a"}, []string{"b"}, "among carriers up", true},
		{"a and b down: first failover", []string{"a", "b"}, []string{"c"}, "failover", true},
		{"a, b and c down: next failover", []string{"a", "b", "c"}, []string{"d"}, "failover", true},
		{"everything down: weighted, waits", []string{"a", "b", "c", "d"}, []string{"a", "b"}, "every carrier down", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			down := func(c string) bool { return slices.Contains(tt.down, c) }
			seen := map[string]int{}
			for i := range 1000 {
				c, reason, ok := table.Pick("+447400123456", fmt.Sprintf("m%d", i), down, nil)
				if !ok {
					t.Fatal("no route")
				}
				if !slices.Contains(tt.want, c) {
					t.Fatalf("picked %s, want one of %v", c, tt.want)
				}
				if howOf(reason) != tt.wantHow {
					t.Fatalf("reason %q, want it to say %q", reason, tt.wantHow)
				}
				seen[c]++
			}
			if !tt.wantOnly && len(seen) != len(tt.want) {
				t.Errorf("carriers used %v, want all of %v", seen, tt.want)
			}
		})
	}
}

func TestPickAvoidsFailedCarriers(t *testing.T) {
	table := NewTable([]config.Route{{
		Prefix:   "+44",
		Carriers: []config.RouteCarrier{{ID: "a", Weight: 70}, {ID: "b", Weight: 30}},
		Failover: []string{"c"},
	}})
	tests := []struct {
		failed, down []string
		want         string // "" : no carrier left
	}{
		{failed: []string{"a"}, want: "b"},
		{failed: []string{"a", "b"}, want: "c"},
		{failed: []string{"a", "b"}, down: []string{"c"}, want: "c"}, // down, but the only one left: wait for it
		{failed: []string{"a"}, down: []string{"b"}, want: "c"},
		{failed: []string{"a", "b", "c"}, want: ""},
	}
	for _, tt := range tests {
		down := func(c string) bool { return slices.Contains(tt.down, c) }
		for i := range 200 {
			c, reason, ok := table.Pick("+447400123456", fmt.Sprintf("m%d", i), down, tt.failed)
			if ok != (tt.want != "") || c != tt.want {
				t.Fatalf("failed %v, down %v: picked %q (%v), want %q", tt.failed, tt.down, c, ok, tt.want)
			}
			if ok && !strings.Contains(reason, "after a routing error") {
				t.Fatalf("reason %q does not say why", reason)
			}
		}
	}
}
