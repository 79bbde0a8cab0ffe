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
// choice hashes the message id, so a replayed message takes the same carrier
// as long as the same carriers are up. down tells which carriers are
// unavailable (nil: all are up): the weighted choice is made among the
// route's carriers that are up, then the failover list is tried in order;
// when every one is down the message keeps its weighted carrier and waits
// in that carrier's lane.
func (t *Table) Pick(to, messageID string, down func(carrier string) bool) (carrier, reason string, ok bool) {
	r, ok := t.match(to)
	if !ok {
		return "", "", false
	}
	if down == nil {
		down = func(string) bool { return false }
	}
	up := make([]config.RouteCarrier, 0, len(r.Carriers))
	for _, c := range r.Carriers {
		if !down(c.ID) {
			up = append(up, c)
		}
	}
	switch {
	case len(up) == len(r.Carriers):
		return weighted(r.Carriers, messageID), "prefix " + r.Prefix + " weighted", true
	case len(up) > 0:
		return weighted(up, messageID), "prefix " + r.Prefix + " weighted among carriers up", true
	}
	for _, id := range r.Failover {
		if !down(id) {
			return id, "prefix " + r.Prefix + " failover", true
		}
	}
	return weighted(r.Carriers, messageID), "prefix " + r.Prefix + " weighted, every carrier down", true
}

// Routable reports whether some route covers the number.
func (t *Table) Routable(to string) bool {
	_, ok := t.match(to)
	return ok
}

func (t *Table) match(to string) (config.Route, bool) {
	for _, r := range t.routes {
		if strings.HasPrefix(to, r.Prefix) && len(r.Carriers) > 0 {
			return r, true
		}
	}
	return config.Route{}, false
}

// weighted picks one of cs in proportion to their weights, by a hash of the
// message id; with no weights at all, the first.
func weighted(cs []config.RouteCarrier, messageID string) string {
	total := 0
	for _, c := range cs {
		total += c.Weight
	}
	if total == 0 {
		return cs[0].ID
	}
	h := fnv.New32a()
	h.Write([]byte(messageID))
	n := int(h.Sum32() % uint32(total))
	for _, c := range cs {
		if n < c.Weight {
			return c.ID
		}
		n -= c.Weight
	}
	return cs[len(cs)-1].ID // unreachable: n < total
}
