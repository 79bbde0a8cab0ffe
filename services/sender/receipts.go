package sender

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/text"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// esm_class message type bits of an SMSC delivery receipt.
const (
	esmTypeMask    = 0x3C
	esmTypeReceipt = 0x04
)

// deliverHandler stores each deliver_sm in Kafka before the session answers
// it (deliver_sm_resp goes out only after this returns nil), so nothing is
// acknowledged before it is safe: receipts to sluice.dlr.raw, mobile-originated
// messages to sluice.mo.
func deliverHandler(carrier string, forms config.ReceiptIDs, ce *carrierEnv, pub *publisher, obs *deliverObserver, log *slog.Logger) func(context.Context, *smpp.Deliver) error {
	return func(ctx context.Context, d *smpp.Deliver) error {
		if d.ESMClass&esmTypeMask != esmTypeReceipt {
			return publishMO(ctx, carrier, ce, pub, log, d)
		}
		dlr := RawDLR(carrier, forms, d, ce.now().UnixMilli())
		if dlr.SmscMessageId == "" {
			// Nothing to correlate on: keep it, keyed by carrier, for inspection.
			log.WarnContext(ctx, "receipt without a message id", "text", string(d.ShortMessage))
		}
		if dlr.AltSmscMessageId != "" {
			obs.disagreed(ctx, dlr.SmscMessageId, dlr.AltSmscMessageId)
		}
		v, err := proto.Marshal(dlr)
		if err != nil {
			return fmt.Errorf("encode dlr: %w", err)
		}
		ce.m.dlrs.Add(ctx, 1, metric.WithAttributes(attribute.String("carrier", carrier), attribute.String("kind", "receipt")))
		return pub.publish(ctx, kafka.Message{
			Topic: ce.prefix + schemas.TopicDLRRaw,
			Key:   []byte(message.SMSCKey(carrier, dlr.SmscMessageId)),
			Value: v,
		})
	}
}

// publishMO stores a mobile-originated message for the router (opt-outs)
// and the dlr (sms.mo), keyed by the subscriber's number so that one
// subscriber's messages stay in order and meet sluice.conversations'
// records of that number. Each part of a concatenated MO is its own record:
// the dlr joins them.
func publishMO(ctx context.Context, carrier string, ce *carrierEnv, pub *publisher, log *slog.Logger, d *smpp.Deliver) error {
	mo := MO(carrier, d, ce.now().UnixMilli())
	v, err := proto.Marshal(mo)
	if err != nil {
		return fmt.Errorf("encode mo: %w", err)
	}
	ce.m.dlrs.Add(ctx, 1, metric.WithAttributes(attribute.String("carrier", carrier), attribute.String("kind", "mo")))
	log.DebugContext(ctx, "mobile-originated message", "source_prefix", prefixOf(mo.SourceAddr))
	return pub.publish(ctx, kafka.Message{Topic: ce.prefix + schemas.TopicMO, Key: []byte(message.NormalizeNumber(mo.SourceAddr)), Value: v})
}

// MO reads a mobile-originated deliver_sm: the text decoded by its
// data_coding (message_payload when short_message is empty), the user data
// header's concatenation element if any, and the subscriber in E.164 form
// when the carrier says it is an international number.
func MO(carrier string, d *smpp.Deliver, receivedAtMs int64) *sluicepb.MO {
	body := d.ShortMessage
	if p, ok := d.TLVs[smpp.TagMessagePayload]; ok && len(body) == 0 {
		body = p
	}
	var concat text.Concat
	if d.ESMClass&smpp.ESMClassUDHI != 0 {
		concat, _, body = text.SplitUDH(body)
	}
	txt, err := text.Decode(d.DataCoding, body)
	if err != nil {
		txt = string(body) // undecodable: keep the octets rather than drop the message
	}
	src := d.SourceAddr
	if d.SourceTON == 1 && src != "" && src[0] != '+' {
		src = "+" + src
	}
	return &sluicepb.MO{
		Carrier: carrier, SourceAddr: src, DestAddr: d.DestAddr, Text: txt, ReceivedAtMs: receivedAtMs,
		Encoding:  text.EncodingName(d.DataCoding),
		ConcatRef: uint32(concat.Ref), ConcatTotal: uint32(concat.Total), ConcatSeq: uint32(concat.Seq),
	}
}

// RawDLR reads a receipt (deliver_sm or data_sm) from its TLVs, falling back to
// the text form. Its id is the receipted_message_id TLV, else the text's id:,
// both in canonical form (see receiptid.go); when the two disagree the text's
// is kept as the alternative for the dlr to try.
func RawDLR(carrier string, forms config.ReceiptIDs, d *smpp.Deliver, receivedAtMs int64) *sluicepb.RawDLR {
	out := &sluicepb.RawDLR{
		Carrier:      carrier,
		ReceivedAtMs: receivedAtMs,
		ShortMessage: d.ShortMessage,
		SourceAddr:   d.SourceAddr,
		DestAddr:     d.DestAddr,
	}
	body := d.ShortMessage
	if p, ok := d.TLVs[smpp.TagMessagePayload]; ok && len(body) == 0 {
		body = p // a data_sm receipt
	}
	var textID string
	if r, err := smpp.ParseReceipt(body); err == nil {
		textID = r.ID
		out.Stat = r.Stat
		out.Err = r.Err
		if !r.DoneDate.IsZero() {
			out.DoneAtMs = r.DoneDate.UnixMilli()
		}
	}
	fromTLV, fromText := receiptIDs(string(d.TLVs[smpp.TagReceiptedMessageID]), textID, forms)
	out.SmscMessageId = fromText
	if fromTLV != "" {
		out.SmscMessageId = fromTLV
		if fromText != "" && fromText != fromTLV {
			out.AltSmscMessageId = fromText
		}
	}
	if st, ok := d.TLVs[smpp.TagMessageState]; ok && len(st) == 1 {
		out.MessageState = uint32(st[0])
		if out.Stat == "" {
			out.Stat = stateName(st[0])
		}
	}
	if ne, ok := d.TLVs[smpp.TagNetworkErrorCode]; ok && len(ne) == 3 {
		out.NetworkErrorCode = fmt.Sprintf("%d:%d", ne[0], int(ne[1])<<8|int(ne[2]))
	}
	return out
}

// stateName maps SMPP message_state values to the receipt text's stat names.
func stateName(state byte) string {
	switch state {
	case 1:
		return "ENROUTE"
	case 2:
		return "DELIVRD"
	case 3:
		return "EXPIRED"
	case 4:
		return "DELETED"
	case 5:
		return "UNDELIV"
	case 6:
		return "ACCEPTD"
	case 8:
		return "REJECTD"
	}
	return "UNKNOWN"
}

// prefixOf keeps numbers out of logs beyond their country and operator part.
func prefixOf(n string) string {
	if len(n) > 5 {
		return n[:5]
	}
	return n
}
