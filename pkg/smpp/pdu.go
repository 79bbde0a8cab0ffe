package smpp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

// maxPDULen bounds what we read off the wire. go-smpp refuses anything over 4096 bytes and
// drops the bind; we read up to this, answer oversized known PDUs with generic_nack and keep
// the bind.
const maxPDULen = 64 << 10

// maxShortMessage is the largest short_message (sm_length is one octet, 254 at most).
const maxShortMessage = 254

const respBit pdu.ID = 0x80000000

var commandNames = map[pdu.ID]string{
	pdu.GenericNACKID:         "generic_nack",
	pdu.BindReceiverID:        "bind_receiver",
	pdu.BindReceiverRespID:    "bind_receiver_resp",
	pdu.BindTransmitterID:     "bind_transmitter",
	pdu.BindTransmitterRespID: "bind_transmitter_resp",
	pdu.QuerySMID:             "query_sm",
	pdu.QuerySMRespID:         "query_sm_resp",
	pdu.SubmitSMID:            "submit_sm",
	pdu.SubmitSMRespID:        "submit_sm_resp",
	pdu.DeliverSMID:           "deliver_sm",
	pdu.DeliverSMRespID:       "deliver_sm_resp",
	pdu.UnbindID:              "unbind",
	pdu.UnbindRespID:          "unbind_resp",
	pdu.ReplaceSMID:           "replace_sm",
	pdu.ReplaceSMRespID:       "replace_sm_resp",
	pdu.CancelSMID:            "cancel_sm",
	pdu.CancelSMRespID:        "cancel_sm_resp",
	pdu.BindTransceiverID:     "bind_transceiver",
	pdu.BindTransceiverRespID: "bind_transceiver_resp",
	pdu.OutbindID:             "outbind",
	pdu.EnquireLinkID:         "enquire_link",
	pdu.EnquireLinkRespID:     "enquire_link_resp",
	pdu.SubmitMultiID:         "submit_multi",
	pdu.SubmitMultiRespID:     "submit_multi_resp",
	pdu.AlertNotificationID:   "alert_notification",
	pdu.DataSMID:              "data_sm",
	pdu.DataSMRespID:          "data_sm_resp",
}

func commandName(id pdu.ID) string {
	if n, ok := commandNames[id]; ok {
		return n
	}
	return fmt.Sprintf("command 0x%08X", uint32(id))
}

// bindCommand ties a bind mode to its PDUs.
type bindCommand struct {
	mode            BindMode
	newReq, newResp func() pdu.Body
}

var bindCommands = map[pdu.ID]bindCommand{
	pdu.BindTransceiverID: {BindTransceiver, pdu.NewBindTransceiver, pdu.NewBindTransceiverResp},
	pdu.BindTransmitterID: {BindTransmitter, pdu.NewBindTransmitter, pdu.NewBindTransmitterResp},
	pdu.BindReceiverID:    {BindReceiver, pdu.NewBindReceiver, pdu.NewBindReceiverResp},
}

func bindCommandFor(mode BindMode) (bindCommand, bool) {
	for _, bc := range bindCommands {
		if bc.mode == mode {
			return bc, true
		}
	}
	return bindCommand{}, false
}

// packet is one PDU read off the wire. body is decoded (by go-smpp) only for the commands
// whose fields we use; decodeErr says why such a body could not be decoded.
type packet struct {
	id        pdu.ID
	status    uint32
	seq       uint32
	body      pdu.Body
	dataSM    *shortMessage // a decoded data_sm, which go-smpp does not implement
	messageID string        // a submit_sm_resp's message_id, read without go-smpp
	decodeErr error
}

// decodedBodies lists the commands whose body fields we read.
var decodedBodies = map[pdu.ID]bool{
	pdu.BindReceiverID:    true,
	pdu.BindTransmitterID: true,
	pdu.BindTransceiverID: true,
	pdu.SubmitSMID:        true,
	pdu.DeliverSMID:       true,
}

// readPacket reads one PDU. An error means the stream is unusable (EOF, short read, or a
// command_length no sane peer sends); a body that does not decode is not such an error.
func readPacket(r io.Reader) (packet, error) {
	var hdr [pdu.HeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return packet{}, err
	}
	n := binary.BigEndian.Uint32(hdr[0:4])
	if n < pdu.HeaderLen || n > maxPDULen {
		return packet{}, fmt.Errorf("smpp: invalid command_length %d", n)
	}
	raw := make([]byte, n)
	copy(raw, hdr[:])
	if _, err := io.ReadFull(r, raw[pdu.HeaderLen:]); err != nil {
		return packet{}, fmt.Errorf("smpp: short PDU body: %w", err)
	}
	p := packet{
		id:     pdu.ID(binary.BigEndian.Uint32(hdr[4:8])),
		status: binary.BigEndian.Uint32(hdr[8:12]),
		seq:    binary.BigEndian.Uint32(hdr[12:16]),
	}
	switch p.id {
	case pdu.DataSMID:
		p.dataSM, p.decodeErr = decodeDataSM(raw[pdu.HeaderLen:])
		return p, nil
	case pdu.SubmitSMRespID:
		// message_id up to its NUL; none without one (as go-smpp reads it).
		// Any TLVs after it are of no use to sluice.
		if i := bytes.IndexByte(raw[pdu.HeaderLen:], 0); i >= 0 {
			p.messageID = string(raw[pdu.HeaderLen : pdu.HeaderLen+i])
		}
		return p, nil
	}
	if !decodedBodies[p.id] {
		return p, nil
	}
	if n > pdu.MaxSize {
		p.decodeErr = fmt.Errorf("smpp: %s of %d bytes is too large", commandName(p.id), n)
		return p, nil
	}
	p.body, p.decodeErr = decodeBody(raw)
	return p, nil
}

// decodeBody runs go-smpp's decoder, which panics on some malformed inputs (found by
// fuzzing); a panic there is one bad PDU, not a reason to crash the process.
func decodeBody(raw []byte) (b pdu.Body, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("smpp: malformed PDU: %v", r)
		}
	}()
	return pdu.Decode(bytes.NewReader(raw))
}

// decodeDataSM reads a data_sm body (SMPP 3.4 section 4.7.1): service_type, source and
// destination addresses, esm_class, registered_delivery, data_coding, then TLVs (the text
// travels in message_payload).
func decodeDataSM(b []byte) (*shortMessage, error) {
	r := wireReader{b: b}
	r.cstring(6) // service_type: of no use to sluice
	m := &shortMessage{}
	m.srcTON, m.srcNPI, m.srcAddr = r.byte(), r.byte(), r.cstring(65)
	m.dstTON, m.dstNPI, m.dstAddr = r.byte(), r.byte(), r.cstring(65)
	m.esmClass, m.registeredDelivery, m.dataCoding = r.byte(), r.byte(), r.byte()
	for r.err == nil && len(r.b) > 0 {
		if len(r.b) < 4 {
			r.err = errors.New("truncated TLV header")
			break
		}
		tag, n := binary.BigEndian.Uint16(r.b[0:2]), int(binary.BigEndian.Uint16(r.b[2:4]))
		if len(r.b) < 4+n {
			r.err = fmt.Errorf("TLV 0x%04X: %d octets announced, %d left", tag, n, len(r.b)-4)
			break
		}
		if m.tlvs == nil {
			m.tlvs = map[uint16][]byte{}
		}
		m.tlvs[tag] = bytes.Clone(r.b[4 : 4+n])
		r.b = r.b[4+n:]
	}
	if r.err != nil {
		return nil, fmt.Errorf("smpp: data_sm: %w", r.err)
	}
	return m, nil
}

// wireReader reads SMPP fields off a body; the first error sticks.
type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) byte() uint8 {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errors.New("truncated body")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// cstring reads a NUL-terminated string of at most max octets, NUL included.
func (r *wireReader) cstring(max int) string {
	if r.err != nil {
		return ""
	}
	i := bytes.IndexByte(r.b[:min(len(r.b), max)], 0)
	if i < 0 {
		r.err = fmt.Errorf("C-string without NUL within %d octets", max)
		return ""
	}
	v := string(r.b[:i])
	r.b = r.b[i+1:]
	return v
}

// encodeRaw serialises a PDU whose body is already encoded.
func encodeRaw(id pdu.ID, status, seq uint32, body []byte) []byte {
	b := encodeHeader(id, status, seq)
	binary.BigEndian.PutUint32(b[0:4], uint32(pdu.HeaderLen+len(body)))
	return append(b, body...)
}

// encodeHeader serialises a body-less PDU: enquire_link, unbind, their responses,
// generic_nack, and responses with a non-zero status (SMPP 3.4 omits their body).
func encodeHeader(id pdu.ID, status, seq uint32) []byte {
	b := make([]byte, pdu.HeaderLen)
	binary.BigEndian.PutUint32(b[0:4], pdu.HeaderLen)
	binary.BigEndian.PutUint32(b[4:8], uint32(id))
	binary.BigEndian.PutUint32(b[8:12], status)
	binary.BigEndian.PutUint32(b[12:16], seq)
	return b
}

// encodeBody serialises a go-smpp body with the given sequence number and status.
func encodeBody(b pdu.Body, status, seq uint32) ([]byte, error) {
	b.Header().Seq = seq
	b.Header().Status = pdu.Status(status)
	var buf bytes.Buffer
	if err := b.SerializeTo(&buf); err != nil {
		return nil, fmt.Errorf("smpp: encode %s: %w", commandName(b.Header().ID), err)
	}
	return buf.Bytes(), nil
}

// shortMessage is what submit_sm and deliver_sm share.
type shortMessage struct {
	srcAddr              string
	srcTON, srcNPI       uint8
	dstAddr              string
	dstTON, dstNPI       uint8
	esmClass, dataCoding uint8
	registeredDelivery   uint8
	validityPeriod       string
	text                 []byte
	tlvs                 map[uint16][]byte
}

var errMessageTooLong = errors.New("smpp: short_message longer than 254 octets (use the message_payload TLV)")

// fill sets the body's mandatory fields and TLVs.
func (m *shortMessage) fill(b pdu.Body) error {
	if len(m.text) > maxShortMessage {
		return errMessageTooLong
	}
	f := b.Fields()
	sets := []struct {
		name  pdufield.Name
		value any
	}{
		{pdufield.SourceAddrTON, m.srcTON},
		{pdufield.SourceAddrNPI, m.srcNPI},
		{pdufield.SourceAddr, m.srcAddr},
		{pdufield.DestAddrTON, m.dstTON},
		{pdufield.DestAddrNPI, m.dstNPI},
		{pdufield.DestinationAddr, m.dstAddr},
		{pdufield.ESMClass, m.esmClass},
		{pdufield.ValidityPeriod, m.validityPeriod},
		{pdufield.RegisteredDelivery, m.registeredDelivery},
		{pdufield.ShortMessage, m.text},
		{pdufield.DataCoding, m.dataCoding},
	}
	for _, s := range sets {
		if err := f.Set(s.name, s.value); err != nil {
			return fmt.Errorf("smpp: set %s: %w", s.name, err)
		}
	}
	for tag, v := range m.tlvs {
		if len(v) > 0xFFFF {
			return fmt.Errorf("smpp: TLV 0x%04X value of %d octets is too long", tag, len(v))
		}
		b.TLVFields()[pdutlv.Tag(tag)] = &pdutlv.Field{Tag: pdutlv.Tag(tag), Data: v}
	}
	return nil
}

// appendPDU appends the submit_sm with sequence number seq to b, octet for
// octet what go-smpp writes (TLVs in tag order, where go-smpp follows map
// order) without building its field maps: the sender encodes one per segment.
func (s *SubmitSM) appendPDU(b []byte, seq uint32) ([]byte, error) {
	if len(s.ShortMessage) > maxShortMessage {
		return nil, errMessageTooLong
	}
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, 0) // command_length, set below
	b = binary.BigEndian.AppendUint32(b, uint32(pdu.SubmitSMID))
	b = binary.BigEndian.AppendUint32(b, StatusOK)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = append(b, 0) // service_type ""
	b = append(b, s.SourceTON, s.SourceNPI)
	b = appendCString(b, s.SourceAddr)
	b = append(b, s.DestTON, s.DestNPI)
	b = appendCString(b, s.DestAddr)
	b = append(b, s.ESMClass, 0, 0, 0) // esm_class, protocol_id, priority_flag, schedule_delivery_time ""
	b = appendCString(b, s.ValidityPeriod)
	b = append(b, s.RegisteredDelivery, 0, s.DataCoding, 0, byte(len(s.ShortMessage))) // replace_if_present, sm_default_msg_id, sm_length
	b = append(b, s.ShortMessage...)
	for _, tag := range slices.Sorted(maps.Keys(s.TLVs)) {
		v := s.TLVs[tag]
		if len(v) > 0xFFFF {
			return nil, fmt.Errorf("smpp: TLV 0x%04X value of %d octets is too long", tag, len(v))
		}
		b = binary.BigEndian.AppendUint16(b, tag)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b, nil
}

// appendCString appends s as a C-octet string; like go-smpp, it adds no NUL
// to a value that already ends with one.
func appendCString(b []byte, s string) []byte {
	b = append(b, s...)
	if len(s) == 0 || s[len(s)-1] != 0 {
		b = append(b, 0)
	}
	return b
}

func newDeliverBody(m *shortMessage) (pdu.Body, error) {
	b := pdu.NewDeliverSM()
	if err := m.fill(b); err != nil {
		return nil, err
	}
	// go-smpp's deliver_sm field list carries the UDH pseudo-fields; the length one would
	// serialise as a stray 0x00 before short_message. An empty SM field writes nothing.
	b.Fields()[pdufield.UDHLength] = &pdufield.SM{}
	b.Fields()[pdufield.GSMUserData] = &pdufield.UDHList{}
	return b, nil
}

// readShortMessage extracts the fields of a decoded submit_sm or deliver_sm.
func readShortMessage(b pdu.Body) *shortMessage {
	f := b.Fields()
	m := &shortMessage{
		srcAddr:            fieldString(f, pdufield.SourceAddr),
		srcTON:             fieldByte(f, pdufield.SourceAddrTON),
		srcNPI:             fieldByte(f, pdufield.SourceAddrNPI),
		dstAddr:            fieldString(f, pdufield.DestinationAddr),
		dstTON:             fieldByte(f, pdufield.DestAddrTON),
		dstNPI:             fieldByte(f, pdufield.DestAddrNPI),
		esmClass:           fieldByte(f, pdufield.ESMClass),
		dataCoding:         fieldByte(f, pdufield.DataCoding),
		registeredDelivery: fieldByte(f, pdufield.RegisteredDelivery),
		validityPeriod:     fieldString(f, pdufield.ValidityPeriod),
	}
	// go-smpp splits a deliver_sm's user data header out of short_message; put it back so
	// callers see the octets that were sent, as they do for submit_sm.
	if udhl, ok := f[pdufield.UDHLength].(*pdufield.Fixed); ok {
		m.text = append(m.text, udhl.Data)
		if l, ok := f[pdufield.GSMUserData].(*pdufield.UDHList); ok {
			for _, ie := range l.Data {
				m.text = append(m.text, ie.IEI.Data, ie.IELength.Data)
				m.text = append(m.text, ie.IEData.Data...)
			}
		}
	}
	if sm := f[pdufield.ShortMessage]; sm != nil {
		m.text = append(m.text, sm.Bytes()...)
	}
	if t := b.TLVFields(); len(t) > 0 {
		m.tlvs = make(map[uint16][]byte, len(t))
		for tag, v := range t {
			m.tlvs[uint16(tag)] = bytes.Clone(v.Bytes())
		}
	}
	return m
}

func fieldString(f pdufield.Map, n pdufield.Name) string {
	if v := f[n]; v != nil {
		return v.String()
	}
	return ""
}

func fieldByte(f pdufield.Map, n pdufield.Name) uint8 {
	if v := f[n]; v != nil {
		if b := v.Bytes(); len(b) > 0 {
			return b[0]
		}
	}
	return 0
}
