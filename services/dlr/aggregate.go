package dlr

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
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
// status. Segments seen so far wait in the partial table.
type aggregator struct {
	partial *table
	status  string // topic
}

func (a *aggregator) step(_ string, rec kafka.Message) (out, changes []kafka.Message, err error) {
	var o sluicepb.SegmentOutcome
	if err := proto.Unmarshal(rec.Value, &o); err != nil {
		return nil, nil, fmt.Errorf("decode outcome %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	id := o.Message.GetId()
	segments := int(max(o.Message.GetSegments(), 1))
	outcomes := []*sluicepb.SegmentOutcome{&o}
	if segments > 1 {
		var p sluicepb.Partial
		if v, ok := a.partial.get(id); ok {
			if err := proto.Unmarshal(v, &p); err != nil {
				return nil, nil, fmt.Errorf("decode partial %q: %w", id, err)
			}
		}
		outcomes = merge(p.Outcomes, &o)
		if len(outcomes) < segments {
			v, err := proto.Marshal(&sluicepb.Partial{Outcomes: outcomes})
			if err != nil {
				return nil, nil, fmt.Errorf("encode partial: %w", err)
			}
			return nil, []kafka.Message{a.partial.put(id, v)}, nil
		}
		if _, ok := a.partial.get(id); ok {
			changes = []kafka.Message{a.partial.del(id)}
		}
	}
	st := final(outcomes)
	v, err := st.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("encode status: %w", err)
	}
	return []kafka.Message{{Topic: a.status, Key: []byte(id), Value: v}}, changes, nil
}

// merge adds o unless its segment is already there (a replayed outcome).
func merge(have []*sluicepb.SegmentOutcome, o *sluicepb.SegmentOutcome) []*sluicepb.SegmentOutcome {
	for _, h := range have {
		if h.Segment == o.Segment {
			return have
		}
	}
	return append(have, o)
}

// final is the status event of a message whose segments all have outcomes.
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
