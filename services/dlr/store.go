package dlr

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble"

	"github.com/sluice-sms/sluice/pkg/kafka"
)

// stateDB is the process's LSM store (pebble). Every stage partition keeps
// its table under its own key prefix; the changelog topics stay the source of
// truth, the store only keeps the state off the heap and lets a restart
// replay the changelog from a checkpoint instead of from its start.
type stateDB struct {
	db    *pebble.DB
	cache *pebble.Cache
	dir   string
	temp  bool // created by us: removed on close

	mu     sync.Mutex
	stores map[string]*store // by prefix, for the pending gauge
}

// Memory bounds of the store: the block cache and the memtables are the
// only large allocations, whatever the number of keys.
const (
	cacheBytes    = 64 << 20
	memTableBytes = 16 << 20
)

func openStateDB(dir string) (*stateDB, error) {
	temp := dir == ""
	if temp {
		d, err := os.MkdirTemp("", "sluice-dlr-state-")
		if err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
		dir = d
	}
	cache := pebble.NewCache(cacheBytes)
	db, err := pebble.Open(dir, &pebble.Options{
		Cache:                       cache,
		MemTableSize:                memTableBytes,
		MemTableStopWritesThreshold: 4,
		Logger:                      quietLogger{},
	})
	if err != nil {
		cache.Unref()
		return nil, fmt.Errorf("open state store %s: %w", dir, err)
	}
	return &stateDB{db: db, cache: cache, dir: dir, temp: temp, stores: map[string]*store{}}, nil
}

func (d *stateDB) Close() error {
	err := d.db.Close()
	d.cache.Unref()
	if d.temp {
		err = errors.Join(err, os.RemoveAll(d.dir))
	}
	return err
}

// pending is the number of live entries (not done marks) of every store.
func (d *stateDB) pending() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for _, s := range d.stores {
		n += s.live.Load()
	}
	return n
}

// entryMeta reads what the store needs of a row: when its timer fires and
// whether it counts as pending.
type entryMeta func(value []byte) (deadlineMs int64, live bool, err error)

// store is one partition of one stage's table.
type store struct {
	db        *stateDB
	prefix    []byte
	changelog string
	partition int
	meta      entryMeta
	live      atomic.Int64
}

// Key layout under a store's prefix.
const (
	rowTag   = 's' // 's' key -> value
	timerTag = 't' // 't' deadline (8 bytes, big endian) key -> nothing
	metaTag  = 'm' // checkpoint: changelog offset (8) and live count (8)
)

func (d *stateDB) store(stage byte, partition int, changelog string, meta entryMeta) *store {
	prefix := []byte{stage, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(prefix[1:], uint32(partition))
	s := &store{db: d, prefix: prefix, changelog: changelog, partition: partition, meta: meta}
	d.mu.Lock()
	d.stores[string(prefix)] = s
	d.mu.Unlock()
	return s
}

// release stops counting the store in the pending gauge (the partition went
// to another member); its rows stay on disk for a later claim.
func (s *store) release() {
	s.db.mu.Lock()
	if s.db.stores[string(s.prefix)] == s {
		delete(s.db.stores, string(s.prefix))
	}
	s.db.mu.Unlock()
}

func (s *store) key(tag byte, parts ...[]byte) []byte {
	k := append(append([]byte{}, s.prefix...), tag)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// restore brings the store up to the end of its changelog partition: from
// the checkpoint it holds when that is still inside the log, else from the
// log's start after wiping the partition's rows.
func (s *store) restore(ctx context.Context, brokers []string) (replayed int, err error) {
	span, err := kafka.PartitionOffsets(ctx, brokers, s.changelog, s.partition)
	if err != nil {
		return 0, err
	}
	from, live, ok, err := s.checkpoint()
	if err != nil {
		return 0, err
	}
	if !ok || from < span.First || from > span.Next {
		if err := s.db.db.DeleteRange(s.prefix, prefixEnd(s.prefix), pebble.NoSync); err != nil {
			return 0, fmt.Errorf("wipe state %s/%d: %w", s.changelog, s.partition, err)
		}
		from, live = span.First, 0
	}
	s.live.Store(live)
	end, replayed, err := s.replay(ctx, brokers, from)
	if err != nil {
		return replayed, err
	}
	return replayed, s.saveCheckpoint(end)
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

// replay applies the changelog from offset from to its end, committing to
// the store every 10,000 records, and returns the end it reached.
func (s *store) replay(ctx context.Context, brokers []string, from int64) (end int64, n int, err error) {
	t := s.begin()
	defer func() { t.discard() }()
	end, err = kafka.ReadRange(ctx, brokers, s.changelog, s.partition, from, func(m kafka.Message) error {
		if err := s.replayRecord(t, m); err != nil {
			return fmt.Errorf("restore %s/%d@%d: %w", s.changelog, s.partition, m.Offset, err)
		}
		if n++; n%10000 == 0 {
			if err := t.commit(); err != nil {
				return err
			}
			t = s.begin()
		}
		return nil
	})
	if err != nil {
		return 0, n, err
	}
	return end, n, t.commit()
}

// replayRecord applies one changelog record: a row, or a tombstone.
func (s *store) replayRecord(t *txn, m kafka.Message) error {
	if m.Value == nil {
		return t.apply(string(m.Key), nil, 0, false)
	}
	deadline, live, err := s.meta(m.Value)
	if err != nil {
		return err
	}
	return t.apply(string(m.Key), m.Value, deadline, live)
}

// checkpoint returns the changelog offset the store holds everything before,
// and its live count then.
func (s *store) checkpoint() (offset, live int64, ok bool, err error) {
	v, closer, err := s.db.db.Get(s.key(metaTag))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("read checkpoint: %w", err)
	}
	defer closer.Close()
	if len(v) != 16 {
		return 0, 0, false, nil
	}
	return int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:])), true, nil
}

// saveCheckpoint records, durably, that the store holds every change before
// offset of the changelog. Call it only when every change the store has
// applied is in the changelog below offset.
func (s *store) saveCheckpoint(offset int64) error {
	v := append(be64(offset), be64(s.live.Load())...)
	if err := s.db.db.Set(s.key(metaTag), v, pebble.Sync); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// txn is a batch of changes to a store: reads see its own writes; nothing
// reaches the store until commit, which comes after the changelog has the
// changes.
type txn struct {
	s       *store
	b       *pebble.Batch // the writes, unindexed: reads of them go to rows
	live    int64
	changes []kafka.Message
	// rows holds every row the txn has read or written: a step reads a row
	// and then writes it, and a batch may touch a key twice. Serving those
	// from a map spares pebble an indexed batch and a second lookup.
	rows map[string]row
}

type row struct {
	value []byte
	ok    bool
}

func (s *store) begin() *txn {
	return &txn{s: s, b: s.db.db.NewBatch(), rows: map[string]row{}}
}

func (t *txn) get(key string) ([]byte, bool, error) {
	if r, ok := t.rows[key]; ok {
		return r.value, r.ok, nil
	}
	v, ok, err := t.read(key)
	if err == nil {
		t.rows[key] = row{v, ok}
	}
	return v, ok, err
}

// read looks key up in the store as committed.
func (t *txn) read(key string) ([]byte, bool, error) {
	v, closer, err := t.s.db.db.Get(t.s.key(rowTag, []byte(key)))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state get: %w", err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), true, nil
}

// put stores a row whose timer fires at deadlineMs and queues its changelog
// record.
func (t *txn) put(key string, value []byte, deadlineMs int64, live bool) error {
	if err := t.apply(key, value, deadlineMs, live); err != nil {
		return err
	}
	t.changes = append(t.changes, kafka.Message{Topic: t.s.changelog, Key: []byte(key), Value: value})
	return nil
}

// del removes a row and queues its tombstone.
func (t *txn) del(key string) error {
	if err := t.apply(key, nil, 0, false); err != nil {
		return err
	}
	t.changes = append(t.changes, kafka.Message{Topic: t.s.changelog, Key: []byte(key)})
	return nil
}

// apply writes a row (value nil: deletes it), keeping the live count.
// Timers of replaced rows are left behind and skipped when they fire.
func (t *txn) apply(key string, value []byte, deadlineMs int64, live bool) error {
	old, ok, err := t.get(key)
	if err != nil {
		return err
	}
	if ok {
		if _, wasLive, err := t.s.meta(old); err == nil && wasLive {
			t.live--
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
	return t.b.Set(t.s.key(timerTag, be64(deadlineMs), []byte(key)), nil, nil)
}

func (t *txn) commit() error {
	defer t.discard()
	if err := t.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("state commit: %w", err)
	}
	t.s.live.Add(t.live)
	return nil
}

func (t *txn) discard() {
	if t.b != nil {
		_ = t.b.Close()
		t.b = nil
	}
}

// due calls fn for up to limit rows whose timer is at or before nowMs, in
// deadline order, and removes those timers. Timers of rows that were
// replaced or deleted since are dropped without a call.
func (t *txn) due(nowMs int64, limit int, fn func(key string, value []byte) error) (int, error) {
	lower := t.s.key(timerTag)
	upper := t.s.key(timerTag, be64(nowMs+1))
	// The store's timers as committed: due is called before the txn
	// writes anything.
	it, err := t.s.db.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, fmt.Errorf("timers: %w", err)
	}
	type timer struct {
		raw      []byte
		key      string
		deadline int64
	}
	var timers []timer
	for ok := it.First(); ok && len(timers) < limit; ok = it.Next() {
		k := it.Key()[len(lower):]
		timers = append(timers, timer{
			raw:      append([]byte(nil), it.Key()...),
			deadline: int64(binary.BigEndian.Uint64(k[:8])),
			key:      string(k[8:]),
		})
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("timers: %w", err)
	}
	fired := 0
	for _, tm := range timers {
		if err := t.b.Delete(tm.raw, nil); err != nil {
			return fired, err
		}
		v, ok, err := t.get(tm.key)
		if err != nil {
			return fired, err
		}
		if !ok {
			continue
		}
		deadline, _, err := t.s.meta(v)
		if err != nil {
			return fired, fmt.Errorf("state row %q: %w", tm.key, err)
		}
		if deadline != tm.deadline {
			continue // the row was replaced; its own timer is later
		}
		if err := fn(tm.key, v); err != nil {
			return fired, err
		}
		fired++
	}
	return fired, nil
}

// quietLogger keeps pebble's informational chatter out of the service log.
// Fatalf must not return (pebble's own logger exits too).
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
	os.Exit(1)
}
