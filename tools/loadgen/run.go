package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas"
)

// RunOptions say what a run publishes and where.
type RunOptions struct {
	Brokers     []string
	TopicPrefix string
	// HTTP, when set, sends the requests through ingest's HTTP API instead
	// of sms.requests (sms.status is followed on Kafka either way).
	HTTP     *HTTPTarget
	Requests []message.Request
	Rate     float64 // messages a second; 0: as fast as the broker takes them
	// Tally follows the run; nil: a new one for Requests. Pass one to watch
	// the run's progress from outside (the fault suite does).
	Tally *Tally
	// SimStats, when set, is read before and after the run; the report
	// carries the difference.
	SimStats func(context.Context) (SimStats, error)
	// Progress, when set, gets a line every half second.
	Progress io.Writer
}

// Run publishes the requests to sms.requests (or over HTTP), follows sms.status until every
// one has a final status or ctx ends, and reports. The report is filled in
// even when the run ends early (its Missing says how many never ended).
func Run(ctx context.Context, o RunOptions) (Report, error) {
	t := o.Tally
	if t == nil {
		t = NewTally(o.Requests)
	}
	var before SimStats
	if o.SimStats != nil {
		var err error
		if before, err = o.SimStats(ctx); err != nil {
			return t.Report(), err
		}
	}
	start := time.Now()
	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	followErr := make(chan error, 1)
	go func() { followErr <- Follow(fctx, o.Brokers, o.TopicPrefix+schemas.TopicStatus, t, nil) }()
	progressDone := make(chan struct{})
	if o.Progress != nil {
		go func() {
			defer close(progressDone)
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-fctx.Done():
					printProgress(o.Progress, t.Progress(), len(o.Requests), start, "\n")
					return
				case <-tick.C:
					printProgress(o.Progress, t.Progress(), len(o.Requests), start, "")
				}
			}
		}()
	} else {
		close(progressDone)
	}

	published := func(_ int, chunk []message.Request, at time.Time) { t.Published(chunk, at) }
	var err error
	if o.HTTP != nil {
		err = PublishHTTP(ctx, *o.HTTP, o.Requests, o.Rate, published)
	} else {
		p := kafka.NewProducer(o.Brokers, 5*time.Millisecond)
		err = PublishPaced(ctx, p, o.TopicPrefix+schemas.TopicRequests, o.Requests, o.Rate, published)
		if cerr := p.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = <-followErr
	}
	stopFollow()
	<-progressDone
	r := t.Report()
	if o.SimStats != nil {
		// A fresh context: the figures are wanted even when ctx has ended.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		after, serr := o.SimStats(sctx)
		if serr == nil {
			d := after.Sub(before)
			r.Sim = &d
		}
		err = errors.Join(err, serr)
	}
	if err != nil {
		return r, fmt.Errorf("run: %w", err)
	}
	return r, nil
}

func printProgress(w io.Writer, p Progress, n int, start time.Time, end string) {
	el := time.Since(start).Seconds()
	fmt.Fprintf(w, "\rpublished %d/%d  accepted %d  submitted %d  final %d/%d  %.0f final/s   %s",
		p.Published, n, p.Accepted, p.Submitted, p.Final, n, float64(p.Final)/el, end)
}
