package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble"

	"github.com/sluice-sms/sluice/pkg/kafka"
)

// Meta reads what a table needs of a row: when its timer fires and whether
// it counts as live.
type Meta func(value []byte) (deadlineMs int64, live bool, err error)

// Store is one partition of one stage's table.
type Store struct {
	db        *DB
	prefix    []byte
	changelog string
	partition int
	meta      Meta
	live      atomic.Int64
	// bareTimers: timers carry no copy of the row (see BareTimers).
	bareTimers bool
	// floor is a timer key no live timer is below: Due starts there instead
	// of at the tombstones of every timer it fired before, which an LSM
	// keeps until compaction and an iterator would step over each time.
	// Guarded by mu: a store has one writer, but metrics may read.
	mu    sync.Mutex
	floor []byte
}

// Key layout under a store's prefix; Aux tags are the table's own.
const (
	rowTag   = 's' // 's' key -> value
	timerTag = 't' // 't' deadline (8 bytes, big endian) key -> nothing
	metaTag  = 'm' // checkpoint: changelog offset (8) and live count (8)
)

// Store returns partition's table of the stage tagged tag, whose changelog
// is that partition of changelog.
func (d *DB) Store(tag byte, partition int, changelog string, meta Meta) *Store {
	prefix := []byte{tag, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(prefix[1:], uint32(partition))
	s := &Store{db: d, prefix: prefix, changelog: changelog, partition: partition, meta: meta}
	d.mu.Lock()
	d.stores[string(prefix)] = s
	d.mu.Unlock()
	return s
}

// BareTimers makes the store's timers carry no copy of their rows: Due
// then looks each row up. For a table whose timers only expire rows, where
// the copy would double the disk for a lookup it saves once per row.
func (s *Store) BareTimers() *Store {
	s.bareTimers = true
	return s
}

// Release stops counting the store in DB.Live (the partition went to
// another member); its rows stay on disk for a later claim.
func (s *Store) Release() {
	s.db.mu.Lock()
	if s.db.stores[string(s.prefix)] == s {
		delete(s.db.stores, string(s.prefix))
	}
	s.db.mu.Unlock()
}

// Live is the number of live rows.
func (s *Store) Live() int64 { return s.live.Load() }

// Changelog and Partition name the changelog partition of the table.
func (s *Store) Changelog() string { return s.changelog }
func (s *Store) Partition() int    { return s.partition }

func (s *Store) key(tag byte, parts ...[]byte) []byte {
	k := append(append([]byte{}, s.prefix...), tag)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// Restore brings a table whose changelog is keyed by row (a value puts the
// row, a tombstone deletes it) up to the end of its changelog partition:
// from the checkpoint when that is still inside the log, else from the
// log's start after wiping the table.
func (s *Store) Restore(ctx context.Context, brokers []string) (replayed int, err error) {
	span, err := kafka.PartitionOffsets(ctx, brokers, s.changelog, s.partition)
	if err != nil {
		return 0, err
	}
	from, ok, err := s.Checkpoint()
	if err != nil {
		return 0, err
	}
	if !ok || from < span.First || from > span.Next {
		if err := s.Wipe(); err != nil {
			return 0, err
		}
		from = span.First
	}
	end, replayed, err := s.Replay(ctx, brokers, from, s.replayRow)
	if err != nil {
		return replayed, err
	}
	return replayed, s.SaveCheckpoint(end)
}

// Wipe deletes every row of the table and its checkpoint.
func (s *Store) Wipe() error {
	if err := s.db.db.DeleteRange(s.prefix, prefixEnd(s.prefix), pebble.NoSync); err != nil {
		return fmt.Errorf("wipe state %s/%d: %w", s.changelog, s.partition, err)
	}
	s.live.Store(0)
	s.setFloor(nil)
	return nil
}

func prefixEnd(prefix []byte) []byte {
	end := append([]byte{}, prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Replay applies the changelog from offset from to its end with apply,
// committing to the store every 10,000 records, and returns the end it
// reached. The caller saves the checkpoint.
func (s *Store) Replay(ctx context.Context, brokers []string, from int64, apply func(*Txn, kafka.Message) error) (end int64, n int, err error) {
	t := s.Begin()
	defer func() { t.Discard() }()
	end, err = kafka.ReadRange(ctx, brokers, s.changelog, s.partition, from, func(m kafka.Message) error {
		if err := apply(t, m); err != nil {
			return fmt.Errorf("restore %s/%d@%d: %w", s.changelog, s.partition, m.Offset, err)
		}
		if n++; n%10000 == 0 {
			if err := t.Commit(); err != nil {
				return err
			}
			t = s.Begin()
		}
		return nil
	})
	if err != nil {
		return 0, n, err
	}
	return end, n, t.Commit()
}

// replayRow applies one record of a changelog keyed by row.
func (s *Store) replayRow(t *Txn, m kafka.Message) error {
	if m.Value == nil {
		return t.Apply(string(m.Key), nil, 0, false)
	}
	deadline, live, err := s.meta(m.Value)
	if err != nil {
		return err
	}
	return t.Apply(string(m.Key), m.Value, deadline, live)
}

// Checkpoint returns the changelog offset the store holds every change
// before, and restores the live count saved with it.
func (s *Store) Checkpoint() (offset int64, ok bool, err error) {
	v, closer, err := s.db.db.Get(s.key(metaTag))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read checkpoint: %w", err)
	}
	defer closer.Close()
	if len(v) != 16 {
		return 0, false, nil
	}
	s.live.Store(int64(binary.BigEndian.Uint64(v[8:])))
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// SaveCheckpoint records, durably, that the store holds every change before
// offset of the changelog. Call it only when every change the store has
// applied is in the changelog below offset.
func (s *Store) SaveCheckpoint(offset int64) error {
	v := append(be64(offset), be64(s.live.Load())...)
	if err := s.db.db.Set(s.key(metaTag), v, pebble.Sync); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

func (s *Store) setFloor(k []byte) {
	s.mu.Lock()
	s.floor = k
	s.mu.Unlock()
}

// timerFloor is the lower bound of the timers that may be live.
func (s *Store) timerFloor() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.floor == nil {
		return s.key(timerTag)
	}
	return s.floor
}
