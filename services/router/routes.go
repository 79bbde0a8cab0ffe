package router

import (
	"hash/fnv"
	"sort"
	"strings"

	"github.com/sluice-sms/sluice/pkg/config"
)

// Table finds the route of a number by longest prefix.
type Table struct {
	routes []config.Route // longest prefix first
}

// NewTable builds a routing table from the configured routes.
func NewTable(routes []config.Route) *Table {
	sorted := append([]config.Route(nil), routes...)
	sort.SliceStable(sorted, func(i, j int) bool { return len(sorted[i].Prefix) > len(sorted[j].Prefix) })
	return &Table{routes: sorted}
}

// Pick returns the carrier for a number and why it was chosen. The weighted
// choice hashes the message id, so a replayed message takes the same carrier.
func (t *Table) Pick(to, messageID string) (carrier, reason string, ok bool) {
	for _, r := range t.routes {
		if !strings.HasPrefix(to, r.Prefix) {
			continue
		}
		total := 0
		for _, c := range r.Carriers {
			total += c.Weight
		}
		if total == 0 {
			return r.Carriers[0].ID, "prefix " + r.Prefix, true
		}
		h := fnv.New32a()
		h.Write([]byte(messageID))
		n := int(h.Sum32() % uint32(total))
		for _, c := range r.Carriers {
			if n < c.Weight {
				return c.ID, "prefix " + r.Prefix + " weighted", true
			}
			n -= c.Weight
		}
	}
	return "", "", false
}
