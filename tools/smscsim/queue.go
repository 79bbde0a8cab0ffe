package smscsim

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/sluice-sms/sluice/pkg/smpp"
)

// receiptQueue holds receipts until they fall due.
type receiptQueue struct {
	mu   sync.Mutex
	h    dueHeap
	wake chan struct{} // signalled when an earlier item may have arrived
}

type dueItem struct {
	due time.Time
	d   *smpp.Deliver
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func newReceiptQueue() receiptQueue {
	return receiptQueue{wake: make(chan struct{}, 1)}
}

func (q *receiptQueue) push(due time.Time, d *smpp.Deliver) {
	q.mu.Lock()
	heap.Push(&q.h, dueItem{due, d})
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop waits for the earliest receipt to fall due; false once ctx is done.
func (q *receiptQueue) pop(ctx context.Context) (*smpp.Deliver, bool) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		q.mu.Lock()
		wait := time.Hour
		if len(q.h) > 0 {
			if wait = time.Until(q.h[0].due); wait <= 0 {
				it := heap.Pop(&q.h).(dueItem)
				q.mu.Unlock()
				return it.d, true
			}
		}
		q.mu.Unlock()
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return nil, false
		case <-q.wake:
		case <-t.C:
		}
	}
}
