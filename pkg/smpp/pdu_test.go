package smpp

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
)

// TestDeliverSMWireBytes pins a serialised deliver_sm to hand-written octets: go-smpp on
// its own writes a stray 0x00 before short_message.
func TestDeliverSMWireBytes(t *testing.T) {
	d := &Deliver{
		SourceAddr: "447700900123", SourceTON: 1, SourceNPI: 1,
		DestAddr:     "ACME",
		ESMClass:     ESMClassDeliveryReceipt,
		ShortMessage: []byte("id:ab stat:DELIVRD"),
		TLVs:         map[uint16][]byte{TagReceiptedMessageID: []byte("ab\x00")},
	}
	b, err := newDeliverBody(d.toShortMessage())
	if err != nil {
		t.Fatal(err)
	}
	got, err := encodeBody(b, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for _, part := range [][]byte{
		{0x00, 0x00, 0x00, 0x4A}, // command_length 74
		{0x00, 0x00, 0x00, 0x05}, // deliver_sm
		{0x00, 0x00, 0x00, 0x00}, // status
		{0x00, 0x00, 0x00, 0x07}, // sequence
		{0x00},                   // service_type ""
		{0x01, 0x01},             // source ton, npi
		[]byte("447700900123\x00"),
		{0x00, 0x00}, // dest ton, npi
		[]byte("ACME\x00"),
		{0x04},                   // esm_class: delivery receipt
		{0x00, 0x00},             // protocol_id, priority_flag
		{0x00, 0x00},             // schedule_delivery_time "", validity_period ""
		{0x00, 0x00, 0x00, 0x00}, // registered_delivery, replace_if_present, data_coding, sm_default_msg_id
		{0x12},                   // sm_length 18, then short_message with no stray byte before it
		[]byte("id:ab stat:DELIVRD"),
		{0x00, 0x1E, 0x00, 0x03, 'a', 'b', 0x00}, // receipted_message_id
	} {
		want = append(want, part...)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("deliver_sm on the wire:\n got % x\nwant % x", got, want)
	}
}

func TestSubmitSMWireBytes(t *testing.T) {
	sm := &SubmitSM{
		SourceAddr: "ACME", SourceTON: 5,
		DestAddr: "447700900123", DestTON: 1, DestNPI: 1,
		RegisteredDelivery: RegisteredDeliveryFinal, DataCoding: 8,
		ShortMessage:   []byte{0x00, 'h', 0x00, 'i'},
		ValidityPeriod: "000001000000000R",
	}
	got, err := sm.appendPDU(nil, 0x7FFFFFFF)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for _, part := range [][]byte{
		{0x00, 0x00, 0x00, 0x45}, {0x00, 0x00, 0x00, 0x04}, {0, 0, 0, 0}, {0x7F, 0xFF, 0xFF, 0xFF},
		{0x00}, {0x05, 0x00}, []byte("ACME\x00"),
		{0x01, 0x01}, []byte("447700900123\x00"),
		{0x00, 0x00, 0x00}, // esm_class, protocol_id, priority_flag
		{0x00},             // schedule_delivery_time
		[]byte("000001000000000R\x00"),
		{0x01, 0x00, 0x08, 0x00}, // registered_delivery, replace_if_present, data_coding UCS-2, sm_default_msg_id
		{0x04, 0x00, 'h', 0x00, 'i'},
	} {
		want = append(want, part...)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("submit_sm on the wire:\n got % x\nwant % x", got, want)
	}
}

// goSMPPSubmit is a submit_sm as go-smpp serialises it: the reference for
// SubmitSM.appendPDU.
func goSMPPSubmit(sm *SubmitSM, seq uint32) ([]byte, error) {
	b := pdu.NewSubmitSM(nil)
	if err := sm.toShortMessage().fill(b); err != nil {
		return nil, err
	}
	return encodeBody(b, 0, seq)
}

// TestSubmitSMAsGoSMPP checks appendPDU against go-smpp's encoder, octet for
// octet (go-smpp writes several TLVs in map order, so those are compared
// decoded), and that what it appends to keeps its place.
func TestSubmitSMAsGoSMPP(t *testing.T) {
	tests := []struct {
		name string
		sm   SubmitSM
	}{
		{"empty", SubmitSM{}},
		{"gsm text with receipt", SubmitSM{SourceAddr: "ACME", SourceTON: 5, DestAddr: "447700900123", DestTON: 1, DestNPI: 1,
			RegisteredDelivery: RegisteredDeliveryFinal, ShortMessage: []byte("hello")}},
		{"udh and validity", SubmitSM{SourceAddr: "12345", SourceTON: 3, DestAddr: "447700900123", ESMClass: ESMClassUDHI,
			ValidityPeriod: "261127120000000+", ShortMessage: append([]byte{5, 0, 3, 1, 2, 1}, make([]byte, 248)...)}},
		{"address already NUL-terminated", SubmitSM{SourceAddr: "A\x00", DestAddr: "B"}},
		{"message_payload", SubmitSM{DestAddr: "447700900123", DataCoding: 8,
			TLVs: map[uint16][]byte{TagMessagePayload: bytes.Repeat([]byte{0, 'x'}, 300)}}},
		{"sar", SubmitSM{DestAddr: "447700900123", ShortMessage: []byte("part"),
			TLVs: map[uint16][]byte{0x020C: {0x12, 0x34}, 0x020E: {2}, 0x020F: {1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := goSMPPSubmit(&tt.sm, 42)
			if err != nil {
				t.Fatal(err)
			}
			prefix := []byte("kept")
			got, err := tt.sm.appendPDU(bytes.Clone(prefix), 42)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:len(prefix)], prefix) {
				t.Fatalf("prefix overwritten: % x", got[:len(prefix)])
			}
			got = got[len(prefix):]
			if len(tt.sm.TLVs) <= 1 {
				if !bytes.Equal(got, want) {
					t.Errorf("submit_sm:\n got % x\nwant % x", got, want)
				}
				return
			}
			if len(got) != len(want) {
				t.Fatalf("%d octets, go-smpp %d", len(got), len(want))
			}
			p, err := readPacket(bytes.NewReader(got))
			if err != nil || p.decodeErr != nil {
				t.Fatalf("decode: %v %v", err, p.decodeErr)
			}
			if back := readShortMessage(p.body).toSubmitSM(); !reflect.DeepEqual(back.TLVs, tt.sm.TLVs) || !bytes.Equal(back.ShortMessage, tt.sm.ShortMessage) {
				t.Errorf("decoded %+v, want %+v", back, tt.sm)
			}
		})
	}
	if _, err := (&SubmitSM{ShortMessage: make([]byte, 255)}).appendPDU(nil, 1); err != errMessageTooLong {
		t.Errorf("255-octet short_message: %v, want errMessageTooLong", err)
	}
}

// FuzzSubmitSMAsGoSMPP checks appendPDU against go-smpp's encoder on any
// fields with at most one TLV.
func FuzzSubmitSMAsGoSMPP(f *testing.F) {
	f.Add("ACME", "447700900123", "", uint8(5), uint8(1), uint8(0x40), uint8(8), []byte("hi"), uint16(0), []byte(nil))
	f.Add("", "", "000001000000000R", uint8(0), uint8(0), uint8(0), uint8(0), []byte{}, uint16(TagMessagePayload), []byte("payload"))
	f.Fuzz(func(t *testing.T, src, dst, validity string, ton, npi, esm, dc uint8, text []byte, tag uint16, tlv []byte) {
		sm := &SubmitSM{SourceAddr: src, SourceTON: ton, DestAddr: dst, DestNPI: npi, ESMClass: esm, DataCoding: dc,
			ValidityPeriod: validity, RegisteredDelivery: RegisteredDeliveryFinal, ShortMessage: text}
		if tag != 0 {
			sm.TLVs = map[uint16][]byte{tag: tlv}
		}
		want, wantErr := goSMPPSubmit(sm, 7)
		got, err := sm.appendPDU(nil, 7)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("error %v, go-smpp %v", err, wantErr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Errorf("submit_sm:\n got % x\nwant % x", got, want)
		}
	})
}

// TestDeliverSMDecodesInGoSMPP checks a receipt with both TLVs against go-smpp's decoder,
// which the stray byte used to break.
func TestDeliverSMDecodesInGoSMPP(t *testing.T) {
	text := []byte("id:0a1b sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 stat:DELIVRD err:000 text:hi")
	d := &Deliver{SourceAddr: "447700900123", ESMClass: ESMClassDeliveryReceipt, ShortMessage: text,
		TLVs: map[uint16][]byte{TagReceiptedMessageID: []byte("0a1b\x00"), TagMessageState: {MessageStateDelivered}}}
	b, err := newDeliverBody(d.toShortMessage())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := encodeBody(b, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pdu.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("go-smpp decode: %v", err)
	}
	if sm := got.Fields()[pdufield.ShortMessage].Bytes(); !bytes.Equal(sm, text) {
		t.Errorf("short_message %q, want %q", sm, text)
	}
	tlv := got.TLVFields()
	if len(tlv) != 2 || string(tlv[0x001E].Bytes()) != "0a1b\x00" || tlv[0x0427].Bytes()[0] != MessageStateDelivered {
		t.Errorf("TLVs %v", tlv)
	}
}

// TestDeliverUDHKept checks that a deliver_sm with a user data header reaches the
// handler whole, though go-smpp splits the header off when decoding.
func TestDeliverUDHKept(t *testing.T) {
	sm := []byte{0x05, 0x00, 0x03, 0x2A, 0x02, 0x01, 'p', 'a', 'r', 't'}
	d := &Deliver{ESMClass: ESMClassUDHI, ShortMessage: sm}
	b, err := newDeliverBody(d.toShortMessage())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := encodeBody(b, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := readPacket(bytes.NewReader(raw))
	if err != nil || p.decodeErr != nil {
		t.Fatalf("read: %v %v", err, p.decodeErr)
	}
	if got := readShortMessage(p.body).text; !bytes.Equal(got, sm) {
		t.Errorf("short_message % x, want % x", got, sm)
	}
}

func FuzzReadPacket(f *testing.F) {
	seed := func(b pdu.Body, err error) {
		if err != nil {
			f.Fatal(err)
		}
		raw, err := encodeBody(b, 0, 1)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	seed(newDeliverBody(&shortMessage{esmClass: ESMClassUDHI, text: []byte{5, 0, 3, 1, 2, 1, 'x'}, tlvs: map[uint16][]byte{0x1E: []byte("a\x00")}}))
	if raw, err := (&SubmitSM{SourceAddr: "A", DestAddr: "B", ShortMessage: []byte("hello")}).appendPDU(nil, 1); err != nil {
		f.Fatal(err)
	} else {
		f.Add(raw)
	}
	seed(pdu.NewBindTransceiver(), nil)
	f.Add(encodeHeader(pdu.SubmitSMRespID, 0, 1))
	f.Add(encodeRaw(pdu.SubmitSMRespID, 0, 1, []byte("0a1b\x00")))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := readPacket(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(p.messageID) > len(b) {
			t.Errorf("message_id of %d octets from a %d-octet PDU", len(p.messageID), len(b))
		}
		if p.body == nil {
			return
		}
		if p.id == pdu.SubmitSMID || p.id == pdu.DeliverSMID {
			m := readShortMessage(p.body)
			if len(m.text) > len(b) {
				t.Errorf("short_message of %d octets from a %d-octet PDU", len(m.text), len(b))
			}
		}
	})
}
