package router

import (
	"fmt"
	"math"
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
		got, _, ok := table.Pick(tt.to, "id")
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
		c, _, _ := table.Pick("+447400123456", id)
		again, _, _ := table.Pick("+447400123456", id)
		if c != again {
			t.Fatalf("message %s routed to %s then %s", id, c, again)
		}
		counts[c]++
	}
	if share := float64(counts["a"]) / n; math.Abs(share-0.7) > 0.02 {
		t.Errorf("carrier a got %.3f of the traffic, want 0.70±0.02 (%v)", share, counts)
	}
}
