package sender

import "sync"

// offsets tracks records of one partition that finish out of order and tells
// how far the partition may be committed: up to the first unfinished record.
type offsets struct {
	mu        sync.Mutex
	queue     []int64        // started, in offset order
	done      map[int64]bool // finished, not yet passed by the prefix
	committed int64          // next offset to read; -1 until anything finished
}

func newOffsets() *offsets { return &offsets{done: map[int64]bool{}, committed: -1} }

func (o *offsets) start(offset int64) {
	o.mu.Lock()
	o.queue = append(o.queue, offset)
	o.mu.Unlock()
}

func (o *offsets) finish(offset int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done[offset] = true
	for len(o.queue) > 0 && o.done[o.queue[0]] {
		delete(o.done, o.queue[0])
		o.committed = o.queue[0] + 1
		o.queue = o.queue[1:]
	}
}

// next returns the offset to commit, or -1 when nothing has finished yet.
func (o *offsets) next() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.committed
}
