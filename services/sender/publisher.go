package sender

import (
	"context"
	"sync"
	"time"

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
type publisher struct {
	producer   producer
	linger     time.Duration
	maxRecords int
	reqs       chan *publishReq
}

type publishReq struct {
	msgs []kafka.Message
	done chan error // buffered: the publisher never waits for the caller
}

func newPublisher(p producer, linger time.Duration, maxRecords int) *publisher {
	return &publisher{producer: p, linger: linger, maxRecords: maxRecords, reqs: make(chan *publishReq)}
}

// publish writes msgs with the next gathered batch and waits for Kafka's
// acks. An error means they may or may not be in Kafka.
func (p *publisher) publish(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	req := &publishReq{msgs: msgs, done: make(chan error, 1)}
	select {
	case p.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run gathers and writes batches until ctx ends, then waits for the
// writes under way; every request it took gets an answer. Writes overlap:
// a batch does not wait for the previous one's acks.
func (p *publisher) run(ctx context.Context) {
	var writes sync.WaitGroup
	defer writes.Wait()
	linger := time.NewTimer(p.linger)
	linger.Stop()
	for {
		var batch []*publishReq
		select {
		case req := <-p.reqs:
			batch = append(batch, req)
		case <-ctx.Done():
			return
		}
		n := len(batch[0].msgs)
		linger.Reset(p.linger)
	gather:
		for n < p.maxRecords {
			select {
			case req := <-p.reqs:
				batch = append(batch, req)
				n += len(req.msgs)
			case <-linger.C:
				break gather
			case <-ctx.Done():
				break gather
			}
		}
		linger.Stop()
		writes.Go(func() { p.write(ctx, batch, n) })
	}
}

func (p *publisher) write(ctx context.Context, batch []*publishReq, n int) {
	msgs := batch[0].msgs
	if len(batch) > 1 {
		msgs = make([]kafka.Message, 0, n)
		for _, req := range batch {
			msgs = append(msgs, req.msgs...)
		}
	}
	err := p.producer.ProduceMany(ctx, msgs...)
	for _, req := range batch {
		req.done <- err
	}
}
