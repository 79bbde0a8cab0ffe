package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble"

	"github.com/sluice-sms/sluice/pkg/kafka"
)

// Txn is a batch of changes to a store: reads see its own writes; nothing
// reaches the store until Commit, which comes after the changelog has the
// changes (Changes).
type Txn struct {
	s       *Store
	b       *pebble.Batch // the writes, unindexed: reads of them go to rows
	live    int64
	changes []kafka.Message
	// changed indexes changes by key: a key written twice in one txn (a
	// submit and its receipt in one batch) needs only its last record in a
	// compacted changelog.
	changed map[string]int
	// rows holds every row the txn has read or written: a step reads a row
	// and then writes it, and a batch may touch a key twice. Serving those
	// from a map spares pebble an indexed batch and a second lookup.
	rows map[string]row
	// What Commit does to the store's floor: timers up to fired are
	// deleted; minTimer is the deadline of the earliest one written.
	fired    []byte
	minTimer int64
}

type row struct {
	value []byte
	ok    bool
}

// Begin starts a transaction; Discard it when not committed.
func (s *Store) Begin() *Txn {
	return &Txn{s: s, b: s.db.db.NewBatch(), rows: map[string]row{}, changed: map[string]int{}, minTimer: math.MaxInt64}
}

// Get returns a row, as the transaction has it.
func (t *Txn) Get(key string) ([]byte, bool, error) {
	if r, ok := t.rows[key]; ok {
		return r.value, r.ok, nil
	}
	v, ok, err := t.s.get(t.s.key(rowTag, []byte(key)))
	if err == nil {
		t.rows[key] = row{v, ok}
	}
	return v, ok, err
}

// Get returns a row as committed, for a reader outside a transaction.
func (s *Store) Get(key string) ([]byte, bool, error) { return s.get(s.key(rowTag, []byte(key))) }

// get looks a key up in the store as committed.
func (s *Store) get(k []byte) ([]byte, bool, error) {
	v, closer, err := s.db.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state get: %w", err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), true, nil
}

// Put stores a row whose timer fires at deadlineMs and queues its
// changelog record.
func (t *Txn) Put(key string, value []byte, deadlineMs int64, live bool) error {
	if err := t.Apply(key, value, deadlineMs, live); err != nil {
		return err
	}
	t.change(kafka.Message{Topic: t.s.changelog, Key: []byte(key), Value: value})
	return nil
}

// Del removes a row and queues its tombstone.
func (t *Txn) Del(key string) error {
	if err := t.Apply(key, nil, 0, false); err != nil {
		return err
	}
	t.change(kafka.Message{Topic: t.s.changelog, Key: []byte(key)})
	return nil
}

// change queues rec, in place of an earlier record of its key.
func (t *Txn) change(rec kafka.Message) {
	if i, ok := t.changed[string(rec.Key)]; ok {
		t.changes[i] = rec
		return
	}
	t.changed[string(rec.Key)] = len(t.changes)
	t.changes = append(t.changes, rec)
}

// Changes are the changelog records of the transaction's Puts and Dels,
// the last of each key, to be written before Commit.
func (t *Txn) Changes() []kafka.Message { return t.changes }

// Apply writes a row (value nil: deletes it) without a changelog record,
// keeping the live count: for a change read from the changelog, or one the
// table can derive again from it. The timer carries a copy of the row, so
// that Due reads rows in deadline order without a lookup each; the old
// row's timer goes with it. (BareTimers: no copy.)
func (t *Txn) Apply(key string, value []byte, deadlineMs int64, live bool) error {
	old, ok, err := t.Get(key)
	if err != nil {
		return err
	}
	if ok {
		if oldDeadline, wasLive, err := t.s.meta(old); err == nil {
			if wasLive {
				t.live--
			}
			if err := t.b.Delete(t.s.key(timerTag, be64(oldDeadline), []byte(key)), nil); err != nil {
				return err
			}
		}
	}
	k := t.s.key(rowTag, []byte(key))
	t.rows[key] = row{value, value != nil}
	if value == nil {
		return t.b.Delete(k, nil)
	}
	if live {
		t.live++
	}
	if err := t.b.Set(k, value, nil); err != nil {
		return err
	}
	t.minTimer = min(t.minTimer, deadlineMs)
	if t.s.bareTimers {
		return t.b.Set(t.s.key(timerTag, be64(deadlineMs), []byte(key)), nil, nil)
	}
	return t.b.Set(t.s.key(timerTag, be64(deadlineMs), []byte(key)), value, nil)
}

// SetAux and DeleteAux write a key of one of the table's own indexes,
// tagged tag, which must not be one of the store's ('s', 't', 'm').
func (t *Txn) SetAux(tag byte, key, value []byte) error {
	return t.b.Set(t.s.key(auxTag(tag), key), value, nil)
}

func (t *Txn) DeleteAux(tag byte, key []byte) error {
	return t.b.Delete(t.s.key(auxTag(tag), key), nil)
}

func auxTag(tag byte) byte {
	if tag == rowTag || tag == timerTag || tag == metaTag {
		panic(fmt.Sprintf("state: aux tag %q is the store's own", tag))
	}
	return tag
}

// Commit writes the transaction to the store.
func (t *Txn) Commit() error {
	defer t.Discard()
	if err := t.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("state commit: %w", err)
	}
	t.s.live.Add(t.live)
	t.moveFloor()
	return nil
}

// moveFloor raises the store's floor past the timers the txn fired, and
// lowers it to the earliest timer it wrote. A store has one writer (its
// partition's owner), so nothing moves it in between.
func (t *Txn) moveFloor() {
	if t.fired == nil && t.minTimer == math.MaxInt64 {
		return // no timer touched: a txn beside the writer's (a checkpoint's) leaves it
	}
	floor := t.s.timerFloor()
	if t.fired != nil && bytes.Compare(t.fired, floor) > 0 {
		floor = t.fired
	}
	if t.minTimer != math.MaxInt64 {
		if low := t.s.key(timerTag, be64(t.minTimer)); bytes.Compare(low, floor) < 0 {
			floor = low
		}
	}
	t.s.setFloor(floor)
}

// Discard drops what the transaction has not committed.
func (t *Txn) Discard() {
	if t.b != nil {
		_ = t.b.Close()
		t.b = nil
	}
}

// Due calls fn for up to limit rows whose timer is at or before nowMs, in
// deadline order, and removes those timers. Timers of rows that were
// replaced or deleted since (left behind by stores written before timers
// carried their rows) are dropped without a call.
func (t *Txn) Due(nowMs int64, limit int, fn func(key string, value []byte) error) (int, error) {
	timers, err := t.s.timers(nowMs, limit)
	if err != nil {
		return 0, err
	}
	fired := 0
	for _, tm := range timers {
		// Deleted before fn, which may set the row's next timer: that
		// one may have the same key.
		if err := t.b.Delete(tm.raw, nil); err != nil {
			return fired, err
		}
		if _, seen := t.rows[tm.key]; !seen && tm.row != nil {
			t.rows[tm.key] = row{tm.row, true}
		}
		v, ok, err := t.Get(tm.key)
		if err != nil {
			return fired, err
		}
		if !ok {
			t.fired = tm.raw
			continue
		}
		deadline, _, err := t.s.meta(v)
		if err != nil {
			return fired, fmt.Errorf("state row %q: %w", tm.key, err)
		}
		if deadline != tm.deadline {
			t.fired = tm.raw
			continue // the row was replaced; its own timer is later
		}
		switch err := fn(tm.key, v); {
		case errors.Is(err, ErrStop):
			return fired, t.b.Set(tm.raw, tm.row, nil) // left for the next call
		case err != nil:
			return fired, err
		}
		t.fired = tm.raw // in key order: every timer before it is gone too
		fired++
	}
	return fired, nil
}

// ErrStop, returned by Due's fn, ends Due there: the row it was handed
// keeps its timer.
var ErrStop = errors.New("state: stop")

type timer struct {
	raw      []byte
	key      string
	deadline int64
	row      []byte // nil in stores written before timers carried rows
}

// timers returns up to limit timers at or before nowMs, as committed: Due
// is called before the txn writes anything.
func (s *Store) timers(nowMs int64, limit int) ([]timer, error) {
	prefix := s.key(timerTag)
	lower := s.timerFloor()
	upper := s.key(timerTag, be64(nowMs+1))
	it, err := s.db.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("timers: %w", err)
	}
	var out []timer
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		k := it.Key()[len(prefix):]
		tm := timer{
			raw:      append([]byte(nil), it.Key()...),
			deadline: int64(binary.BigEndian.Uint64(k[:8])),
			key:      string(k[8:]),
		}
		if v := it.Value(); len(v) > 0 {
			tm.row = append([]byte(nil), v...)
		}
		out = append(out, tm)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("timers: %w", err)
	}
	return out, nil
}

// NextDue is the earliest timer's deadline, false when there is none. It
// may be a replaced row's: Due then drops it.
func (s *Store) NextDue() (int64, bool, error) {
	ts, err := s.timers(1<<62, 1)
	if err != nil || len(ts) == 0 {
		return 0, false, err
	}
	return ts[0].deadline, true, nil
}

// FirstAux returns the first key (and its value) of the index tagged tag.
func (s *Store) FirstAux(tag byte) (key, value []byte, ok bool, err error) {
	err = s.ScanAux(tag, func(k, v []byte) error {
		key, value, ok = k, v, true
		return ErrStop
	})
	if errors.Is(err, ErrStop) {
		err = nil
	}
	return key, value, ok, err
}

// ScanAux calls fn for every key of the index tagged tag, in key order,
// until fn returns an error.
func (s *Store) ScanAux(tag byte, fn func(key, value []byte) error) error {
	lower := s.key(auxTag(tag))
	it, err := s.db.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	var ferr error
	for ok := it.First(); ok && ferr == nil; ok = it.Next() {
		ferr = fn(append([]byte(nil), it.Key()[len(lower):]...), append([]byte(nil), it.Value()...))
	}
	return errors.Join(ferr, it.Close())
}
