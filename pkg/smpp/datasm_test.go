package smpp

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"testing"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

// dataSM encodes a data_sm by hand: go-smpp has no encoder for it.
func dataSM(seq uint32, src string, esmClass byte, tlvs ...[]byte) []byte {
	var body bytes.Buffer
	body.WriteString("\x00")              // service_type
	body.Write([]byte{1, 1})              // source TON, NPI
	body.WriteString(src + "\x00")        // source_addr
	body.Write([]byte{0, 0})              // dest TON, NPI
	body.WriteString("12345\x00")         // destination_addr
	body.Write([]byte{esmClass, 0, 0x08}) // esm_class, registered_delivery, data_coding (UCS-2)
	for _, t := range tlvs {
		body.Write(t)
	}
	return encodeRaw(pdu.DataSMID, 0, seq, body.Bytes())
}

func tlv(tag uint16, v []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, tag)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// readHeader reads one PDU as raw octets: go-smpp cannot decode data_sm_resp.
func readHeader(t *testing.T, p *rawPeer) (id pdu.ID, status, seq uint32, body []byte) {
	t.Helper()
	var h [16]byte
	if _, err := io.ReadFull(p.r, h[:]); err != nil {
		t.Fatal(err)
	}
	body = make([]byte, binary.BigEndian.Uint32(h[0:4])-16)
	if _, err := io.ReadFull(p.r, body); err != nil {
		t.Fatal(err)
	}
	return pdu.ID(binary.BigEndian.Uint32(h[4:8])), binary.BigEndian.Uint32(h[8:12]), binary.BigEndian.Uint32(h[12:16]), body
}

// Some SMSCs send receipts and MO messages as data_sm: they reach OnDeliver
// like deliver_sm, are answered with data_sm_resp after it returns, and a
// malformed one costs a generic_nack, not the bind.
func TestDataSMFromTheSMSC(t *testing.T) {
	got := make(chan *Deliver, 2)
	_, peer := rawSMSC(t, ClientConfig{OnDeliver: func(_ context.Context, d *Deliver) error { got <- d; return nil }})

	peer.writeRaw(dataSM(7, "447700900123", ESMClassDeliveryReceipt,
		tlv(TagReceiptedMessageID, []byte("abc123\x00")), tlv(TagMessageState, []byte{MessageStateDelivered})))
	if id, status, seq, body := readHeader(t, peer); id != pdu.DataSMRespID || status != 0 || seq != 7 || !bytes.Equal(body, []byte{0}) {
		t.Fatalf("answer %s status %d seq %d body % x, want data_sm_resp ok seq 7 with an empty message_id", id, status, seq, body)
	}
	d := <-got
	if !d.IsReceipt() || string(d.TLVs[TagReceiptedMessageID]) != "abc123\x00" || d.TLVs[TagMessageState][0] != MessageStateDelivered || d.SourceAddr != "447700900123" || d.SourceTON != 1 {
		t.Errorf("receipt = %+v", d)
	}

	peer.writeRaw(dataSM(8, "447700900124", 0, tlv(TagMessagePayload, []byte{0, 'S', 0, 'T', 0, 'O', 0, 'P'})))
	readHeader(t, peer)
	if d := <-got; d.IsReceipt() || d.DataCoding != 8 || string(d.TLVs[TagMessagePayload]) != "\x00S\x00T\x00O\x00P" {
		t.Errorf("MO = %+v", d)
	}

	bad := dataSM(9, "447700900125", 0, tlv(TagMessagePayload, []byte("x")))
	bad = bad[:len(bad)-1] // the TLV announces one octet more than there is
	binary.BigEndian.PutUint32(bad[0:4], uint32(len(bad)))
	peer.writeRaw(bad)
	if id, status, seq, _ := readHeader(t, peer); id != pdu.GenericNACKID || status == 0 || seq != 9 {
		t.Fatalf("malformed data_sm answered with %s status %d seq %d, want generic_nack", id, status, seq)
	}
	peer.write(pdu.NewEnquireLink(), 10, 0)
	if id, _, seq, _ := readHeader(t, peer); id != pdu.EnquireLinkRespID || seq != 10 {
		t.Fatalf("after a malformed data_sm the session answered %s seq %d", id, seq)
	}
}

func FuzzDecodeDataSM(f *testing.F) {
	f.Add(dataSM(1, "447700900123", 4, tlv(TagReceiptedMessageID, []byte("abc\x00")))[16:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeDataSM(b)
		if err == nil && m == nil {
			t.Fatal("no message and no error")
		}
	})
}

// An ESME's data_sm is a submit with its text in message_payload: the
// server's Submit handler gets it like a submit_sm, and the ESME gets a
// data_sm_resp carrying the message id.
func TestServerServesDataSM(t *testing.T) {
	got := make(chan *SubmitSM, 1)
	_, addr := startServer(t, ServerConfig{Submit: func(_ context.Context, _ *ServerSession, sm *SubmitSM) SubmitResp {
		got <- sm
		return SubmitResp{MessageID: "sluice-1"}
	}})
	peer := rawESME(t, addr, "a", "")
	payload := []byte{0, 'h', 0, 'i', 0xd8, 0x3d, 0xde, 0x00} // "hi😀" in UTF-16BE
	peer.writeRaw(dataSM(21, "447700900123", 0, tlv(TagMessagePayload, payload)))
	if id, status, seq, body := readHeader(t, peer); id != pdu.DataSMRespID || status != 0 || seq != 21 || string(body) != "sluice-1\x00" {
		t.Fatalf("answer %s status %#x seq %d body %q, want data_sm_resp ok seq 21 with message_id sluice-1", id, status, seq, body)
	}
	sm := <-got
	if sm.SourceAddr != "447700900123" || sm.DestAddr != "12345" || sm.DataCoding != 0x08 || !bytes.Equal(sm.TLVs[TagMessagePayload], payload) {
		t.Errorf("submitted %+v", sm)
	}
}
