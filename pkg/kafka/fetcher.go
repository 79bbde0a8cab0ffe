package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	kgo "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
)

// fetcher reads every partition the process follows, claims and followers
// alike, with one fetch request per partition leader at a time, instead of
// one fetch loop (and connection) per partition: the broker then answers a
// few large requests instead of many small ones. Records are kept per
// subscription until its reader takes them; a subscription holding
// subBufferBytes or more is left out of the next requests, which bounds the
// memory to about that much per followed partition.
//
// It talks to the cluster through a kafka-go Transport, which knows every
// broker from the metadata, so no broker of the configured list is needed
// once one has answered.
type fetcher struct {
	key       string // its entry in fetchers
	addr      net.Addr
	transport *kgo.Transport
	brokers   []string

	mu         sync.Mutex
	subs       map[*subscription]struct{}
	layout     map[partitionKey]int32 // leaders, as of layoutAt
	layoutAt   time.Time
	staleTopic bool          // a followed topic is not in layout yet
	busy       map[int32]int // requests in flight, by leader
	wake       chan struct{}
	paused     bool // tests only: hold requests until every reader has subscribed
}

const (
	// subBufferBytes is how much a subscription may hold before its
	// partition is left out of fetches until its reader takes some.
	subBufferBytes = 1 << 20
	// fetchMaxWait is how long a broker holds a request that finds nothing
	// new: an idle process costs each broker this many requests a second.
	fetchMaxWait = 500 * time.Millisecond
	// fetchMaxWaitBusy is the wait when some of the leader's partitions
	// were left out for a full buffer: their reader will want more soon.
	fetchMaxWaitBusy = 5 * time.Millisecond
	fetchMaxBytes    = 16 << 20
)

var fetchers = struct {
	sync.Mutex
	byBrokers map[string]*fetcher
}{byBrokers: map[string]*fetcher{}}

// subscribe follows topic/partition from offset (FirstOffset: its first
// record) through the process's fetcher for that broker list.
func subscribe(brokers []string, topic string, partition int, offset int64) *subscription {
	fetchers.Lock()
	defer fetchers.Unlock()
	return fetcherOf(brokers).subscribe(topic, partition, offset)
}

// fetcherOf returns the process's fetcher for that broker list, started on
// first use. It runs while something follows a partition: see stopIfIdle.
// The caller holds fetchers.
func fetcherOf(brokers []string) *fetcher {
	key := strings.Join(brokers, ",")
	if f, ok := fetchers.byBrokers[key]; ok {
		return f
	}
	f := &fetcher{
		key:  key,
		addr: kgo.TCP(brokers...),
		// A short metadata lifetime: a partition whose leader moved is
		// fetched from the new one within about this long.
		transport: &kgo.Transport{MetadataTTL: 2 * time.Second, DialTimeout: 5 * time.Second},
		brokers:   brokers,
		subs:      map[*subscription]struct{}{},
		busy:      map[int32]int{},
		wake:      make(chan struct{}, 1),
	}
	fetchers.byBrokers[key] = f
	go f.run()
	return f
}

// stopIfIdle ends the fetcher when nothing follows a partition and no
// request is out, so that a process that has stopped reading holds no
// goroutine or connection for it; the next subscription starts a new one.
// Taking fetchers first keeps a subscribe from reaching a stopped fetcher.
func (f *fetcher) stopIfIdle() bool {
	fetchers.Lock()
	defer fetchers.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) > 0 || len(f.busy) > 0 || f.paused {
		return false
	}
	delete(fetchers.byBrokers, f.key)
	f.transport.CloseIdleConnections()
	return true
}

// subscription is one reader's position in one partition, and the records
// fetched for it that it has not taken yet.
type subscription struct {
	f         *fetcher
	topic     string
	partition int32

	// guarded by f.mu
	next     int64 // offset to fetch from; negative: FirstOffset or LastOffset, to resolve
	taken    int64 // offset after the last record handed out (what Offset says)
	buf      []Message
	bytes    int
	epoch    int  // moves on setOffset: answers to older requests are dropped
	inflight bool // part of a request in flight
	retryAt  time.Time
	err      error         // a failure that is not retried; handed to the reader
	ready    chan struct{} // closed when records or an error arrive
	closed   bool
}

// subscribe adds a subscription; the caller holds fetchers, so f runs.
func (f *fetcher) subscribe(topic string, partition int, offset int64) *subscription {
	s := &subscription{f: f, topic: topic, partition: int32(partition), next: offset, taken: offset, ready: make(chan struct{})}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	f.poke()
	return s
}

func (f *fetcher) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Close stops the subscription; records fetched for it are dropped.
func (s *subscription) Close() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.closed = true
	s.buf, s.bytes = nil, 0
	delete(s.f.subs, s)
	s.f.poke() // the last one out lets the fetcher stop
}

// Offset is the offset of the record fetchOne returns next.
func (s *subscription) Offset() int64 {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return s.taken
}

// setOffset makes fetchOne go on from offset.
func (s *subscription) setOffset(offset int64) {
	s.f.mu.Lock()
	s.epoch++
	s.next, s.taken = offset, offset
	s.buf, s.bytes, s.err = nil, 0, nil
	s.retryAt = time.Time{}
	s.f.mu.Unlock()
	s.f.poke()
}

// fetchOne returns the subscription's next record, waiting for one until ctx
// ends; its error is ctx's, or a failure of the partition that is not
// retried (a topic deleted, a request refused).
func (s *subscription) fetchOne(ctx context.Context) (Message, error) {
	for {
		ms, err, ready := s.take(1)
		if len(ms) > 0 || err != nil {
			return first(ms), err
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return Message{}, ctx.Err()
		}
	}
}

func first(ms []Message) Message {
	if len(ms) == 0 {
		return Message{}
	}
	return ms[0]
}

// batch returns up to max records: it waits at most wait for the first,
// then at most linger for more. Nothing within wait is an empty batch and no
// error.
func (s *subscription) batch(ctx context.Context, wait, linger time.Duration, max int) ([]Message, error) {
	var out []Message
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for len(out) < max {
		ms, err, ready := s.take(max - len(out))
		out = append(out, ms...)
		if err != nil && len(out) == 0 {
			return nil, err
		}
		if err != nil || len(out) >= max {
			break
		}
		if len(ms) > 0 && len(out) == len(ms) {
			deadline.Reset(linger) // the first records: linger for more
		}
		select {
		case <-ready:
		case <-deadline.C:
			return out, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}

// take returns up to max buffered records, or the channel that says more
// came.
func (s *subscription) take(max int) ([]Message, error, <-chan struct{}) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if len(s.buf) == 0 {
		return nil, s.err, s.ready
	}
	n := min(max, len(s.buf))
	out := make([]Message, n)
	copy(out, s.buf[:n])
	clear(s.buf[:n])
	s.buf = s.buf[n:]
	wasFull := s.bytes >= subBufferBytes
	for _, m := range out {
		s.bytes -= len(m.Key) + len(m.Value)
	}
	s.taken = out[n-1].Offset + 1
	if wasFull && s.bytes < subBufferBytes {
		s.f.poke() // left out of fetches until now
	}
	return out, nil, s.ready
}

// run sends a request to every leader that has wanting subscriptions and
// no request in flight, each time a subscription or an answer changes that,
// until the fetcher is idle.
func (f *fetcher) run() {
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	var idleSince time.Time
	for {
		select {
		case <-f.wake:
		case <-retry.C:
		}
		if !f.idle() {
			idleSince = time.Time{}
			retry.Reset(f.dispatch())
			continue
		}
		// Readers that follow one another (a restore reading partition
		// after partition) keep the fetcher and its connections.
		if idleSince.IsZero() {
			idleSince = time.Now()
		}
		if time.Since(idleSince) >= idleLinger {
			if f.stopIfIdle() {
				return
			}
			idleSince = time.Now() // paused, or a reader came: look again later
		}
		retry.Reset(idleLinger - time.Since(idleSince))
	}
}

// idleLinger is how long a fetcher with nothing to read waits before it
// stops.
const idleLinger = 2 * time.Second

// idle is stopIfIdle's quick test, without the process-wide lock.
func (f *fetcher) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs) == 0 && len(f.busy) == 0
}

// dispatch starts the requests that can go now and returns how long until
// a subscription waiting on a retry may go.
//
// The wanting subscriptions of a leader go in one request. A leader may
// have up to maxInflight requests at once, so that a subscription that
// starts (a restore, a new claim) or has just been drained does not wait
// for a long poll of idle partitions to end; and a request holds one
// position per partition, so a second reader of a partition goes in the
// next one.
func (f *fetcher) dispatch() time.Duration {
	leaders, err := f.leaders()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.paused {
		return time.Hour // the resume pokes
	}
	if err != nil {
		return 500 * time.Millisecond
	}
	now, soonest := time.Now(), time.Hour
	wanting := map[int32][]*subscription{}
	full := map[int32]bool{} // some partition was left out for a full buffer
	for s := range f.subs {
		if s.inflight || s.err != nil {
			continue
		}
		leader, ok := leaders[partitionKey{s.topic, s.partition}]
		if !ok {
			leader = -1 // unknown yet: the transport fails the request, to retry
		}
		switch {
		case s.bytes >= subBufferBytes:
			full[leader] = true
		case now.Before(s.retryAt):
			soonest = min(soonest, s.retryAt.Sub(now))
		default:
			wanting[leader] = append(wanting[leader], s)
		}
	}
	for leader, subs := range wanting {
		wait := fetchMaxWait
		if full[leader] {
			wait = fetchMaxWaitBusy
		}
		for len(subs) > 0 && f.busy[leader] < maxInflight {
			var reqs []fetchReq
			var rest []*subscription
			in := map[partitionKey]bool{}
			for _, s := range subs {
				k := partitionKey{s.topic, s.partition}
				if in[k] {
					rest = append(rest, s)
					continue
				}
				in[k] = true
				s.inflight = true
				reqs = append(reqs, fetchReq{s, s.next, s.epoch})
			}
			subs = rest
			f.busy[leader]++
			go f.fetch(leader, reqs, wait)
		}
	}
	return soonest
}

// maxInflight bounds the requests in flight to one leader.
const maxInflight = 4

type fetchReq struct {
	s     *subscription
	from  int64
	epoch int
}

// leaders maps each partition of the followed topics to its leader, from
// the transport's metadata (refreshed every MetadataTTL), asked again at
// most every layoutTTL, or sooner when a request failed or a topic was
// missing.
func (f *fetcher) leaders() (map[partitionKey]int32, error) {
	f.mu.Lock()
	if f.layout != nil && !f.staleTopic && time.Since(f.layoutAt) < layoutTTL {
		defer f.mu.Unlock()
		return f.layout, nil
	}
	topics := map[string]bool{}
	for s := range f.subs {
		topics[s.topic] = true
	}
	f.mu.Unlock()
	if len(topics) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := f.transport.RoundTrip(ctx, f.addr, &metadataAPI.Request{TopicNames: names})
	if err != nil {
		return nil, err
	}
	out, stale := map[partitionKey]int32{}, false
	for _, t := range r.(*metadataAPI.Response).Topics {
		stale = stale || t.ErrorCode != 0
		for _, p := range t.Partitions {
			out[partitionKey{t.Name, p.PartitionIndex}] = p.LeaderID
		}
	}
	f.mu.Lock()
	f.layout, f.layoutAt, f.staleTopic = out, time.Now(), stale
	f.mu.Unlock()
	return out, nil
}

// layoutTTL is how long dispatch trusts the leaders it last looked up.
const layoutTTL = 250 * time.Millisecond

// fetch sends one request for reqs to their leader and hands each
// subscription what came for it.
func (f *fetcher) fetch(leader int32, reqs []fetchReq, wait time.Duration) {
	defer func() {
		f.mu.Lock()
		if f.busy[leader]--; f.busy[leader] <= 0 {
			delete(f.busy, leader)
		}
		for _, r := range reqs {
			r.s.inflight = false
		}
		f.mu.Unlock()
		f.poke()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), wait+30*time.Second)
	defer cancel()
	for i := range reqs {
		if reqs[i].from < 0 {
			if err := f.resolve(ctx, &reqs[i]); err != nil {
				f.retryLater(reqs[i:i+1], err)
				return
			}
		}
	}
	req := &fetchAPI.Request{ReplicaID: -1, MaxWaitTime: int32(wait.Milliseconds()), MinBytes: 1, MaxBytes: fetchMaxBytes, SessionID: -1, SessionEpoch: -1}
	for topic, rs := range byTopic(reqs, func(r fetchReq) string { return r.s.topic }) {
		t := fetchAPI.RequestTopic{Topic: topic}
		for _, r := range rs {
			t.Partitions = append(t.Partitions, fetchAPI.RequestPartition{
				Partition: r.s.partition, CurrentLeaderEpoch: -1, FetchOffset: r.from, LogStartOffset: -1, PartitionMaxBytes: subBufferBytes,
			})
		}
		req.Topics = append(req.Topics, t)
	}
	traffic.fetches.Add(1)
	m, err := f.transport.RoundTrip(ctx, f.addr, req)
	if err != nil {
		f.retryLater(reqs, err)
		return
	}
	resp := m.(*fetchAPI.Response)
	parts := map[partitionKey]*fetchAPI.ResponsePartition{}
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for pi := range t.Partitions {
			parts[partitionKey{t.Topic, t.Partitions[pi].Partition}] = &t.Partitions[pi]
		}
	}
	for _, r := range reqs {
		p := parts[partitionKey{r.s.topic, r.s.partition}]
		if p == nil {
			f.retryLater([]fetchReq{r}, kgo.NotLeaderForPartition)
			continue
		}
		f.deliver(ctx, r, p)
	}
}

// resolve turns FirstOffset or LastOffset into the partition's offset.
func (f *fetcher) resolve(ctx context.Context, r *fetchReq) error {
	span, err := PartitionOffsets(ctx, f.brokers, r.s.topic, int(r.s.partition))
	if err != nil {
		return err
	}
	off := span.First
	if r.from == kgo.LastOffset {
		off = span.Next
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.s.epoch == r.epoch {
		r.s.next = off
		if r.s.taken < 0 {
			r.s.taken = off
		}
	}
	r.from = off
	return nil
}

// deliver hands a partition's answer to its subscription.
func (f *fetcher) deliver(ctx context.Context, r fetchReq, p *fetchAPI.ResponsePartition) {
	switch code := kgo.Error(p.ErrorCode); {
	case p.ErrorCode == 0:
	case code == kgo.OffsetOutOfRange:
		f.outOfRange(ctx, r)
		return
	case code.Temporary() || code == kgo.UnknownTopicOrPartition || code == kgo.NotLeaderForPartition:
		f.retryLater([]fetchReq{r}, code)
		return
	default:
		f.fail(r, fmt.Errorf("fetch %s/%d@%d: %w", r.s.topic, r.s.partition, r.from, code))
		return
	}
	msgs, err := records(r, p)
	traffic.fetched.Add(int64(len(msgs))) // from the broker, whether or not a reader takes them
	f.mu.Lock()
	defer f.mu.Unlock()
	s := r.s
	if s.closed || s.epoch != r.epoch {
		return
	}
	if err != nil && len(msgs) == 0 {
		s.retryAt = time.Now().Add(100 * time.Millisecond)
		return
	}
	if len(msgs) == 0 {
		return
	}
	for _, m := range msgs {
		s.bytes += len(m.Key) + len(m.Value)
	}
	s.buf = append(s.buf, msgs...)
	s.next = msgs[len(msgs)-1].Offset + 1
	close(s.ready)
	s.ready = make(chan struct{})
}

// records decodes a partition's records from r.from on.
func records(r fetchReq, p *fetchAPI.ResponsePartition) ([]Message, error) {
	rs := p.RecordSet.Records
	if rs == nil {
		return nil, nil
	}
	var out []Message
	for {
		rec, err := rs.ReadRecord()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("decode %s/%d: %w", r.s.topic, r.s.partition, err)
		}
		if rec.Offset < r.from {
			closeRecord(rec)
			continue // the start of a batch the offset is inside
		}
		m := Message{Topic: r.s.topic, Partition: int(r.s.partition), Offset: rec.Offset, HighWaterMark: p.HighWatermark, Time: rec.Time, Headers: rec.Headers}
		m.Key, err = protocol.ReadAll(rec.Key)
		if err == nil {
			m.Value, err = protocol.ReadAll(rec.Value)
		}
		closeRecord(rec)
		if err != nil {
			return out, fmt.Errorf("decode %s/%d@%d: %w", r.s.topic, r.s.partition, rec.Offset, err)
		}
		out = append(out, m)
	}
}

func closeRecord(rec *protocol.Record) {
	if rec.Key != nil {
		rec.Key.Close()
	}
	if rec.Value != nil {
		rec.Value.Close()
	}
}

// outOfRange moves a subscription whose offset the partition no longer (or
// not yet) holds to the nearest one it does: its first record when the
// offset was removed by retention, its end when the offset is past it.
func (f *fetcher) outOfRange(ctx context.Context, r fetchReq) {
	span, err := PartitionOffsets(ctx, f.brokers, r.s.topic, int(r.s.partition))
	if err != nil {
		f.retryLater([]fetchReq{r}, err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.s.epoch != r.epoch {
		return
	}
	if r.from < span.First {
		r.s.next = span.First
	} else {
		r.s.next = span.Next
	}
	if len(r.s.buf) == 0 {
		r.s.taken = r.s.next
	}
}

// retryDelay is how long a partition whose leader is away or moving waits
// before it is fetched again.
const retryDelay = 200 * time.Millisecond

// retryLater makes reqs' subscriptions wait before their next request: the
// leader is away or moving, which the metadata will tell soon.
func (f *fetcher) retryLater(reqs []fetchReq, _ error) {
	at := time.Now().Add(retryDelay)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.layout = nil // look the leaders up again
	for _, r := range reqs {
		if r.s.epoch == r.epoch {
			r.s.retryAt = at
		}
	}
}

// fail hands the reader an error that waiting will not mend.
func (f *fetcher) fail(r fetchReq, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.s.epoch != r.epoch || r.s.closed {
		return
	}
	r.s.err = err
	close(r.s.ready)
	r.s.ready = make(chan struct{})
}
