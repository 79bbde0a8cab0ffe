package dlr

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
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

// correlator joins submit results and receipts on (carrier, SMSC message id).
// Whichever comes first waits in the pending table for the other.
type correlator struct {
	pending  *table
	dlrTopic string
	outcomes string // topic
}

// step handles one record and returns the records to publish (outcomes) and
// the changelog records that make the table's new state durable.
func (c *correlator) step(topic string, rec kafka.Message) (out, changes []kafka.Message, err error) {
	key := string(rec.Key)
	isDLR := topic == c.dlrTopic
	var p sluicepb.Pending
	if v, ok := c.pending.get(key); ok {
		if err := proto.Unmarshal(v, &p); err != nil {
			return nil, nil, fmt.Errorf("decode pending %q: %w", key, err)
		}
	}
	if isDLR {
		var d sluicepb.RawDLR
		if err := proto.Unmarshal(rec.Value, &d); err != nil {
			return nil, nil, fmt.Errorf("decode dlr %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
		}
		if _, final := statusOfStat(d.Stat); !final {
			return nil, nil, nil
		}
		p.Dlr = &d
	} else {
		var s sluicepb.SubmitResult
		if err := proto.Unmarshal(rec.Value, &s); err != nil {
			return nil, nil, fmt.Errorf("decode submit %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
		}
		p.Submit = &s
	}
	if p.Submit == nil || p.Dlr == nil {
		v, err := proto.Marshal(&p)
		if err != nil {
			return nil, nil, fmt.Errorf("encode pending: %w", err)
		}
		return nil, []kafka.Message{c.pending.put(key, v)}, nil
	}
	o := outcome(p.Submit, p.Dlr)
	v, err := proto.Marshal(o)
	if err != nil {
		return nil, nil, fmt.Errorf("encode outcome: %w", err)
	}
	return []kafka.Message{{Topic: c.outcomes, Key: []byte(o.Message.GetId()), Value: v}},
		[]kafka.Message{c.pending.del(key)}, nil
}

func outcome(s *sluicepb.SubmitResult, d *sluicepb.RawDLR) *sluicepb.SegmentOutcome {
	status, _ := statusOfStat(d.Stat)
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
		ErrorCode:     d.Err,
		SmscMessageId: s.SmscMessageId,
		SubmittedAtMs: s.SubmittedAtMs,
		DoneAtMs:      done,
	}
}
