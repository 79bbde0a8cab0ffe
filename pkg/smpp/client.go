package smpp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
)

// interfaceVersion is SMPP 3.4's interface_version.
const interfaceVersion = 0x34

// ClientConfig configures one ESME bind.
type ClientConfig struct {
	Addr, SystemID, Password, SystemType string
	Mode                                 BindMode
	Window                               int           // max outstanding submit_sm; default 10
	BindTimeout                          time.Duration // connect + bind; default 10s
	RespTimeout                          time.Duration // per request; default 10s
	EnquireLink                          time.Duration // keepalive interval; default 30s
	WriteTimeout                         time.Duration // per PDU write; default 10s
	TLS                                  *tls.Config
	// OnDeliver is called for each deliver_sm or data_sm (DLR or MO), outside the read
	// loop, up to DeliverConcurrency at once. Its ctx ends with the session. The
	// response is sent only after it returns:
	//   - nil: ESME_ROK.
	//   - an error: ESME_RX_T_APPN, and the SMSC redelivers.
	//   - no OnDeliver: ESME_RX_T_APPN; nothing is acknowledged that nobody read.
	//   - the session ends first: no response can go out, and the SMSC redelivers on a
	//     later bind.
	//
	// A deliver_sm is never refused for lack of a free handler: when DeliverConcurrency
	// are running, the session stops reading until one returns, so that TCP flow
	// control slows the SMSC down. Meanwhile everything behind it waits unread:
	// submit_sm_resp, unbind_resp (so Close waits for a handler too, bounded by its
	// ctx), and the SMSC's enquire_link. Our own response timeouts, keepalive included,
	// start again after such a pause, as the peer was not late; but an SMSC may unbind
	// a session that leaves its enquire_link unanswered. So size DeliverConcurrency for
	// the SMSC's receipt rate times OnDeliver's latency, and pauses happen only when
	// OnDeliver is slower than usual. PDUs still unread when the session ends are never
	// answered, and the SMSC redelivers them.
	OnDeliver          func(ctx context.Context, d *Deliver) error
	DeliverConcurrency int // default 64
	// OnRefused, if set, is told of each deliver_sm or data_sm the session read and did
	// not acknowledge with ESME_ROK. err wraps ErrSessionEnded if the session ended
	// before OnDeliver returned (or before a handler was free to call it), is
	// ErrNoHandler without OnDeliver, and is OnDeliver's error otherwise. Without
	// OnRefused the session logs each refusal at warn. It may be called from the read
	// loop: it must not block.
	OnRefused func(d *Deliver, err error)
	// OnReadPause, if set, is told how long the session stopped reading because all of
	// its DeliverConcurrency handlers were busy. It is called from the read loop: it
	// must not block.
	OnReadPause func(time.Duration)
	Logger      *slog.Logger
}

// Session is a bound ESME session.
type Session struct {
	cfg ClientConfig
	c   *conn
}

// Dial connects and binds within cfg.BindTimeout. A refused bind returns an error
// wrapping *StatusError with the SMSC's status (e.g. ESME_RINVPASWD).
func Dial(ctx context.Context, cfg ClientConfig) (*Session, error) {
	bc, ok := bindCommandFor(cfg.Mode)
	if !ok {
		return nil, fmt.Errorf("smpp: invalid bind mode %d", cfg.Mode)
	}
	if cfg.BindTimeout <= 0 {
		cfg.BindTimeout = defaultBindTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.BindTimeout)
	defer cancel()
	nc, err := dialConn(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg}
	s.c = newConn(nc, connConfig{
		window:       cfg.Window,
		concurrency:  cfg.DeliverConcurrency,
		respTimeout:  cfg.RespTimeout,
		writeTimeout: cfg.WriteTimeout,
		enquireLink:  cfg.EnquireLink,
		log:          cfg.Logger.With("smsc", cfg.Addr, "system_id", cfg.SystemID),
		onRequest:    s.onRequest,
		onWait:       cfg.OnReadPause,
	})
	s.c.start()
	if err := s.bind(ctx, bc.newReq()); err != nil {
		s.c.fail(err)
		<-s.c.done
		return nil, fmt.Errorf("smpp: bind %s to %s as %q: %w", cfg.Mode, cfg.Addr, cfg.SystemID, err)
	}
	return s, nil
}

func dialConn(ctx context.Context, cfg ClientConfig) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("smpp: dial %s: %w", cfg.Addr, err)
	}
	if cfg.TLS == nil {
		return nc, nil
	}
	tc := cfg.TLS.Clone()
	if tc.ServerName == "" {
		if host, _, err := net.SplitHostPort(cfg.Addr); err == nil {
			tc.ServerName = host
		}
	}
	conn := tls.Client(nc, tc)
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = nc.Close() // the handshake error is the one to report
		return nil, fmt.Errorf("smpp: TLS handshake with %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

func (s *Session) bind(ctx context.Context, b pdu.Body) error {
	f := b.Fields()
	for _, kv := range []struct {
		k pdufield.Name
		v any
	}{
		{pdufield.SystemID, s.cfg.SystemID},
		{pdufield.Password, s.cfg.Password},
		{pdufield.SystemType, s.cfg.SystemType},
		{pdufield.InterfaceVersion, uint8(interfaceVersion)},
	} {
		if err := f.Set(kv.k, kv.v); err != nil {
			return fmt.Errorf("set %s: %w", kv.k, err)
		}
	}
	p, err := s.c.request(ctx, b, false)
	if err != nil {
		return err
	}
	if p.status != StatusOK || p.id == pdu.GenericNACKID {
		return &StatusError{Command: commandName(b.Header().ID), Status: nonZero(p.status)}
	}
	return nil
}

// nonZero keeps a generic_nack with status 0 (a broken peer) from reading as success.
func nonZero(status uint32) uint32 {
	if status == StatusOK {
		return StatusUnknownErr
	}
	return status
}

// Submit waits for a window slot (bounded by ctx), writes the submit_sm and waits for its
// response. err == nil: a response came; resp.Status is non-zero when the SMSC refused
// the message. errors.Is(err, ErrOutcomeUnknown): written but no response (timeout,
// connection lost). Any other error: not written, safe to retry elsewhere. The response
// timeout starts again after the session stopped reading for want of a free
// OnDeliver handler: the response may have been waiting unread.
func (s *Session) Submit(ctx context.Context, sm *SubmitSM) (SubmitResp, error) {
	if !s.cfg.Mode.canSubmit() {
		return SubmitResp{}, errors.New("smpp: submit_sm on a receiver bind")
	}
	if len(sm.ShortMessage) > maxShortMessage {
		return SubmitResp{}, errMessageTooLong // before it takes a window slot
	}
	p, err := s.c.requestEncoded(ctx, pdu.SubmitSMID, func(seq uint32) ([]byte, error) { return sm.appendPDU(nil, seq) }, true)
	if err != nil {
		return SubmitResp{}, err
	}
	if p.id == pdu.GenericNACKID {
		return SubmitResp{Status: nonZero(p.status)}, nil
	}
	return SubmitResp{Status: p.status, MessageID: p.messageID}, nil
}

// Close stops new submits, waits for those in flight (bounded by ctx), unbinds, waits
// for unbind_resp and closes the connection.
func (s *Session) Close(ctx context.Context) error { return s.c.shutdown(ctx, true) }

// Done is closed when the session has ended, for any reason, and its handlers returned.
func (s *Session) Done() <-chan struct{} { return s.c.done }

// Err says why the session ended (ErrClosed after Close), or nil while it runs.
func (s *Session) Err() error { return s.c.Err() }

// InFlight is the number of submit_sm written or waiting to be, without a response yet.
func (s *Session) InFlight() int { return int(s.c.inflight.Load()) }

// onRequest serves the SMSC's deliver_sm and data_sm (receipts and MO messages; data_sm
// carries its text in message_payload), each answered only after OnDeliver returns. It
// blocks the read loop while every handler is busy (see ClientConfig.OnDeliver).
func (s *Session) onRequest(p packet) bool {
	var d *Deliver
	var respond func(status uint32)
	switch p.id {
	case pdu.DeliverSMID:
		d = readShortMessage(p.body).toDeliver()
		respond = func(status uint32) { s.c.respond(p, status, pdu.NewDeliverSMResp()) }
	case pdu.DataSMID:
		d = p.dataSM.toDeliver()
		respond = func(status uint32) {
			body := []byte{0} // message_id: empty, as an ESME has none to give
			if status != StatusOK {
				body = nil
			}
			_ = s.c.write(encodeRaw(p.id|respBit, status, p.seq, body)) // a write error has ended the session
		}
	default:
		return false
	}
	ok := s.c.spawnWait(func(ctx context.Context) {
		var err error
		if s.cfg.OnDeliver == nil {
			err = ErrNoHandler
		} else if err = s.cfg.OnDeliver(ctx, d); err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ErrSessionEnded, err)
		}
		if err != nil {
			s.refused(p, d, err)
			respond(StatusTempAppErr)
			return
		}
		respond(StatusOK)
	})
	if !ok {
		// Nothing can be written any more: the SMSC redelivers it on a later bind.
		s.refused(p, d, fmt.Errorf("%w: %w", ErrSessionEnded, s.c.Err()))
	}
	return true
}

func (s *Session) refused(p packet, d *Deliver, err error) {
	if s.cfg.OnRefused != nil {
		s.cfg.OnRefused(d, err)
		return
	}
	s.c.log.Warn("smpp: "+commandName(p.id)+" refused, the SMSC will redeliver", "err", err)
}
