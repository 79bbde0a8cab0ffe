package loadgen

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/message"
)

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		ds := make([]time.Duration, len(xs))
		for i, x := range xs {
			ds[i] = time.Duration(x) * time.Millisecond
		}
		return ds
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p90 of 1..100", ms(hundred...), 90, 90 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 of 1..100", ms(hundred...), 100, 100 * time.Millisecond},
		{"p50 of four rounds up", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of four is the max", ms(1, 2, 3, 4), 99, 4 * time.Millisecond},
		{"tiny p is the min", ms(1, 2, 3, 4), 0.1, 1 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestQuantilesOfSorts(t *testing.T) {
	q := QuantilesOf([]time.Duration{5, 1, 4, 2, 3})
	if q != (Quantiles{N: 5, P50: 3, P90: 5, P99: 5}) {
		t.Errorf("QuantilesOf = %+v", q)
	}
}

func TestTallyReport(t *testing.T) {
	reqs := Campaign{Tenant: "t", ID: "c", Count: 4, Seed: 1}.Requests()
	id := func(i int) string { return message.IDForClientRef(reqs[i].Tenant, reqs[i].ClientRef) }
	t0 := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tally := NewTally(reqs)
	tally.Published(reqs[:2], at(0))
	tally.Published(reqs[2:], at(100))

	ev := func(i int, status string, seen int, submittedAt *time.Time) {
		tally.addAt(message.Status{MessageID: id(i), Status: status, SubmittedAt: submittedAt}, at(seen))
	}
	sub := at(40)
	ev(0, message.StatusAccepted, 10, nil)
	ev(0, message.StatusSubmitted, 60, &sub) // the event's own submitted_at counts
	ev(0, message.StatusDelivered, 200, nil)
	ev(0, message.StatusDelivered, 250, nil) // a copy: counted, not a conflict
	ev(1, message.StatusAccepted, 20, nil)
	ev(1, message.StatusSubmitted, 80, nil)
	ev(1, message.StatusUndelivered, 300, nil)
	ev(1, message.StatusDelivered, 310, nil) // a conflicting second final
	ev(2, message.StatusRejected, 150, nil)  // rejected at ingest: final, never accepted
	tally.addAt(message.Status{MessageID: "someone-else", Status: message.StatusDelivered}, at(5))
	// message 3 never ends.

	r := tally.Report()
	if r.Requested != 4 || r.Accepted != 2 || r.Missing != 1 || r.Conflicts != 1 || r.DuplicateFinals != 2 {
		t.Errorf("report = %+v", r)
	}
	if want := map[string]int{"delivered": 1, "undelivered": 1, "rejected": 1}; !maps.Equal(r.Statuses, want) {
		t.Errorf("statuses = %v, want %v", r.Statuses, want)
	}
	if got := tally.Missing(); !slices.Equal(got, []string{id(3)}) {
		t.Errorf("missing = %v, want [%s]", got, id(3))
	}
	wantStages := []Stage{
		{"published", 4, at(0), at(100)},
		{"accepted", 2, at(10), at(20)},
		{"submitted", 2, at(40), at(80)},
		{"final", 3, at(150), at(300)},
	}
	if !slices.Equal(r.Stages, wantStages) {
		t.Errorf("stages = %+v, want %+v", r.Stages, wantStages)
	}
	if got := r.Stages[3].Rate(); got != 2/0.15 {
		t.Errorf("final rate = %v, want %v", got, 2/0.15)
	}
	if want := (Quantiles{N: 2, P50: 40 * time.Millisecond, P90: 80 * time.Millisecond, P99: 80 * time.Millisecond}); r.ToSubmitted != want {
		t.Errorf("publish→submitted = %+v, want %+v", r.ToSubmitted, want)
	}
	if want := (Quantiles{N: 3, P50: 200 * time.Millisecond, P90: 300 * time.Millisecond, P99: 300 * time.Millisecond}); r.ToFinal != want {
		t.Errorf("publish→final = %+v, want %+v", r.ToFinal, want)
	}
}

func TestSumSimStats(t *testing.T) {
	got := SumSimStats(map[string]SimStats{
		"a": {Submits: 10, UniqueSubmits: 9, DuplicateSubmits: 1, Throttled: 2},
		"b": {Submits: 5, UniqueSubmits: 5},
	})
	if want := (SimStats{15, 14, 1, 2}); got != want {
		t.Errorf("sum = %+v, want %+v", got, want)
	}
	if d := got.Sub(SimStats{5, 5, 0, 0}); d != (SimStats{10, 9, 1, 2}) {
		t.Errorf("sub = %+v", d)
	}
}
