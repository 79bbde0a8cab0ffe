package smpp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

func TestSubmitWindowRespected(t *testing.T) {
	const window, total = 3, 20
	var cur, peak atomic.Int64
	arrived := make(chan struct{}, total)
	release := make(chan struct{})
	_, addr := startServer(t, ServerConfig{
		Submit: func(ctx context.Context, _ *ServerSession, sm *SubmitSM) SubmitResp {
			n := cur.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			arrived <- struct{}{}
			<-release
			cur.Add(-1)
			return SubmitResp{MessageID: string(sm.ShortMessage)}
		},
	})
	s := dial(t, ClientConfig{Addr: addr, SystemID: "a", Window: window})

	var wg sync.WaitGroup
	errs := make(chan error, total)
	for i := range total {
		wg.Go(func() {
			text := fmt.Sprint(i)
			resp, err := s.Submit(testCtx(t), &SubmitSM{DestAddr: "447700900123", ShortMessage: []byte(text)})
			switch {
			case err != nil:
				errs <- err
			case resp.Status != StatusOK || resp.MessageID != text:
				errs <- fmt.Errorf("submit %s: got %+v", text, resp)
			}
		})
	}
	// Let a full window arrive before answering any, then answer one at a time.
	for range window {
		<-arrived
	}
	if got := s.InFlight(); got != window {
		t.Errorf("InFlight = %d with a full window, want %d", got, window)
	}
	for i := range total {
		release <- struct{}{}
		if i+window < total {
			<-arrived
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := peak.Load(); got != window {
		t.Errorf("peak outstanding submit_sm at the server = %d, want %d", got, window)
	}
}

func TestResponsesMatchedOutOfOrder(t *testing.T) {
	const n = 8
	type held struct {
		text    string
		release chan struct{}
	}
	arrived := make(chan held, n)
	_, addr := startServer(t, ServerConfig{
		Submit: func(ctx context.Context, _ *ServerSession, sm *SubmitSM) SubmitResp {
			h := held{string(sm.ShortMessage), make(chan struct{})}
			arrived <- h
			<-h.release
			return SubmitResp{MessageID: "id-" + h.text}
		},
	})
	s := dial(t, ClientConfig{Addr: addr, SystemID: "a", Window: n})
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Go(func() {
			resp, err := s.Submit(testCtx(t), &SubmitSM{ShortMessage: fmt.Appendf(nil, "m%d", i)})
			if err != nil {
				t.Errorf("submit %d: %v", i, err)
			}
			got[i] = resp.MessageID
		})
	}
	all := make([]held, 0, n)
	for range n {
		all = append(all, <-arrived)
	}
	for i := len(all) - 1; i >= 0; i-- { // answer in reverse arrival order
		close(all[i].release)
	}
	wg.Wait()
	for i, id := range got {
		if want := fmt.Sprintf("id-m%d", i); id != want {
			t.Errorf("submit %d got message id %q, want %q", i, id, want)
		}
	}
}

// TestDeliverWithSubmitSequence reproduces go-smpp's defect: an SMSC-initiated deliver_sm
// carrying the sequence number of an in-flight submit_sm must reach OnDeliver, be
// acknowledged, and leave the submit waiting for its own response.
func TestDeliverWithSubmitSequence(t *testing.T) {
	delivered := make(chan *Deliver, 1)
	s, peer := rawSMSC(t, ClientConfig{OnDeliver: func(ctx context.Context, d *Deliver) error {
		delivered <- d
		return nil
	}})
	type result struct {
		resp SubmitResp
		err  error
	}
	submitted := make(chan result, 1)
	go func() {
		resp, err := s.Submit(testCtx(t), &SubmitSM{DestAddr: "447700900123", ShortMessage: []byte("hi")})
		submitted <- result{resp, err}
	}()
	sub := peer.readID(pdu.SubmitSMID)
	seq := sub.Header().Seq

	d := pdu.NewDeliverSM()
	d.Fields()[pdufield.UDHLength] = &pdufield.SM{} // go-smpp's own stray-byte workaround
	for k, v := range map[pdufield.Name]any{pdufield.ESMClass: uint8(4), pdufield.ShortMessage: []byte("id:X1 stat:DELIVRD")} {
		if err := d.Fields().Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.TLVFields().Set(pdutlv.TagReceiptedMessageID, pdutlv.CString("X1")); err != nil {
		t.Fatal(err)
	}
	peer.write(d, seq, 0)
	ack := peer.readID(pdu.DeliverSMRespID)
	if ack.Header().Seq != seq || ack.Header().Status != 0 {
		t.Fatalf("deliver_sm_resp seq %d status %d, want seq %d status 0", ack.Header().Seq, ack.Header().Status, seq)
	}
	got := <-delivered
	if string(got.ShortMessage) != "id:X1 stat:DELIVRD" || string(got.TLVs[TagReceiptedMessageID]) != "X1\x00" || !got.IsReceipt() {
		t.Errorf("OnDeliver got %+v", got)
	}

	resp := pdu.NewSubmitSMResp()
	if err := resp.Fields().Set(pdufield.MessageID, "M-1"); err != nil {
		t.Fatal(err)
	}
	peer.write(resp, seq, 0)
	r := <-submitted
	if r.err != nil || r.resp.MessageID != "M-1" || r.resp.Status != StatusOK {
		t.Errorf("submit got %+v, %v; want M-1", r.resp, r.err)
	}
}

func TestDeliverRespAfterOnDeliverReturns(t *testing.T) {
	entered := make(chan string)
	verdict := make(chan error)
	_, peer := rawSMSC(t, ClientConfig{OnDeliver: func(ctx context.Context, d *Deliver) error {
		entered <- string(d.ShortMessage)
		return <-verdict
	}})
	tests := []struct {
		verdict    error
		wantStatus uint32
	}{
		{nil, StatusOK},
		{errors.New("store down"), StatusTempAppErr},
	}
	for i, tt := range tests {
		seq := uint32(100 + i)
		d := pdu.NewDeliverSM()
		d.Fields()[pdufield.UDHLength] = &pdufield.SM{}
		if err := d.Fields().Set(pdufield.ShortMessage, []byte("mo")); err != nil {
			t.Fatal(err)
		}
		peer.write(d, seq, 0)
		<-entered
		// While OnDeliver runs, the session still answers: the next PDU we read is the
		// enquire_link_resp, not a premature deliver_sm_resp.
		peer.write(pdu.NewEnquireLink(), 900+seq, 0)
		if el := peer.readID(pdu.EnquireLinkRespID); el.Header().Seq != 900+seq {
			t.Fatalf("enquire_link_resp seq %d", el.Header().Seq)
		}
		verdict <- tt.verdict
		ack := peer.readID(pdu.DeliverSMRespID)
		if ack.Header().Seq != seq || uint32(ack.Header().Status) != tt.wantStatus {
			t.Errorf("verdict %v: deliver_sm_resp seq %d status %#x, want seq %d status %#x",
				tt.verdict, ack.Header().Seq, uint32(ack.Header().Status), seq, tt.wantStatus)
		}
	}
}

func TestOutcomeUnknown(t *testing.T) {
	tests := []struct {
		name  string
		ctx   func(context.Context) (context.Context, context.CancelFunc)
		after func(*rawPeer)
	}{
		{"response timeout", nil, func(*rawPeer) {}},
		{"connection lost", nil, func(p *rawPeer) { _ = p.nc.Close() }},
		{"context cancelled", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithCancel(ctx)
		}, func(*rawPeer) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			respTimeout := safety
			if tt.name == "response timeout" {
				respTimeout = 100 * time.Millisecond
			}
			s, peer := rawSMSC(t, ClientConfig{RespTimeout: respTimeout})
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := s.Submit(ctx, &SubmitSM{ShortMessage: []byte("x")})
				errc <- err
			}()
			peer.readID(pdu.SubmitSMID) // written, never answered
			tt.after(peer)
			if tt.ctx != nil {
				cancel()
			}
			if err := <-errc; !errors.Is(err, ErrOutcomeUnknown) {
				t.Errorf("Submit error = %v, want ErrOutcomeUnknown", err)
			}
		})
	}
}

func TestSubmitNotWrittenIsNotOutcomeUnknown(t *testing.T) {
	s, peer := rawSMSC(t, ClientConfig{})
	_ = peer.nc.Close()
	<-s.Done()
	_, err := s.Submit(testCtx(t), &SubmitSM{ShortMessage: []byte("x")})
	if err == nil || errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, ErrClosed) {
		t.Errorf("Submit on an ended session = %v, want ErrClosed and not ErrOutcomeUnknown", err)
	}
	if _, err := s.Submit(testCtx(t), &SubmitSM{ShortMessage: make([]byte, 255)}); !errors.Is(err, errMessageTooLong) {
		t.Errorf("Submit of 255 octets = %v, want errMessageTooLong", err)
	}
}

// TestUnsupportedCommandsKeepBind sends what go-smpp drops the bind on (data_sm is
// served: see TestDataSMFromTheSMSC; a malformed one is refused without harm).
func TestUnsupportedCommandsKeepBind(t *testing.T) {
	_, peer := rawSMSC(t, ClientConfig{})
	tests := []struct {
		name     string
		pdu      []byte
		wantNack uint32 // 0: no response expected
	}{
		{"unknown command", encodeHeader(0x00000099, 0, 11), StatusInvCmdID},
		{"malformed data_sm", append(encodeHeader(pdu.DataSMID, 0, 12), make([]byte, 12)...), StatusInvCmdLen},
		{"alert_notification", encodeHeader(pdu.AlertNotificationID, 0, 13), 0},
		{"cancel_sm", encodeHeader(pdu.CancelSMID, 0, 14), StatusInvCmdID},
		{"oversized deliver_sm", append(encodeHeader(pdu.DeliverSMID, 0, 15), make([]byte, 5000)...), StatusInvCmdLen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.pdu
			b[0], b[1], b[2], b[3] = byte(len(b)>>24), byte(len(b)>>16), byte(len(b)>>8), byte(len(b))
			seq := uint32(b[15])
			peer.writeRaw(b)
			if tt.wantNack != 0 {
				n := peer.readID(pdu.GenericNACKID)
				if n.Header().Seq != seq || uint32(n.Header().Status) != tt.wantNack {
					t.Errorf("generic_nack seq %d status %#x, want seq %d status %#x", n.Header().Seq, uint32(n.Header().Status), seq, tt.wantNack)
				}
			}
			peer.write(pdu.NewEnquireLink(), 500+seq, 0)
			if el := peer.readID(pdu.EnquireLinkRespID); el.Header().Seq != 500+seq {
				t.Errorf("enquire_link_resp seq %d, want %d", el.Header().Seq, 500+seq)
			}
		})
	}
}

func TestServerNacksUnknownCommand(t *testing.T) {
	_, addr := startServer(t, ServerConfig{})
	peer := rawESME(t, addr, "a", "")
	peer.writeRaw(encodeHeader(0x00000077, 0, 9))
	if n := peer.readID(pdu.GenericNACKID); n.Header().Seq != 9 || uint32(n.Header().Status) != StatusInvCmdID {
		t.Errorf("generic_nack seq %d status %#x", n.Header().Seq, uint32(n.Header().Status))
	}
	// Submit is nil in this config, so submit_sm is unsupported too.
	peer.write(pdu.NewSubmitSM(nil), 10, 0)
	if n := peer.readID(pdu.GenericNACKID); n.Header().Seq != 10 {
		t.Errorf("generic_nack seq %d, want 10", n.Header().Seq)
	}
}

func TestBindRefused(t *testing.T) {
	_, addr := startServer(t, ServerConfig{Bind: func(ctx context.Context, req BindRequest) uint32 {
		if req.SystemID != "acme" {
			return StatusInvSystemID
		}
		if req.Password != "secret" {
			return StatusInvPassword
		}
		return StatusOK
	}})
	tests := []struct {
		systemID, password string
		want               uint32
	}{
		{"acme", "wrong", StatusInvPassword},
		{"nobody", "secret", StatusInvSystemID},
		{"acme", "secret", StatusOK},
	}
	for _, tt := range tests {
		s, err := Dial(testCtx(t), ClientConfig{Addr: addr, SystemID: tt.systemID, Password: tt.password})
		if tt.want == StatusOK {
			if err != nil {
				t.Errorf("%s/%s: %v", tt.systemID, tt.password, err)
				continue
			}
			if err := s.Close(testCtx(t)); err != nil {
				t.Error(err)
			}
			continue
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Status != tt.want || se.Command != "bind_transceiver" {
			t.Errorf("%s/%s: Dial error %v, want StatusError %s", tt.systemID, tt.password, err, StatusName(tt.want))
		}
	}
}

func TestReceiptRoundTripOverServer(t *testing.T) {
	got := make(chan *Deliver, 1)
	srv, addr := startServer(t, ServerConfig{
		Submit: func(ctx context.Context, _ *ServerSession, sm *SubmitSM) SubmitResp {
			return SubmitResp{MessageID: "5a1d"}
		},
	})
	s := dial(t, ClientConfig{Addr: addr, SystemID: "acme", OnDeliver: func(ctx context.Context, d *Deliver) error {
		got <- d
		return nil
	}})
	resp, err := s.Submit(testCtx(t), &SubmitSM{DestAddr: "447700900123", ShortMessage: []byte("hello"), RegisteredDelivery: RegisteredDeliveryFinal})
	if err != nil || resp.MessageID != "5a1d" {
		t.Fatalf("submit: %+v %v", resp, err)
	}
	sessions := srv.Receivers("acme")
	if len(sessions) != 1 {
		t.Fatalf("Receivers(acme) = %d sessions, want 1", len(sessions))
	}
	text := Receipt{ID: "5a1d", Sub: 1, Dlvrd: 1, Stat: StatDelivered, Err: "000", Text: "hello"}.Format()
	d := &Deliver{SourceAddr: "447700900123", ESMClass: ESMClassDeliveryReceipt, ShortMessage: text,
		TLVs: map[uint16][]byte{TagReceiptedMessageID: []byte("5a1d\x00"), TagMessageState: {MessageStateDelivered}}}
	if err := sessions[0].Deliver(testCtx(t), d); err != nil {
		t.Fatalf("deliver: %v", err)
	}
	r := <-got
	if string(r.ShortMessage) != string(text) || string(r.TLVs[TagReceiptedMessageID]) != "5a1d\x00" ||
		r.TLVs[TagMessageState][0] != MessageStateDelivered || r.SourceAddr != "447700900123" {
		t.Errorf("client got %+v", r)
	}
}

func TestCloseWaitsForInFlightThenUnbinds(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	srv, addr := startServer(t, ServerConfig{Submit: func(ctx context.Context, _ *ServerSession, sm *SubmitSM) SubmitResp {
		close(arrived)
		<-release
		return SubmitResp{MessageID: "m"}
	}})
	s, err := Dial(testCtx(t), ClientConfig{Addr: addr, SystemID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	submitted := make(chan error, 1)
	go func() {
		_, err := s.Submit(testCtx(t), &SubmitSM{ShortMessage: []byte("x")})
		submitted <- err
	}()
	<-arrived
	ss := srv.Sessions("a")[0]
	closed := make(chan error, 1)
	go func() { closed <- s.Close(testCtx(t)) }()
	close(release)
	if err := <-submitted; err != nil {
		t.Errorf("in-flight submit during Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	<-ss.Done()
	if !errors.Is(ss.Err(), ErrUnbound) {
		t.Errorf("server session ended with %v, want ErrUnbound", ss.Err())
	}
	if _, err := s.Submit(testCtx(t), &SubmitSM{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close = %v, want ErrClosed", err)
	}
}

func TestSequenceWraps(t *testing.T) {
	c := newConn(nil, connConfig{})
	c.seq = maxSeq - 1
	c.pending[1] = &call{}
	got := []uint32{c.nextSeqLocked(), c.nextSeqLocked(), c.nextSeqLocked()}
	want := []uint32{maxSeq, 2, 3} // 1 is still pending
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sequence after wrap = %v, want %v", got, want)
		}
	}
}
