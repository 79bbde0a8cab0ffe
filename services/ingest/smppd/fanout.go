package smppd

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// FanOutGroup reads sms.status and sluice.mo once for every tenant: one group
// that all ingest replicas of the front door share.
const FanOutGroup = "sluice-smppd-fanout"

// Producer writes records durably (acks=all) before it returns.
type Producer interface {
	Produce(ctx context.Context, msgs ...kafka.Message) error
}

// fanOut copies each SMPP tenant's receipts (final statuses that asked for
// one) and MO (to its smpp_mo_numbers) to the tenant's own topics, so that a
// tenant's binds read their records only instead of everybody's traffic. An
// offset is committed only after its copies are acknowledged.
type fanOut struct {
	prefix  string
	byID    map[string]*tenant  // SMPP tenants by tenant id
	byMO    map[string][]string // MO number without '+' → tenant ids
	produce Producer
}

func newFanOut(prefix string, tenants map[string]*tenant, p Producer) *fanOut {
	f := &fanOut{prefix: prefix, byID: map[string]*tenant{}, byMO: map[string][]string{}, produce: p}
	for _, t := range tenants {
		f.byID[t.id] = t
		for n := range t.moNumbers {
			f.byMO[n] = append(f.byMO[n], t.id)
		}
	}
	return f
}

func (f *fanOut) run(ctx context.Context, brokers []string) error {
	return kafka.ConsumeBatches(ctx, kafka.GroupConfig{
		Brokers: brokers,
		Group:   f.prefix + FanOutGroup,
		Topics:  []string{f.prefix + schemas.TopicStatus, f.prefix + schemas.TopicMO},
	}, kafka.BatchOptions{Max: 5000, Linger: 5 * time.Millisecond}, func(ctx context.Context, topic string, batch []kafka.Message) error {
		copies := f.copies(topic, batch)
		if len(copies) == 0 {
			return nil
		}
		return f.produce.Produce(ctx, copies...)
	})
}

// copies are the records of batch (from topic) for SMPP tenants' topics.
func (f *fanOut) copies(topic string, batch []kafka.Message) []kafka.Message {
	var out []kafka.Message
	for _, rec := range batch {
		if topic == f.prefix+schemas.TopicMO {
			for _, id := range f.moTenants(rec.Value) {
				out = append(out, kafka.Message{Topic: schemas.SMPPMOTopic(f.prefix, id), Key: rec.Key, Value: rec.Value})
			}
			continue
		}
		if id, ok := f.receiptTenant(rec.Value); ok {
			out = append(out, kafka.Message{Topic: schemas.SMPPReceiptsTopic(f.prefix, id), Key: rec.Key, Value: rec.Value})
		}
	}
	return out
}

// receiptTenant is the SMPP tenant a status event is a receipt for, if any.
func (f *fanOut) receiptTenant(value []byte) (string, bool) {
	var st struct {
		Tenant   string            `json:"tenant"`
		Status   string            `json:"status"`
		Metadata map[string]string `json:"metadata"`
	}
	if json.Unmarshal(value, &st) != nil || f.byID[st.Tenant] == nil {
		return "", false
	}
	return st.Tenant, message.IsFinal(st.Status) && wantsReceipt(st.Metadata[MetaRegisteredDelivery], st.Status)
}

// moTenants are the SMPP tenants that own the number an MO was sent to.
func (f *fanOut) moTenants(value []byte) []string {
	var mo sluicepb.MO
	if proto.Unmarshal(value, &mo) != nil {
		return nil
	}
	return f.byMO[strings.TrimPrefix(mo.DestAddr, "+")]
}
