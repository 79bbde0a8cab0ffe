package dlr

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// severity orders final statuses: a long message takes the worst status of
// its segments (delivered only when every segment is).
var severity = map[string]int{
	message.StatusDelivered:   0,
	message.StatusUnknown:     1,
	message.StatusExpired:     2,
	message.StatusUndelivered: 3,
	message.StatusFailed:      4,
}

// aggregator combines the segment outcomes of a message into its one final
// status. The outcomes of a long message seen so far wait in the table; once
// the status is out, a done mark drops replayed outcomes until retention
// has passed. A segment that never has an outcome by then counts as
// "unknown".
type aggregator struct {
	status string // topic
	cfg    config.DLR
	m      *metrics
}

func partialMeta(v []byte) (int64, bool, error) {
	var p sluicepb.Partial
	if err := proto.Unmarshal(v, &p); err != nil {
		return 0, false, fmt.Errorf("decode partial: %w", err)
	}
	return p.DeadlineMs, !p.Done, nil
}

func (a *aggregator) step(t *state.Txn, _ string, rec kafka.Message) ([]kafka.Message, error) {
	var o sluicepb.SegmentOutcome
	if err := proto.Unmarshal(rec.Value, &o); err != nil {
		return nil, fmt.Errorf("decode outcome %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	id := o.Message.GetId()
	segments := int(max(o.Message.GetSegments(), 1))
	// Every message, one segment or many, leaves a done mark: after a replay
	// upstream the carrier may have taken a message twice and sent two
	// receipts that disagree, and only the first may end the message.
	var p sluicepb.Partial
	if v, ok, err := t.Get(id); err != nil {
		return nil, err
	} else if ok {
		if err := proto.Unmarshal(v, &p); err != nil {
			return nil, fmt.Errorf("decode partial %q: %w", id, err)
		}
	}
	if p.Done {
		return nil, nil // a replay after the status was published
	}
	if len(p.Outcomes) == 0 {
		p.DeadlineMs = max(o.SubmittedAtMs, o.DoneAtMs) + a.cfg.Retention.Milliseconds()
	}
	p.Outcomes = merge(p.Outcomes, &o)
	if len(p.Outcomes) < segments {
		return nil, a.save(t, id, &p)
	}
	return a.complete(t, id, p.Outcomes, max(o.SubmittedAtMs, o.DoneAtMs))
}

// fire gives up on the missing segments of a message, or drops a done mark.
func (a *aggregator) fire(t *state.Txn, id string, v []byte) ([]kafka.Message, error) {
	var p sluicepb.Partial
	if err := proto.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("decode partial %q: %w", id, err)
	}
	if p.Done || len(p.Outcomes) == 0 {
		return nil, t.Del(id)
	}
	first := p.Outcomes[0]
	outcomes := p.Outcomes
	for seg := range max(first.Message.GetSegments(), 1) {
		if !hasSegment(outcomes, seg) {
			outcomes = append(outcomes, &sluicepb.SegmentOutcome{
				Message: first.Message, Segment: seg, Status: message.StatusUnknown, ErrorCode: codeSegmentMissing,
				SubmittedAtMs: first.SubmittedAtMs, DoneAtMs: p.DeadlineMs,
			})
		}
	}
	a.m.timeouts.Add(context.Background(), 1, metric.WithAttributes(attribute.String("status", "segment_missing")))
	return a.complete(t, id, outcomes, p.DeadlineMs)
}

func (a *aggregator) complete(t *state.Txn, id string, outcomes []*sluicepb.SegmentOutcome, atMs int64) ([]kafka.Message, error) {
	out, err := a.publish(outcomes)
	if err != nil {
		return nil, err
	}
	return out, a.save(t, id, &sluicepb.Partial{Done: true, DeadlineMs: atMs + a.cfg.Retention.Milliseconds()})
}

func (a *aggregator) save(t *state.Txn, id string, p *sluicepb.Partial) error {
	v, err := proto.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode partial: %w", err)
	}
	return t.Put(id, v, p.DeadlineMs, !p.Done)
}

func (a *aggregator) publish(outcomes []*sluicepb.SegmentOutcome) ([]kafka.Message, error) {
	st := final(outcomes)
	v, err := st.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	a.m.finals.Add(context.Background(), 1, metric.WithAttributes(attribute.String("status", st.Status)))
	return []kafka.Message{{Topic: a.status, Key: []byte(st.MessageID), Value: v}}, nil
}

func hasSegment(have []*sluicepb.SegmentOutcome, seg uint32) bool {
	for _, h := range have {
		if h.Segment == seg {
			return true
		}
	}
	return false
}

// merge adds o unless its segment is already there (a replayed outcome).
func merge(have []*sluicepb.SegmentOutcome, o *sluicepb.SegmentOutcome) []*sluicepb.SegmentOutcome {
	if hasSegment(have, o.Segment) {
		return have
	}
	return append(have, o)
}

// final is the status event of a message whose segments all have outcomes:
// the worst segment's status and error code, the earliest submit time, the
// latest done time.
func final(outcomes []*sluicepb.SegmentOutcome) message.Status {
	worst := outcomes[0]
	var submitted, done int64
	for _, o := range outcomes {
		if severity[o.Status] > severity[worst.Status] {
			worst = o
		}
		if o.SubmittedAtMs > 0 && (submitted == 0 || o.SubmittedAtMs < submitted) {
			submitted = o.SubmittedAtMs
		}
		done = max(done, o.DoneAtMs)
	}
	// The event time comes from the data, not the clock, so a replay
	// produces the same event.
	st := message.StatusOf(worst.Message, worst.Status, time.UnixMilli(done))
	st.ErrorCode = worst.ErrorCode
	st.SubmittedAt = message.MillisTime(submitted)
	st.DoneAt = message.MillisTime(done)
	return st
}
