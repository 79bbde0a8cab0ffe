package sender

import (
	"encoding/binary"
	"hash/fnv"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/text"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// SAR TLVs (SMPP 3.4 section 5.3.2): concatenation without a user data header.
const (
	tagSARMsgRefNum     = 0x020C
	tagSARTotalSegments = 0x020E
	tagSARSegmentSeqnum = 0x020F
)

// buildSubmits turns a message into the submit_sm of each segment, as the
// carrier's long-message mode says, and reports how many parts the text
// takes (the unit of the carrier's TPS, whatever the mode). Every segment
// asks for a receipt.
func buildSubmits(m *sluicepb.Message, mode string) ([]*smpp.SubmitSM, int, error) {
	ref := refOf(m.Id)
	enc, parts, err := text.Split(m.Text, ref, text.MaxParts)
	if err != nil {
		return nil, 0, err
	}
	base := smpp.SubmitSM{
		DestAddr: trimPlus(m.To), DestTON: 1, DestNPI: 1,
		DataCoding:         text.DataCoding(enc),
		RegisteredDelivery: smpp.RegisteredDeliveryFinal,
	}
	base.SourceTON, base.SourceNPI, base.SourceAddr = sourceAddr(m.From)
	if m.ExpiresAtMs > 0 {
		base.ValidityPeriod = smppTime(time.UnixMilli(m.ExpiresAtMs))
	}
	if len(parts) == 1 {
		sm := base
		sm.ShortMessage = parts[0].Payload
		return []*smpp.SubmitSM{&sm}, 1, nil
	}
	switch mode {
	case config.LongPayload:
		sm := base
		for _, p := range parts {
			sm.ShortMessage = append(sm.ShortMessage, p.Payload...)
		}
		sm.TLVs = map[uint16][]byte{smpp.TagMessagePayload: sm.ShortMessage}
		sm.ShortMessage = nil
		return []*smpp.SubmitSM{&sm}, len(parts), nil
	case config.LongSAR:
		out := make([]*smpp.SubmitSM, len(parts))
		for i, p := range parts {
			sm := base
			sm.ShortMessage = p.Payload
			sm.TLVs = map[uint16][]byte{
				tagSARMsgRefNum:     binary.BigEndian.AppendUint16(nil, ref),
				tagSARTotalSegments: {byte(len(parts))},
				tagSARSegmentSeqnum: {byte(i + 1)},
			}
			out[i] = &sm
		}
		return out, len(parts), nil
	}
	out := make([]*smpp.SubmitSM, len(parts))
	for i, p := range parts {
		sm := base
		sm.ESMClass = smpp.ESMClassUDHI
		sm.ShortMessage = append(append(make([]byte, 0, len(p.UDH)+len(p.Payload)), p.UDH...), p.Payload...)
		out[i] = &sm
	}
	return out, len(parts), nil
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
