package dlr

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/pkg/telemetry"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// Error codes of outcomes the dlr service decides itself.
const (
	codeNoDLR          = "no_dlr"          // no receipt by the deadline
	codeSegmentMissing = "segment_missing" // a segment never had an outcome
)

// statusOfStat maps a receipt's stat to a final status; ok is false for the
// intermediate states (ENROUTE, ACCEPTD) that end nothing.
func statusOfStat(stat string) (status string, ok bool) {
	switch strings.ToUpper(stat) {
	case "DELIVRD", "DELIVERED":
		return message.StatusDelivered, true
	case "UNDELIV", "REJECTD", "DELETED":
		return message.StatusUndelivered, true
	case "EXPIRED":
		return message.StatusExpired, true
	case "UNKNOWN":
		return message.StatusUnknown, true
	}
	return "", false
}

// statusOfDLR reads a receipt's outcome: the message_state TLV when present
// (SMPP 3.4 makes it authoritative), else the text's stat; the error code is
// the text's err, else the network_error_code TLV.
func statusOfDLR(d *sluicepb.RawDLR) (status, code string, ok bool) {
	stat := d.Stat
	if name, known := smpp.StatOf(uint8(min(d.MessageState, 0xff))); known {
		stat = name
	}
	status, ok = statusOfStat(stat)
	code = d.Err
	if code == "" {
		code = d.NetworkErrorCode
	}
	return status, code, ok
}

// correlator joins submit results and receipts on (carrier, normalised SMSC
// message id). Whichever comes first waits in the table for the other; once
// matched, the key stays as a done mark until retention has passed, so that
// duplicates of either are dropped. Timers end what never matches: a submit
// without receipt becomes an outcome "expired" or "unknown", a receipt
// without submit goes to sluice.dlr.unmatched.
type correlator struct {
	dlrTopic, outcomes, unmatched string
	cfg                           config.DLR
	m                             *metrics
	tracer                        trace.Tracer
}

func pendingMeta(v []byte) (int64, bool, error) {
	var p sluicepb.Pending
	if err := proto.Unmarshal(v, &p); err != nil {
		return 0, false, fmt.Errorf("decode pending: %w", err)
	}
	return p.DeadlineMs, !p.Done, nil
}

func (c *correlator) load(t *state.Txn, key string) (*sluicepb.Pending, error) {
	var p sluicepb.Pending
	v, ok, err := t.Get(key)
	if err != nil || !ok {
		return &p, err
	}
	if err := proto.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("decode pending %q: %w", key, err)
	}
	return &p, nil
}

func (c *correlator) save(t *state.Txn, key string, p *sluicepb.Pending) error {
	v, err := proto.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode pending: %w", err)
	}
	return t.Put(key, v, p.DeadlineMs, !p.Done)
}

func (c *correlator) count(result string) {
	c.m.receipts.Add(context.Background(), 1, metric.WithAttributes(attribute.String("result", result)))
}

func (c *correlator) step(t *state.Txn, topic string, rec kafka.Message) ([]kafka.Message, error) {
	key := string(rec.Key)
	if topic == c.dlrTopic {
		var d sluicepb.RawDLR
		if err := proto.Unmarshal(rec.Value, &d); err != nil {
			// Kept, not dropped: the unmatched topic holds it for inspection.
			c.count("undecodable")
			return []kafka.Message{{Topic: c.unmatched, Key: rec.Key, Value: rec.Value}}, nil
		}
		return c.stepDLR(t, key, rec, &d)
	}
	var s sluicepb.SubmitResult
	if err := proto.Unmarshal(rec.Value, &s); err != nil {
		return nil, fmt.Errorf("decode submit %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	return c.stepSubmit(t, key, rec, &s)
}

func (c *correlator) stepDLR(t *state.Txn, key string, rec kafka.Message, d *sluicepb.RawDLR) ([]kafka.Message, error) {
	if d.SmscMessageId == "" {
		c.count("unmatched")
		return []kafka.Message{{Topic: c.unmatched, Key: rec.Key, Value: rec.Value}}, nil
	}
	if _, _, final := statusOfDLR(d); !final {
		c.count("intermediate")
		return nil, nil
	}
	p, err := c.load(t, key)
	if err != nil {
		return nil, err
	}
	switch {
	case p.Done && p.Dlr == nil:
		// The message already ended without a receipt: too late to change
		// its one final status, kept for inspection.
		c.count("late")
		return []kafka.Message{{Topic: c.unmatched, Key: rec.Key, Value: rec.Value}}, nil
	case p.Done || p.Dlr != nil:
		c.count("duplicate")
		return nil, nil
	}
	var out []kafka.Message
	if p.Submit == nil && d.AltSmscMessageId != "" {
		if out, err = c.tryAlternative(rec, d); err != nil || d.TriedSmscMessageId == "" {
			return out, err // the first id waits only once the other had its try
		}
	}
	p.Dlr = d
	if p.Submit == nil {
		c.count("early")
		p.DeadlineMs = d.ReceivedAtMs + c.cfg.UnmatchedAfter.Milliseconds()
		return out, c.save(t, key, p)
	}
	return c.match(t, key, p)
}

// tryAlternative passes on a receipt whose TLV and text ids disagree and
// whose first id matched no submit, re-keyed to its other id, which may be in
// another partition. The first copy carries both ids (Alt set, Tried empty).
// The copy to the other id names the first in both Alt and Tried; if that
// one matches no submit either, it waits there as early and sends a last
// copy back without Alt, which waits as early at the first id. So the
// receipt waits at both until one's submit comes, and is tried at most three
// times.
func (c *correlator) tryAlternative(rec kafka.Message, d *sluicepb.RawDLR) ([]kafka.Message, error) {
	c.count("alternative")
	next := proto.CloneOf(d)
	next.SmscMessageId, next.TriedSmscMessageId = d.AltSmscMessageId, d.SmscMessageId
	if d.TriedSmscMessageId == "" {
		next.AltSmscMessageId = d.SmscMessageId
	} else {
		next.AltSmscMessageId = ""
	}
	v, err := proto.Marshal(next)
	if err != nil {
		return nil, fmt.Errorf("encode dlr: %w", err)
	}
	out := []kafka.Message{{Topic: c.dlrTopic, Key: []byte(message.SMSCKey(d.Carrier, next.SmscMessageId)), Value: v, Headers: rec.Headers}}
	return out, nil
}

func (c *correlator) stepSubmit(t *state.Txn, key string, rec kafka.Message, s *sluicepb.SubmitResult) ([]kafka.Message, error) {
	p, err := c.load(t, key)
	if err != nil {
		return nil, err
	}
	if p.Done || p.Submit != nil {
		return nil, nil // the sender's replay of a submit already recorded
	}
	p.Submit = s
	p.Traceparent = telemetry.HeaderCarrier{Headers: &rec.Headers}.Get("traceparent")
	if p.Dlr == nil {
		p.DeadlineMs = c.submitDeadline(s)
		return nil, c.save(t, key, p)
	}
	return c.match(t, key, p)
}

// submitDeadline is when a submit stops waiting for its receipt: its
// validity plus the grace period, or retention after the submit when it has
// no validity (or a longer one).
func (c *correlator) submitDeadline(s *sluicepb.SubmitResult) int64 {
	limit := s.SubmittedAtMs + c.cfg.Retention.Milliseconds()
	if exp := s.Message.GetExpiresAtMs(); exp > 0 {
		return min(exp+c.cfg.Grace.Milliseconds(), limit)
	}
	return limit
}

// match publishes the segment's outcome and leaves a done mark that keeps
// the key for retention to drop duplicates. A done mark with an (empty) Dlr
// says the key was matched; without one, that it timed out.
func (c *correlator) match(t *state.Txn, key string, p *sluicepb.Pending) ([]kafka.Message, error) {
	c.count("matched")
	o := outcome(p.Submit, p.Dlr)
	c.trace(p, o)
	out, err := outcomeRecord(c.outcomes, o)
	if err != nil {
		return nil, err
	}
	done := &sluicepb.Pending{Done: true, Dlr: &sluicepb.RawDLR{}, DeadlineMs: max(p.Dlr.ReceivedAtMs, p.Submit.SubmittedAtMs) + c.cfg.Retention.Milliseconds()}
	return []kafka.Message{out}, c.save(t, key, done)
}

// trace records the correlation as a span linked to the submit's span: a
// receipt can come hours later, so it is not the submit's child.
func (c *correlator) trace(p *sluicepb.Pending, o *sluicepb.SegmentOutcome) {
	var opts []trace.SpanStartOption
	if p.Traceparent != "" {
		ctx := telemetry.Extract(context.Background(), []kafka.Header{{Key: "traceparent", Value: []byte(p.Traceparent)}})
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	opts = append(opts, trace.WithAttributes(attribute.String("carrier", o.Message.GetCarrier()), attribute.String("status", o.Status)))
	_, span := c.tracer.Start(context.Background(), "dlr.correlate", opts...)
	span.End()
}

func (c *correlator) fire(t *state.Txn, key string, v []byte) ([]kafka.Message, error) {
	var p sluicepb.Pending
	if err := proto.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("decode pending %q: %w", key, err)
	}
	switch {
	case p.Done:
		return nil, t.Del(key)
	case p.Submit != nil:
		// No receipt in time. The validity passed: the SMSC has dropped it,
		// "expired"; else nobody knows, "unknown".
		status := message.StatusUnknown
		if exp := p.Submit.Message.GetExpiresAtMs(); exp > 0 && exp+c.cfg.Grace.Milliseconds() <= p.DeadlineMs {
			status = message.StatusExpired
		}
		c.m.timeouts.Add(context.Background(), 1, metric.WithAttributes(attribute.String("status", status)))
		out, err := outcomeRecord(c.outcomes, &sluicepb.SegmentOutcome{
			Message: p.Submit.Message, Segment: p.Submit.Segment, Status: status, ErrorCode: codeNoDLR,
			SmscMessageId: p.Submit.SmscMessageId, SubmittedAtMs: p.Submit.SubmittedAtMs, DoneAtMs: p.DeadlineMs,
		})
		if err != nil {
			return nil, err
		}
		done := &sluicepb.Pending{Done: true, DeadlineMs: p.DeadlineMs + c.cfg.Retention.Milliseconds()}
		return []kafka.Message{out}, c.save(t, key, done)
	default:
		c.count("unmatched")
		dv, err := proto.Marshal(p.Dlr)
		if err != nil {
			return nil, fmt.Errorf("encode dlr: %w", err)
		}
		return []kafka.Message{{Topic: c.unmatched, Key: []byte(key), Value: dv}}, t.Del(key)
	}
}

func outcomeRecord(topic string, o *sluicepb.SegmentOutcome) (kafka.Message, error) {
	v, err := proto.Marshal(o)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode outcome: %w", err)
	}
	return kafka.Message{Topic: topic, Key: []byte(o.Message.GetId()), Value: v}, nil
}

func outcome(s *sluicepb.SubmitResult, d *sluicepb.RawDLR) *sluicepb.SegmentOutcome {
	status, code, _ := statusOfDLR(d)
	done := d.DoneAtMs
	if done == 0 || done < s.SubmittedAtMs {
		// Receipt dates have minute precision and carriers' clocks drift;
		// the receive time is the better bound.
		done = d.ReceivedAtMs
	}
	return &sluicepb.SegmentOutcome{
		Message:       s.Message,
		Segment:       s.Segment,
		Status:        status,
		ErrorCode:     code,
		SmscMessageId: s.SmscMessageId,
		SubmittedAtMs: s.SubmittedAtMs,
		DoneAtMs:      done,
	}
}
