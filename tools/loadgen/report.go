package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"text/tabwriter"
	"time"
)

// Stage is how many messages reached one stage of the pipeline and over what
// span of time.
type Stage struct {
	Name        string
	Count       int
	First, Last time.Time
}

// Rate is the stage's throughput in messages a second over its span; 0 when
// the span is empty.
func (s Stage) Rate() float64 {
	span := s.Last.Sub(s.First).Seconds()
	if s.Count < 2 || span <= 0 {
		return 0
	}
	return float64(s.Count-1) / span
}

// Quantiles are a latency distribution's p50, p90 and p99.
type Quantiles struct {
	N             int
	P50, P90, P99 time.Duration
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method; 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// QuantilesOf sorts ds and returns its quantiles.
func QuantilesOf(ds []time.Duration) Quantiles {
	slices.Sort(ds)
	return Quantiles{N: len(ds), P50: Percentile(ds, 50), P90: Percentile(ds, 90), P99: Percentile(ds, 99)}
}

// SimStats are the simulator's figures for a run, summed over its carriers.
type SimStats struct {
	Submits          int64 `json:"submits"`
	UniqueSubmits    int64 `json:"unique_submits"`
	DuplicateSubmits int64 `json:"duplicate_submits"`
	Throttled        int64 `json:"throttled"`
}

// Sub returns s minus an earlier reading b.
func (s SimStats) Sub(b SimStats) SimStats {
	return SimStats{s.Submits - b.Submits, s.UniqueSubmits - b.UniqueSubmits, s.DuplicateSubmits - b.DuplicateSubmits, s.Throttled - b.Throttled}
}

// SumSimStats adds up per-carrier figures as smsc-sim's GET /stats serves them.
func SumSimStats(perCarrier map[string]SimStats) SimStats {
	var t SimStats
	for _, c := range perCarrier {
		t.Submits += c.Submits
		t.UniqueSubmits += c.UniqueSubmits
		t.DuplicateSubmits += c.DuplicateSubmits
		t.Throttled += c.Throttled
	}
	return t
}

// FetchSimStats reads smsc-sim's stats endpoint (e.g. http://127.0.0.1:8095/stats).
func FetchSimStats(ctx context.Context, url string) (SimStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return SimStats{}, fmt.Errorf("simulator stats: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return SimStats{}, fmt.Errorf("simulator stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return SimStats{}, fmt.Errorf("simulator stats: %s", resp.Status)
	}
	var per map[string]SimStats
	if err := json.NewDecoder(resp.Body).Decode(&per); err != nil {
		return SimStats{}, fmt.Errorf("simulator stats: %w", err)
	}
	return SumSimStats(per), nil
}

// Report is what a run amounted to.
type Report struct {
	Requested       int
	Accepted        int            // messages with an accepted status event
	Statuses        map[string]int // final statuses by name
	Stages          []Stage        // published, accepted, submitted, final
	ToSubmitted     Quantiles      // publish → submitted
	ToFinal         Quantiles      // publish → final status seen
	Conflicts       int            // messages with two different final statuses
	DuplicateFinals int            // final-status events beyond the first per message
	Missing         int            // messages without a final status
	Sim             *SimStats      // nil when the simulator was not asked
}

// Report computes the run's figures from what the tally saw.
func (t *Tally) Report() Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := Report{
		Requested:       len(t.want),
		Accepted:        len(t.accepted),
		Statuses:        map[string]int{},
		Conflicts:       t.Conflicts,
		DuplicateFinals: t.FinalEvents - len(t.final),
		Missing:         len(t.want) - len(t.final),
	}
	for k, v := range t.Statuses {
		r.Statuses[k] = v
	}
	for _, st := range []struct {
		name string
		at   map[string]time.Time
	}{{"published", t.published}, {"accepted", t.accepted}, {"submitted", t.submitted}, {"final", t.finalAt}} {
		r.Stages = append(r.Stages, stageOf(st.name, st.at))
	}
	r.ToSubmitted = QuantilesOf(since(t.published, t.submitted))
	r.ToFinal = QuantilesOf(since(t.published, t.finalAt))
	return r
}

func stageOf(name string, at map[string]time.Time) Stage {
	s := Stage{Name: name, Count: len(at)}
	for _, ts := range at {
		if s.First.IsZero() || ts.Before(s.First) {
			s.First = ts
		}
		if ts.After(s.Last) {
			s.Last = ts
		}
	}
	return s
}

// since returns, for every message in both maps, to minus from.
func since(from, to map[string]time.Time) []time.Duration {
	ds := make([]time.Duration, 0, len(to))
	for id, end := range to {
		if start, ok := from[id]; ok {
			ds = append(ds, end.Sub(start))
		}
	}
	return ds
}

// Print writes the report as a table.
func (r Report) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "requested\t%d\n", r.Requested)
	fmt.Fprintf(tw, "accepted\t%d\n", r.Accepted)
	names := make([]string, 0, len(r.Statuses))
	for s := range r.Statuses {
		names = append(names, s)
	}
	slices.Sort(names)
	for _, s := range names {
		fmt.Fprintf(tw, "final %s\t%d\n", s, r.Statuses[s])
	}
	fmt.Fprintf(tw, "missing (no final status)\t%d\n", r.Missing)
	fmt.Fprintf(tw, "conflicting finals\t%d\n", r.Conflicts)
	fmt.Fprintf(tw, "duplicate final events\t%d\n", r.DuplicateFinals)
	if r.Sim != nil {
		fmt.Fprintf(tw, "simulator submits\t%d (unique %d, duplicate %d, throttled %d)\n", r.Sim.Submits, r.Sim.UniqueSubmits, r.Sim.DuplicateSubmits, r.Sim.Throttled)
	}
	fmt.Fprintln(tw, "\nstage\tmessages\tmsg/s\tspan")
	for _, s := range r.Stages {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\n", s.Name, s.Count, s.Rate(), s.Last.Sub(s.First).Round(time.Millisecond))
	}
	fmt.Fprintln(tw, "\nlatency\tn\tp50\tp90\tp99")
	for _, q := range []struct {
		name string
		q    Quantiles
	}{{"publish→submitted", r.ToSubmitted}, {"publish→final", r.ToFinal}} {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", q.name, q.q.N, ms(q.q.P50), ms(q.q.P90), ms(q.q.P99))
	}
	return tw.Flush()
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
