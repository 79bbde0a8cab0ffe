// Package smpp is sluice's SMPP 3.4 session layer: a windowed, asynchronous client (ESME)
// and a server (SMSC side, for the simulator and an SMPP front door), both over go-smpp's
// PDU codec, with one piece of session machinery for both directions.
//
// In-flight requests are matched by (response command, sequence number) on sequence
// numbers each session allocates itself, so a peer-initiated deliver_sm never collides
// with a pending submit_sm. Handlers never run inside the read loop, every write has a
// deadline, and PDUs we do not implement are answered with generic_nack without dropping
// the bind.
package smpp

// BindMode is the kind of bind a session holds.
type BindMode int

// Bind modes. The zero value is a transceiver bind.
const (
	BindTransceiver BindMode = iota
	BindTransmitter
	BindReceiver
)

func (m BindMode) String() string {
	switch m {
	case BindTransceiver:
		return "transceiver"
	case BindTransmitter:
		return "transmitter"
	case BindReceiver:
		return "receiver"
	}
	return "unknown"
}

// canSubmit reports whether an ESME bound this way may send submit_sm.
func (m BindMode) canSubmit() bool { return m != BindReceiver }

// canReceive reports whether an ESME bound this way may be sent deliver_sm.
func (m BindMode) canReceive() bool { return m != BindTransmitter }

// ESM class and registered_delivery bits used with receipts.
const (
	ESMClassDeliveryReceipt uint8 = 0x04 // deliver_sm carrying an SMSC delivery receipt
	ESMClassUDHI            uint8 = 0x40 // short_message starts with a user data header
	RegisteredDeliveryFinal uint8 = 0x01 // receipt on final outcome, success or failure
)

// SubmitSM is an outgoing short message.
type SubmitSM struct {
	SourceAddr           string
	SourceTON, SourceNPI uint8
	DestAddr             string
	DestTON, DestNPI     uint8
	ESMClass             uint8
	DataCoding           uint8
	RegisteredDelivery   uint8
	ShortMessage         []byte // at most 254 octets; longer content goes in the message_payload TLV
	ValidityPeriod       string // SMPP time format, absolute or relative; empty for the SMSC default
	TLVs                 map[uint16][]byte
}

// SubmitResp is the SMSC's answer to a submit_sm.
type SubmitResp struct {
	MessageID string
	Status    uint32 // non-zero: the SMSC refused the message with this status
}

// Deliver is a deliver_sm or a data_sm from the SMSC: a delivery receipt
// (ESMClass&ESMClassDeliveryReceipt) or a mobile-originated message. A data_sm has no
// ShortMessage: its text is in the message_payload TLV.
type Deliver struct {
	SourceAddr           string
	SourceTON, SourceNPI uint8
	DestAddr             string
	DestTON, DestNPI     uint8
	ESMClass             uint8
	DataCoding           uint8
	ShortMessage         []byte // as sent, including any user data header
	TLVs                 map[uint16][]byte
}

// IsReceipt reports whether the deliver_sm carries a delivery receipt.
func (d *Deliver) IsReceipt() bool { return d.ESMClass&0x3C == ESMClassDeliveryReceipt }

func (s *SubmitSM) toShortMessage() *shortMessage {
	return &shortMessage{
		srcAddr: s.SourceAddr, srcTON: s.SourceTON, srcNPI: s.SourceNPI,
		dstAddr: s.DestAddr, dstTON: s.DestTON, dstNPI: s.DestNPI,
		esmClass: s.ESMClass, dataCoding: s.DataCoding, registeredDelivery: s.RegisteredDelivery,
		validityPeriod: s.ValidityPeriod, text: s.ShortMessage, tlvs: s.TLVs,
	}
}

func (m *shortMessage) toSubmitSM() *SubmitSM {
	return &SubmitSM{
		SourceAddr: m.srcAddr, SourceTON: m.srcTON, SourceNPI: m.srcNPI,
		DestAddr: m.dstAddr, DestTON: m.dstTON, DestNPI: m.dstNPI,
		ESMClass: m.esmClass, DataCoding: m.dataCoding, RegisteredDelivery: m.registeredDelivery,
		ValidityPeriod: m.validityPeriod, ShortMessage: m.text, TLVs: m.tlvs,
	}
}

func (d *Deliver) toShortMessage() *shortMessage {
	return &shortMessage{
		srcAddr: d.SourceAddr, srcTON: d.SourceTON, srcNPI: d.SourceNPI,
		dstAddr: d.DestAddr, dstTON: d.DestTON, dstNPI: d.DestNPI,
		esmClass: d.ESMClass, dataCoding: d.DataCoding, text: d.ShortMessage, tlvs: d.TLVs,
	}
}

func (m *shortMessage) toDeliver() *Deliver {
	return &Deliver{
		SourceAddr: m.srcAddr, SourceTON: m.srcTON, SourceNPI: m.srcNPI,
		DestAddr: m.dstAddr, DestTON: m.dstTON, DestNPI: m.dstNPI,
		ESMClass: m.esmClass, DataCoding: m.dataCoding, ShortMessage: m.text, TLVs: m.tlvs,
	}
}
