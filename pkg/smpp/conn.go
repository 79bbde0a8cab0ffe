package smpp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

// maxSeq is the largest sequence number SMPP allows; numbering wraps to 1 after it.
const maxSeq = 0x7FFFFFFF

// Defaults shared by the client and the server.
const (
	defaultWindow       = 10
	defaultConcurrency  = 64
	defaultBindTimeout  = 10 * time.Second
	defaultRespTimeout  = 10 * time.Second
	defaultEnquireLink  = 30 * time.Second
	defaultWriteTimeout = 10 * time.Second
)

// connConfig is the role-independent part of a session's configuration.
type connConfig struct {
	window       int // outstanding windowed requests (submit_sm from a client, deliver_sm from a server)
	concurrency  int // request handlers running at once
	respTimeout  time.Duration
	writeTimeout time.Duration
	enquireLink  time.Duration
	log          *slog.Logger
	// onRequest serves a peer request other than enquire_link, unbind and
	// alert_notification. It runs in the read loop: it answers at once or hands the work
	// to spawn (busy: answer at once) or spawnWait (busy: stop reading until a handler
	// frees). It returns false for a command the role does not serve, which is answered
	// with generic_nack.
	onRequest func(p packet) bool
	// onWait, if set, is told how long the read loop stopped reading in spawnWait.
	onWait func(time.Duration)
}

func (cc *connConfig) setDefaults() {
	if cc.window <= 0 {
		cc.window = defaultWindow
	}
	if cc.concurrency <= 0 {
		cc.concurrency = defaultConcurrency
	}
	if cc.respTimeout <= 0 {
		cc.respTimeout = defaultRespTimeout
	}
	if cc.writeTimeout <= 0 {
		cc.writeTimeout = defaultWriteTimeout
	}
	if cc.enquireLink <= 0 {
		cc.enquireLink = defaultEnquireLink
	}
	if cc.log == nil {
		cc.log = slog.New(slog.DiscardHandler)
	}
}

// call is a request waiting for its response.
type call struct {
	respID pdu.ID
	ch     chan packet // buffered; closed if the session ends first
}

// conn is the session machinery both directions share: sequence numbers, in-flight
// requests, the window, the read loop, serialised writes with deadlines, keepalive,
// bounded request handlers and graceful shutdown.
type conn struct {
	connConfig
	nc       net.Conn
	window   chan struct{}
	handlers chan struct{}
	inflight atomic.Int64
	// The read loop is waiting in spawnWait (waiting), and how many times it began to
	// (waits): a response due meanwhile may be sitting unread in our own socket.
	waiting atomic.Bool
	waits   atomic.Uint64

	wmu sync.Mutex // one writer at a time

	mu      sync.Mutex
	seq     uint32
	pending map[uint32]*call // by our own sequence number, which is unique while pending
	closing bool
	err     error // why the session ended; nil while it runs

	ctx    context.Context // cancelled when the session ends
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	done   chan struct{}
}

func newConn(nc net.Conn, cfg connConfig) *conn {
	cfg.setDefaults()
	ctx, cancel := context.WithCancelCause(context.Background())
	return &conn{
		connConfig: cfg,
		nc:         nc,
		window:     make(chan struct{}, cfg.window),
		handlers:   make(chan struct{}, cfg.concurrency),
		pending:    make(map[uint32]*call),
		ctx:        ctx,
		cancel:     cancel,
		done:       make(chan struct{}),
	}
}

// start runs the read loop and keepalive; done closes once every goroutine of the
// session, handlers included, has returned.
func (c *conn) start() {
	c.wg.Add(2)
	go c.readLoop()
	go c.keepalive()
	go func() {
		c.wg.Wait()
		close(c.done)
	}()
}

// goSession runs f as a goroutine of the session. It must be called before start or from
// a goroutine of the session, so that done cannot have closed yet.
func (c *conn) goSession(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// spawn runs a request handler outside the read loop, or returns false when as many as
// the concurrency limit are already running (the caller answers "busy").
func (c *conn) spawn(f func(ctx context.Context)) bool {
	select {
	case c.handlers <- struct{}{}:
	default:
		return false
	}
	c.run(f)
	return true
}

// spawnWait runs a request handler outside the read loop, waiting for a free one when
// as many as the concurrency limit are running. Meanwhile the read loop reads nothing,
// so TCP flow control slows the peer down. It returns false, without running f, if the
// session ends first.
func (c *conn) spawnWait(f func(ctx context.Context)) bool {
	select {
	case c.handlers <- struct{}{}:
	default:
		start := time.Now()
		c.waits.Add(1)
		c.waiting.Store(true)
		select {
		case c.handlers <- struct{}{}:
		case <-c.ctx.Done():
		}
		c.waiting.Store(false)
		if c.onWait != nil {
			c.onWait(time.Since(start))
		}
		if c.ctx.Err() != nil {
			return false
		}
	}
	c.run(f)
	return true
}

// run runs f as a handler holding the slot its caller took.
func (c *conn) run(f func(ctx context.Context)) {
	c.goSession(func() {
		defer func() { <-c.handlers }()
		f(c.ctx)
	})
}

// waitedSince reports whether the read loop is waiting in spawnWait, or has since
// mark (an earlier c.waits.Load()).
func (c *conn) waitedSince(mark uint64) bool {
	return c.waiting.Load() || c.waits.Load() != mark
}

// Err returns why the session ended, or nil while it runs.
func (c *conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail ends the session: the first error wins, pending requests learn their outcome is
// unknown, handlers' context is cancelled and the connection is closed.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, cl := range pending {
		close(cl.ch)
	}
	c.cancel(err)
	_ = c.nc.Close() // the session error above is what matters
	c.log.Debug("smpp session ended", "err", err)
}

// nextSeqLocked allocates a sequence number in 1..0x7FFFFFFF, wrapping, and skipping any
// still pending after a wrap.
func (c *conn) nextSeqLocked() uint32 {
	for {
		c.seq++
		if c.seq > maxSeq {
			c.seq = 1
		}
		if _, busy := c.pending[c.seq]; !busy {
			return c.seq
		}
	}
}

// write sends one whole PDU. A failed write ends the session: the stream is then out of
// step, and since the PDU was at best partly written, the peer never acts on it.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		c.fail(fmt.Errorf("smpp: set write deadline: %w", err))
		return err
	}
	if _, err := c.nc.Write(b); err != nil {
		c.fail(fmt.Errorf("smpp: write: %w", err))
		return err
	}
	return nil
}

// acquire takes a window slot for a windowed request.
func (c *conn) acquire(ctx context.Context) error {
	select {
	case c.window <- struct{}{}:
		c.inflight.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
}

func (c *conn) release() {
	c.inflight.Add(-1)
	<-c.window
}

// request sends b with a fresh sequence number and waits for the response with the
// matching (command, sequence), or a generic_nack with that sequence. Errors wrapping
// ErrOutcomeUnknown mean b was written; any other error means it was not.
func (c *conn) request(ctx context.Context, b pdu.Body, windowed bool) (packet, error) {
	encode := func(seq uint32) ([]byte, error) { return encodeBody(b, StatusOK, seq) }
	return c.requestEncoded(ctx, b.Header().ID, encode, windowed)
}

// requestEncoded is request for a PDU that encode serialises with the
// sequence number it is given.
func (c *conn) requestEncoded(ctx context.Context, id pdu.ID, encode func(seq uint32) ([]byte, error), windowed bool) (packet, error) {
	name := commandName(id)
	if windowed {
		if err := c.acquire(ctx); err != nil {
			return packet{}, fmt.Errorf("smpp: %s: waiting for a window slot: %w", name, err)
		}
		defer c.release()
	}
	c.mu.Lock()
	if c.err != nil || (windowed && c.closing) {
		c.mu.Unlock()
		return packet{}, fmt.Errorf("smpp: %s: %w", name, ErrClosed)
	}
	seq := c.nextSeqLocked()
	cl := &call{respID: id | respBit, ch: make(chan packet, 1)}
	c.pending[seq] = cl
	c.mu.Unlock()

	buf, err := encode(seq)
	if err == nil {
		err = c.write(buf)
	}
	if err != nil {
		c.forget(seq)
		return packet{}, fmt.Errorf("smpp: %s not sent: %w", name, err)
	}

	t := time.NewTimer(c.respTimeout)
	defer t.Stop()
	var why error
	mark := c.waits.Load()
wait:
	for {
		select {
		case p, ok := <-cl.ch:
			if ok {
				return p, nil
			}
			return packet{}, fmt.Errorf("smpp: %s: %w: %w", name, ErrOutcomeUnknown, c.Err())
		case <-t.C:
			if c.waitedSince(mark) {
				// The read loop stopped reading meanwhile: the response may be in our
				// socket, unread. The peer is not late; we are. Wait on.
				mark = c.waits.Load()
				t.Reset(c.respTimeout)
				continue
			}
			why = fmt.Errorf("no response within %s", c.respTimeout)
		case <-ctx.Done():
			why = ctx.Err()
		}
		break wait
	}
	if !c.forget(seq) {
		// The response (or the end of the session) won the race with our deadline.
		if p, ok := <-cl.ch; ok {
			return p, nil
		}
	}
	return packet{}, fmt.Errorf("smpp: %s: %w: %w", name, ErrOutcomeUnknown, why)
}

// forget drops a pending request and reports whether it was still pending. A response
// arriving later is logged and dropped.
func (c *conn) forget(seq uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[seq]
	delete(c.pending, seq)
	return ok
}

// resolve hands a response to the request it answers.
func (c *conn) resolve(p packet) {
	c.mu.Lock()
	cl, ok := c.pending[p.seq]
	ok = ok && (cl.respID == p.id || p.id == pdu.GenericNACKID)
	if ok {
		delete(c.pending, p.seq)
		cl.ch <- p
	}
	c.mu.Unlock()
	if !ok {
		c.log.Warn("smpp: unexpected response dropped", "command", commandName(p.id), "seq", p.seq, "status", StatusName(p.status))
	}
}

// respond answers request p. A non-zero status is sent without a body, as SMPP 3.4 says.
func (c *conn) respond(p packet, status uint32, body pdu.Body) {
	var b []byte
	if status != StatusOK || body == nil {
		b = encodeHeader(p.id|respBit, status, p.seq)
	} else {
		var err error
		if b, err = encodeBody(body, status, p.seq); err != nil {
			c.log.Error("smpp: encode response", "err", err)
			b = encodeHeader(p.id|respBit, StatusSysErr, p.seq)
		}
	}
	_ = c.write(b) // a write error has ended the session; nothing more to do here
}

func (c *conn) nack(p packet, status uint32) {
	_ = c.write(encodeHeader(pdu.GenericNACKID, status, p.seq)) // as in respond
}

func (c *conn) readLoop() {
	defer c.wg.Done()
	r := bufio.NewReaderSize(c.nc, 16<<10)
	for {
		p, err := readPacket(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("smpp: connection closed by peer: %w", err)
			}
			c.fail(err)
			return
		}
		if c.ctx.Err() != nil {
			return // ended while we were not reading: what is still buffered cannot be answered
		}
		c.dispatch(p)
	}
}

func (c *conn) dispatch(p packet) {
	switch {
	case p.id&respBit != 0:
		c.resolve(p)
	case p.id == pdu.EnquireLinkID:
		c.respond(p, StatusOK, nil)
	case p.id == pdu.UnbindID:
		c.respond(p, StatusOK, nil)
		c.fail(ErrUnbound)
	case p.id == pdu.AlertNotificationID:
		// It has no response; sluice has no use for it, and it must not cost the bind.
		c.log.Info("smpp: alert_notification ignored")
	case p.decodeErr != nil:
		c.log.Warn("smpp: undecodable PDU", "command", commandName(p.id), "seq", p.seq, "err", p.decodeErr)
		c.nack(p, StatusInvCmdLen)
	case !c.onRequest(p):
		c.log.Info("smpp: unsupported command answered with generic_nack", "command", commandName(p.id), "seq", p.seq)
		c.nack(p, StatusInvCmdID)
	}
}

// keepalive sends enquire_link every interval and ends the session when one goes
// unanswered, so a silent peer is noticed even when no traffic flows.
func (c *conn) keepalive() {
	defer c.wg.Done()
	t := time.NewTicker(c.enquireLink)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if _, err := c.request(c.ctx, pdu.NewEnquireLink(), false); err != nil {
			if c.ctx.Err() == nil {
				c.fail(fmt.Errorf("smpp: keepalive: %w", err))
			}
			return
		}
	}
}

// shutdown stops new windowed requests, waits for those in flight (bounded by ctx),
// unbinds if unbind is true, closes the connection and waits for the session's
// goroutines.
func (c *conn) shutdown(ctx context.Context, unbind bool) error {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
drain:
	for range cap(c.window) {
		select {
		case c.window <- struct{}{}:
		case <-ctx.Done():
			break drain
		case <-c.ctx.Done():
			break drain
		}
	}
	if unbind && c.ctx.Err() == nil && ctx.Err() == nil {
		if _, err := c.request(ctx, pdu.NewUnbind(), false); err != nil {
			c.log.Info("smpp: unbind", "err", err)
		}
	}
	c.fail(ErrClosed)
	select {
	case <-c.done:
		return nil
	default:
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("smpp: waiting for session handlers: %w", ctx.Err())
	}
}
