// Package dlr turns submit results and delivery receipts into one final
// status per message: it correlates receipts with submits on (carrier, SMSC
// message id), combines the segments of long messages, publishes sms.status
// and writes every status event to ClickHouse.
package dlr

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/batch"
	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/schemas"
)

// Consumer groups of the three stages.
const (
	GroupCorrelator = "sluice-dlr-correlator"
	GroupAggregator = "sluice-dlr-aggregator"
	GroupAnalytics  = "sluice-dlr-analytics"
)

// GCPercent is the GOGC that sluice-dlr runs with unless GOGC is set. The
// service's state lives in pebble, off the Go heap, and what is on the heap
// is mostly records in flight, so Go's default of 100 collects it over and
// over: working off a backlog (BenchmarkServiceOnKafka) 200 took 9% less CPU
// per receipt than 100, for a peak resident set of 320-360 MiB instead of
// 240 (400 saved 15% but peaked at 500 MiB, too near the 512 MiB budget).
const GCPercent = 200

// Run serves until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if d := cfg.DLR; d.Retention <= 0 || d.UnmatchedAfter <= 0 || d.SweepInterval <= 0 || d.WebhookBackoff <= 0 || d.WebhookGiveUp <= 0 || d.WebhookTimeout <= 0 || d.MOPartsTimeout <= 0 {
		// A zero retention would end every submit at once.
		return errors.New("dlr: retention, unmatched_after, sweep_interval and webhook and MO parts timings must be positive (start from config.Default)")
	}
	env, err := service.Start(ctx, "dlr", cfg.DLR.AdminAddr, cfg, log)
	if err != nil {
		return err
	}
	defer env.Close()

	db, err := state.Open(cfg.DLR.StateDir)
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			env.Log.Error("closing the state store", "err", err)
		}
	}()
	m, err := newMetrics(env.Tel.Meter(), db)
	if err != nil {
		return err
	}

	correlate := stage{
		tag: 'c', group: GroupCorrelator, meta: pendingMeta,
		inputs:    []string{env.Topic(schemas.TopicSubmits), env.Topic(schemas.TopicDLRRaw)},
		changelog: env.Topic(schemas.TopicDLRPending),
		newStepper: func(int) stepper {
			return &correlator{
				dlrTopic: env.Topic(schemas.TopicDLRRaw), outcomes: env.Topic(schemas.TopicDLROutcomes),
				unmatched: env.Topic(schemas.TopicDLRUnmatched), cfg: cfg.DLR, m: m,
				tracer: env.Tel.Tracer(),
			}
		},
	}
	aggregate := stage{
		tag: 'a', group: GroupAggregator, meta: partialMeta,
		inputs:     []string{env.Topic(schemas.TopicDLROutcomes)},
		changelog:  env.Topic(schemas.TopicDLRPartial),
		newStepper: func(int) stepper { return &aggregator{status: env.Topic(schemas.TopicStatus), cfg: cfg.DLR, m: m} },
	}
	stages := []func(context.Context) error{
		func(ctx context.Context) error { return correlate.run(ctx, env, db, cfg.DLR.SweepInterval, time.Now) },
		func(ctx context.Context) error { return aggregate.run(ctx, env, db, cfg.DLR.SweepInterval, time.Now) },
		func(ctx context.Context) error {
			return moStage(env, cfg, m, db).run(ctx, env, db, cfg.DLR.SweepInterval, time.Now)
		},
		func(ctx context.Context) error { return runAnalytics(ctx, env, m) },
		newWebhooks(env, m).run,
	}
	env.Tel.SetReady(true)
	return runAll(ctx, stages)
}

// runAll runs the stages until ctx ends; a failing stage stops the others.
func runAll(ctx context.Context, stages []func(context.Context) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, run := range stages {
		g.Go(func() error { return run(ctx) })
	}
	return g.Wait()
}

// runAnalytics writes every sms.status event to ClickHouse, committing only
// what ClickHouse has taken. The partitions' batches are pooled into one
// insert of up to clickhouse.batch_size rows, or what came within
// clickhouse.flush_interval. While ClickHouse is away the insert is retried
// and the topic holds the rest. On the same connection, the retention job
// drops months older than clickhouse.retention_months.
func runAnalytics(ctx context.Context, env *service.Env, m *metrics) error {
	ch := env.Cfg.ClickHouse
	// ClickHouse may be away at start too: correlation goes on meanwhile,
	// and sms.status keeps the events.
	var conn driver.Conn
	err := retry(ctx, env, "clickhouse", func() (err error) {
		if conn, err = analytics.Open(ctx, ch); err != nil {
			return err
		}
		if err = analytics.Migrate(ctx, conn, ch.Database); err != nil {
			_ = conn.Close()
		}
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before ClickHouse came
		}
		return err
	}
	defer conn.Close()
	stopRetention := startRetention(ctx, env, conn, m.retention)
	defer stopRetention()
	w := analytics.NewWriter(conn, ch.Database)
	// The pool outlives the consumers: on a stop they finish the batches in
	// hand, which need it.
	pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	p := newPool(w, m, ch)
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(pctx) })
	defer func() {
		stop()
		wg.Wait()
	}()
	return kafka.ConsumeBatches(ctx, env.Group(GroupAnalytics, schemas.TopicStatus), kafka.BatchOptions{Max: ch.BatchSize, Linger: min(ch.FlushInterval, 50*time.Millisecond)}, func(ctx context.Context, _ string, batch []kafka.Message) error {
		events := make([]message.Status, 0, len(batch))
		for _, rec := range batch {
			var st message.Status
			if err := json.Unmarshal(rec.Value, &st); err != nil {
				env.Log.Error("status event skipped: not JSON", "partition", rec.Partition, "offset", rec.Offset, "err", err)
				continue
			}
			events = append(events, st)
		}
		if err := p.Do(pctx, events...); err != nil {
			return err
		}
		m.lag.Record(ctx, time.Since(batch[0].Time).Seconds())
		return nil
	})
}

// newPool gathers the batches of every partition into one insert of up to
// clickhouse.batch_size rows, or what came within clickhouse.flush_interval.
func newPool(w *analytics.Writer, m *metrics, ch config.ClickHouse) *batch.Batcher[message.Status] {
	return batch.New(batch.Options{Max: ch.BatchSize, Linger: ch.FlushInterval}, func(ctx context.Context, all []message.Status) error {
		if err := w.Write(ctx, all); err != nil {
			return err
		}
		m.rows.Add(ctx, int64(len(all)))
		return nil
	})
}
