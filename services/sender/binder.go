package sender

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sluice-sms/sluice/pkg/smpp"
)

// binder keeps one bind open for a slot: it dials, and redials with
// exponential backoff and jitter whenever the session ends, until stopped.
type binder struct {
	cfg     smpp.ClientConfig
	log     *slog.Logger
	onBind  func(up bool)
	mu      sync.Mutex
	cur     *smpp.Session
	changed chan struct{} // closed and replaced whenever cur changes
}

func newBinder(cfg smpp.ClientConfig, log *slog.Logger, onBind func(up bool)) *binder {
	return &binder{cfg: cfg, log: log, onBind: onBind, changed: make(chan struct{})}
}

func (b *binder) set(s *smpp.Session) {
	b.mu.Lock()
	b.cur = s
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
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
// ends ctx only after its in-flight submits are answered.
func (b *binder) run(ctx context.Context, drain time.Duration) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		s, err := smpp.Dial(ctx, b.cfg)
		if err != nil {
			wait := backoff/2 + rand.N(backoff) // jitter: many slots must not retry in step
			b.log.Warn("bind failed", "addr", b.cfg.Addr, "retry_in", wait.String(), "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = 500 * time.Millisecond
		b.log.Info("bound", "addr", b.cfg.Addr)
		b.onBind(true)
		b.set(s)
		select {
		case <-s.Done():
			b.log.Warn("bind lost", "addr", b.cfg.Addr, "err", s.Err())
			b.set(nil)
			b.onBind(false)
		case <-ctx.Done():
			cctx, cancel := context.WithTimeout(context.Background(), drain)
			if err := s.Close(cctx); err != nil {
				b.log.Warn("unbind", "err", err)
			}
			cancel()
			b.set(nil)
			b.onBind(false)
			return
		}
	}
}
