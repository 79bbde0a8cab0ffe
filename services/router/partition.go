package router

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/backoff"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/pkg/telemetry"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// Throughput a tenant may use ahead of its rate before messages are held:
// a burst of rate × burstTolerance parts.
const burstTolerance = 100 * time.Millisecond

// releaseChunk bounds the held messages released in one go, so that an otp
// batch waits for at most one chunk.
const releaseChunk = 2000

// commitEvery is how often a partition commits what it has written: a
// crash replays at most that much more (quota states skip what they
// counted, by offset). The schedule, whose commit walks every held entry,
// is committed every commitScheduleEvery.
const (
	commitEvery         = 100 * time.Millisecond
	commitScheduleEvery = time.Second
)

// bulkChunk bounds the bulk messages decided between two looks at the otp
// intake; fetchMax bounds a batch.
const (
	bulkChunk = 2500
	fetchMax  = 10000
)

// Reasons of final statuses the router gives.
const (
	reasonNoRoute  = "no_route"
	reasonOptedOut = "opted_out"
	reasonQuota    = "quota_exceeded"
	reasonValidity = "validity_expired"
	// Every carrier of the route refused the message for good.
	reasonNoCarrierLeft = "no_carrier_left"
)

// partition is one router partition: partition n of the otp and bulk
// intakes, of the schedule and of the quota changelog, all keyed by tenant,
// so that it alone decides for its tenants. otp is always read first.
type partition struct {
	r        *router
	claim    *kafka.Claim
	otp      string
	bulk     string
	sched    string
	quotaTop string
	held     *holding
	quota    map[string]*sluicepb.TenantState
	tat      map[string]time.Time // tenant/lane → when its throughput is next free
	schedPos int64                // next schedule offset to read back
	schedLow int64                // schedule offset last committed
	ckptPos  int64                // schedule offset of the store's last checkpoint
	ckpt     chan checkpointed    // the checkpoint under way, if any
	done     map[string]int64     // intake topic → next offset to commit (written, not yet committed)
	schedAt  time.Time            // when the schedule was last committed
	counted  int64                // held messages in the backlog gauge
	writing  []*inFlight          // release chunks being written, oldest first
}

// countBacklog brings the schedule backlog gauge up to date.
func (p *partition) countBacklog() {
	n := p.held.len()
	p.r.metrics.backlog.Add(n - p.counted)
	p.counted = n
}

// writes collects what a batch produces.
type writes struct {
	out []kafka.Message
	// released are the messages taken out of the schedule, by tenant:
	// their markers (one per tenant) are written after out, since a marker
	// durable without the message it releases would lose the message to a
	// crash (the restart takes it as sent).
	released map[string][]string
	touched  map[string]bool // quota tenants whose state changed
}

func (r *router) runPartition(ctx context.Context, c *kafka.Claim) error {
	p := &partition{
		r: r, claim: c,
		otp: r.env.Topic(schemas.TopicRouterOTP), bulk: r.env.Topic(schemas.TopicRouterBulk),
		sched: r.env.Topic(schemas.TopicRouterSched), quotaTop: r.env.Topic(schemas.TopicRouterQuota),
		quota: map[string]*sluicepb.TenantState{}, tat: map[string]time.Time{},
		schedLow: -1, ckptPos: -1, done: map[string]int64{},
	}
	st := r.db.Store(scheduleTable, c.Partition, p.sched, heldMeta)
	defer st.Release()
	p.held = newHolding(st)
	// A partition that cannot be restored is retried, not dropped: the group
	// would not hand it to anyone else until the next rebalance.
	err := backoff.Retry(ctx, time.Second, 30*time.Second, func() error {
		if err := p.restoreQuota(ctx); err != nil {
			return err
		}
		return p.restoreSchedule(ctx)
	}, func(err error) {
		r.env.Log.Error("router partition not restored; retrying", "partition", c.Partition, "err", err)
		p.held, p.quota, p.tat = newHolding(st), map[string]*sluicepb.TenantState{}, map[string]time.Time{}
	})
	if err != nil {
		return err
	}
	p.countBacklog()
	defer func() { r.metrics.backlog.Add(-p.counted) }()
	r.env.Log.Info("router partition ready", "partition", c.Partition, "held", p.held.len(), "quota_tenants", len(p.quota))
	return p.loop(ctx)
}

// restoreQuota reads this partition's quota changelog.
func (p *partition) restoreQuota(ctx context.Context) error {
	_, err := kafka.ReadRange(ctx, p.r.env.Cfg.Kafka.Brokers, p.quotaTop, p.claim.Partition, kafka.FirstOffset, func(rec kafka.Message) error {
		if rec.Value == nil {
			delete(p.quota, string(rec.Key))
			return nil
		}
		var st sluicepb.TenantState
		if err := proto.Unmarshal(rec.Value, &st); err != nil {
			return fmt.Errorf("quota changelog %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
		}
		if st.NextOffsets == nil {
			st.NextOffsets = map[string]int64{}
		}
		p.quota[st.Tenant] = &st
		return nil
	})
	return err
}

// restoreSchedule brings the partition's schedule table up to the end of
// the schedule topic, before anything is released, so that a release marker
// always meets its entry first: from the store's checkpoint when the topic
// still holds it, else into an emptied table from the committed offset (the
// first entry still held at the last commit).
func (p *partition) restoreSchedule(ctx context.Context) error {
	brokers := p.r.env.Cfg.Kafka.Brokers
	st := p.held.st
	span, err := kafka.PartitionOffsets(ctx, brokers, p.sched, p.claim.Partition)
	if err != nil {
		return err
	}
	from, ok, err := st.Checkpoint()
	switch {
	case err != nil:
		return err
	case ok && from >= span.First && from <= span.Next:
		if err := p.held.loadTat(p.tat); err != nil {
			return err
		}
	default:
		if err := st.Wipe(); err != nil {
			return err
		}
		if from = p.claim.Offset(p.sched); from < span.First || from > span.Next {
			from = span.First
		}
	}
	fixed := map[string]bool{}
	end, _, err := st.Replay(ctx, brokers, from, func(t *state.Txn, rec kafka.Message) error {
		tenant, err := p.readBack(t, rec)
		if tenant != "" {
			fixed[tenant] = true
		}
		return err
	})
	if err != nil {
		return err
	}
	p.schedPos = end
	if err := p.claim.Seek(p.sched, end); err != nil {
		return err
	}
	p.held.restoredAt = p.r.now()
	// Counts a marker raised are written before the checkpoint that skips
	// the marker at the next restore.
	if err := p.produce(ctx, p.quotaStates(fixed)); err != nil {
		return err
	}
	return p.checkpoint()
}

// scheduleTable is the schedule's key prefix in the process's store.
const scheduleTable = 'h'

// readBack applies a schedule record in t, and returns the tenant whose
// quota count its marker raised, if any.
func (p *partition) readBack(t *state.Txn, rec kafka.Message) (string, error) {
	var h sluicepb.Held
	if err := proto.Unmarshal(rec.Value, &h); err != nil {
		return "", fmt.Errorf("schedule %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	if err := p.held.readBack(t, &h, rec.Offset, rec.Headers); err != nil {
		return "", err
	}
	p.schedPos = rec.Offset + 1
	if h.GetReason() == holdThrottled {
		p.keepSlot(&h)
	}
	if h.QuotaDay != "" && p.countRelease(string(rec.Key), h.QuotaDay, h.QuotaCount) {
		return string(rec.Key), nil
	}
	return "", nil
}

// keepSlot makes sure the tenant's throughput clock is past a throttled
// entry's slot, which it reserved when first held.
func (p *partition) keepSlot(h *sluicepb.Held) {
	m := h.GetMessage()
	t := p.r.policy.Load().tenants[m.GetTenant()]
	if t.RateLimit <= 0 {
		return
	}
	key := tatKey(m)
	p.tat[key] = later(p.tat[key], time.UnixMilli(h.GetDueMs()).Add(cost(m, t.RateLimit)))
}

// readBackBatch applies schedule records the partition wrote and read back.
func (p *partition) readBackBatch(batch []kafka.Message) error {
	t := p.held.st.Begin()
	defer t.Discard()
	for _, rec := range batch {
		if _, err := p.readBack(t, rec); err != nil {
			return err
		}
	}
	return t.Commit()
}

// loop serves the partition until its generation or the process ends.
func (p *partition) loop(ctx context.Context) error {
	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	defer p.dropRelease()
	defer func() { _ = p.awaitCheckpoint() }() // the store outlives no checkpoint
	otp := p.fetch(fctx, &wg, p.otp, time.Millisecond)
	bulk := p.fetch(fctx, &wg, p.bulk, time.Millisecond)
	sched := p.fetch(fctx, &wg, p.sched, time.Millisecond)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	tick := time.NewTicker(commitEvery)
	defer tick.Stop()
	for {
		p.countBacklog()
		select { // otp first, whatever else is waiting
		case b := <-otp:
			if err := p.lane(ctx, p.otp, b); err != nil {
				return err
			}
			continue
		default:
		}
		more, blocked, err := p.release(ctx)
		if err != nil {
			return err
		}
		switch {
		case blocked:
			timer.Reset(time.Hour) // the oldest chunk's write wakes the loop
		case more:
			timer.Reset(0)
		default:
			next, ok, err := p.held.next()
			if err != nil {
				return err
			}
			if ok {
				timer.Reset(max(time.Until(next), 0))
			} else {
				timer.Reset(time.Hour)
			}
		}
		var written <-chan struct{}
		if len(p.writing) > 0 {
			written = p.writing[0].done
		}
		select {
		case b := <-otp:
			err = p.lane(ctx, p.otp, b)
		case <-written:
			err = p.awaitReleases(len(p.writing) - 1)
		case b := <-bulk:
			err = p.bulkLane(ctx, b, otp)
		case b := <-sched:
			err = p.readBackBatch(b)
		case <-timer.C:
		case <-tick.C:
			if cerr := p.commit(); cerr != nil && ctx.Err() == nil {
				// Kept for the next tick: a worker that returned would leave
				// the partition idle until the next rebalance.
				p.r.env.Log.Warn("router commit failed; retrying", "partition", p.claim.Partition, "err", cerr)
			}
		case <-ctx.Done():
			p.schedAt = time.Time{}
			return p.commit()
		}
		if err != nil {
			return err
		}
	}
}

// fetch reads topic in batches on its own goroutine, so that the loop can
// choose which topic to serve. While the loop is busy the batch in hand
// keeps growing (up to fetchMax): a batch costs a round trip, whatever its
// size.
func (p *partition) fetch(ctx context.Context, wg *sync.WaitGroup, topic string, linger time.Duration) <-chan []kafka.Message {
	// One batch waits in the channel while the next one grows: the loop's
	// look at otp does not block, so a batch must be there to be seen.
	ch := make(chan []kafka.Message, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var pending []kafka.Message
		for ctx.Err() == nil {
			if len(pending) > 0 {
				full := len(pending) >= fetchMax
				select {
				case ch <- pending:
					pending = nil
					continue
				case <-ctx.Done():
					return
				default:
				}
				if full {
					select {
					case ch <- pending:
						pending = nil
					case <-ctx.Done():
						return
					}
					continue
				}
			}
			wait := time.Hour
			if len(pending) > 0 {
				wait = linger // the loop is busy: gather more meanwhile
			}
			b, err := p.claim.FetchBatch(ctx, topic, wait, kafka.BatchOptions{Max: fetchMax - len(pending), Linger: linger})
			if err != nil && ctx.Err() == nil {
				p.r.env.Log.Warn("router fetch failed; fetching again", "topic", topic, "partition", p.claim.Partition, "err", err)
			}
			pending = append(pending, b...)
		}
	}()
	return ch
}

// lane decides a batch of an intake topic and writes the outcome; the loop
// commits it.
func (p *partition) lane(ctx context.Context, topic string, batch []kafka.Message) error {
	pol := p.r.policy.Load()
	now := p.r.now()
	w := &writes{touched: map[string]bool{}}
	for _, rec := range batch {
		var m sluicepb.Message
		if err := proto.Unmarshal(rec.Value, &m); err != nil {
			// The router's own intake wrote it from a record it decoded.
			return fmt.Errorf("decode %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
		}
		if st, ok := p.quota[m.Tenant]; ok && rec.Offset < st.NextOffsets[topic] {
			continue // decided and written before a restart: its quota count has it
		}
		if pol.tenants[m.Tenant].DailyQuota > 0 {
			p.state(m.Tenant, now)
			w.touched[m.Tenant] = true
		}
		p.decide(ctx, pol, w, &m, rec.Headers, now, nil)
	}
	next := batch[len(batch)-1].Offset + 1
	for tenant := range w.touched {
		p.quota[tenant].NextOffsets[topic] = next
	}
	if err := p.flush(ctx, w); err != nil {
		return err
	}
	// Committed by the loop every commitEvery: a commit is a round trip
	// to the group coordinator, shared by every partition of the process.
	p.done[topic] = next
	return nil
}

// commit commits the intake offsets whose records are written, and the
// schedule's.
func (p *partition) commit() error {
	for topic, next := range p.done {
		if err := p.claim.Commit(topic, next); err != nil {
			return err
		}
		delete(p.done, topic)
	}
	if time.Since(p.schedAt) < commitScheduleEvery {
		return nil
	}
	// The checkpoint covers the markers read back: their releases first.
	if err := p.awaitReleases(0); err != nil {
		return err
	}
	if p.schedAt.IsZero() { // stopping: one last checkpoint, waited for
		p.schedAt = time.Now()
		return p.checkpoint()
	}
	p.schedAt = time.Now()
	return p.commitSchedule()
}

// bulkLane decides a bulk batch a chunk at a time, taking any otp batch
// that arrives in between first.
func (p *partition) bulkLane(ctx context.Context, batch []kafka.Message, otp <-chan []kafka.Message) error {
	for len(batch) > 0 {
		n := min(len(batch), bulkChunk)
		if err := p.lane(ctx, p.bulk, batch[:n]); err != nil {
			return err
		}
		batch = batch[n:]
		select {
		case b := <-otp:
			if err := p.lane(ctx, p.otp, b); err != nil {
				return err
			}
		default:
		}
	}
	return nil
}

// release decides the held messages that are due, one chunk at a time, and
// tells whether more are due, or whether it is blocked until the oldest
// chunk in flight is written. It never waits for a write itself (but for a
// chunk that counts quotas, see awaitFor): the loop serves otp meanwhile.
func (p *partition) release(ctx context.Context) (more, blocked bool, err error) {
	if len(p.writing) >= maxReleasesInFlight {
		return false, true, nil
	}
	now := p.r.now()
	rel, err := p.held.due(now, releaseChunk)
	if err != nil {
		return false, false, err
	}
	if len(rel.entries) == 0 {
		rel.abort()
		// What is due may all be in the chunks in flight: once they are
		// written, look again.
		return false, len(p.writing) > 0, nil
	}
	pol := p.r.policy.Load()
	w := &writes{touched: map[string]bool{}}
	for _, e := range rel.entries {
		p.decide(ctx, pol, w, e.msg, e.headers, now, e)
	}
	if err := p.awaitFor(w, maxReleasesInFlight-1); err != nil {
		rel.abort()
		return false, false, err
	}
	batches := p.records(w)
	wctx, cancel := context.WithCancel(ctx)
	f := &inFlight{rel: rel, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(f.done)
		f.err = p.write(wctx, batches)
	}()
	p.writing = append(p.writing, f)
	return len(rel.entries) == releaseChunk, false, nil
}

// maxReleasesInFlight bounds the release chunks being written at once: a
// chunk costs two produce round trips (records, then markers), and the
// next ones are decided and written meanwhile.
const maxReleasesInFlight = 2

// awaitFor makes room for a write: with quota states it waits for every
// chunk in flight, so that the states reach their changelog in order;
// otherwise until at most keep are left.
func (p *partition) awaitFor(w *writes, keep int) error {
	if len(w.touched) > 0 {
		keep = 0
	}
	return p.awaitReleases(keep)
}

// inFlight is a release chunk whose records are being written: err is
// the write's outcome once done is closed.
type inFlight struct {
	rel    *release
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

// awaitReleases waits for the oldest release chunks in flight until at
// most keep are left, letting the store forget each one's entries once its
// records and markers are written, in the order the chunks were taken: a
// chunk's timers come before the next one's, and the table's floor moves
// past them. A failed chunk fails the partition, which restarts from the
// store as committed.
func (p *partition) awaitReleases(keep int) error {
	for len(p.writing) > keep {
		f := p.writing[0]
		p.writing = p.writing[1:]
		<-f.done
		err := f.err
		f.cancel()
		if err == nil {
			err = f.rel.commit()
		}
		if err != nil {
			f.rel.abort()
			return err
		}
	}
	return nil
}

// dropRelease stops writing the chunks in flight when the loop ends on an
// error: their entries stay in the store, to be released again.
func (p *partition) dropRelease() {
	for _, f := range p.writing {
		f.cancel()
		<-f.done
		f.rel.abort()
	}
	p.writing = nil
}

// decide settles one message: onto its carrier's lane, to a final status,
// or into the schedule. e is its schedule entry when it comes from there.
func (p *partition) decide(ctx context.Context, pol *policy, w *writes, m *sluicepb.Message, headers []kafka.Header, now time.Time, e *held) {
	ctx = telemetry.Extract(ctx, headers)
	ctx, span := p.r.tracer.Start(ctx, "router.route", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("sluice.message_id", m.Id), attribute.String("sluice.tenant", m.Tenant)))
	defer span.End()
	tenant := pol.tenants[m.Tenant]
	marketing := m.Priority == sluicepb.Priority_PRIORITY_MARKETING

	switch {
	case m.ExpiresAtMs > 0 && now.UnixMilli() > m.ExpiresAtMs:
		p.final(ctx, w, m, message.StatusExpired, reasonValidity, now, e)
		return
	case len(m.FailedCarriers) > 0:
		// Back from a sender after a permanent routing error: it was
		// counted, scheduled and paced when first routed.
		p.send(ctx, w, pol, m, now, e)
		return
	case !pol.table.Routable(m.To):
		p.final(ctx, w, m, message.StatusRejected, reasonNoRoute, now, e)
		return
	case marketing && p.r.optOuts.has(m.Tenant, m.To):
		p.final(ctx, w, m, message.StatusRejected, reasonOptedOut, now, e)
		return
	case m.SendAtMs > now.UnixMilli():
		p.wait(ctx, w, m, now, time.UnixMilli(m.SendAtMs), holdSendAt, false, e)
		return
	}
	if marketing {
		if end, quiet := pol.quiet.Until(m.Country, now); quiet {
			p.wait(ctx, w, m, now, end, holdQuietHours, false, e)
			return
		}
	}
	if tenant.RateLimit > 0 && (e == nil || !e.reserved) {
		slot := p.reserve(m, tenant.RateLimit, now)
		if slot.After(now.Add(burstTolerance)) {
			p.wait(ctx, w, m, now, slot, holdThrottled, true, e)
			return
		}
	}
	if tenant.DailyQuota > 0 {
		st := p.state(m.Tenant, now)
		w.touched[m.Tenant] = true
		if st.Count >= uint64(tenant.DailyQuota) {
			p.final(ctx, w, m, message.StatusRejected, reasonQuota, now, e)
			return
		}
		st.Count++
	}
	p.send(ctx, w, pol, m, now, e)
}

// send puts a message on its carrier's lane.
func (p *partition) send(ctx context.Context, w *writes, pol *policy, m *sluicepb.Message, now time.Time, e *held) {
	h := p.r.health
	carrier, reason, ok := pol.table.Pick(m.To, m.Id, func(c string) bool { return h.down(c, now, pol.failoverAfter) }, m.FailedCarriers)
	if !ok {
		status, why := message.StatusRejected, reasonNoRoute
		if len(m.FailedCarriers) > 0 {
			status, why = message.StatusFailed, reasonNoCarrierLeft
		}
		p.final(ctx, w, m, status, why, now, e)
		return
	}
	m.Carrier, m.RouteReason = carrier, reason
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("sluice.carrier", carrier))
	value, err := proto.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("router: encode a decoded message: %v", err)) // cannot happen: it was just decoded
	}
	lane := Lane(m.Priority)
	out := kafka.Message{Topic: schemas.OutboundTopic(p.r.env.Cfg.Kafka.TopicPrefix, carrier, lane), Key: []byte(m.Id), Value: value}
	telemetry.Inject(ctx, &out.Headers)
	w.out = append(w.out, out)
	if p.r.env.Cfg.Router.ReplyWindow > 0 {
		w.out = append(w.out, p.conversation(m, now))
	}
	p.released(w, m, e)
	p.r.metrics.route(ctx, carrier, lane, howOf(reason))
}

// conversation records that m's tenant messaged m.To, for the dlr's MO
// stage (in_reply_to). It is written with the routed message, before the
// carrier can have it, so it is in the log before any reply can be.
func (p *partition) conversation(m *sluicepb.Message, now time.Time) kafka.Message {
	value, err := proto.Marshal(&sluicepb.Conversation{Tenant: m.Tenant, MessageId: m.Id, SentAtMs: now.UnixMilli()})
	if err != nil {
		panic(fmt.Sprintf("router: encode a conversation: %v", err)) // cannot happen: three plain fields
	}
	return kafka.Message{Topic: p.r.env.Topic(schemas.TopicConversations), Key: []byte(m.To), Value: value}
}

// wait puts a message in the schedule until due, or, when it comes from
// there, moves its entry.
func (p *partition) wait(ctx context.Context, w *writes, m *sluicepb.Message, now, due time.Time, reason string, reserved bool, e *held) {
	p.r.metrics.hold(ctx, m.Tenant, reason, due.Sub(now))
	if e != nil {
		e.rel.later(e, due, reason, reserved)
		return
	}
	value, err := proto.Marshal(&sluicepb.Held{Message: m, DueMs: due.UnixMilli(), Reason: reason, MessageId: m.Id})
	if err != nil {
		panic(fmt.Sprintf("router: encode schedule entry: %v", err)) // cannot happen: plain values
	}
	rec := kafka.Message{Topic: p.sched, Key: []byte(m.Tenant), Value: value}
	telemetry.Inject(ctx, &rec.Headers)
	w.out = append(w.out, rec) // held from when the partition reads it back
	if reason != holdThrottled {
		p.status(w, m, message.StatusScheduled, reason, now)
	}
}

// final ends a message with a status.
func (p *partition) final(ctx context.Context, w *writes, m *sluicepb.Message, status, reason string, now time.Time, e *held) {
	p.status(w, m, status, reason, now)
	p.released(w, m, e)
	if status == message.StatusExpired {
		p.r.metrics.expired.Add(ctx, 1)
	} else {
		p.r.metrics.reject(ctx, reason)
	}
}

func (p *partition) status(w *writes, m *sluicepb.Message, status, reason string, now time.Time) {
	st := message.StatusOf(m, status, now)
	st.Reason = reason
	value, err := st.Marshal()
	if err != nil {
		panic(fmt.Sprintf("router: encode status: %v", err)) // cannot happen: plain values
	}
	w.out = append(w.out, kafka.Message{Topic: p.r.env.Topic(schemas.TopicStatus), Key: []byte(m.Id), Value: value})
}

// released takes a message out of the schedule: its tenant's marker names
// it.
func (p *partition) released(w *writes, m *sluicepb.Message, e *held) {
	if e == nil {
		return
	}
	if w.released == nil {
		w.released = map[string][]string{}
	}
	w.released[m.Tenant] = append(w.released[m.Tenant], m.Id)
	e.rel.done(e)
}

// markers are the release markers of a batch, one per tenant: one record
// for a chunk's messages instead of one each. A tenant with a daily quota
// has its count after the batch on it.
func (p *partition) markers(w *writes) []kafka.Message {
	out := make([]kafka.Message, 0, len(w.released))
	for _, tenant := range slices.Sorted(maps.Keys(w.released)) {
		marker := &sluicepb.Held{Released: true, ReleasedIds: w.released[tenant]}
		if w.touched[tenant] {
			st := p.quota[tenant]
			marker.QuotaDay, marker.QuotaCount = st.Day, st.Count
		}
		value, err := proto.Marshal(marker)
		if err != nil {
			panic(fmt.Sprintf("router: encode release marker: %v", err)) // cannot happen: plain values
		}
		out = append(out, kafka.Message{Topic: p.sched, Key: []byte(tenant), Value: value})
	}
	return out
}

// flush writes a batch's records, then the release markers of what it took
// from the schedule, then the quota states that count them: a crash in
// between replays the batch, which the markers and states do not cover yet.
func (p *partition) flush(ctx context.Context, w *writes) error {
	if err := p.awaitFor(w, len(p.writing)); err != nil {
		return err
	}
	return p.write(ctx, p.records(w))
}

// records are a batch's writes, in the order they must be durable.
func (p *partition) records(w *writes) [][]kafka.Message {
	return [][]kafka.Message{w.out, p.markers(w), p.quotaStates(w.touched)}
}

// write writes batches one after the other.
func (p *partition) write(ctx context.Context, batches [][]kafka.Message) error {
	for _, b := range batches {
		if err := p.produce(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// quotaStates are the quota changelog records of tenants.
func (p *partition) quotaStates(tenants map[string]bool) []kafka.Message {
	states := make([]kafka.Message, 0, len(tenants))
	for tenant := range tenants {
		value, err := proto.Marshal(p.quota[tenant])
		if err != nil {
			panic(fmt.Sprintf("router: encode quota state: %v", err)) // cannot happen: plain values
		}
		states = append(states, kafka.Message{Topic: p.quotaTop, Key: []byte(tenant), Value: value})
	}
	return states
}

// produce writes records, retrying until they are written or the partition
// is no longer ours: the decisions behind them are already taken.
func (p *partition) produce(ctx context.Context, recs []kafka.Message) error {
	return backoff.Retry(ctx, 100*time.Millisecond, 5*time.Second, func() error {
		return p.r.env.Producer.Produce(context.WithoutCancel(ctx), recs...)
	}, func(err error) {
		p.r.env.Log.Error("router write failed; retrying", "partition", p.claim.Partition, "records", len(recs), "err", err)
	})
}

// commitSchedule takes the outcome of the last checkpoint, if it has
// ended, moving the schedule's committed offset to the first entry still
// held then (so that a restart with an empty store reads back exactly what
// is held), and starts the next one. A checkpoint syncs the store and walks
// its index to that first entry: it runs beside the loop, not in otp's way.
func (p *partition) commitSchedule() error {
	if p.schedPos < 0 {
		return nil // nothing read yet: the committed offset stands
	}
	if p.ckpt != nil {
		select {
		case r := <-p.ckpt:
			p.ckpt = nil
			if err := p.tookCheckpoint(r); err != nil {
				return err
			}
		default:
			return nil // the last one is still under way
		}
	}
	if p.schedPos == p.ckptPos {
		return nil
	}
	pos, tat := p.schedPos, maps.Clone(p.tat)
	p.ckpt = make(chan checkpointed, 1)
	go func(done chan<- checkpointed) { done <- p.held.checkpoint(pos, tat) }(p.ckpt)
	return nil
}

// checkpointed is a checkpoint's outcome: the offset it covers, the first
// entry still held then, and its failure.
type checkpointed struct {
	pos, low int64
	err      error
}

// tookCheckpoint records a checkpoint that ended.
func (p *partition) tookCheckpoint(r checkpointed) error {
	if r.err != nil {
		return r.err
	}
	p.ckptPos = max(p.ckptPos, r.pos)
	if r.low == p.schedLow {
		return nil
	}
	if err := p.claim.Commit(p.sched, r.low); err != nil {
		return err
	}
	p.schedLow = r.low
	return nil
}

// checkpoint takes a checkpoint at once, waiting for the one under way
// first: at a restore and when the partition stops.
func (p *partition) checkpoint() error {
	if err := p.awaitCheckpoint(); err != nil {
		return err
	}
	if p.schedPos < 0 || p.schedPos == p.ckptPos {
		return nil
	}
	return p.tookCheckpoint(p.held.checkpoint(p.schedPos, p.tat))
}

// awaitCheckpoint waits for the checkpoint under way, if any.
func (p *partition) awaitCheckpoint() error {
	if p.ckpt == nil {
		return nil
	}
	r := <-p.ckpt
	p.ckpt = nil
	return p.tookCheckpoint(r)
}

// countRelease makes sure a tenant's quota count includes a release whose
// marker says what the count was after it (the quota changelog record that
// follows a release batch may not have been written), and tells whether
// that raised it.
func (p *partition) countRelease(tenant, day string, count uint64) bool {
	st, ok := p.quota[tenant]
	if !ok {
		st = &sluicepb.TenantState{Tenant: tenant, NextOffsets: map[string]int64{}}
		p.quota[tenant] = st
	}
	switch {
	case day > st.Day:
		st.Day, st.Count = day, count
	case day == st.Day && count > st.Count:
		st.Count = count
	default:
		return false
	}
	return true
}

// state returns a tenant's quota state for the UTC day of now.
func (p *partition) state(tenant string, now time.Time) *sluicepb.TenantState {
	day := now.UTC().Format(time.DateOnly)
	st, ok := p.quota[tenant]
	if !ok {
		st = &sluicepb.TenantState{Tenant: tenant, NextOffsets: map[string]int64{}}
		p.quota[tenant] = st
	}
	if st.Day != day {
		st.Day, st.Count = day, 0
	}
	return st
}

// reserve takes a message's share of its tenant's throughput and returns
// when it may go. Each lane keeps its own virtual clock (when the tenant's
// throughput is next free) so that otp never waits behind the tenant's own
// held bulk; otp still pushes the bulk clock back by what it uses.
func (p *partition) reserve(m *sluicepb.Message, rate int, now time.Time) time.Time {
	c := cost(m, rate)
	key := tatKey(m)
	slot := later(now, p.tat[key])
	p.tat[key] = slot.Add(c)
	if m.Priority == sluicepb.Priority_PRIORITY_OTP {
		bulk := m.Tenant + "/" + schemas.LaneBulk
		p.tat[bulk] = later(now, p.tat[bulk]).Add(c)
	}
	return slot
}

func tatKey(m *sluicepb.Message) string { return m.Tenant + "/" + Lane(m.Priority) }

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// cost is the time a message takes of its tenant's throughput.
func cost(m *sluicepb.Message, rate int) time.Duration {
	return time.Duration(max(m.Segments, 1)) * time.Second / time.Duration(rate)
}

// howOf sums up a route reason for a metric label.
func howOf(reason string) string {
	for _, how := range []string{"failover", "every carrier down", "among carriers up"} {
		if strings.Contains(reason, how) {
			return how
		}
	}
	return "weighted"
}
