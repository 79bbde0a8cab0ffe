package sender

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/backoff"
	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/telemetry"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

const (
	commitInterval = 200 * time.Millisecond
	// drainTimeout bounds how long a stopping slot waits for answers to its
	// in-flight submits, and unbindTimeout how long its unbind may take. Their
	// sum stays under the consumer group's 10 s rebalance timeout: the old
	// owner of a slot has unbound before the group hands the slot to anyone
	// else, so a rebalance never shows the carrier an extra bind.
	drainTimeout  = 5 * time.Second
	unbindTimeout = 2 * time.Second
	healthEvery   = 10 * time.Second
	// minPublishAhead is the fewest messages a slot lets wait for Kafka once
	// answered, so that small windows still overlap submits and writes.
	minPublishAhead = 64
	maxRetryDelay   = 10 * time.Minute
)

// publishAhead bounds a slot's messages whose submits are answered and whose
// results are being written to Kafka.
func publishAhead(c config.Carrier) int { return max(c.Window, minPublishAhead) }

// Unrecorded is the most submits of a carrier that a crash of every sender
// can leave sent but not recorded in Kafka, hence sent again after the
// restart: per bind, the window in flight and the answered ones waiting
// for Kafka.
func Unrecorded(c config.Carrier) int { return c.Binds * (c.Window + publishAhead(c)) }

// Lanes of a slot, in the order they are served.
const (
	laneOTP = iota
	laneRetry
	laneBulk
	laneCount
)

// slot is one bind slot: partition i of a carrier's lanes, one bind, paced at
// tps/binds.
type slot struct {
	carrier config.Carrier // with defaults
	claim   *kafka.Claim
	lanes   [laneCount]string // topic names
	env     *carrierEnv
	pace    *pacer
	binder  *binder // the bind submits go through
	rx      *binder // with bind_mode transmitter_receiver, the receiver bind; else nil
	attrs   slotAttrs
	recent  *recentIDs
	pub     *publisher // results and receipts go to Kafka through it
	log     *slog.Logger
}

// carrierEnv is what every slot of a carrier shares.
type carrierEnv struct {
	prefix   string
	producer *kafka.Producer
	tracer   trace.Tracer
	m        *metrics
	now      func() time.Time
}

type laneRecord struct {
	lane int
	from int // first segment to send: past 0 when a retry resumes a long message
	rec  kafka.Message
}

// run serves the slot until ctx ends (a stop or a rebalance), then finishes
// what is in flight, commits it and unbinds.
func (s *slot) run(ctx context.Context) error {
	// The publisher outlives the binds: receipts still arriving while the
	// slot unbinds are stored before they are answered.
	pubCtx, stopPub := context.WithCancel(context.WithoutCancel(ctx))
	var pub sync.WaitGroup
	pub.Go(func() { s.pub.run(pubCtx) })
	defer func() { stopPub(); pub.Wait() }()
	bindCtx, unbind := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	bg.Go(func() { s.binder.run(bindCtx, unbindTimeout) })
	if s.rx != nil {
		bg.Go(func() { s.rx.run(bindCtx, unbindTimeout) })
	}
	bg.Go(func() { s.reportHealth(bindCtx) })
	defer func() { unbind(); bg.Wait() }()

	var trackers [laneCount]*offsets
	for i := range trackers {
		trackers[i] = newOffsets()
	}
	records := s.fetch(ctx)

	// A message holds a submit ticket (window of them) while its segments are
	// submitted, then a publish ticket while its results are written to
	// Kafka, so that Kafka's latency does not stall the SMPP window.
	submitting := make(chan struct{}, s.carrier.Window)
	publishing := make(chan struct{}, publishAhead(s.carrier))
	commitTick := time.NewTicker(commitInterval)
	defer commitTick.Stop()
	var committed [laneCount]int64
	commit := func() {
		for i, t := range trackers {
			if next := t.next(); next > committed[i] {
				if err := s.claim.Commit(s.lanes[i], next); err != nil {
					s.log.Warn("commit", "err", err)
					return
				}
				committed[i] = next
			}
		}
	}

	// Submits outlive a stop request: they get drainTimeout to be answered,
	// then what is left is abandoned uncommitted and replayed.
	work, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	stopDrain := context.AfterFunc(ctx, func() { time.AfterFunc(drainTimeout, abandon) })
	defer stopDrain()

	// As many workers as messages can hold tickets: one is always free, or
	// about to be, for the record the loop took a ticket for. Workers that
	// live on keep their grown stacks; a goroutine per message spent 7% of
	// the sender's CPU growing its stack.
	jobs := make(chan laneRecord)
	var workers sync.WaitGroup
	for range s.carrier.Window + publishAhead(s.carrier) {
		workers.Go(func() {
			for lr := range jobs {
				tk := &ticket{submitting: submitting, publishing: publishing}
				if err := s.deliver(work, lr, tk); err != nil {
					// Not finished: the record stays uncommitted and is replayed.
					s.log.Error("message left for replay", "topic", lr.rec.Topic, "offset", lr.rec.Offset, "err", err)
				} else {
					trackers[lr.lane].finish(lr.rec.Offset)
				}
				tk.release()
			}
		})
	}
loop:
	for {
		// A submit ticket first, then the most urgent record waiting at that
		// moment; commits go on all along, even when the window stays full.
		select {
		case submitting <- struct{}{}:
		case <-commitTick.C:
			commit()
			continue
		case <-ctx.Done():
			break loop
		}
		lr, ok := next(records)
		for !ok {
			select {
			case lr = <-records[laneOTP]:
			case lr = <-records[laneRetry]:
			case lr = <-records[laneBulk]:
			case <-commitTick.C:
				commit()
				continue
			case <-ctx.Done():
				<-submitting
				break loop
			}
			ok = true
		}
		trackers[lr.lane].start(lr.rec.Offset)
		jobs <- lr
	}
	close(jobs)
	// Keep committing while the last submits are answered, so that a rebalance
	// that ends the generation meanwhile replays as little as possible.
	drained := make(chan struct{})
	go func() { workers.Wait(); close(drained) }()
	for {
		select {
		case <-commitTick.C:
			commit()
		case <-drained:
			commit()
			return nil
		}
	}
}

// next takes a waiting record from the most urgent lane that has one.
func next(records [laneCount]chan laneRecord) (laneRecord, bool) {
	for _, ch := range records {
		select {
		case lr := <-ch:
			return lr, true
		default:
		}
	}
	return laneRecord{}, false
}

// fetch reads every lane into its own channel so that a busy bulk lane never
// hides an otp record. The retry lane hands a record over only once it is
// due; records behind it wait, so a retry is sometimes late, never early.
func (s *slot) fetch(ctx context.Context) [laneCount]chan laneRecord {
	var out [laneCount]chan laneRecord
	for i := range out {
		out[i] = make(chan laneRecord, s.carrier.Window)
	}
	for i, topic := range s.lanes {
		go func() {
			for {
				rec, err := s.claim.Fetch(ctx, topic)
				if err != nil {
					return
				}
				lr := laneRecord{lane: i, rec: rec}
				if i == laneRetry {
					due, from := retryHeaders(rec.Headers)
					lr.from = from
					select {
					case <-time.After(time.Until(due)):
					case <-ctx.Done():
						return
					}
				}
				select {
				case out[i] <- lr:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return out
}

func retryHeaders(hs []kafka.Header) (due time.Time, from int) {
	for _, h := range hs {
		n, err := strconv.ParseInt(string(h.Value), 10, 64)
		if err != nil {
			continue // a damaged header: retry now, from the start
		}
		switch h.Key {
		case schemas.HeaderRetryDue:
			due = time.UnixMilli(n)
		case schemas.HeaderRetrySegment:
			from = int(n)
		}
	}
	return due, from
}

// outcome is how the submit of one segment ended.
type outcome struct {
	res    *sluicepb.SubmitResult // accepted
	retry  bool                   // refused with a retry-later status
	final  string                 // the message ends with this status ...
	code   string                 // ... and this error code
	status uint32                 // the refusal's command_status
}

// deliver submits the segments of one message and publishes what happened.
// It returns an error only when the message must be replayed.
func (s *slot) deliver(ctx context.Context, lr laneRecord, tk *ticket) error {
	var m sluicepb.Message
	if err := proto.Unmarshal(lr.rec.Value, &m); err != nil {
		// Nothing can be sent or reported without the message: skip it, loudly.
		s.log.Error("undecodable outbound record skipped", "topic", lr.rec.Topic, "offset", lr.rec.Offset, "err", err)
		return nil
	}
	if !s.recent.add(m.Id, m.Attempt) {
		s.env.m.copies.Add(ctx, 1, s.carrierAttr())
		s.log.Info("copy of a message already taken on; not submitted again", "message_id", m.Id, "attempt", m.Attempt, "offset", lr.rec.Offset)
		return nil
	}
	ctx = telemetry.Extract(ctx, lr.rec.Headers)
	ctx, span := s.env.tracer.Start(ctx, "sender.submit", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("sluice.message_id", m.Id), attribute.String("sluice.carrier", s.carrier.ID),
			attribute.Int("sluice.attempt", int(m.Attempt))))
	defer span.End()

	now := s.env.now()
	if m.ExpiresAtMs > 0 && now.UnixMilli() > m.ExpiresAtMs {
		return s.record(ctx, tk, &m, nil, lr.from, s.finals(&m, lr.from, nil, message.StatusExpired, "", now))
	}
	sms, parts, err := buildSubmits(&m, s.carrier.LongMessages)
	if err != nil {
		return s.record(ctx, tk, &m, nil, lr.from, s.finals(&m, lr.from, nil, message.StatusFailed, "invalid_text", now))
	}
	m.Segments = uint32(len(sms))
	var results []*sluicepb.SubmitResult
	for i := lr.from; i < len(sms); i++ {
		weight := 1
		if len(sms) == 1 {
			weight = parts // message_payload: the carrier splits it, the rate counts every part
		}
		out, err := s.submit(ctx, &m, sms[i], weight)
		if err != nil {
			return err
		}
		switch {
		case out.res != nil:
			out.res.Segment = uint32(i)
			results = append(results, out.res)
			continue
		case out.retry && int(m.Attempt)+1 < s.carrier.RetryAttempts:
			rec, err := s.retryRecord(ctx, &m, i)
			if err != nil {
				return err
			}
			s.env.m.retries.Add(ctx, 1, s.carrierAttr())
			return s.record(ctx, tk, &m, results, lr.from, []kafka.Message{rec})
		case out.retry:
			out.final, out.code = message.StatusFailed, errorCode(out.status)
		case i == 0 && slices.Contains(s.carrier.RoutingErrors, out.status):
			// Nothing of it reached this carrier: the router picks another.
			rec, err := s.rerouteRecord(ctx, &m)
			if err != nil {
				return err
			}
			return s.record(ctx, tk, &m, nil, lr.from, []kafka.Message{rec})
		}
		// The remaining segments are not sent; the message ends here.
		return s.record(ctx, tk, &m, results, lr.from, s.finals(&m, i, results, out.final, out.code, s.env.now()))
	}
	return s.record(ctx, tk, &m, results, lr.from, nil)
}

// ticket is a message's place in its slot's pipeline: first among the
// messages being submitted, then among those being published.
type ticket struct {
	submitting, publishing chan struct{}
	published              bool
}

// toPublish trades the submit ticket for a publish ticket, waiting for one.
func (t *ticket) toPublish() {
	if t.published {
		return
	}
	t.publishing <- struct{}{}
	<-t.submitting
	t.published = true
}

func (t *ticket) release() {
	if t.published {
		<-t.publishing
	} else {
		<-t.submitting
	}
}

// submit sends one segment until it has an answer that ends its story. An
// error means the slot is stopping and the message must be replayed.
func (s *slot) submit(ctx context.Context, m *sluicepb.Message, sm *smpp.SubmitSM, weight int) (outcome, error) {
	lane := message.PriorityName(m.Priority)
	unknowns := 0
	for {
		for range weight {
			if err := s.pace.wait(ctx); err != nil {
				return outcome{}, err
			}
		}
		sess, err := s.binder.session(ctx)
		if err != nil {
			return outcome{}, err
		}
		start := time.Now()
		s.env.m.window.Add(ctx, 1, s.carrierAttr())
		resp, err := sess.Submit(ctx, sm)
		s.env.m.window.Add(ctx, -1, s.carrierAttr())
		switch {
		case errors.Is(err, smpp.ErrOutcomeUnknown):
			if ctx.Err() != nil {
				return outcome{}, ctx.Err() // abandoned at a stop: replayed
			}
			unknowns++
			s.env.m.submits.Add(ctx, 1, s.resultAttrs("outcome_unknown", lane))
			// The SMSC may have taken it. Marketing is never resent blind;
			// otp and transactional are, since a duplicate beats a lost
			// code, up to the carrier's retry_attempts.
			resend := m.Priority != sluicepb.Priority_PRIORITY_MARKETING && unknowns < s.carrier.RetryAttempts
			s.log.WarnContext(ctx, "submit outcome unknown", "message_id", m.Id, "lane", lane, "resend", resend, "err", err)
			if !resend {
				return outcome{final: message.StatusUnknown, code: "outcome_unknown"}, nil
			}
			continue
		case err != nil:
			if ctx.Err() != nil {
				return outcome{}, ctx.Err()
			}
			continue // not written: the binder is reconnecting
		}
		s.env.m.latency.Record(ctx, time.Since(start).Seconds(), s.carrierAttr())
		switch {
		case resp.Status == smpp.StatusOK:
			s.env.m.submits.Add(ctx, 1, s.resultAttrs("ok", lane))
			return outcome{res: &sluicepb.SubmitResult{
				Message:       m,
				SmscMessageId: respID(resp.MessageID, s.carrier.ReceiptIDs),
				SubmittedAtMs: s.env.now().UnixMilli(),
			}}, nil
		case resp.Status == smpp.StatusThrottled || resp.Status == smpp.StatusMsgQueueFull:
			// Slow the bind down and send the same segment again: nothing
			// is lost and nothing goes to the retry lane for this.
			s.env.m.throttles.Add(ctx, 1, s.carrierAttr())
			s.pace.throttled()
		case smpp.Temporary(resp.Status):
			s.env.m.submits.Add(ctx, 1, s.resultAttrs("retry_later", lane))
			return outcome{retry: true, status: resp.Status}, nil
		default:
			s.env.m.submits.Add(ctx, 1, s.resultAttrs("rejected", lane))
			return outcome{final: message.StatusFailed, code: errorCode(resp.Status), status: resp.Status}, nil
		}
	}
}

// errorCode is the error_code of a message the SMSC refused.
func errorCode(status uint32) string { return fmt.Sprintf("smpp_0x%08x", status) }

func (s *slot) carrierAttr() metric.MeasurementOption { return s.attrs.carrier }

func (s *slot) resultAttrs(result, lane string) metric.AddOption {
	return s.attrs.results[result+"/"+lane]
}

// slotAttrs are a slot's metric attributes, built once: building an
// attribute set costs more than the measurement.
type slotAttrs struct {
	carrier metric.MeasurementOption
	results map[string]metric.AddOption // by "result/lane"
}

func newSlotAttrs(carrier string) slotAttrs {
	a := slotAttrs{
		carrier: metric.WithAttributes(attribute.String("carrier", carrier)),
		results: map[string]metric.AddOption{},
	}
	for _, result := range []string{"ok", "rejected", "retry_later", "outcome_unknown"} {
		for _, lane := range []string{"otp", "transactional", "marketing"} {
			a.results[result+"/"+lane] = metric.WithAttributes(attribute.String("carrier", carrier),
				attribute.String("result", result), attribute.String("lane", lane))
		}
	}
	return a
}

// retryRecord puts a message back on the carrier's retry lane, due after a
// backoff that doubles with each attempt, resuming at segment from.
func (s *slot) retryRecord(ctx context.Context, m *sluicepb.Message, from int) (kafka.Message, error) {
	retry := proto.Clone(m).(*sluicepb.Message)
	retry.Attempt++
	v, err := proto.Marshal(retry)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode retry: %w", err)
	}
	delay := min(s.carrier.RetryDelay<<min(m.Attempt, 20), maxRetryDelay)
	due := s.env.now().Add(delay)
	rec := kafka.Message{
		Topic: schemas.OutboundTopic(s.env.prefix, s.carrier.ID, schemas.LaneRetry),
		Key:   []byte(m.Id),
		Value: v,
		Headers: []kafka.Header{
			{Key: schemas.HeaderRetryDue, Value: strconv.AppendInt(nil, due.UnixMilli(), 10)},
			{Key: schemas.HeaderRetrySegment, Value: strconv.AppendInt(nil, int64(from), 10)},
		},
	}
	telemetry.Inject(ctx, &rec.Headers)
	return rec, nil
}

// rerouteRecord hands a message this carrier cannot route back to the
// router, with the carrier added to the ones it must not use again.
func (s *slot) rerouteRecord(ctx context.Context, m *sluicepb.Message) (kafka.Message, error) {
	again := proto.Clone(m).(*sluicepb.Message)
	again.FailedCarriers = append(again.FailedCarriers, s.carrier.ID)
	again.Attempt = 0
	v, err := proto.Marshal(again)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode reroute: %w", err)
	}
	rec := kafka.Message{Topic: schemas.IntakeTopic(s.env.prefix, m.Priority == sluicepb.Priority_PRIORITY_OTP), Key: []byte(m.Tenant), Value: v}
	telemetry.Inject(ctx, &rec.Headers)
	return rec, nil
}

// finals are the final outcomes of the segments from segment from on, which
// were never accepted.
func (s *slot) finals(m *sluicepb.Message, from int, results []*sluicepb.SubmitResult, status, code string, at time.Time) []kafka.Message {
	var submittedAt int64
	if len(results) > 0 {
		submittedAt = results[0].SubmittedAtMs
	}
	var out []kafka.Message
	for seg := from; seg < int(max(m.Segments, 1)); seg++ {
		v, err := proto.Marshal(&sluicepb.SegmentOutcome{
			Message: m, Segment: uint32(seg), Status: status, ErrorCode: code,
			SubmittedAtMs: submittedAt, DoneAtMs: at.UnixMilli(),
		})
		if err != nil {
			panic(fmt.Sprintf("encode segment outcome: %v", err)) // a valid message always encodes
		}
		out = append(out, kafka.Message{Topic: s.env.prefix + schemas.TopicDLROutcomes, Key: []byte(m.Id), Value: v})
	}
	return out
}

// record publishes, in one batch, the results of the segments the SMSC
// accepted (to correlate with DLRs), the submitted status when this run sent
// the first segment, and tail: final outcomes or a retry record.
func (s *slot) record(ctx context.Context, tk *ticket, m *sluicepb.Message, results []*sluicepb.SubmitResult, from int, tail []kafka.Message) error {
	tk.toPublish()
	var out []kafka.Message
	for _, r := range results {
		v, err := proto.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode submit result: %w", err)
		}
		rec := kafka.Message{Topic: s.env.prefix + schemas.TopicSubmits, Key: []byte(message.SMSCKey(s.carrier.ID, r.SmscMessageId)), Value: v}
		telemetry.Inject(ctx, &rec.Headers)
		out = append(out, rec)
	}
	if len(results) > 0 && from == 0 {
		st := message.StatusOf(m, message.StatusSubmitted, time.UnixMilli(results[0].SubmittedAtMs))
		st.SubmittedAt = message.MillisTime(results[0].SubmittedAtMs)
		v, err := st.Marshal()
		if err != nil {
			return fmt.Errorf("encode status: %w", err)
		}
		out = append(out, kafka.Message{Topic: s.env.prefix + schemas.TopicStatus, Key: []byte(m.Id), Value: v})
	}
	return s.publishSubmitted(ctx, append(out, tail...))
}

// Publish retries: a Kafka that refuses writes for longer than the
// producer's own attempts (a leader lost, the ISR shrinking) is waited out.
const (
	publishRetryMin = 100 * time.Millisecond
	publishRetryMax = 5 * time.Second
)

// publishSubmitted writes the records of a message whose submits are done,
// until Kafka has them or the slot abandons its work. Giving up sooner
// would leave the offset uncommitted with nothing to replay it until the
// next rebalance, and a replay would submit the message a second time.
func (s *slot) publishSubmitted(ctx context.Context, recs []kafka.Message) error {
	return backoff.Retry(ctx, publishRetryMin, publishRetryMax,
		func() error { return s.pub.publish(ctx, recs...) },
		func(err error) { s.log.Warn("publish failed; retrying", "records", len(recs), "err", err) })
}
