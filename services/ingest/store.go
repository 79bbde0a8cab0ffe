package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/state"
)

// statusStore holds the latest sms.status event of every message of the last
// window, in a disk store (one table per partition of sms.status) kept
// current by following the topic. It answers GET /v1/messages/{id} and is the
// durable idempotency record: a message id it knows was accepted (its
// "accepted" event is in sms.status), so a request with the same (tenant,
// client_ref) is a duplicate. RAM holds only the store's caches and the ids
// in flight; each table's checkpoint lets a restart with its disk replay only
// what sms.status gained since.
type statusStore struct {
	window time.Duration
	db     *state.DB

	mu sync.Mutex
	// tables are the partitions' tables, made once the partition count is
	// known (before that, tests without a follower use partition 0).
	tables map[int]*statusTable
	// pending holds the ids being accepted right now; a copy of the request
	// waits for the first one's outcome instead of racing it.
	pending map[string]chan struct{}
	// writing holds the status events front doors are producing right now:
	// the follower usually reads one back before its writer records it, and
	// then knows what it says without decoding it again.
	writing map[string]published

	// Where the follower is, for catchUp: sms.status's partition count
	// (0 until known) and the next offset applied of each partition.
	brokers    []string
	topic      string
	partitions int
	applied    []int64
	progress   chan struct{} // closed and replaced as applied moves
}

// statusTable is one partition's table. Its follower and the front doors
// both write it, so writes take mu (a state.Store has one writer at a time).
type statusTable struct {
	mu sync.Mutex
	st *state.Store
}

type statusEntry struct {
	tenant string
	rank   int
	at     time.Time // event time of the latest event
	value  []byte    // the sms.status record, as published
}

// statusTag tags the status index's tables in the state store.
const statusTag = 'i'

func newStatusStore(window time.Duration, db *state.DB) *statusStore {
	return &statusStore{window: window, db: db, tables: map[int]*statusTable{}, pending: map[string]chan struct{}{}, writing: map[string]published{},
		progress: make(chan struct{})}
}

// Row layout: event time in ms (8), rank (1), tenant length (2), tenant,
// then the sms.status record as published.
func encodeEntry(e statusEntry) []byte {
	b := make([]byte, 0, 11+len(e.tenant)+len(e.value))
	b = binary.BigEndian.AppendUint64(b, uint64(e.at.UnixMilli()))
	b = append(b, byte(e.rank))
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.tenant)))
	b = append(b, e.tenant...)
	return append(b, e.value...)
}

func decodeEntry(b []byte) (statusEntry, error) {
	if len(b) < 11 {
		return statusEntry{}, fmt.Errorf("status row of %d bytes", len(b))
	}
	n := int(binary.BigEndian.Uint16(b[9:]))
	if len(b) < 11+n {
		return statusEntry{}, fmt.Errorf("status row of %d bytes, tenant of %d", len(b), n)
	}
	return statusEntry{
		at:     time.UnixMilli(int64(binary.BigEndian.Uint64(b))),
		rank:   int(b[8]),
		tenant: string(b[11 : 11+n]),
		value:  b[11+n:],
	}, nil
}

// meta puts a row's timer where the window forgets it.
func (s *statusStore) meta(v []byte) (int64, bool, error) {
	e, err := decodeEntry(v)
	if err != nil {
		return 0, false, err
	}
	return e.at.Add(s.window).UnixMilli(), true, nil
}

// table returns the table that holds id.
func (s *statusStore) table(id string) *statusTable {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := 0
	if s.partitions > 0 {
		p = kafka.PartitionOf([]byte(id), s.partitions)
	}
	return s.tableLocked(p)
}

func (s *statusStore) tableLocked(p int) *statusTable {
	t, ok := s.tables[p]
	if !ok {
		t = &statusTable{st: s.db.Store(statusTag, p, s.topic, s.meta)}
		s.tables[p] = t
	}
	return t
}

// lookup returns id's entry as stored.
func (s *statusStore) lookup(id string) (statusEntry, bool, error) {
	txn := s.table(id).st.Begin()
	defer txn.Discard()
	v, ok, err := txn.Get(id)
	if err != nil || !ok {
		return statusEntry{}, false, err
	}
	e, err := decodeEntry(v)
	return e, err == nil, err
}

func (s *statusStore) known(id string) (bool, error) {
	_, ok, err := s.lookup(id)
	return ok, err
}

// rank orders statuses so that a replayed or late event never hides a later
// one: accepted < scheduled < submitted < final.
func rank(status string) int {
	switch {
	case message.IsFinal(status):
		return 3
	case status == message.StatusSubmitted:
		return 2
	case status == message.StatusScheduled:
		return 1
	default:
		return 0
	}
}

// apply records one sms.status record; records it cannot read are ignored
// (the topic is public, and the store is only an index of it).
func (s *statusStore) apply(value []byte) error {
	var ev struct {
		MessageID string    `json:"message_id"`
		Tenant    string    `json:"tenant"`
		Status    string    `json:"status"`
		EventTime time.Time `json:"event_time"`
	}
	if json.Unmarshal(value, &ev) != nil || ev.MessageID == "" {
		return nil
	}
	return s.put(ev.MessageID, statusEntry{tenant: ev.Tenant, rank: rank(ev.Status), at: ev.EventTime, value: value})
}

// applyRecord is apply for a record of sms.status, keyed by message id: the
// events ingest wrote itself come back this way, and need no decoding.
func (s *statusStore) applyRecord(key, value []byte) error {
	s.mu.Lock()
	p, writing := s.writing[string(key)]
	s.mu.Unlock()
	if writing && bytes.Equal(p.value, value) {
		return s.put(p.id, p.entry())
	}
	return s.apply(value)
}

// put stores e unless id already has a later status. Rows are written
// without sync: a table's checkpoint syncs them (pebble's log is in order)
// before it claims their offsets.
func (s *statusStore) put(id string, e statusEntry) error {
	t := s.table(id)
	t.mu.Lock()
	defer t.mu.Unlock()
	txn := t.st.Begin()
	defer txn.Discard()
	if v, ok, err := txn.Get(id); err != nil {
		return err
	} else if ok {
		old, err := decodeEntry(v)
		if err == nil && (old.rank > e.rank || bytes.Equal(old.value, e.value)) {
			return nil
		}
	}
	row := encodeEntry(e)
	deadline, _, _ := s.meta(row)
	if err := txn.Apply(id, row, deadline, true); err != nil {
		return err
	}
	return txn.Commit()
}

// published is an "accepted" status event a front door has written.
type published struct {
	id, tenant string
	at         time.Time
	value      []byte
}

// entry is what apply would make of the event.
func (p published) entry() statusEntry {
	return statusEntry{tenant: p.tenant, rank: rank(message.StatusAccepted), at: p.at, value: p.value}
}

// get returns the latest status of tenant's message id; another tenant's
// message is not found.
func (s *statusStore) get(tenant, id string) ([]byte, bool, error) {
	e, ok, err := s.lookup(id)
	if err != nil || !ok || e.tenant != tenant {
		return nil, false, err
	}
	return e.value, true, nil
}

// claims are message ids a caller holds while it accepts them.
type claims struct {
	s       *statusStore
	ids     []string
	dups    map[string]bool
	writing []published
}

// claim takes the ids (distinct) for the caller, waiting while another caller
// holds one of them, and reports which are already known (duplicates). Ids
// are taken in sorted order so that two callers never wait on each other.
// The caller must call done.
func (s *statusStore) claim(ctx context.Context, ids []string) (*claims, error) {
	if err := s.catchUp(ctx, ids); err != nil {
		return nil, err
	}
	c := &claims{s: s, dups: map[string]bool{}}
	sorted := slices.Sorted(slices.Values(ids))
	for _, id := range sorted {
		if err := s.hold(ctx, id); err != nil {
			c.done(nil)
			return nil, err
		}
		// Looked up only once held: a holder before us wrote its row
		// before it let go, so the lookup sees it.
		known, err := s.known(id)
		if err != nil {
			s.let(id)
			c.done(nil)
			return nil, err
		}
		if known {
			c.dups[id] = true
			s.let(id)
			continue
		}
		c.ids = append(c.ids, id)
	}
	return c, nil
}

// hold takes id for the caller, waiting while another caller holds it.
func (s *statusStore) hold(ctx context.Context, id string) error {
	for {
		s.mu.Lock()
		wait, busy := s.pending[id]
		if !busy {
			s.pending[id] = make(chan struct{})
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("wait for a copy of message %s: %w", id, ctx.Err())
		}
	}
}

// let gives back an id taken by hold.
func (s *statusStore) let(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.pending[id])
	delete(s.pending, id)
}

// catchUp waits until the store has applied every record that the
// sms.status partitions of the ids it does not know held when it was
// called: another replica may have just accepted one of them, and it
// answered only once its accepted event was in Kafka. It costs one offsets
// request per leader of those partitions.
func (s *statusStore) catchUp(ctx context.Context, ids []string) error {
	s.mu.Lock()
	n := s.partitions
	s.mu.Unlock()
	var parts []int
	seen := map[int]bool{}
	for _, id := range ids {
		if n == 0 {
			break
		}
		known, err := s.known(id)
		if err != nil {
			return err
		}
		if p := kafka.PartitionOf([]byte(id), n); !known && !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	ends, err := kafka.PartitionsOffsets(ctx, s.brokers, s.topic, parts)
	if err != nil {
		return fmt.Errorf("status index: %w", err)
	}
	for {
		s.mu.Lock()
		behind := false
		for _, p := range parts {
			behind = behind || (!ends[p].Empty() && s.applied[p] < ends[p].Next)
		}
		wait := s.progress
		s.mu.Unlock()
		if !behind {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("status index behind %s: %w", s.topic, ctx.Err())
		}
	}
}

// advance records that partition's records before next are applied.
func (s *statusStore) advance(partition int, next int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if next > s.applied[partition] {
		s.applied[partition] = next
		close(s.progress)
		s.progress = make(chan struct{})
	}
}

// dup reports whether id was already accepted.
func (c *claims) dup(id string) bool { return c.dups[id] }

// write tells the store the status events the caller is about to produce,
// until done.
func (c *claims) write(statuses []published) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, p := range statuses {
		c.s.writing[p.id] = p
	}
	c.writing = statuses
}

// done records the status events of what was accepted (nil when nothing was
// published) and releases the ids. A row it fails to write is written by the
// follower when it reads the event back (which stops the service if the
// disk fails it too): the event is durable in sms.status already.
func (c *claims) done(statuses []published) {
	for _, p := range statuses {
		_ = c.s.put(p.id, p.entry())
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, id := range c.ids {
		close(c.s.pending[id])
		delete(c.s.pending, id)
	}
	for _, p := range c.writing {
		delete(c.s.writing, p.id)
	}
	c.ids, c.writing = nil, nil
}

// prune forgets messages whose latest event is older than the window, as
// Kafka's retention of sms.status does: each row's timer is at its event
// time plus the window.
func (s *statusStore) prune(now time.Time) (int, error) {
	s.mu.Lock()
	tables := slices.Collect(maps.Values(s.tables))
	s.mu.Unlock()
	total := 0
	for _, t := range tables {
		for {
			n, err := t.pruneChunk(now.UnixMilli(), 1000)
			total += n
			if err != nil {
				return total, err
			}
			if n < 1000 {
				break
			}
		}
	}
	return total, nil
}

func (t *statusTable) pruneChunk(nowMs int64, limit int) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	txn := t.st.Begin()
	defer txn.Discard()
	n, err := txn.Due(nowMs, limit, func(key string, _ []byte) error { return txn.Apply(key, nil, 0, false) })
	if err != nil {
		return 0, err
	}
	return n, txn.Commit()
}

// size is the number of messages held.
func (s *statusStore) size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, t := range s.tables {
		n += t.st.Live()
	}
	return n
}

// follow reads every partition of topic into the store, each from its
// table's checkpoint (from its first offset when the table has none), until
// ctx ends or the store fails. ready is closed once the store holds
// everything the topic held when follow started.
func (s *statusStore) follow(ctx context.Context, brokers []string, topic string, ready chan<- struct{}, log *slog.Logger) error {
	partitions, err := waitPartitions(ctx, brokers, topic, log)
	if err != nil {
		return nil // ctx ended
	}
	starts, err := s.restore(ctx, brokers, topic, partitions)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var remaining atomic.Int64
	remaining.Store(int64(partitions))
	caughtUp := func() {
		if remaining.Add(-1) == 0 {
			close(ready)
		}
	}
	var wg sync.WaitGroup
	for p := range partitions {
		wg.Go(func() {
			// After a failed record, none is applied: applied (and so the
			// checkpoint) must not pass it.
			failed := false
			kafka.TailFrom(ctx, brokers, topic, p, starts[p], func(m kafka.Message) {
				if failed {
					return
				}
				if err := s.applyRecord(m.Key, m.Value); err != nil {
					failed = true
					cancel(fmt.Errorf("status index: %w", err))
					return
				}
				s.advance(p, m.Offset+1)
			}, caughtUp, log)
		})
	}
	s.maintain(ctx, log)
	wg.Wait()
	// Only once the followers are done is applied final.
	err = s.checkpoint()
	if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
		err = errors.Join(cause, err)
	}
	return err
}

// waitPartitions is topic's partition count, once its metadata is there.
func waitPartitions(ctx context.Context, brokers []string, topic string, log *slog.Logger) (int, error) {
	for {
		n, err := kafka.PartitionCount(ctx, brokers, topic)
		if err == nil {
			return n, nil
		}
		// A topic just created may not have its leaders in place yet.
		log.Warn("status store: topic not available yet; retrying", "topic", topic, "err", err)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// restore makes the partitions' tables and returns where each follower
// starts: at its checkpoint. A checkpoint past the partition's end is from
// another topic of that name (deleted and made again): that table is wiped.
func (s *statusStore) restore(ctx context.Context, brokers []string, topic string, partitions int) ([]int64, error) {
	s.mu.Lock()
	s.brokers, s.topic, s.partitions, s.applied = brokers, topic, partitions, make([]int64, partitions)
	s.tables = map[int]*statusTable{}
	for p := range partitions {
		s.tableLocked(p)
	}
	s.mu.Unlock()
	all := make([]int, partitions)
	for p := range all {
		all[p] = p
	}
	ends, err := kafka.PartitionsOffsets(ctx, brokers, topic, all)
	if err != nil {
		return nil, fmt.Errorf("status index: %w", err)
	}
	starts := make([]int64, partitions)
	for p := range partitions {
		t := s.tables[p]
		off, ok, err := t.st.Checkpoint()
		if err != nil {
			return nil, err
		}
		switch {
		case !ok:
			starts[p] = kafka.FirstOffset
		case off > ends[p].Next:
			if err := t.st.Wipe(); err != nil {
				return nil, err
			}
			starts[p] = kafka.FirstOffset
		default:
			starts[p] = off
			s.applied[p] = off
		}
	}
	return starts, nil
}

// maintain checkpoints the tables every second and prunes them every
// minute, until ctx ends.
func (s *statusStore) maintain(ctx context.Context, log *slog.Logger) {
	save := time.NewTicker(time.Second)
	defer save.Stop()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-save.C:
			if err := s.checkpoint(); err != nil {
				log.Warn("status index: checkpoint failed; the next one covers it", "err", err)
			}
		case now := <-prune.C:
			n, err := s.prune(now)
			if err != nil {
				log.Warn("status index: prune failed; the next one retries", "err", err)
			}
			if n > 0 {
				log.Info("forgot messages past the idempotency window", "messages", n, "window", s.window)
			}
		}
	}
}

// checkpoint records each table's applied offset. The rows below it were
// committed before applied moved, and the checkpoint's synced write makes
// them durable with it.
func (s *statusStore) checkpoint() error {
	s.mu.Lock()
	applied := slices.Clone(s.applied)
	tables := maps.Clone(s.tables)
	s.mu.Unlock()
	var err error
	for p, off := range applied {
		if off > 0 {
			err = errors.Join(err, tables[p].st.SaveCheckpoint(off))
		}
	}
	return err
}
