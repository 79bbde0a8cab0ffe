package sender

import (
	"context"
	"time"

	"github.com/sluice-sms/sluice/pkg/batch"
	"github.com/sluice-sms/sluice/pkg/kafka"
)

// A slot's publisher gathers records for up to publishLinger, or until it
// holds publishMaxRecords, before it writes them: one produce call per
// message cost the sender more CPU than its SMPP work.
const (
	publishLinger     = time.Millisecond
	publishMaxRecords = 256
)

// producer writes records and returns once Kafka has them all, in one
// request per broker rather than one per partition.
type producer interface {
	ProduceMany(ctx context.Context, msgs ...kafka.Message) error
}

// publisher joins the records of concurrently finishing messages (and
// receipts) into fewer produce calls. Each caller still returns only once
// its own records are in Kafka, so a message is recorded before its offset
// is committed; a failed call fails every caller in it (they are replayed).
type publisher struct{ b *batch.Batcher[kafka.Message] }

// publishInflight bounds the writes under way at once: a batch does not wait
// for the previous one's acks, but a Kafka that stops answering holds the
// slot back instead of piling up writes.
const publishInflight = 64

func newPublisher(p producer, linger time.Duration, maxRecords int) *publisher {
	return &publisher{b: batch.New(batch.Options{Max: maxRecords, Linger: linger, Inflight: publishInflight},
		func(ctx context.Context, msgs []kafka.Message) error { return p.ProduceMany(ctx, msgs...) })}
}

// publish writes msgs with the next gathered batch and waits for Kafka's
// acks. An error means they may or may not be in Kafka.
func (p *publisher) publish(ctx context.Context, msgs ...kafka.Message) error {
	return p.b.Do(ctx, msgs...)
}

// run gathers and writes batches until ctx ends, then waits for the writes
// under way; every request it took gets an answer.
func (p *publisher) run(ctx context.Context) { p.b.Run(ctx) }
