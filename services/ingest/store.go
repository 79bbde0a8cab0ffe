package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
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

	// owned is nil while the store follows every partition itself; in an
	// index divided between replicas (peers set), it holds the partitions
	// this replica owns now, and peers finds the others' owners.
	owned map[int]bool
	peers *peerDirectory
	// changelog, in a divided index, is the compacted topic that keeps the
	// latest sms.status event of every message of each partition, so that
	// a replica with an empty disk reads that instead of all of sms.status.
	changelog string
	produce   func(context.Context, ...kafka.Message) error
	// readStatus and readChangelog count the records read from sms.status
	// and from the changelog.
	readStatus, readChangelog atomic.Int64

	// Where the follower is, for catchUp: sms.status's partition count
	// (0 until known) and the next offset applied of each partition.
	brokers    []string
	topic      string
	partitions int
	applied    []int64
	// logged, with a changelog, is the next offset of each partition whose
	// changes are all in the changelog: a table's checkpoint never passes it.
	logged   []int64
	progress chan struct{} // closed and replaced as applied moves
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
	p := s.partitionOf(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tableLocked(p)
}

// partitionOf is the sms.status partition of id's events (0 while the
// partition count is not known).
func (s *statusStore) partitionOf(id string) int {
	s.mu.Lock()
	n := s.partitions
	s.mu.Unlock()
	if n == 0 {
		return 0
	}
	return kafka.PartitionOf([]byte(id), n)
}

// owns tells whether this replica holds partition p's table.
func (s *statusStore) owns(p int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owned == nil || s.owned[p]
}

func (s *statusStore) tableLocked(p int) *statusTable {
	t, ok := s.tables[p]
	if !ok {
		// A timer only forgets its row: it needs no copy of it.
		t = &statusTable{st: s.db.Store(statusTag, p, s.topic, s.meta).BareTimers()}
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

// applyBatch records a batch of one partition's sms.status records in one
// write of its table (the cost of a write is mostly per write, not per
// row). Records it cannot read are ignored: the topic is public, and the
// store is only an index of it. With a changelog it returns the records
// that carry what the batch changed: the latest event of each message it
// wrote, once per message however many of its events the batch held.
func (s *statusStore) applyBatch(partition int, batch []kafka.Message) ([]kafka.Message, error) {
	s.readStatus.Add(int64(len(batch)))
	changes, strays, err := s.applyToTable(partition, batch, s.changelogTopic())
	if err != nil {
		return nil, err
	}
	// Lookups go to the table of the id's partition: a record some other
	// producer put in another partition goes there too. (It is not in the
	// changelog: a cold start reads it from sms.status again.)
	for _, st := range strays {
		if err := s.put(st.id, st.entry); err != nil {
			return nil, err
		}
	}
	return changes, nil
}

// stray is a record whose id belongs to another partition's table.
type stray struct {
	id    string
	entry statusEntry
}

// applyToTable writes the batch's records of ids of partition into its
// table, and returns its changelog records and the other partitions'.
// logged names the changelog ("": none).
func (s *statusStore) applyToTable(partition int, batch []kafka.Message, logged string) ([]kafka.Message, []stray, error) {
	s.mu.Lock()
	t := s.tableLocked(partition)
	s.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	txn := t.st.Begin()
	defer txn.Discard()
	var strays []stray
	changed := map[string]int{} // id -> index in changes
	var changes []kafka.Message
	for _, m := range batch {
		id, e, ok := s.entryOf(m.Key, m.Value)
		switch {
		case !ok:
		case s.partitionOf(id) != partition:
			strays = append(strays, stray{id, e})
		default:
			wrote, err := s.putTxn(txn, id, e, logged != "")
			if err != nil {
				return nil, nil, err
			}
			if !wrote || logged == "" {
				continue
			}
			rec := kafka.Message{Topic: logged, Key: []byte(id), Value: e.value}
			if i, ok := changed[id]; ok {
				changes[i] = rec
			} else {
				changed[id] = len(changes)
				changes = append(changes, rec)
			}
		}
	}
	return changes, strays, txn.Commit()
}

// entryOf reads a record of sms.status, keyed by message id: the events
// ingest wrote itself come back this way, and need no decoding.
func (s *statusStore) entryOf(key, value []byte) (string, statusEntry, bool) {
	s.mu.Lock()
	p, writing := s.writing[string(key)]
	s.mu.Unlock()
	if writing && bytes.Equal(p.value, value) {
		return p.id, p.entry(), true
	}
	var ev struct {
		MessageID string    `json:"message_id"`
		Tenant    string    `json:"tenant"`
		Status    string    `json:"status"`
		EventTime time.Time `json:"event_time"`
	}
	if json.Unmarshal(value, &ev) != nil || ev.MessageID == "" {
		return "", statusEntry{}, false
	}
	return ev.MessageID, statusEntry{tenant: ev.Tenant, rank: rank(ev.Status), at: ev.EventTime, value: value}, true
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
	if _, err := s.putTxn(txn, id, e, false); err != nil {
		return err
	}
	return txn.Commit()
}

// putTxn is put in txn, and says whether it wrote. When the write is to be
// logged, a row equal to e is written again: a front door may have written
// it, and only the follower's writes reach the changelog.
func (s *statusStore) putTxn(txn *state.Txn, id string, e statusEntry, logged bool) (bool, error) {
	if v, ok, err := txn.Get(id); err != nil {
		return false, err
	} else if ok {
		old, err := decodeEntry(v)
		if err == nil && (old.rank > e.rank || (!logged && bytes.Equal(old.value, e.value))) {
			return false, nil
		}
	}
	row := encodeEntry(e)
	deadline, _, _ := s.meta(row)
	return true, txn.Apply(id, row, deadline, true)
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

// get returns the latest status of tenant's message id, from whichever
// replica owns it; another tenant's message is not found.
func (s *statusStore) get(ctx context.Context, tenant, id string) ([]byte, bool, error) {
	var value []byte
	var found bool
	err := s.route(ctx, []string{id}, func([]string) error {
		var err error
		value, found, err = s.getHere(ctx, tenant, id)
		return err
	}, func(ctx context.Context, url string, _ []string) error {
		var err error
		value, found, err = s.peers.get(ctx, url, tenant, id)
		return err
	})
	return value, found, err
}

// getHere is get of a partition this replica owns. A miss waits for the
// follower to catch up: the message may have just been accepted elsewhere.
func (s *statusStore) getHere(ctx context.Context, tenant, id string) ([]byte, bool, error) {
	e, ok, err := s.lookup(id)
	if err == nil && !ok {
		var caughtUp bool
		if caughtUp, err = s.catchUp(ctx, []string{id}); caughtUp {
			e, ok, err = s.lookup(id)
		}
	}
	if err != nil || !ok || e.tenant != tenant {
		return nil, false, err
	}
	return e.value, true, nil
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

// size is the number of messages held in the partitions this replica owns.
func (s *statusStore) size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for p, t := range s.tables {
		if s.owned == nil || s.owned[p] {
			n += t.st.Live()
		}
	}
	return n
}
