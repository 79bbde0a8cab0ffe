package sender

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-sms/sluice/pkg/backoff"
	"github.com/sluice-sms/sluice/pkg/smpp"
)

// Reconnect backoff: doubling from bindBackoffMin to bindBackoffMax, each
// wait drawn at random from [b/2, 3b/2) so that many slots never retry in
// step.
const (
	bindBackoffMin = 500 * time.Millisecond
	bindBackoffMax = 30 * time.Second
)

// bindState is what a slot reports about its bind (see CarrierHealth).
type bindState struct {
	bound   bool
	since   time.Time // when bound last changed
	lastErr string    // why the last bind attempt failed or the bind was lost
}

// binder keeps one bind open for a slot: it dials, and redials with
// exponential backoff and jitter whenever the session ends, until stopped.
type binder struct {
	cfg     smpp.ClientConfig
	log     *slog.Logger
	now     func() time.Time
	onBind  func(up bool)
	mu      sync.Mutex
	cur     *smpp.Session
	state   bindState
	changed chan struct{} // closed and replaced whenever cur or state changes
}

func newBinder(cfg smpp.ClientConfig, log *slog.Logger, now func() time.Time, onBind func(up bool)) *binder {
	return &binder{cfg: cfg, log: log, now: now, onBind: onBind, changed: make(chan struct{}), state: bindState{since: now()}}
}

// set records a new session (nil: none) and why the last one ended or the
// last bind failed ("" for none).
func (b *binder) set(s *smpp.Session, why string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bound := s != nil; bound != b.state.bound {
		b.state.bound, b.state.since = bound, b.now()
	}
	if why != "" {
		b.state.lastErr = why
	}
	b.cur = s
	close(b.changed)
	b.changed = make(chan struct{})
}

// status returns the bind's state and a channel closed at its next change.
func (b *binder) status() (bindState, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.changed
}

// session returns the open session, waiting for one if need be.
func (b *binder) session(ctx context.Context) (*smpp.Session, error) {
	for {
		b.mu.Lock()
		s, changed := b.cur, b.changed
		b.mu.Unlock()
		if s != nil {
			select {
			case <-s.Done():
			default:
				return s, nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// run holds the bind until ctx ends, then unbinds within drain. The slot
// ends ctx only after its in-flight submits are answered or abandoned.
func (b *binder) run(ctx context.Context, drain time.Duration) {
	wait := backoff.New(bindBackoffMin, bindBackoffMax)
	for ctx.Err() == nil {
		s, err := smpp.Dial(ctx, b.cfg)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			next := wait.Next()
			b.log.Warn("bind failed", "addr", b.cfg.Addr, "retry_in", next.String(), "err", err)
			b.set(nil, err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(next):
			}
			continue
		}
		wait.Reset()
		b.log.Info("bound", "addr", b.cfg.Addr)
		b.onBind(true)
		b.set(s, "")
		select {
		case <-s.Done():
			b.log.Warn("bind lost", "addr", b.cfg.Addr, "err", s.Err())
			b.set(nil, s.Err().Error())
			b.onBind(false)
		case <-ctx.Done():
			cctx, cancel := context.WithTimeout(context.Background(), drain)
			if err := s.Close(cctx); err != nil {
				b.log.Warn("unbind", "err", err)
			}
			cancel()
			b.set(nil, "")
			b.onBind(false)
			b.log.Info("unbound", "addr", b.cfg.Addr)
			return
		}
	}
}
