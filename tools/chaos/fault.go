package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/tools/loadgen"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

// Fault is one thing that goes wrong mid-stream.
type Fault struct {
	Name string
	// Service is killed with SIGKILL and restarted after Down.
	Service string
	Down    time.Duration
	// Stop and Start, when Service is "", take a dependency away (Stop) and
	// bring it back after Down (Start). Without either, nothing is
	// injected: a clean run, the baseline and the benchmark.
	Stop, Start func(context.Context) error
	// Moved, when set, counts the work of the part Stop affects: recovery
	// then runs until it grows after Start, not just until Start returns.
	Moved func() int64
}

// KillFaults are kill -9 of each service in turn.
func KillFaults(down time.Duration) []Fault {
	fs := make([]Fault, len(Services))
	for i, s := range Services {
		fs[i] = Fault{Name: "kill -9 " + s, Service: s, Down: down}
	}
	return fs
}

// Campaign is the suite's campaign of n messages for tenant demo: 10 % long
// and 10 % UCS-2 texts, 20 % otp and 40 % marketing.
func Campaign(id string, n int, seed uint64) loadgen.Campaign {
	return loadgen.Campaign{Tenant: "demo", ID: id, Count: n, Seed: seed, Long: 0.1, Unicode: 0.1, OTP: 0.2, Marketing: 0.4}
}

// Result is what a campaign under one fault amounted to.
type Result struct {
	Fault    string
	Messages int
	Report   loadgen.Report
	// Lost counts messages without a final status on sms.status or without a
	// final row in ClickHouse.
	Lost int
	// Rows and DistinctRows are the campaign's rows in messages FINAL;
	// Mismatched the rows whose status differs from the one on sms.status.
	Rows, DistinctRows, Mismatched int
	// Duplicated is what the simulated carriers received twice; Window the
	// most that may be (the in-flight window of every bind).
	Duplicated, Window int
	// Retried counts the records written to the carriers' retry lanes.
	Retried int64
	// Recovery runs from the kill until the stage the service feeds moves
	// again after its restart; for a dependency taken away, until it is
	// back or, with Fault.Moved, until its work moves again after that (a
	// carrier's accepted submits); 0 without a fault.
	Recovery time.Duration
	Elapsed  time.Duration
	// Crashes are the services' exits nobody asked for (they were restarted).
	Crashes []string
	// Missing and Conflicting describe the first few messages without a
	// final status and with two different ones.
	Missing, Conflicting []string
}

// OK reports whether the run kept every promise.
func (r Result) OK() bool {
	return len(r.Crashes) == 0 && r.Lost == 0 && r.Report.Conflicts == 0 && r.Rows == r.Messages && r.DistinctRows == r.Messages &&
		r.Mismatched == 0 && r.Duplicated <= r.Window
}

// Run drives a campaign of c through the stack at rate messages a second,
// injects f once a third of it is published, waits (until ctx ends) for every
// message's final status and ClickHouse row, and returns what it saw.
func (s *Stack) Run(ctx context.Context, f Fault, c loadgen.Campaign, rate float64, progress io.Writer) (Result, error) {
	start := time.Now()
	reqs := c.Requests()
	tally := loadgen.NewTally(reqs)
	res := Result{Fault: f.Name, Messages: len(reqs), Window: s.Window()}
	if f.Name == "" {
		res.Fault = "none"
	}

	retriedBefore, err := s.RetryRecords(ctx)
	if err != nil {
		return res, err
	}
	faultErr := make(chan error, 1)
	go func() {
		var err error
		if f.Service != "" || f.Stop != nil {
			// Not cancelled when the campaign ends first: the service is
			// restarted in any case.
			res.Recovery, err = s.inject(ctx, f, tally, len(reqs))
		}
		faultErr <- err
	}()
	// Give up on a campaign that has stopped moving: what is missing then
	// is lost, and waiting out ctx would only make the suite slow.
	rctx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	go watchStall(rctx, tally, len(reqs), stopRun)
	rep, runErr := loadgen.Run(rctx, loadgen.RunOptions{
		Brokers:     s.Cfg.Kafka.Brokers,
		TopicPrefix: s.Cfg.Kafka.TopicPrefix,
		Requests:    reqs,
		Rate:        rate,
		Tally:       tally,
		SimStats: func(context.Context) (loadgen.SimStats, error) {
			per := map[string]loadgen.SimStats{}
			for id, st := range s.Sim.Stats() {
				per[id] = loadgen.SimStats{Submits: st.Submits, UniqueSubmits: st.UniqueSubmits, DuplicateSubmits: st.DuplicateSubmits, Throttled: st.Throttled}
			}
			return loadgen.SumSimStats(per), nil
		},
		Progress: progress,
	})
	if cause := context.Cause(rctx); runErr != nil && cause != nil {
		runErr = fmt.Errorf("%w (%w)", runErr, cause)
	}
	if err := <-faultErr; err != nil {
		runErr = errors.Join(runErr, err)
	}
	res.Report = rep
	if rep.Sim != nil {
		res.Duplicated = int(rep.Sim.DuplicateSubmits)
	}
	res.Missing, res.Conflicting = tally.Unfinished(5)
	rowsErr := s.checkRows(ctx, c.ID, tally, &res)
	retriedAfter, err := s.RetryRecords(context.WithoutCancel(ctx))
	res.Retried = retriedAfter - retriedBefore
	rowsErr = errors.Join(rowsErr, err)
	res.Lost = max(rep.Missing, res.Messages-res.DistinctRows)
	res.Elapsed = time.Since(start)
	res.Crashes = s.Crashes()
	return res, errors.Join(runErr, rowsErr)
}

// inject kills f.Service once a third of the campaign is published, restarts
// it after f.Down and returns how long from the kill until the stage the
// service feeds moved again. For a dependency (f.Stop) it returns how long
// the dependency was away, or with f.Moved, how long until its work moved
// again after it was back.
func (s *Stack) inject(ctx context.Context, f Fault, t *loadgen.Tally, n int) (time.Duration, error) {
	if err := poll(ctx, func() bool { return t.Progress().Published >= n/3 }); err != nil {
		return 0, err
	}
	killed := time.Now()
	if f.Service == "" {
		if err := f.Stop(ctx); err != nil {
			return 0, fmt.Errorf("%s: stop: %w", f.Name, err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(f.Down):
		}
		var before int64
		if f.Moved != nil {
			before = f.Moved()
		}
		if err := f.Start(ctx); err != nil {
			return 0, fmt.Errorf("%s: start: %w", f.Name, err)
		}
		if f.Moved != nil {
			if err := poll(ctx, func() bool { return f.Moved() > before || t.Progress().Final == n }); err != nil {
				return 0, err
			}
		}
		return time.Since(killed), nil
	}
	if err := s.Kill(f.Service); err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(f.Down):
	}
	stage := stageFed(f.Service)
	before := stage(t.Progress())
	if err := s.StartService(ctx, f.Service); err != nil {
		return 0, err
	}
	if err := poll(ctx, func() bool { p := t.Progress(); return stage(p) > before || p.Final == n }); err != nil {
		return 0, err
	}
	return time.Since(killed), nil
}

// stageFed returns the first stage visible on sms.status that waits for the
// service: ingest emits accepted, the router feeds the sender, the sender's
// submits become submitted, and the dlr service emits final statuses.
func stageFed(service string) func(loadgen.Progress) int {
	switch service {
	case "ingest":
		return func(p loadgen.Progress) int { return p.Accepted }
	case "router", "sender":
		return func(p loadgen.Progress) int { return p.Submitted }
	default:
		return func(p loadgen.Progress) int { return p.Final }
	}
}

// checkRows waits until ClickHouse holds a final row for every message the
// run saw end (the dlr service writes about once a second), then counts the
// campaign's rows and compares their statuses with sms.status.
func (s *Stack) checkRows(ctx context.Context, campaign string, t *loadgen.Tally, res *Result) error {
	// Count even after ctx ends: the figures say what is missing.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	conn, err := analytics.Open(cctx, s.Cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	db := s.Cfg.ClickHouse.Database
	want := t.Final()
	q := fmt.Sprintf(`SELECT count() FROM %s.messages FINAL WHERE campaign_id = ? AND status IN ('delivered','undelivered','expired','failed','unknown','rejected')`, db)
	err = poll(ctx, func() bool {
		var got uint64
		return conn.QueryRow(ctx, q, campaign).Scan(&got) == nil && int(got) >= want
	})
	if err != nil {
		err = fmt.Errorf("waiting for %d final rows in ClickHouse: %w", want, err)
	}
	rows, qerr := conn.Query(cctx, fmt.Sprintf(`SELECT message_id, status FROM %s.messages FINAL WHERE campaign_id = ?`, db), campaign)
	if qerr != nil {
		return errors.Join(err, fmt.Errorf("read rows: %w", qerr))
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var id, status string
		if serr := rows.Scan(&id, &status); serr != nil {
			return errors.Join(err, fmt.Errorf("read rows: %w", serr))
		}
		res.Rows++
		seen[id] = true
		if status != t.FinalStatus(id) {
			res.Mismatched++
		}
	}
	res.DistinctRows = len(seen)
	return errors.Join(err, rows.Err())
}

// StallTimeout is how long a campaign may go without any message reaching a
// new stage, once it is all published, before the run gives up on it.
const StallTimeout = 30 * time.Second

func watchStall(ctx context.Context, t *loadgen.Tally, n int, stop context.CancelCauseFunc) {
	last, since := t.Progress(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		p := t.Progress()
		if p != last || p.Published < n {
			last, since = p, time.Now()
			continue
		}
		if time.Since(since) > StallTimeout {
			stop(fmt.Errorf("no progress for %s: %+v of %d", StallTimeout, p, n))
			return
		}
	}
}

// poll calls done every 50 ms until it returns true or ctx ends.
func poll(ctx context.Context, done func() bool) error {
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// PrintResults writes one line per fault.
func PrintResults(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\tmessages\tcrashes\tlost\tconflicts\trows\tdup finals\tdup submits\twindow\tretried\trecovery\telapsed\tok")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%v\n", r.Fault, r.Messages, len(r.Crashes), r.Lost, r.Report.Conflicts,
			r.DistinctRows, r.Report.DuplicateFinals, r.Duplicated, r.Window, r.Retried,
			r.Recovery.Round(time.Millisecond), r.Elapsed.Round(time.Millisecond), r.OK())
	}
	return tw.Flush()
}

// CarrierFaultKinds are the ways CarrierFault makes a simulated carrier
// misbehave.
var CarrierFaultKinds = []string{"disconnects", "stalls", "throttles"}

// CarrierFault makes one simulated carrier misbehave while the campaign
// flows across all of them, and switches it back to no faults after its
// period:
//   - disconnects: it drops every bound session and refuses binds for down;
//   - stalls: it takes every submit but answers only after twice the
//     carriers' resp_timeout, so the sender sees outcome unknown, for three
//     quarters of resp_timeout, so that one window per bind times out (a
//     longer stall times out a window per resp_timeout);
//   - throttles: it refuses 80 % of submits with ESME_RTHROTTLED for down.
//
// Recovery runs from switching the fault on until the carrier accepts
// submits again after it is switched off.
func (s *Stack) CarrierFault(carrier, kind string, down time.Duration) (Fault, error) {
	i := slices.IndexFunc(s.Cfg.Carriers, func(c config.Carrier) bool { return c.ID == carrier })
	if i < 0 {
		return Fault{}, fmt.Errorf("no carrier %q", carrier)
	}
	respTimeout := s.Cfg.Carriers[i].WithDefaults().RespTimeout
	var on smscsim.Faults
	switch kind {
	case "disconnects":
		on = smscsim.Faults{Down: true}
	case "stalls":
		on, down = smscsim.Faults{StallRate: 1, Stall: 2 * respTimeout}, respTimeout*3/4
	case "throttles":
		on = smscsim.Faults{Errors: map[uint32]float64{smpp.StatusThrottled: 0.8}}
	default:
		return Fault{}, fmt.Errorf("carrier fault %q: want one of %v", kind, CarrierFaultKinds)
	}
	set := func(f smscsim.Faults) func(context.Context) error {
		return func(context.Context) error { return s.Sim.SetFaults(carrier, f) }
	}
	return Fault{
		Name: fmt.Sprintf("%s %s %s", carrier, kind, down), Down: down,
		Stop: set(on), Start: set(smscsim.Faults{}),
		Moved: func() int64 { return s.Sim.Stats()[carrier].Submits },
	}, nil
}
