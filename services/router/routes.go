package router

import (
	"hash/fnv"
	"slices"
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
// in that carrier's lane. failed lists carriers that refused the message
// for good: they are never picked, and ok is false when none is left.
func (t *Table) Pick(to, messageID string, down func(carrier string) bool, failed []string) (carrier, reason string, ok bool) {
	r, ok := t.match(to)
	if !ok {
		return "", "", false
	}
	if down == nil {
		down = func(string) bool { return false }
	}
	why := "prefix " + r.Prefix
	if len(failed) > 0 {
		why += " after a routing error,"
	}
	var live, up []config.RouteCarrier
	for _, c := range r.Carriers {
		if slices.Contains(failed, c.ID) {
			continue
		}
		live = append(live, c)
		if !down(c.ID) {
			up = append(up, c)
		}
	}
	switch {
	case len(up) > 0 && len(up) == len(r.Carriers):
		return weighted(up, messageID), why + " weighted", true
	case len(up) > 0:
		return weighted(up, messageID), why + " weighted among carriers up", true
	}
	var spare []string
	for _, id := range r.Failover {
		if slices.Contains(failed, id) {
			continue
		}
		if !down(id) {
			return id, why + " failover", true
		}
		spare = append(spare, id)
	}
	switch {
	case len(live) > 0:
		return weighted(live, messageID), why + " weighted, every carrier down", true
	case len(spare) > 0:
		return spare[0], why + " failover, every carrier down", true
	}
	return "", "", false
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
