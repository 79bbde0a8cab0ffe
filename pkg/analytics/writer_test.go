package analytics_test

import (
	"cmp"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// spec is the true life of one test message, from which the test derives
// both the events it writes and every expected query answer.
type spec struct {
	id, tenant, campaign, carrier, country string
	routeReason                            string
	segments                               int
	accepted, submitted, done              time.Time // zero: never happened
	final, errorCode                       string    // "" while awaiting a receipt
	submitMs, deliveryMs                   int64
}

var base = time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)

// dataset builds n messages over three hours with every kind of ending.
func dataset(n int) []spec {
	rng := rand.New(rand.NewPCG(1, 2))
	carriers := []string{"sim-a", "sim-b", "sim-c"}
	countries := []string{"GB", "FR"}
	var specs []spec
	for i := range n {
		s := spec{
			id:       message.NewID(),
			tenant:   []string{"acme", "globex"}[i%2],
			campaign: []string{"black-friday", "otp", ""}[i%3],
			carrier:  carriers[rng.IntN(len(carriers))],
			country:  countries[rng.IntN(len(countries))],
			segments: 1 + rng.IntN(3),
			accepted: base.Add(time.Duration(i)*(3*time.Hour/time.Duration(n)) + time.Duration(rng.IntN(1000))*time.Millisecond),
		}
		s.routeReason = []string{"prefix +44 weighted", "prefix +44 weighted among carriers up", "prefix +44 failover"}[i%3]
		switch r := rng.IntN(20); {
		case r == 0: // refused by the router: no carrier
			s.carrier, s.routeReason, s.final, s.errorCode = "", "", message.StatusRejected, "OPTOUT"
			s.done = s.accepted.Add(10 * time.Millisecond)
		case r <= 2: // still waiting for a receipt
			s.submitMs = 50 + rng.Int64N(3000)
		default:
			s.submitMs = 50 + rng.Int64N(3000)
			outcome := []string{message.StatusDelivered, message.StatusDelivered, message.StatusDelivered,
				message.StatusDelivered, message.StatusUndelivered, message.StatusExpired, message.StatusFailed,
				message.StatusUnknown}[rng.IntN(8)]
			s.final = outcome
			s.errorCode = map[string]string{message.StatusDelivered: "000", message.StatusUndelivered: "011",
				message.StatusExpired: "", message.StatusFailed: "088", message.StatusUnknown: ""}[outcome]
			if outcome == message.StatusUndelivered && rng.IntN(2) == 0 {
				s.errorCode = "001"
			}
			if outcome != message.StatusFailed && outcome != message.StatusUnknown { // a receipt came
				s.deliveryMs = 500 + rng.Int64N(120000)
			}
		}
		if s.submitMs > 0 {
			s.submitted = s.accepted.Add(time.Duration(s.submitMs) * time.Millisecond)
			s.done = s.submitted.Add(time.Duration(s.deliveryMs) * time.Millisecond)
		}
		specs = append(specs, s)
	}
	return specs
}

// events are the status events of a message, as the services would emit them.
func (s spec) events() []message.Status {
	m := &sluicepb.Message{
		Id: s.id, Tenant: s.tenant, CampaignId: s.campaign, ClientRef: "ref-" + s.id, To: "+447700900123",
		Carrier: s.carrier, RouteReason: s.routeReason, Country: s.country, Segments: uint32(s.segments),
		Priority: sluicepb.Priority_PRIORITY_TRANSACTIONAL, AcceptedAtMs: s.accepted.UnixMilli(),
	}
	evs := []message.Status{message.StatusOf(m, message.StatusAccepted, s.accepted)}
	if !s.submitted.IsZero() {
		e := message.StatusOf(m, message.StatusSubmitted, s.submitted)
		e.SubmittedAt = &s.submitted
		evs = append(evs, e)
	}
	if s.final != "" {
		e := message.StatusOf(m, s.final, s.done)
		e.ErrorCode = s.errorCode
		if !s.submitted.IsZero() {
			e.SubmittedAt = &s.submitted
		}
		if s.deliveryMs > 0 {
			e.DoneAt = &s.done
		}
		evs = append(evs, e)
	}
	return evs
}

func (s spec) finalTime() time.Time { return s.done }

// carrierOutcome reports whether the final status is a carrier's answer (or
// the lack of one), as opposed to a rejection.
func (s spec) carrierOutcome() bool { return s.final != "" && s.final != message.StatusRejected }

// writeAll writes the events in shuffled batches with replays: some events
// twice in one batch, some again in a later batch, and the accepted and
// submitted events of late (every 10th message) only after everything else.
// It returns the number of rows written: Write stores an event repeated
// within one batch once.
func writeAll(t *testing.T, w *analytics.Writer, specs []spec) (rows int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	var all, late []message.Status
	for i, s := range specs {
		for _, e := range s.events() {
			if i%10 == 0 && !message.IsFinal(e.Status) {
				late = append(late, e)
				continue
			}
			all = append(all, e)
			if rng.IntN(6) == 0 {
				all = append(all, e) // replayed
			}
		}
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for len(all) > 0 {
		n := min(len(all), 1+rng.IntN(60))
		batch := all[:n]
		if rng.IntN(3) == 0 {
			batch = append(slices.Clone(batch), batch[0]) // duplicate within the batch
		}
		if err := w.Write(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
		rows += distinctEvents(batch)
		all = all[n:]
	}
	if err := w.Write(t.Context(), late); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	return rows + distinctEvents(late)
}

func distinctEvents(evs []message.Status) int {
	ids := map[string]bool{}
	for _, e := range evs {
		ids[e.EventID] = true
	}
	return len(ids)
}

func TestWriterAndQueries(t *testing.T) {
	conn, db := open(t)
	if err := analytics.Migrate(t.Context(), conn, db); err != nil {
		t.Fatal(err)
	}
	specs := dataset(400)
	written := writeAll(t, analytics.NewWriter(conn, db), specs)

	// The range leaves out the first half hour and the last half hour or so.
	from, to := base.Add(30*time.Minute), base.Add(150*time.Minute)
	in := func(at time.Time) bool { return !at.IsZero() && !at.Before(from) && at.Before(to) }

	names, err := analytics.Queries()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][][]any{
		"delivery_rate":      wantDeliveryRate(specs, in),
		"latency_by_carrier": wantLatency(specs, in),
		"error_codes":        wantErrorCodes(specs, in),
		"campaign_funnel":    wantFunnel(specs, in),
		"awaiting_dlr":       wantAwaiting(specs, in),
		"carrier_report":     wantReport(specs, in),
		"routing":            wantRouting(specs, in),
	}
	if len(names) != len(want) {
		t.Errorf("queries %v; the test checks %d", names, len(want))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			_, got, err := analytics.Query(t.Context(), conn, db, name, from, to)
			if err != nil {
				t.Fatal(err)
			}
			w, ok := want[name]
			if !ok {
				t.Fatalf("no expected answer for query %s", name)
			}
			if len(w) == 0 {
				t.Fatal("the data set gives this query nothing to find")
			}
			compareRows(t, got, w)
		})
	}

	t.Run("CarrierReport", func(t *testing.T) {
		rep, err := analytics.CarrierReport(t.Context(), conn, db, from, to)
		if err != nil {
			t.Fatal(err)
		}
		var got [][]any
		for _, r := range rep {
			got = append(got, []any{r.Carrier, r.Sent, r.Delivered, r.Failed, r.Unknown, r.P50Ms, r.P99Ms})
		}
		compareRows(t, got, want["carrier_report"])
	})

	t.Run("messages shows the final status", func(t *testing.T) {
		checkLatestStatus(t, conn, db, specs)
	})

	t.Run("carrier_stats_minute", func(t *testing.T) {
		checkStats(t, conn, db, specs, written)
	})
}

// compareRows compares query rows, floats to within rounding.
func compareRows(t *testing.T, got, want [][]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d rows, want %d\ngot  %v\nwant %v", len(got), len(want), got, want)
		return
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Errorf("row %d: %v, want %v", i, got[i], want[i])
			continue
		}
		for j := range want[i] {
			if !equalValue(got[i][j], want[i][j]) {
				t.Errorf("row %d column %d: %v (%T), want %v (%T)\ngot  %v\nwant %v",
					i, j, got[i][j], got[i][j], want[i][j], want[i][j], got[i], want[i])
			}
		}
	}
}

func equalValue(got, want any) bool {
	switch w := want.(type) {
	case float64:
		g, ok := got.(float64)
		return ok && math.Abs(g-w) < 1e-9
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w)
	}
	return got == want
}

var carrierFinals = []string{message.StatusDelivered, message.StatusUndelivered, message.StatusExpired,
	message.StatusFailed, message.StatusUnknown}

func isNotDelivered(status string) bool {
	return status == message.StatusUndelivered || status == message.StatusExpired || status == message.StatusFailed
}

// quantileExact is ClickHouse's quantileExact: the value at floor(level*n)
// of the sorted values.
func quantileExact(vals []int64, level float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vals))
	return float64(s[min(int(level*float64(len(s))), len(s)-1)])
}

func wantDeliveryRate(specs []spec, in func(time.Time) bool) [][]any {
	type key struct {
		hour             time.Time
		carrier, country string
	}
	finished, delivered := map[key]uint64{}, map[key]uint64{}
	for _, s := range specs {
		if !s.carrierOutcome() || !in(s.finalTime()) {
			continue
		}
		k := key{s.finalTime().Truncate(time.Hour), s.carrier, s.country}
		finished[k]++
		if s.final == message.StatusDelivered {
			delivered[k]++
		}
	}
	keys := slices.Collect(maps.Keys(finished))
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(a.hour.Compare(b.hour), cmp.Compare(a.carrier, b.carrier), cmp.Compare(a.country, b.country))
	})
	var rows [][]any
	for _, k := range keys {
		rate := math.Round(float64(delivered[k])/float64(finished[k])*1e4) / 1e4
		rows = append(rows, []any{k.hour, k.carrier, k.country, finished[k], delivered[k], rate})
	}
	return rows
}

// receiptLatencies are the delivery latencies of the outcome events in the
// range that know both the submit and the receipt time, per carrier.
func receiptLatencies(specs []spec, in func(time.Time) bool) map[string][]int64 {
	lat := map[string][]int64{}
	for _, s := range specs {
		if s.deliveryMs > 0 && in(s.finalTime()) {
			lat[s.carrier] = append(lat[s.carrier], s.deliveryMs)
		}
	}
	return lat
}

func wantLatency(specs []spec, in func(time.Time) bool) [][]any {
	lat := receiptLatencies(specs, in)
	var rows [][]any
	for _, c := range slices.Sorted(maps.Keys(lat)) {
		v := lat[c]
		rows = append(rows, []any{c, uint64(len(v)), quantileExact(v, 0.5), quantileExact(v, 0.9), quantileExact(v, 0.99)})
	}
	return rows
}

func wantErrorCodes(specs []spec, in func(time.Time) bool) [][]any {
	type key struct{ carrier, status, code string }
	n := map[key]uint64{}
	for _, s := range specs {
		if s.final == "" || s.final == message.StatusDelivered || !in(s.finalTime()) {
			continue
		}
		n[key{s.carrier, s.final, s.errorCode}]++
	}
	keys := slices.Collect(maps.Keys(n))
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(n[b], n[a]), cmp.Compare(a.carrier, b.carrier), cmp.Compare(a.status, b.status), cmp.Compare(a.code, b.code))
	})
	var rows [][]any
	for _, k := range keys {
		rows = append(rows, []any{k.carrier, k.status, k.code, n[k]})
	}
	return rows
}

func wantFunnel(specs []spec, in func(time.Time) bool) [][]any {
	type key struct{ tenant, campaign string }
	type stages struct{ accepted, rejected, submitted, delivered, notDelivered, unknown uint64 }
	n := map[key]*stages{}
	for _, s := range specs {
		k := key{s.tenant, s.campaign}
		st := n[k]
		if st == nil {
			st = &stages{}
		}
		count := func(at time.Time, c *uint64) {
			if in(at) {
				*c++
				n[k] = st
			}
		}
		count(s.accepted, &st.accepted)
		count(s.submitted, &st.submitted)
		switch {
		case s.final == message.StatusRejected:
			count(s.done, &st.rejected)
		case s.final == message.StatusDelivered:
			count(s.done, &st.delivered)
		case s.final == message.StatusUnknown:
			count(s.done, &st.unknown)
		case isNotDelivered(s.final):
			count(s.done, &st.notDelivered)
		}
	}
	keys := slices.Collect(maps.Keys(n))
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.campaign, b.campaign))
	})
	var rows [][]any
	for _, k := range keys {
		st := n[k]
		rows = append(rows, []any{k.tenant, k.campaign, st.accepted, st.rejected, st.submitted, st.delivered, st.notDelivered, st.unknown})
	}
	return rows
}

func wantAwaiting(specs []spec, in func(time.Time) bool) [][]any {
	var waiting []spec
	for _, s := range specs {
		if s.final == "" && in(s.submitted) {
			waiting = append(waiting, s)
		}
	}
	slices.SortFunc(waiting, func(a, b spec) int {
		return cmp.Or(a.submitted.Truncate(time.Second).Compare(b.submitted.Truncate(time.Second)),
			cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.id, b.id))
	})
	var rows [][]any
	for _, s := range waiting {
		rows = append(rows, []any{s.tenant, s.id, s.carrier, s.country, s.campaign, s.submitted.Truncate(time.Second)})
	}
	return rows
}

func wantReport(specs []spec, in func(time.Time) bool) [][]any {
	type counts struct{ sent, delivered, failed, unknown uint64 }
	n := map[string]*counts{}
	for _, s := range specs {
		if s.carrier == "" {
			continue
		}
		c := n[s.carrier]
		if c == nil {
			c = &counts{}
			n[s.carrier] = c
		}
		if in(s.submitted) || (s.carrierOutcome() && in(s.done)) {
			c.sent++
		}
		if !in(s.done) {
			continue
		}
		switch {
		case s.final == message.StatusDelivered:
			c.delivered++
		case s.final == message.StatusUnknown:
			c.unknown++
		case isNotDelivered(s.final):
			c.failed++
		}
	}
	lat := receiptLatencies(specs, in)
	var rows [][]any
	for _, carrier := range slices.Sorted(maps.Keys(n)) {
		c := n[carrier]
		rows = append(rows, []any{carrier, c.sent, c.delivered, c.failed, c.unknown,
			quantileExact(lat[carrier], 0.5), quantileExact(lat[carrier], 0.99)})
	}
	return rows
}

func wantRouting(specs []spec, in func(time.Time) bool) [][]any {
	type key struct{ carrier, reason string }
	type counts struct{ messages, finished, delivered uint64 }
	n := map[key]*counts{}
	for _, s := range specs {
		if s.carrier == "" || !in(s.accepted) {
			continue
		}
		k := key{s.carrier, s.routeReason}
		if n[k] == nil {
			n[k] = &counts{}
		}
		c := n[k]
		c.messages++
		if s.carrierOutcome() {
			c.finished++
		}
		if s.final == message.StatusDelivered {
			c.delivered++
		}
	}
	keys := slices.SortedFunc(maps.Keys(n), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.carrier, b.carrier), cmp.Compare(a.reason, b.reason))
	})
	var rows [][]any
	for _, k := range keys {
		c := n[k]
		rate := 0.0
		if c.finished > 0 {
			rate = math.Round(float64(c.delivered)/float64(c.finished)*1e4) / 1e4
		}
		rows = append(rows, []any{k.carrier, k.reason, c.messages, c.finished, c.delivered, rate})
	}
	return rows
}

// checkLatestStatus reads every message's row of messages: its final status
// when it has one (even for the messages whose earlier events were written
// last), else submitted.
func checkLatestStatus(t *testing.T, conn driver.Conn, db string, specs []spec) {
	rows, err := conn.Query(t.Context(), "SELECT message_id, status, error_code, delivery_latency_ms FROM "+db+".messages FINAL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type latest struct {
		status, code string
		latency      uint32
	}
	got := map[string]latest{}
	for rows.Next() {
		var id string
		var l latest
		if err := rows.Scan(&id, &l.status, &l.code, &l.latency); err != nil {
			t.Fatal(err)
		}
		got[id] = l
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(specs) {
		t.Errorf("messages has %d rows, want %d", len(got), len(specs))
	}
	for i, s := range specs {
		want := latest{status: s.final, code: s.errorCode, latency: uint32(s.deliveryMs)}
		if s.final == "" {
			want = latest{status: message.StatusSubmitted}
		}
		if got[s.id] != want {
			t.Errorf("message %d (late: %v): %+v, want %+v", i, i%10 == 0, got[s.id], want)
		}
	}
}

// checkStats checks the materialized view's figures: it counts every row
// inserted into message_events (replays included, as documented), and its
// latency states leave out unknown latencies.
func checkStats(t *testing.T, conn driver.Conn, db string, specs []spec, written int) {
	var counted uint64
	if err := conn.QueryRow(t.Context(), "SELECT countMerge(events) FROM "+db+".carrier_stats_minute").Scan(&counted); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(t.Context(), "OPTIMIZE TABLE "+db+".message_events FINAL"); err != nil {
		t.Fatal(err)
	}
	var unique uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM "+db+".message_events").Scan(&unique); err != nil {
		t.Fatal(err)
	}
	var events int
	for _, s := range specs {
		events += len(s.events())
	}
	if counted != uint64(written) || unique != uint64(events) || written <= events {
		t.Errorf("view counted %d of %d rows written, %d rows after merging, want %d events (and some replays)",
			counted, written, unique, events)
	}

	var minLat, maxLat int64 = math.MaxInt64, 0
	for _, s := range specs {
		if s.final == message.StatusDelivered {
			minLat, maxLat = min(minLat, s.deliveryMs), max(maxLat, s.deliveryMs)
		}
	}
	var q []float32
	err := conn.QueryRow(t.Context(), "SELECT quantilesTDigestMerge(0.5, 0.9, 0.99)(delivery_latency) FROM "+db+
		".carrier_stats_minute WHERE status = 'delivered'").Scan(&q)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range q {
		if int64(v) < minLat || int64(v) > maxLat {
			t.Errorf("delivered latency quantiles %v outside [%d, %d]: unknown latencies counted as 0?", q, minLat, maxLat)
		}
	}
	var parts uint64
	if err := conn.QueryRow(t.Context(), "SELECT sumMerge(parts) FROM "+db+".carrier_stats_minute WHERE status = 'accepted'").Scan(&parts); err != nil {
		t.Fatal(err)
	}
	if parts == 0 {
		t.Error("no message parts counted")
	}
}
