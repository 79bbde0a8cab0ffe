// Package dlr turns submit results and delivery receipts into one final
// status per message: it correlates receipts with submits on (carrier, SMSC
// message id), combines the segments of long messages, publishes sms.status
// and writes every status event to ClickHouse.
package dlr

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/schemas"
)

// Consumer groups of the three stages.
const (
	GroupCorrelator = "sluice-dlr-correlator"
	GroupAggregator = "sluice-dlr-aggregator"
	GroupAnalytics  = "sluice-dlr-analytics"
)

// Run serves until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	env, err := service.Start(ctx, "dlr", cfg.DLR.AdminAddr, cfg, log)
	if err != nil {
		return err
	}
	defer env.Close()

	ch := cfg.ClickHouse
	conn, err := analytics.Open(ctx, ch)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := analytics.Migrate(ctx, conn, ch.Database); err != nil {
		return err
	}
	writer := analytics.NewWriter(conn, ch.Database)

	stages := []func(context.Context) error{
		func(ctx context.Context) error {
			return runStage(ctx, env, GroupCorrelator, []string{env.Topic(schemas.TopicSubmits), env.Topic(schemas.TopicDLRRaw)}, env.Topic(schemas.TopicDLRPending),
				func(t *table) stepper {
					return &correlator{pending: t, dlrTopic: env.Topic(schemas.TopicDLRRaw), outcomes: env.Topic(schemas.TopicDLROutcomes)}
				})
		},
		func(ctx context.Context) error {
			return runStage(ctx, env, GroupAggregator, []string{env.Topic(schemas.TopicDLROutcomes)}, env.Topic(schemas.TopicDLRPartial),
				func(t *table) stepper { return &aggregator{partial: t, status: env.Topic(schemas.TopicStatus)} })
		},
		func(ctx context.Context) error { return runAnalytics(ctx, env, writer) },
	}
	env.Tel.SetReady(true)
	return runAll(ctx, stages)
}

// runAll runs the stages until ctx ends; a failing stage stops the others.
func runAll(ctx context.Context, stages []func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(stages))
	for _, run := range stages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// stepper turns one input record into records to publish and changelog
// records for its partition's table.
type stepper interface {
	step(topic string, rec kafka.Message) (out, changes []kafka.Message, err error)
}

// runStage runs a stateful stage: per partition, its table is restored from
// the changelog, then each batch's outputs are published, then the table's
// changes, then the inputs are committed. A failure reloads the table from
// the changelog and retries the batch, so a half-written batch is replayed
// against durable state: outputs may repeat (they carry event ids), nothing
// is lost.
func runStage(ctx context.Context, env *service.Env, group string, inputs []string, changelog string, newStepper func(*table) stepper) error {
	brokers := env.Cfg.Kafka.Brokers
	return kafka.ConsumeClaims(ctx, kafka.GroupConfig{
		Brokers: brokers,
		Group:   env.Cfg.Kafka.TopicPrefix + group,
		Topics:  inputs,
		Logger:  env.Log,
	}, kafka.BatchOptions{Max: 1000, Linger: 2 * time.Millisecond}, func(ctx context.Context, c *kafka.Claim) (kafka.BatchFunc, error) {
		t, err := restore(ctx, brokers, changelog, c.Partition)
		if err != nil {
			return nil, err
		}
		env.Log.Info("state restored", "stage", group, "partition", c.Partition, "rows", t.len())
		s := newStepper(t)
		return func(ctx context.Context, topic string, batch []kafka.Message) error {
			var out, changes []kafka.Message
			err := func() error {
				for _, rec := range batch {
					o, ch, err := s.step(topic, rec)
					if err != nil {
						return err
					}
					out = append(out, o...)
					changes = append(changes, ch...)
				}
				// Outputs before state: a crash in between repeats an output
				// instead of losing one.
				if err := env.Producer.Produce(ctx, out...); err != nil {
					return err
				}
				return env.Producer.Produce(ctx, changes...)
			}()
			if err != nil {
				fresh, rerr := restore(ctx, brokers, changelog, c.Partition)
				if rerr != nil {
					return fmt.Errorf("%w (and reloading state: %v)", err, rerr)
				}
				*t = *fresh
			}
			return err
		}, nil
	})
}

// runAnalytics writes every sms.status event to ClickHouse in large batches,
// committing only what ClickHouse has taken. While ClickHouse is away the
// batch is retried and the topic holds the rest.
func runAnalytics(ctx context.Context, env *service.Env, w *analytics.Writer) error {
	ch := env.Cfg.ClickHouse
	return kafka.ConsumeBatches(ctx, kafka.GroupConfig{
		Brokers: env.Cfg.Kafka.Brokers,
		Group:   env.Cfg.Kafka.TopicPrefix + GroupAnalytics,
		Topics:  []string{env.Topic(schemas.TopicStatus)},
		Logger:  env.Log,
	}, kafka.BatchOptions{Max: ch.BatchSize, Linger: ch.FlushInterval}, func(ctx context.Context, _ string, batch []kafka.Message) error {
		events := make([]message.Status, 0, len(batch))
		for _, rec := range batch {
			var st message.Status
			if err := json.Unmarshal(rec.Value, &st); err != nil {
				env.Log.Error("status event skipped: not JSON", "partition", rec.Partition, "offset", rec.Offset, "err", err)
				continue
			}
			events = append(events, st)
		}
		return w.Write(ctx, events)
	})
}
