package router

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/state"
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
	offset   int64          // of its first schedule record
	headers  []kafka.Header // trace context
	rel      *release       // the release that took it from the table
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

// A held message's row: wake (8 bytes, big endian, what the table's timer
// says), offset (8), reserved (1), its headers, then its schedule entry.
func (e *held) encode() []byte {
	entry, err := proto.Marshal(&sluicepb.Held{Message: e.msg, DueMs: e.due.UnixMilli(), Reason: e.reason, MessageId: e.msg.GetId()})
	if err != nil {
		panic(fmt.Sprintf("router: encode schedule row: %v", err)) // cannot happen: plain values
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(e.wake().UnixMilli()))
	b = binary.BigEndian.AppendUint64(b, uint64(e.offset))
	b = append(b, map[bool]byte{false: 0, true: 1}[e.reserved])
	b = binary.AppendUvarint(b, uint64(len(e.headers)))
	for _, h := range e.headers {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		b = binary.AppendUvarint(b, uint64(len(h.Value)))
		b = append(b, h.Value...)
	}
	return append(b, entry...)
}

var errRow = errors.New("damaged schedule row")

func decodeHeld(b []byte) (*held, error) {
	if len(b) < 17 {
		return nil, errRow
	}
	e := &held{offset: int64(binary.BigEndian.Uint64(b[8:16])), reserved: b[16] == 1}
	b = b[17:]
	n, b, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	for range n {
		var k, v []byte
		if k, b, err = chunk(b); err != nil {
			return nil, err
		}
		if v, b, err = chunk(b); err != nil {
			return nil, err
		}
		e.headers = append(e.headers, kafka.Header{Key: string(k), Value: v})
	}
	var entry sluicepb.Held
	if err := proto.Unmarshal(b, &entry); err != nil {
		return nil, fmt.Errorf("%w: %w", errRow, err)
	}
	e.msg, e.due, e.reason = entry.GetMessage(), time.UnixMilli(entry.GetDueMs()), entry.GetReason()
	return e, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errRow
	}
	return v, b[n:], nil
}

func chunk(b []byte) ([]byte, []byte, error) {
	n, b, err := uvarint(b)
	if err != nil || uint64(len(b)) < n {
		return nil, nil, errRow
	}
	return b[:n], b[n:], nil
}

// heldMeta is the table's view of a row: its timer is its wake time.
func heldMeta(v []byte) (int64, bool, error) {
	if len(v) < 8 {
		return 0, false, errRow
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// Indexes of a schedule table besides its rows and timers.
const (
	// offsetTag: offset (8) and id of the first schedule record of every
	// held message, so that the schedule's low mark is one seek away.
	offsetTag = 'o'
	// tatTag: tenant/lane → when its throughput is next free (ms), as of
	// the checkpoint, so that a restart keeps the slots taken before it.
	tatTag = 'r'
)

func offsetKey(offset int64, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(offset)), id...)
}

// holding is one router partition's schedule: one row per held message in
// the process's disk store (pkg/state), with a timer at its wake time, so
// that the heap holds only the store's caches whatever is held. Its
// changelog is the partition's schedule topic: rows are added only as the
// partition reads its entries back from the topic (or replays them at a
// restore), and removed as it releases them or reads a release marker.
type holding struct {
	st       *state.Store
	released map[string]struct{} // released; its marker not read back yet
	inflight map[string]struct{} // taken by releases not committed yet
	// restoredAt: slots reserved for earlier times went by while nobody
	// owned the partition; those messages are paced again rather than all
	// sent at once.
	restoredAt time.Time
}

func newHolding(st *state.Store) *holding {
	return &holding{st: st, released: map[string]struct{}{}, inflight: map[string]struct{}{}}
}

func (h *holding) len() int64 { return h.st.Live() }

// readBack applies a record of the schedule topic in t: an entry (the
// first copy of a message's entry stands) or the marker of a release.
func (h *holding) readBack(t *state.Txn, rec *sluicepb.Held, offset int64, headers []kafka.Header) error {
	id := rec.GetMessageId()
	if rec.GetReleased() {
		ids := rec.GetReleasedIds()
		if id != "" {
			ids = append(ids, id) // a marker of one message
		}
		for _, id := range ids {
			if _, mine := h.released[id]; mine {
				delete(h.released, id) // its row went with the release
				continue
			}
			// Released by an earlier owner of the partition, if still there.
			if err := h.remove(t, id); err != nil {
				return err
			}
		}
		return nil
	}
	if _, gone := h.released[id]; gone {
		return nil
	}
	if _, ok, err := t.Get(id); err != nil || ok {
		return err
	}
	e := &held{msg: rec.GetMessage(), due: time.UnixMilli(rec.GetDueMs()), reason: rec.GetReason(),
		reserved: rec.GetReason() == holdThrottled, offset: offset, headers: headers}
	if err := t.Apply(id, e.encode(), e.wake().UnixMilli(), true); err != nil {
		return err
	}
	return t.SetAux(offsetTag, offsetKey(offset, id), nil)
}

func (h *holding) remove(t *state.Txn, id string) error {
	v, ok, err := t.Get(id)
	if err != nil || !ok {
		return err
	}
	e, err := decodeHeld(v)
	if err != nil {
		return fmt.Errorf("schedule row %s: %w", id, err)
	}
	if err := t.Apply(id, nil, 0, false); err != nil {
		return err
	}
	return t.DeleteAux(offsetTag, offsetKey(e.offset, id))
}

// next returns the earliest wake time, false when nothing is held.
func (h *holding) next() (time.Time, bool, error) {
	ms, ok, err := h.st.NextDue()
	return time.UnixMilli(ms), ok, err
}

// release is one chunk of a release: the entries it took from the table, and the store
// transaction that forgets or moves them once its records are written.
type release struct {
	h       *holding
	txn     *state.Txn
	entries []*held
	err     error // the first failure of later or done, for commit
}

// due starts a release of up to max entries whose wake time has come,
// passing over those of the releases in flight (not committed yet).
func (h *holding) due(now time.Time, max int) (*release, error) {
	c := &release{h: h, txn: h.st.Begin()}
	_, err := c.txn.Due(now.UnixMilli(), max+len(h.inflight), func(id string, v []byte) error {
		if _, ok := h.inflight[id]; ok {
			return nil // its own release forgets it
		}
		if len(c.entries) == max {
			return state.ErrStop
		}
		e, err := decodeHeld(v)
		if err != nil {
			return fmt.Errorf("schedule row %s: %w", id, err)
		}
		if e.reserved && e.due.Before(h.restoredAt) {
			e.reserved = false
		}
		e.rel = c
		c.entries = append(c.entries, e)
		return nil
	})
	if err != nil {
		c.abort()
		return nil, err
	}
	for _, e := range c.entries {
		h.inflight[e.msg.Id] = struct{}{}
	}
	return c, nil
}

// later puts back an entry taken by due that must wait longer. The change
// is the store's alone: a restore from the topic finds the entry as first
// held, and decides it again.
func (c *release) later(e *held, due time.Time, reason string, reserved bool) {
	e.due, e.reason, e.reserved = due, reason, reserved
	c.failed(c.txn.Apply(e.msg.Id, e.encode(), e.wake().UnixMilli(), true))
}

// failed keeps a release's first store failure for commit to return: the
// decisions go on, and the release is retried from the store as it was.
func (c *release) failed(err error) {
	if c.err == nil {
		c.err = err
	}
}

// done forgets an entry taken by due whose release marker is being written.
func (c *release) done(e *held) {
	c.h.released[e.msg.Id] = struct{}{}
	c.failed(c.txn.Apply(e.msg.Id, nil, 0, false))
	c.failed(c.txn.DeleteAux(offsetTag, offsetKey(e.offset, e.msg.Id)))
}

// commit ends a release: call it once the release's records, markers
// included, are written, so that a crash before it finds the entries still
// held and releases them again rather than losing them.
func (c *release) commit() error {
	defer c.abort()
	if c.err != nil {
		return fmt.Errorf("schedule: %w", c.err)
	}
	return c.txn.Commit()
}

// abort drops what the release did not commit.
func (c *release) abort() {
	for _, e := range c.entries {
		delete(c.h.inflight, e.msg.Id)
	}
	c.entries = nil
	if c.txn != nil {
		c.txn.Discard()
		c.txn = nil
	}
}

// low is the schedule offset a restart with an empty store must read
// from: the first record of a held entry, or readPos when nothing is held.
func (h *holding) low(readPos int64) (int64, error) {
	k, _, ok, err := h.st.FirstAux(offsetTag)
	if err != nil || !ok || len(k) < 8 {
		return readPos, err
	}
	return int64(binary.BigEndian.Uint64(k)), nil
}

// checkpoint records that the table holds the schedule up to pos, with
// the throughput clocks tat, and finds the first entry still held. Every
// change in the store is in the topic below pos, or is one a restore
// derives again or finds done: a release's markers are written before the
// release is committed to the store, an entry's new wake time is decided
// again from its first, and replaying what the store has is a no-op.
func (h *holding) checkpoint(pos int64, tat map[string]time.Time) checkpointed {
	r := checkpointed{pos: pos}
	if r.err = h.saveTat(tat); r.err != nil {
		return r
	}
	if r.err = h.st.SaveCheckpoint(pos); r.err != nil {
		return r
	}
	r.low, r.err = h.low(pos)
	return r
}

// saveTat writes the throughput clocks for the next checkpoint.
func (h *holding) saveTat(tat map[string]time.Time) error {
	t := h.st.Begin()
	defer t.Discard()
	for k, at := range tat {
		if err := t.SetAux(tatTag, []byte(k), binary.BigEndian.AppendUint64(nil, uint64(at.UnixMilli()))); err != nil {
			return err
		}
	}
	return t.Commit()
}

// loadTat reads the throughput clocks as of the checkpoint.
func (h *holding) loadTat(tat map[string]time.Time) error {
	return h.st.ScanAux(tatTag, func(k, v []byte) error {
		if len(v) == 8 {
			tat[string(k)] = later(tat[string(k)], time.UnixMilli(int64(binary.BigEndian.Uint64(v))))
		}
		return nil
	})
}
