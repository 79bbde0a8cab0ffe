package smpp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
)

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("smpp: server closed")

// BindRequest is an ESME's bind, as the server's Bind handler sees it.
type BindRequest struct {
	SystemID, Password, SystemType string
	Mode                           BindMode
	RemoteAddr                     string
}

// ServerConfig configures an SMSC-side server.
type ServerConfig struct {
	// SystemID is sent in bind responses; default "sluice".
	SystemID string
	// Bind authenticates a bind and returns ESME_ROK (0) to accept it, or the status to
	// refuse it with (e.g. StatusInvPassword); the connection is closed after a refusal.
	// Nil accepts every bind. It runs outside the read loop.
	Bind func(ctx context.Context, req BindRequest) uint32
	// Submit answers a submit_sm from a transmitter or transceiver session. It runs
	// outside the read loop, at most Concurrency at once per session; beyond that the
	// ESME gets ESME_RTHROTTLED at once. Unlike the client with deliver_sm, the server
	// keeps reading: ESME_RTHROTTLED is SMPP's own signal for an ESME to slow down and
	// resubmit, and a read loop that stopped would leave deliver_sm_resp and the ESME's
	// enquire_link unread too. A non-zero Status refuses the message. Nil answers every
	// submit_sm with generic_nack.
	Submit func(ctx context.Context, s *ServerSession, sm *SubmitSM) SubmitResp
	// Unbound, if set, is called once for every session whose bind Bind accepted, after
	// the session has ended, so that bind counts can be kept exactly.
	Unbound func(s *ServerSession)
	// TLS, if set, makes Serve speak TLS on every accepted connection.
	TLS *tls.Config

	Window       int           // outstanding deliver_sm per session; default 10
	Concurrency  int           // Submit handlers per session at once; default 64
	BindTimeout  time.Duration // a connection must bind within it; default 10s
	RespTimeout  time.Duration // deliver_sm response wait; default 10s
	EnquireLink  time.Duration // keepalive interval; default 30s
	WriteTimeout time.Duration // per PDU write; default 10s
	Logger       *slog.Logger
}

// Server accepts ESME connections and runs one session per connection.
type Server struct {
	cfg ServerConfig

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	sessions  map[*ServerSession]struct{}
	wg        sync.WaitGroup // Serve loops and session watchers
}

// NewServer returns a server; call Serve to accept connections.
func NewServer(cfg ServerConfig) *Server {
	if cfg.SystemID == "" {
		cfg.SystemID = "sluice"
	}
	if cfg.BindTimeout <= 0 {
		cfg.BindTimeout = defaultBindTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg:       cfg,
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*ServerSession]struct{}),
	}
}

// Serve accepts connections on ln until Close, then returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			delete(s.listeners, ln)
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			return fmt.Errorf("smpp: accept: %w", err)
		}
		if s.cfg.TLS != nil {
			nc = tls.Server(nc, s.cfg.TLS)
		}
		s.serveConn(nc)
	}
}

func (s *Server) serveConn(nc net.Conn) {
	ss := &ServerSession{srv: s, bound: make(chan struct{})}
	ss.c = newConn(nc, connConfig{
		window:       s.cfg.Window,
		concurrency:  s.cfg.Concurrency,
		respTimeout:  s.cfg.RespTimeout,
		writeTimeout: s.cfg.WriteTimeout,
		enquireLink:  s.cfg.EnquireLink,
		log:          s.cfg.Logger.With("esme", nc.RemoteAddr().String()),
		onRequest:    ss.onRequest,
	})
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close() // shutting down: refuse
		return
	}
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	ss.c.goSession(ss.bindTimeout)
	ss.c.start()
	go func() {
		defer s.wg.Done()
		<-ss.c.done
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
		if _, _, bound := ss.binding(); bound && s.cfg.Unbound != nil {
			s.cfg.Unbound(ss)
		}
	}()
}

// Sessions returns the live sessions bound with systemID, in any mode.
func (s *Server) Sessions(systemID string) []*ServerSession {
	return s.bound(systemID, func(BindMode) bool { return true })
}

// Receivers returns the live sessions bound with systemID that may be sent deliver_sm
// (receivers and transceivers).
func (s *Server) Receivers(systemID string) []*ServerSession {
	return s.bound(systemID, BindMode.canReceive)
}

func (s *Server) bound(systemID string, keep func(BindMode) bool) []*ServerSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*ServerSession
	for ss := range s.sessions {
		if id, mode, ok := ss.binding(); ok && id == systemID && keep(mode) && ss.c.Err() == nil {
			out = append(out, ss)
		}
	}
	return out
}

// Close stops accepting, unbinds every session (waiting, bounded by ctx, for their
// in-flight deliver_sm) and waits for everything the server started.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	var errs []error
	for ln := range s.listeners {
		if err := ln.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	sessions := make([]*ServerSession, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()

	var wg sync.WaitGroup
	errc := make(chan error, len(sessions))
	for _, ss := range sessions {
		wg.Go(func() { errc <- ss.Close(ctx) })
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		errs = append(errs, err)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("smpp: waiting for server goroutines: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// ServerSession is one ESME connection on a Server.
type ServerSession struct {
	srv   *Server
	c     *conn
	bound chan struct{} // closed once bound

	mu       sync.Mutex
	state    bindState
	systemID string
	mode     BindMode
}

type bindState int

const (
	stateOpen bindState = iota
	stateBinding
	stateBound
)

func (ss *ServerSession) binding() (systemID string, mode BindMode, bound bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.systemID, ss.mode, ss.state == stateBound
}

// SystemID is the system_id the session bound with ("" before the bind).
func (ss *ServerSession) SystemID() string {
	id, _, _ := ss.binding()
	return id
}

// Mode is the session's bind mode.
func (ss *ServerSession) Mode() BindMode {
	_, m, _ := ss.binding()
	return m
}

// Done is closed when the session has ended and its handlers returned.
func (ss *ServerSession) Done() <-chan struct{} { return ss.c.done }

// Err says why the session ended, or nil while it runs.
func (ss *ServerSession) Err() error { return ss.c.Err() }

// InFlight is the number of deliver_sm sent or waiting for a window slot, without a
// response yet.
func (ss *ServerSession) InFlight() int { return int(ss.c.inflight.Load()) }

// Close unbinds the session from the SMSC side, after in-flight deliver_sm (bounded by
// ctx), and closes it.
func (ss *ServerSession) Close(ctx context.Context) error {
	_, _, bound := ss.binding()
	return ss.c.shutdown(ctx, bound)
}

// Abort drops the connection at once, without unbind and without answering what is in
// flight, as a crashed or cut-off SMSC would.
func (ss *ServerSession) Abort() { ss.c.fail(errors.New("smpp: connection aborted")) }

// Deliver sends a deliver_sm within the session's window and waits for deliver_sm_resp.
// nil: the ESME acknowledged it. A *StatusError: the ESME refused it (retry later for a
// receipt). ErrOutcomeUnknown: sent, no answer. Any other error: not sent.
func (ss *ServerSession) Deliver(ctx context.Context, d *Deliver) error {
	if _, mode, bound := ss.binding(); !bound || !mode.canReceive() {
		return errors.New("smpp: deliver_sm to a session not bound as receiver or transceiver")
	}
	b, err := newDeliverBody(d.toShortMessage())
	if err != nil {
		return err
	}
	p, err := ss.c.request(ctx, b, true)
	if err != nil {
		return err
	}
	if p.status != StatusOK || p.id == pdu.GenericNACKID {
		return &StatusError{Command: "deliver_sm", Status: nonZero(p.status)}
	}
	return nil
}

func (ss *ServerSession) bindTimeout() {
	t := time.NewTimer(ss.srv.cfg.BindTimeout)
	defer t.Stop()
	select {
	case <-ss.bound:
	case <-ss.c.ctx.Done():
	case <-t.C:
		ss.c.fail(fmt.Errorf("smpp: no bind within %s", ss.srv.cfg.BindTimeout))
	}
}

func (ss *ServerSession) onRequest(p packet) bool {
	if bc, ok := bindCommands[p.id]; ok {
		ss.onBind(p, bc)
		return true
	}
	isData := p.id == pdu.DataSMID
	if (p.id != pdu.SubmitSMID && !isData) || ss.srv.cfg.Submit == nil {
		return false
	}
	if _, mode, bound := ss.binding(); !bound || !mode.canSubmit() {
		ss.c.respond(p, StatusInvBindStatus, nil)
		return true
	}
	// A data_sm is a submit whose text travels in message_payload: the same
	// handler serves both.
	var sm *SubmitSM
	if isData {
		sm = p.dataSM.toSubmitSM()
	} else {
		sm = readShortMessage(p.body).toSubmitSM()
	}
	ok := ss.c.spawn(func(ctx context.Context) {
		resp := ss.srv.cfg.Submit(ctx, ss, sm)
		if isData {
			// go-smpp has no data_sm_resp: write it by hand (message_id only).
			var body []byte
			if resp.Status == StatusOK {
				body = append([]byte(resp.MessageID), 0)
			}
			_ = ss.c.write(encodeRaw(p.id|respBit, resp.Status, p.seq, body)) // a write error has ended the session
			return
		}
		body := pdu.NewSubmitSMResp()
		if err := body.Fields().Set(pdufield.MessageID, resp.MessageID); err != nil {
			ss.c.log.Error("smpp: set message_id", "err", err)
			resp.Status = StatusSysErr
		}
		ss.c.respond(p, resp.Status, body)
	})
	if !ok {
		ss.c.respond(p, StatusThrottled, nil)
	}
	return true
}

func (ss *ServerSession) onBind(p packet, bc bindCommand) {
	ss.mu.Lock()
	if ss.state != stateOpen {
		ss.mu.Unlock()
		ss.c.respond(p, StatusAlreadyBound, nil)
		return
	}
	ss.state = stateBinding
	ss.mu.Unlock()

	f := p.body.Fields()
	req := BindRequest{
		SystemID:   fieldString(f, pdufield.SystemID),
		Password:   fieldString(f, pdufield.Password),
		SystemType: fieldString(f, pdufield.SystemType),
		Mode:       bc.mode,
		RemoteAddr: ss.c.nc.RemoteAddr().String(),
	}
	ok := ss.c.spawn(func(ctx context.Context) {
		status := StatusOK
		if ss.srv.cfg.Bind != nil {
			status = ss.srv.cfg.Bind(ctx, req)
		}
		if status != StatusOK {
			ss.c.log.Info("smpp: bind refused", "system_id", req.SystemID, "mode", bc.mode.String(), "status", StatusName(status))
			ss.c.respond(p, status, nil)
			ss.c.fail(fmt.Errorf("smpp: bind refused: %s", StatusName(status)))
			return
		}
		body := bc.newResp()
		if err := body.Fields().Set(pdufield.SystemID, ss.srv.cfg.SystemID); err != nil {
			ss.c.log.Error("smpp: set system_id", "err", err)
		}
		// Bound before the response is written, and the response written before anyone
		// can see the session bound: a submit_sm right after bind_resp finds it bound, and
		// no deliver_sm overtakes the bind_resp.
		ss.mu.Lock()
		ss.state, ss.systemID, ss.mode = stateBound, req.SystemID, bc.mode
		ss.c.respond(p, StatusOK, body)
		ss.mu.Unlock()
		close(ss.bound)
	})
	if !ok {
		ss.c.respond(p, StatusSysErr, nil)
	}
}
