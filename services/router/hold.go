package router

import (
	"container/heap"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// Reasons a message is held.
const (
	holdSendAt     = "send_at"
	holdQuietHours = "quiet_hours"
	holdThrottled  = "throttled"
)

// held is a message in the router's schedule.
type held struct {
	msg      *sluicepb.Message
	due      time.Time
	reason   string
	reserved bool           // its tenant's throughput slot is already taken
	offset   int64          // of its schedule record; -1 until read back
	index    int            // in the heap
	headers  []kafka.Header // trace context
}

// wake is when to look at the message again: when it is due, or when it
// expires if that comes first, so that it ends expired on time.
func (e *held) wake() time.Time {
	if ms := e.msg.GetExpiresAtMs(); ms > 0 {
		if exp := time.UnixMilli(ms + 1); exp.Before(e.due) {
			return exp
		}
	}
	return e.due
}

// holding is one router partition's schedule in memory: what its schedule
// topic partition says is held, by wake time. The topic is the durable copy;
// this is rebuilt from it on every assignment.
type holding struct {
	byID     map[string]*held
	queue    heldQueue
	released map[string]struct{} // released; its marker not read back yet
}

func newHolding() *holding {
	return &holding{byID: map[string]*held{}, released: map[string]struct{}{}}
}

func (h *holding) len() int { return len(h.byID) }

// hold adds a message just written to the schedule.
func (h *holding) hold(m *sluicepb.Message, due time.Time, reason string, reserved bool, headers []kafka.Header) {
	if _, ok := h.byID[m.Id]; ok {
		return // a replayed copy: the first one stands
	}
	e := &held{msg: m, due: due, reason: reason, reserved: reserved, offset: -1, headers: headers}
	h.byID[m.Id] = e
	heap.Push(&h.queue, e)
}

// readBack applies a record of the schedule topic: an entry read back (with
// its offset now known, or on restart for the first time) or the marker of
// a release.
func (h *holding) readBack(rec *sluicepb.Held, offset int64, headers []kafka.Header) {
	id := rec.GetMessageId()
	if rec.GetReleased() {
		delete(h.released, id)
		if e, ok := h.byID[id]; ok { // released by an earlier owner of the partition
			h.remove(e)
		}
		return
	}
	if _, gone := h.released[id]; gone {
		return
	}
	if e, ok := h.byID[id]; ok {
		if e.offset < 0 || offset < e.offset {
			e.offset = offset
		}
		return
	}
	e := &held{msg: rec.GetMessage(), due: time.UnixMilli(rec.GetDueMs()), reason: rec.GetReason(),
		reserved: rec.GetReason() == holdThrottled, offset: offset, headers: headers}
	h.byID[id] = e
	heap.Push(&h.queue, e)
}

// next returns the earliest wake time, false when nothing is held.
func (h *holding) next() (time.Time, bool) {
	if len(h.queue) == 0 {
		return time.Time{}, false
	}
	return h.queue[0].wake(), true
}

// due removes and returns up to max entries whose wake time has come.
func (h *holding) due(now time.Time, max int) []*held {
	var out []*held
	for len(h.queue) > 0 && len(out) < max && !h.queue[0].wake().After(now) {
		out = append(out, heap.Pop(&h.queue).(*held))
	}
	return out
}

// later puts back an entry taken by due that must wait longer.
func (h *holding) later(e *held, due time.Time, reason string, reserved bool) {
	e.due, e.reason, e.reserved = due, reason, reserved
	heap.Push(&h.queue, e)
}

// done forgets an entry taken by due whose release marker is being written.
func (h *holding) done(e *held) {
	delete(h.byID, e.msg.Id)
	h.released[e.msg.Id] = struct{}{}
}

func (h *holding) remove(e *held) {
	if e.index >= 0 {
		heap.Remove(&h.queue, e.index)
	}
	delete(h.byID, e.msg.Id)
}

// low is the schedule offset a restart must read from: the first record of
// a held entry, or readPos when every entry read so far is released.
func (h *holding) low(readPos int64) int64 {
	low := readPos
	for _, e := range h.byID {
		if e.offset >= 0 && e.offset < low {
			low = e.offset
		}
	}
	return low
}

// heldQueue is a min-heap of entries by wake time.
type heldQueue []*held

func (q heldQueue) Len() int           { return len(q) }
func (q heldQueue) Less(i, j int) bool { return q[i].wake().Before(q[j].wake()) }
func (q heldQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *heldQueue) Push(x any) {
	e := x.(*held)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *heldQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*q = old[:len(old)-1]
	return e
}
