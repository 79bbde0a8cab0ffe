package dlr

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-sms/sluice/pkg/backoff"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/pkg/state"
)

// stepper is a stage's logic over one partition's table.
type stepper interface {
	// step handles one input record and returns the records to publish.
	step(t *state.Txn, topic string, rec kafka.Message) ([]kafka.Message, error)
	// fire handles a row whose timer is due and returns the records to publish.
	fire(t *state.Txn, key string, value []byte) ([]kafka.Message, error)
}

// preparer is a stepper that reads other state before each batch, and
// lets go of it when the partition is released.
type preparer interface {
	prepare(ctx context.Context) error
	release()
}

// stage is a stateful stage: inputs co-partitioned with a changelog.
type stage struct {
	tag        byte // key prefix of its tables in the state store
	group      string
	inputs     []string
	changelog  string
	meta       state.Meta
	newStepper func(partition int) stepper
}

// Tuning of the stages' loop.
const (
	batchMax        = 1000
	fetchWait       = 50 * time.Millisecond
	sweepLimit      = 5000 // timers handled per batch of a sweep
	checkpointEvery = time.Minute
)

// run consumes the stage's inputs partition by partition. Per partition: the
// table is restored from the changelog; each batch (after its stepper's
// prepare, if it is a preparer) is stepped in a store
// transaction, its outputs are published, then its changelog records, then
// the transaction is committed to the store and the inputs' offsets to
// Kafka. A failure discards the transaction and retries the batch, so a
// half-published batch is replayed against the state before it: outputs
// may repeat (they carry event ids), nothing is lost. Due timers are fired
// the same way between batches.
func (st stage) run(ctx context.Context, env *service.Env, db *state.DB, sweep time.Duration, now func() time.Time) error {
	brokers := env.Cfg.Kafka.Brokers
	return kafka.RunGroup(ctx, kafka.GroupConfig{
		Brokers: brokers,
		Group:   env.Cfg.Kafka.TopicPrefix + st.group,
		Topics:  st.inputs,
		Logger:  env.Log,
	}, func(ctx context.Context, c *kafka.Claim) error {
		s := db.Store(st.tag, c.Partition, st.changelog, st.meta)
		defer s.Release()
		// Retried here: a worker that returns leaves its partition idle
		// until the next rebalance. A new topic's partitions may have no
		// leader yet.
		var replayed int
		err := retry(ctx, env, st.group+" restore", func() (err error) {
			replayed, err = s.Restore(ctx, brokers)
			return err
		})
		if err != nil {
			return err
		}
		env.Log.Info("state restored", "stage", st.group, "partition", c.Partition, "replayed", replayed, "pending", s.Live())
		step := st.newStepper(c.Partition)
		prep, _ := step.(preparer)
		if prep != nil {
			defer prep.release()
		}
		lastSweep, lastCheckpoint := time.Time{}, time.Now()
		for ctx.Err() == nil {
			for _, topic := range st.inputs {
				batch, err := c.FetchBatch(ctx, topic, fetchWait, kafka.BatchOptions{Max: batchMax, Linger: 2 * time.Millisecond})
				if err != nil {
					return err
				}
				if len(batch) == 0 {
					continue // nothing yet on this topic
				}
				if prep != nil {
					if err := retry(ctx, env, st.group+" prepare", func() error { return prep.prepare(ctx) }); err != nil {
						return err
					}
				}
				err = retry(ctx, env, st.group, func() error {
					return publish(ctx, env, s, func(t *state.Txn) ([]kafka.Message, error) {
						var out []kafka.Message
						for _, rec := range batch {
							o, err := step.step(t, topic, rec)
							if err != nil {
								return nil, err
							}
							out = append(out, o...)
						}
						return out, nil
					})
				})
				if err != nil {
					return err
				}
				if err := c.Commit(topic, batch[len(batch)-1].Offset+1); err != nil {
					return err
				}
			}
			if time.Since(lastSweep) >= sweep {
				lastSweep = time.Now()
				if err := st.sweep(ctx, env, s, step, now().UnixMilli()); err != nil {
					return err
				}
			}
			if time.Since(lastCheckpoint) >= checkpointEvery {
				lastCheckpoint = time.Now()
				if err := checkpointStore(ctx, brokers, s); err != nil {
					env.Log.Warn("state checkpoint failed; a restart replays more of the changelog", "stage", st.group, "partition", c.Partition, "err", err)
				}
			}
		}
		return nil
	})
}

// sweep fires every timer due at nowMs, sweepLimit at a time.
func (st stage) sweep(ctx context.Context, env *service.Env, s *state.Store, step stepper, nowMs int64) error {
	for {
		fired := 0
		err := retry(ctx, env, st.group, func() error {
			return publish(ctx, env, s, func(t *state.Txn) ([]kafka.Message, error) {
				var out []kafka.Message
				n, err := t.Due(nowMs, sweepLimit, func(key string, value []byte) error {
					o, err := step.fire(t, key, value)
					out = append(out, o...)
					return err
				})
				fired = n
				return out, err
			})
		})
		if err != nil || fired < sweepLimit {
			return err
		}
	}
}

// publish runs fn in a store transaction, publishes its outputs, then its
// changelog records, then commits it to the store.
func publish(ctx context.Context, env *service.Env, s *state.Store, fn func(*state.Txn) ([]kafka.Message, error)) error {
	t := s.Begin()
	defer t.Discard()
	out, err := fn(t)
	if err != nil {
		return err
	}
	// Outputs before state: a crash in between repeats an output instead of
	// losing one.
	if err := env.Producer.Produce(ctx, out...); err != nil {
		return err
	}
	if err := env.Producer.Produce(ctx, t.Changes()...); err != nil {
		return err
	}
	return t.Commit()
}

// checkpointStore records the changelog's end as the store's checkpoint:
// every change this member made is acknowledged below it, and it is the
// partition's only writer.
func checkpointStore(ctx context.Context, brokers []string, s *state.Store) error {
	span, err := kafka.PartitionOffsets(ctx, brokers, s.Changelog(), s.Partition())
	if err != nil {
		return err
	}
	return s.SaveCheckpoint(span.Next)
}

// retry runs fn until it succeeds or ctx ends, backing off.
func retry(ctx context.Context, env *service.Env, what string, fn func() error) error {
	err := backoff.Retry(ctx, 100*time.Millisecond, 5*time.Second, fn, func(err error) {
		env.Log.Error("failed; retrying", "stage", what, "err", err)
	})
	if err != nil {
		return fmt.Errorf("%s: stopped while retrying: %w", what, err)
	}
	return nil
}
