package smpp

import (
	"context"
	"testing"

	gosmpp "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

// TestGoSMPPTransceiverAgainstServer runs go-smpp's own ESME session code, an
// independent implementation, against our Server: bind, submit, and a receipt with
// TLVs that its decoder must read intact.
func TestGoSMPPTransceiverAgainstServer(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{
		Bind: func(ctx context.Context, req BindRequest) uint32 {
			if req.Password != "pw" {
				return StatusInvPassword
			}
			return StatusOK
		},
		Submit: func(ctx context.Context, _ *ServerSession, sm *SubmitSM) SubmitResp {
			if sm.DestAddr != "447700900123" || string(sm.ShortMessage) != "hello" || sm.RegisteredDelivery != 1 {
				t.Errorf("server got %+v", sm)
			}
			return SubmitResp{MessageID: "c0ffee"}
		},
	})
	delivered := make(chan pdu.Body, 1)
	tx := &gosmpp.Transceiver{Addr: addr, User: "gosmpp", Passwd: "pw", Handler: func(p pdu.Body) {
		if p.Header().ID == pdu.DeliverSMID {
			delivered <- p
		}
	}}
	defer tx.Close()
	if st := <-tx.Bind(); st.Status() != gosmpp.Connected {
		t.Fatalf("go-smpp bind: %v %v", st.Status(), st.Error())
	}
	sm, err := tx.Submit(&gosmpp.ShortMessage{Dst: "447700900123", Text: pdutext.Raw("hello"), Register: pdufield.FinalDeliveryReceipt})
	if err != nil || sm.RespID() != "c0ffee" {
		t.Fatalf("go-smpp submit: %q %v", sm.RespID(), err)
	}

	receivers := srv.Receivers("gosmpp") // bound: a submit went through
	if len(receivers) != 1 {
		t.Fatalf("Receivers(gosmpp) = %d sessions, want 1", len(receivers))
	}
	ss := receivers[0]
	text := Receipt{ID: "c0ffee", Sub: 1, Dlvrd: 1, Stat: StatDelivered, Err: "000"}.Format()
	err = ss.Deliver(testCtx(t), &Deliver{SourceAddr: "447700900123", ESMClass: ESMClassDeliveryReceipt, ShortMessage: text,
		TLVs: map[uint16][]byte{TagReceiptedMessageID: []byte("c0ffee\x00"), TagMessageState: {MessageStateDelivered}}})
	if err != nil {
		t.Fatalf("deliver to go-smpp: %v", err)
	}
	got := <-delivered
	if sm := got.Fields()[pdufield.ShortMessage].Bytes(); string(sm) != string(text) {
		t.Errorf("go-smpp read short_message %q, want %q", sm, text)
	}
	if id := got.TLVFields()[pdutlv.TagReceiptedMessageID]; id == nil || id.String() != "c0ffee" {
		t.Errorf("go-smpp read receipted_message_id %v", id)
	}
}
