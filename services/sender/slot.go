package sender

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/telemetry"
	"github.com/sluice-sms/sluice/pkg/text"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// SMPP command_status values the sender treats specially.
const (
	statusMsgQFull   = 0x14
	statusThrottled  = 0x58
	respTimeout      = 10 * time.Second
	maxSegments      = 255
	commitInterval   = 200 * time.Millisecond
	throttleBackoff  = 100 * time.Millisecond
	throttleMaxPause = 5 * time.Second
	drainTimeout     = 15 * time.Second
)

// slot is one bind slot: partition i of a carrier's lanes, one bind, paced at
// tps/binds.
type slot struct {
	carrier config.Carrier
	claim   *kafka.Claim
	lanes   []string // topic names, most urgent first
	env     *carrierEnv
	limiter *rate.Limiter
	binder  *binder
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
	rec  kafka.Message
}

// run serves the slot until ctx ends (a stop or a rebalance), then finishes
// what is in flight, commits it and unbinds.
func (s *slot) run(ctx context.Context) error {
	bindCtx, unbind := context.WithCancel(context.WithoutCancel(ctx))
	var bound sync.WaitGroup
	bound.Add(1)
	go func() { defer bound.Done(); s.binder.run(bindCtx, 5*time.Second) }()
	defer func() { unbind(); bound.Wait() }()

	trackers := make([]*offsets, len(s.lanes))
	for i := range trackers {
		trackers[i] = newOffsets()
	}
	records := s.fetch(ctx)

	var inflight sync.WaitGroup
	window := make(chan struct{}, s.carrier.Window)
	commitTick := time.NewTicker(commitInterval)
	defer commitTick.Stop()
	committed := make([]int64, len(s.lanes))
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
loop:
	for {
		var lr laneRecord
		select {
		case lr = <-records[0]: // otp first, whenever it has anything
		default:
			select {
			case lr = <-records[0]:
			case lr = <-records[1]:
			case <-commitTick.C:
				commit()
				continue
			case <-ctx.Done():
				break loop
			}
		}
		select {
		case window <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		trackers[lr.lane].start(lr.rec.Offset)
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer func() { <-window }()
			if err := s.deliver(work, lr.rec); err != nil {
				// Not finished: the record stays uncommitted and is replayed.
				s.log.Error("message left for replay", "topic", lr.rec.Topic, "offset", lr.rec.Offset, "err", err)
				return
			}
			trackers[lr.lane].finish(lr.rec.Offset)
		}()
	}
	inflight.Wait()
	commit()
	return nil
}

// fetch reads every lane into its own channel so that a busy bulk lane never
// hides an otp record.
func (s *slot) fetch(ctx context.Context) [2]chan laneRecord {
	var out [2]chan laneRecord
	for i := range out {
		out[i] = make(chan laneRecord, s.carrier.Window)
	}
	for i, topic := range s.lanes {
		r := s.claim.Reader(topic)
		go func() {
			for {
				rec, err := r.FetchMessage(ctx)
				if err != nil {
					return
				}
				select {
				case out[i] <- laneRecord{lane: i, rec: rec}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return out
}

// deliver submits every segment of one message and publishes what happened.
// It returns an error only when the message must be replayed.
func (s *slot) deliver(ctx context.Context, rec kafka.Message) error {
	var m sluicepb.Message
	if err := proto.Unmarshal(rec.Value, &m); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	ctx = telemetry.Extract(ctx, rec.Headers)
	ctx, span := s.env.tracer.Start(ctx, "sender.submit", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("sluice.message_id", m.Id), attribute.String("sluice.carrier", s.carrier.ID)))
	defer span.End()

	now := s.env.now()
	if m.ExpiresAtMs > 0 && now.UnixMilli() > m.ExpiresAtMs {
		return s.publish(ctx, &m, nil, message.StatusExpired, "", now)
	}
	enc, parts, err := text.Split(m.Text, refOf(m.Id), maxSegments)
	if err != nil {
		return s.publish(ctx, &m, nil, message.StatusFailed, "invalid_text", now)
	}
	var results []*sluicepb.SubmitResult
	for i, part := range parts {
		sm := s.submitSM(&m, enc, part, len(parts) > 1)
		res, final, code, err := s.submit(ctx, &m, sm)
		if err != nil {
			return err
		}
		if res != nil {
			res.Segment = uint32(i)
			results = append(results, res)
		}
		if final != "" {
			// The remaining segments are not sent; the message ends here.
			return s.publish(ctx, &m, results, final, code, s.env.now())
		}
	}
	return s.publish(ctx, &m, results, "", "", s.env.now())
}

// submit sends one segment until it has an answer that ends its story: a
// result to correlate, or a final status with its error code. An error means
// the slot is stopping and the message must be replayed.
func (s *slot) submit(ctx context.Context, m *sluicepb.Message, sm *smpp.SubmitSM) (res *sluicepb.SubmitResult, final, code string, err error) {
	pause := throttleBackoff
	for {
		if err := s.limiter.Wait(ctx); err != nil {
			return nil, "", "", err
		}
		sess, err := s.binder.session(ctx)
		if err != nil {
			return nil, "", "", err
		}
		start := time.Now()
		resp, err := sess.Submit(ctx, sm)
		s.env.m.latency.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("carrier", s.carrier.ID)))
		switch {
		case errors.Is(err, smpp.ErrOutcomeUnknown):
			s.env.m.submits.Add(ctx, 1, s.attrs("outcome_unknown"))
			if m.Priority == sluicepb.Priority_PRIORITY_MARKETING {
				// The SMSC may have taken it: never resend marketing blind.
				return nil, message.StatusUnknown, "outcome_unknown", nil
			}
			continue // otp and transactional: a duplicate beats a lost code
		case err != nil:
			if ctx.Err() != nil {
				return nil, "", "", ctx.Err()
			}
			continue // not written: the binder is reconnecting
		case resp.Status == 0:
			s.env.m.submits.Add(ctx, 1, s.attrs("ok"))
			return &sluicepb.SubmitResult{
				Message:       m,
				SmscMessageId: message.NormalizeSMSCID(resp.MessageID),
				SubmittedAtMs: s.env.now().UnixMilli(),
			}, "", "", nil
		case resp.Status == statusThrottled || resp.Status == statusMsgQFull:
			s.env.m.throttles.Add(ctx, 1, metric.WithAttributes(attribute.String("carrier", s.carrier.ID)))
			select {
			case <-ctx.Done():
				return nil, "", "", ctx.Err()
			case <-time.After(pause):
			}
			pause = min(2*pause, throttleMaxPause)
		default:
			s.env.m.submits.Add(ctx, 1, s.attrs("error"))
			return nil, message.StatusFailed, fmt.Sprintf("smpp_0x%08x", resp.Status), nil
		}
	}
}

func (s *slot) attrs(result string) metric.AddOption {
	return metric.WithAttributes(attribute.String("carrier", s.carrier.ID), attribute.String("result", result))
}

// publish records a message's submit: the results to correlate with DLRs,
// the submitted status, and final outcomes for segments that never made it.
func (s *slot) publish(ctx context.Context, m *sluicepb.Message, results []*sluicepb.SubmitResult, final, code string, at time.Time) error {
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
	if len(results) > 0 {
		st := message.StatusOf(m, message.StatusSubmitted, at)
		st.SubmittedAt = message.MillisTime(results[0].SubmittedAtMs)
		v, err := st.Marshal()
		if err != nil {
			return fmt.Errorf("encode status: %w", err)
		}
		out = append(out, kafka.Message{Topic: s.env.prefix + schemas.TopicStatus, Key: []byte(m.Id), Value: v})
	}
	if final != "" {
		var submittedAt int64
		if len(results) > 0 {
			submittedAt = results[0].SubmittedAtMs
		}
		for seg := len(results); seg < int(max(m.Segments, 1)); seg++ {
			v, err := proto.Marshal(&sluicepb.SegmentOutcome{
				Message: m, Segment: uint32(seg), Status: final, ErrorCode: code,
				SubmittedAtMs: submittedAt, DoneAtMs: at.UnixMilli(),
			})
			if err != nil {
				return fmt.Errorf("encode outcome: %w", err)
			}
			out = append(out, kafka.Message{Topic: s.env.prefix + schemas.TopicDLROutcomes, Key: []byte(m.Id), Value: v})
		}
	}
	return s.env.producer.Produce(ctx, out...)
}

// submitSM builds the submit_sm of one segment, asking for a receipt for
// every segment.
func (s *slot) submitSM(m *sluicepb.Message, enc text.Encoding, part text.Part, concatenated bool) *smpp.SubmitSM {
	srcTON, srcNPI, src := sourceAddr(m.From)
	sm := &smpp.SubmitSM{
		SourceAddr: src, SourceTON: srcTON, SourceNPI: srcNPI,
		DestAddr: trimPlus(m.To), DestTON: 1, DestNPI: 1,
		DataCoding:         text.DataCoding(enc),
		RegisteredDelivery: 1,
		ShortMessage:       append(append([]byte(nil), part.UDH...), part.Payload...),
	}
	if concatenated {
		sm.ESMClass = 0x40 // UDHI
	}
	if m.ExpiresAtMs > 0 {
		sm.ValidityPeriod = smppTime(time.UnixMilli(m.ExpiresAtMs))
	}
	return sm
}

// sourceAddr picks the type of number of a sender id: alphanumeric,
// international, or a short code.
func sourceAddr(from string) (ton, npi uint8, addr string) {
	digits := trimPlus(from)
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 5, 0, from // alphanumeric
		}
	}
	if len(digits) > 8 {
		return 1, 1, digits // international
	}
	return 3, 0, digits // short code: network specific
}

func trimPlus(n string) string {
	if len(n) > 0 && n[0] == '+' {
		return n[1:]
	}
	return n
}

// smppTime is the absolute SMPP time format, in UTC.
func smppTime(t time.Time) string {
	return t.UTC().Format("060102150405") + "000+"
}

// refOf is the concatenation reference of a message: derived from its id so
// that a resent message keeps its reference.
func refOf(id string) uint16 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return uint16(h.Sum32())
}
