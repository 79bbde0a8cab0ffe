package smpp

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
)

// writeDeliver writes a receipt deliver_sm with sequence seq.
func (p *rawPeer) writeDeliver(seq uint32) {
	p.t.Helper()
	d := pdu.NewDeliverSM()
	d.Fields()[pdufield.UDHLength] = &pdufield.SM{} // go-smpp's stray-byte workaround
	for k, v := range map[pdufield.Name]any{pdufield.ESMClass: uint8(4), pdufield.ShortMessage: fmt.Appendf(nil, "id:%d stat:DELIVRD", seq)} {
		if err := d.Fields().Set(k, v); err != nil {
			p.t.Fatal(err)
		}
	}
	p.write(d, seq, 0)
}

// waitReadLoopBlocked returns once the session's read loop waits for a free handler.
// It polls a flag, not the clock: the state it waits for holds until the test acts.
func waitReadLoopBlocked(t *testing.T, s *Session) {
	t.Helper()
	ctx := testCtx(t)
	for !s.c.waiting.Load() {
		if ctx.Err() != nil {
			t.Fatal("the read loop never waited for a handler")
		}
		runtime.Gosched()
	}
}

// A burst of deliver_sm beyond the handler pool: none is refused; the session
// stops reading until a handler frees, so a PDU behind the burst is read (and
// answered) only once all but the last pool's worth of the burst were answered.
func TestDeliverBurstBeyondPoolBlocksInsteadOfRefusing(t *testing.T) {
	tests := []struct{ pool, burst int }{
		{1, 5},
		{2, 10},
		{4, 40},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("pool=%d/burst=%d", tt.pool, tt.burst), func(t *testing.T) {
			var running, peak atomic.Int64
			entered := make(chan struct{}, tt.burst)
			release := make(chan struct{})
			var paused atomic.Int64
			var refusedMu sync.Mutex
			var refused []error
			s, peer := rawSMSC(t, ClientConfig{
				DeliverConcurrency: tt.pool,
				OnDeliver: func(ctx context.Context, d *Deliver) error {
					n := running.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					entered <- struct{}{}
					<-release
					running.Add(-1)
					return nil
				},
				OnRefused: func(d *Deliver, err error) {
					refusedMu.Lock()
					refused = append(refused, err)
					refusedMu.Unlock()
				},
				OnReadPause: func(d time.Duration) { paused.Add(1) },
			})
			for i := range tt.burst {
				peer.writeDeliver(uint32(1 + i))
			}
			const elSeq = 1000
			peer.write(pdu.NewEnquireLink(), elSeq, 0)
			for range tt.pool {
				<-entered
			}
			waitReadLoopBlocked(t, s)
			close(release)

			acked := map[uint32]bool{}
			elAt := -1
			for i := range tt.burst + 1 {
				b := peer.read()
				h := b.Header()
				switch h.ID {
				case pdu.EnquireLinkRespID:
					elAt = i
				case pdu.DeliverSMRespID:
					if h.Status != 0 {
						t.Errorf("deliver_sm %d answered %#x, want ESME_ROK", h.Seq, uint32(h.Status))
					}
					acked[h.Seq] = true
				default:
					t.Fatalf("read %s, want deliver_sm_resp or enquire_link_resp", h.ID)
				}
			}
			if len(acked) != tt.burst {
				t.Errorf("%d distinct deliver_sm acknowledged, want %d", len(acked), tt.burst)
			}
			// The enquire_link is read only after the last deliver_sm got a handler,
			// that is after all but pool of them were answered.
			if elAt < tt.burst-tt.pool {
				t.Errorf("enquire_link answered after %d deliver_sm_resp, want at least %d: the session read past a full pool", elAt, tt.burst-tt.pool)
			}
			if p := peak.Load(); p != int64(tt.pool) {
				t.Errorf("peak handlers %d, want the pool's %d", p, tt.pool)
			}
			if paused.Load() == 0 {
				t.Error("OnReadPause never called")
			}
			refusedMu.Lock()
			defer refusedMu.Unlock()
			if len(refused) != 0 {
				t.Errorf("refused %v", refused)
			}
		})
	}
}

// A read loop blocked on a full pool still ends on Close: the handler's ctx
// ends, the held deliver_sm and the one being handled are reported refused
// with ErrSessionEnded, and every goroutine of the session returns.
func TestBlockedReadLoopEndsOnClose(t *testing.T) {
	entered := make(chan struct{}, 1)
	var mu sync.Mutex
	var refused []error
	s, peer := rawSMSC(t, ClientConfig{
		DeliverConcurrency: 1,
		OnDeliver: func(ctx context.Context, d *Deliver) error {
			entered <- struct{}{}
			<-ctx.Done() // a store that never answers
			return ctx.Err()
		},
		OnRefused: func(d *Deliver, err error) {
			mu.Lock()
			refused = append(refused, err)
			mu.Unlock()
		},
	})
	for seq := range uint32(4) {
		peer.writeDeliver(1 + seq)
	}
	<-entered
	waitReadLoopBlocked(t, s)

	ctx, cancel := context.WithCancel(testCtx(t))
	closed := make(chan error, 1)
	go func() { closed <- s.Close(ctx) }()
	peer.readID(pdu.UnbindID) // its response would sit unread: give up on it
	cancel()
	<-closed // an error: Close's ctx ended before the unbind_resp
	<-s.Done()
	if !errors.Is(s.Err(), ErrClosed) {
		t.Errorf("session ended with %v, want ErrClosed", s.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refused) != 2 {
		t.Errorf("%d refusals reported (%v), want 2: the one handled and the one held", len(refused), refused)
	}
	for _, err := range refused {
		if !errors.Is(err, ErrSessionEnded) {
			t.Errorf("refusal %v does not wrap ErrSessionEnded", err)
		}
	}
}

// A submit_sm_resp that arrives while the session is not reading (every
// handler busy) is not late: the submit waits past its response timeout and
// gets it once the session reads again.
func TestSubmitRespTimeoutWaitsOutReadPause(t *testing.T) {
	const respTimeout = 50 * time.Millisecond
	entered := make(chan struct{}, 2)
	release := make(chan struct{})
	s, peer := rawSMSC(t, ClientConfig{
		RespTimeout:        respTimeout,
		DeliverConcurrency: 1,
		OnDeliver: func(ctx context.Context, d *Deliver) error {
			entered <- struct{}{}
			<-release
			return nil
		},
	})
	type result struct {
		resp SubmitResp
		err  error
	}
	submitted := make(chan result, 1)
	go func() {
		resp, err := s.Submit(testCtx(t), &SubmitSM{ShortMessage: []byte("x")})
		submitted <- result{resp, err}
	}()
	sub := peer.readID(pdu.SubmitSMID)
	peer.writeDeliver(1)
	<-entered
	peer.writeDeliver(2)
	waitReadLoopBlocked(t, s)
	resp := pdu.NewSubmitSMResp()
	if err := resp.Fields().Set(pdufield.MessageID, "M-1"); err != nil {
		t.Fatal(err)
	}
	peer.write(resp, sub.Header().Seq, 0)
	// The condition under test: the response timeout passes while the response
	// sits unread behind deliver_sm 2.
	<-time.After(4 * respTimeout)
	close(release)
	r := <-submitted
	if r.err != nil || r.resp.MessageID != "M-1" {
		t.Errorf("submit got %+v, %v; want M-1", r.resp, r.err)
	}
	for range 2 {
		if ack := peer.readID(pdu.DeliverSMRespID); ack.Header().Status != 0 {
			t.Errorf("deliver_sm %d answered %#x", ack.Header().Seq, uint32(ack.Header().Status))
		}
	}
}

// Every refusal reaches OnRefused once, with what caused it.
func TestOnRefusedReasons(t *testing.T) {
	storeDown := errors.New("store down")
	tests := []struct {
		name      string
		onDeliver func(context.Context, *Deliver) error
		want      error
	}{
		{"handler error", func(context.Context, *Deliver) error { return storeDown }, storeDown},
		{"no handler", nil, ErrNoHandler},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refused := make(chan error, 1)
			_, peer := rawSMSC(t, ClientConfig{OnDeliver: tt.onDeliver, OnRefused: func(d *Deliver, err error) { refused <- err }})
			peer.writeDeliver(7)
			if ack := peer.readID(pdu.DeliverSMRespID); uint32(ack.Header().Status) != StatusTempAppErr {
				t.Errorf("deliver_sm answered %#x, want ESME_RX_T_APPN", uint32(ack.Header().Status))
			}
			if err := <-refused; !errors.Is(err, tt.want) || errors.Is(err, ErrSessionEnded) {
				t.Errorf("OnRefused got %v, want %v", err, tt.want)
			}
		})
	}
}
