package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/tools/loadgen"
)

// Result is what a campaign run saw.
type Result struct {
	Tally     *loadgen.Tally
	Published atomic.Int64
	Elapsed   time.Duration
	Start     time.Time
}

// RunCampaign publishes the campaign to sms.requests, follows sms.status
// until every message has a final status, then waits until ClickHouse holds
// every message's final row. progress, when not nil, gets a line now and then.
func (s *Stack) RunCampaign(ctx context.Context, c loadgen.Campaign, progress io.Writer) (*Result, error) {
	// A service that stops with an error ends the run at once.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(s.failed, func() { cancel(context.Cause(s.failed)) })()
	res, err := s.runCampaign(ctx, c, progress)
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = fmt.Errorf("%w (%w)", err, cause)
	}
	return res, err
}

func (s *Stack) runCampaign(ctx context.Context, c loadgen.Campaign, progress io.Writer) (*Result, error) {
	reqs := c.Requests()
	res := &Result{Tally: loadgen.NewTally(reqs), Start: time.Now()}
	brokers := s.Cfg.Kafka.Brokers
	prefix := s.Cfg.Kafka.TopicPrefix

	followErr := make(chan error, 1)
	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	go func() {
		followErr <- loadgen.Follow(fctx, brokers, prefix+schemas.TopicStatus, res.Tally, func(final int) {
			if progress != nil {
				el := time.Since(res.Start).Seconds()
				fmt.Fprintf(progress, "\r  published %6d/%d   final %6d/%d   %6.0f msg/s ", res.Published.Load(), len(reqs), final, len(reqs), float64(final)/el)
			}
		})
	}()

	p := kafka.NewProducer(brokers, 5*time.Millisecond)
	err := loadgen.Publish(ctx, p, prefix+schemas.TopicRequests, reqs, func(done int) { res.Published.Store(int64(done)) })
	_ = p.Close()
	if err != nil {
		return res, err
	}
	if err := <-followErr; err != nil {
		return res, err
	}
	res.Elapsed = time.Since(res.Start)
	if progress != nil {
		fmt.Fprintf(progress, "\r  published %6d/%d   final %6d/%d   %6.0f msg/s\n", res.Published.Load(), len(reqs), res.Tally.Final(), len(reqs), float64(len(reqs))/res.Elapsed.Seconds())
	}
	return res, s.waitForRows(ctx, c.ID, len(reqs))
}

// waitForRows waits until ClickHouse has a final status for n messages of
// the campaign (the dlr service writes once a second).
func (s *Stack) waitForRows(ctx context.Context, campaign string, n int) error {
	conn, err := s.ClickHouse(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	q := fmt.Sprintf(`SELECT count() FROM %s.messages FINAL WHERE campaign_id = ? AND status IN ('delivered','undelivered','expired','failed','unknown','rejected')`, s.Cfg.ClickHouse.Database)
	for {
		var got uint64
		if err := conn.QueryRow(ctx, q, campaign).Scan(&got); err != nil {
			return fmt.Errorf("count rows: %w", err)
		}
		if int(got) >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ClickHouse has %d of %d final rows: %w", got, n, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ClickHouse opens a connection to the stack's analytics database.
func (s *Stack) ClickHouse(ctx context.Context) (driver.Conn, error) {
	return analytics.Open(ctx, s.Cfg.ClickHouse)
}

// PrintReport writes the per-carrier delivery report for [from, to) as read
// back from ClickHouse, as a table.
func (s *Stack) PrintReport(ctx context.Context, w io.Writer, from, to time.Time) error {
	conn, err := s.ClickHouse(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	rows, err := analytics.CarrierReport(ctx, conn, s.Cfg.ClickHouse.Database, from, to)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "carrier\tsent\tdelivered\tfailed\tunknown\tdelivery rate\tp50 latency\tp99 latency\t")
	for _, r := range rows {
		rate := 0.0
		if r.Sent > 0 {
			rate = 100 * float64(r.Delivered) / float64(r.Sent)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1f%%\t%.0f ms\t%.0f ms\t\n", r.Carrier, r.Sent, r.Delivered, r.Failed, r.Unknown, rate, r.P50Ms, r.P99Ms)
	}
	return tw.Flush()
}
