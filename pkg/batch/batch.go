// Package batch is sluice's one "gather requests, send once, answer each":
// callers hand over items and wait; a runner joins what arrives within a
// linger (or up to a size) into one send and gives each caller that send's
// result. It serves wherever one request per caller would cost more than
// the work: produce calls, ClickHouse inserts.
package batch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Batcher joins the items of concurrent Do calls into calls of send.
type Batcher[T any] struct {
	send     func(ctx context.Context, items []T) error
	max      int
	linger   time.Duration
	inflight int
	reqs     chan *request[T]
	held     atomic.Int64 // requests taken and not yet sent, for tests
}

type request[T any] struct {
	items []T
	done  chan error // buffered: the runner never waits for a caller
}

// Options shape the batches.
type Options struct {
	// Max is the number of items at which a batch goes out without waiting
	// for the linger; a batch may exceed it by the last request's items.
	Max int
	// Linger is how long the first request of a batch waits for others; a
	// batch also takes what comes while the sends in flight fill Inflight.
	Linger time.Duration
	// Inflight is how many sends may run at once (0: 1): more lets a batch
	// go out while the previous one waits for its answer.
	Inflight int
}

// New returns a batcher of send; Run must run for Do to be answered.
func New[T any](opt Options, send func(ctx context.Context, items []T) error) *Batcher[T] {
	return &Batcher[T]{send: send, max: max(opt.Max, 1), linger: opt.Linger, inflight: max(opt.Inflight, 1), reqs: make(chan *request[T])}
}

// Do sends items with the next batch and returns that send's error. When ctx
// ends first it returns ctx's error: the items may or may not be sent.
func (b *Batcher[T]) Do(ctx context.Context, items ...T) error {
	if len(items) == 0 {
		return nil
	}
	req := &request[T]{items: items, done: make(chan error, 1)}
	select {
	case b.reqs <- req:
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

// Run gathers and sends batches until ctx ends, then waits for the sends under
// way: every request it took gets an answer. Sends get ctx.
func (b *Batcher[T]) Run(ctx context.Context) {
	var sends sync.WaitGroup
	defer sends.Wait()
	slots := make(chan struct{}, b.inflight)
	linger := time.NewTimer(b.linger)
	linger.Stop()
	for {
		var first *request[T]
		select {
		case first = <-b.reqs:
		case <-ctx.Done():
			return
		}
		batch, n := []*request[T]{first}, len(first.items)
		b.held.Store(1)
		linger.Reset(b.linger)
	gather:
		for n < b.max {
			select {
			case req := <-b.reqs:
				batch, n = append(batch, req), n+len(req.items)
				b.held.Store(int64(len(batch)))
			case <-linger.C:
				break gather
			case <-ctx.Done():
				break gather
			}
		}
		linger.Stop()
		batch, n = b.untilFree(ctx, slots, batch, n)
		b.held.Store(0)
		sends.Go(func() {
			defer func() { <-slots }()
			b.sendBatch(ctx, batch, n)
		})
	}
}

// untilFree takes a send slot, going on gathering (up to max) while every
// slot is busy: what arrives during a send joins the next one.
func (b *Batcher[T]) untilFree(ctx context.Context, slots chan struct{}, batch []*request[T], n int) ([]*request[T], int) {
	for n < b.max {
		select {
		case slots <- struct{}{}:
			return batch, n
		case req := <-b.reqs:
			batch, n = append(batch, req), n+len(req.items)
			b.held.Store(int64(len(batch)))
		case <-ctx.Done():
			slots <- struct{}{} // the batch is taken: it is still sent
			return batch, n
		}
	}
	slots <- struct{}{}
	return batch, n
}

func (b *Batcher[T]) sendBatch(ctx context.Context, batch []*request[T], n int) {
	items := batch[0].items
	if len(batch) > 1 {
		items = make([]T, 0, n)
		for _, req := range batch {
			items = append(items, req.items...)
		}
	}
	err := b.send(ctx, items)
	for _, req := range batch {
		req.done <- err
	}
}
