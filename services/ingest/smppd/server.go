// Package smppd is sluice's SMPP front door: tenants' ESMEs bind to it, submit
// messages and receive their delivery receipts as deliver_sm. It owns the SMPP
// side (authentication, reassembly of long messages, decoding, receipts); the
// validation and publishing of a message is ingest's, behind Intake.
package smppd

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/smpp"
)

// Intake validates and publishes one message of a tenant: the accepted record
// and its status event are durable when it returns the message id. A refusal
// is a *Rejection.
type Intake interface {
	Submit(ctx context.Context, tenant string, req message.Request) (messageID string, err error)
}

// Rejection is a message refused for a reason the ESME can act on, with the
// SMPP command status that says so.
type Rejection struct {
	Status uint32
	Reason string
}

func (r *Rejection) Error() string {
	return fmt.Sprintf("%s: %s", smpp.StatusName(r.Status), r.Reason)
}

// Metadata keys the front door adds to a message it accepts, so that its final
// status on sms.status says how to send the receipt back.
const (
	MetaRegisteredDelivery = "smpp_registered_delivery"
	MetaSourceAddr         = "smpp_source_addr"
	MetaDestAddr           = "smpp_dest_addr"
)

// Config configures the front door.
type Config struct {
	Tenants     []config.Tenant // those with an SMPPSystemID may bind
	Brokers     []string
	TopicPrefix string
	Intake      Intake
	// Producer writes the fan-out's copies to the tenants' topics.
	Producer Producer
	Logger   *slog.Logger
	// ReassemblyTimeout bounds how long the parts of a long message wait for
	// the rest; default 30s.
	ReassemblyTimeout time.Duration
	// EnquireLink is the keepalive interval of every session; default 30s.
	EnquireLink time.Duration
	// TLS, when set, makes the server speak TLS only.
	TLS *tls.Config
}

type tenant struct {
	id        string
	systemID  string
	pwHash    [sha256.Size]byte
	maxBinds  int
	allowed   []netip.Prefix  // empty: any address
	limit     *rate.Limiter   // submit_sm per second on this replica; nil: none
	moNumbers map[string]bool // without '+': MO messages to these are the tenant's
}

// Server is the SMPP front door of one ingest replica.
type Server struct {
	cfg      Config
	log      *slog.Logger
	tenants  map[string]*tenant // by system_id
	srv      *smpp.Server
	asm      *assembler
	failures *failures
	receipts *receipts

	mu    sync.Mutex
	binds map[string]int // accepted binds per tenant on this replica
}

// New checks the tenants' SMPP credentials and returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Producer == nil && len(cfg.Brokers) > 0 {
		return nil, errors.New("smppd: a Producer is required with Brokers (the fan-out of receipts and MO)")
	}
	if cfg.ReassemblyTimeout <= 0 {
		cfg.ReassemblyTimeout = 30 * time.Second
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		tenants:  map[string]*tenant{},
		failures: newFailures(),
		binds:    map[string]int{},
	}
	for _, t := range cfg.Tenants {
		if t.SMPPSystemID == "" {
			continue
		}
		if _, dup := s.tenants[t.SMPPSystemID]; dup {
			return nil, fmt.Errorf("smppd: smpp_system_id %q of tenant %s is used twice", t.SMPPSystemID, t.ID)
		}
		h, err := hex.DecodeString(t.SMPPPasswordSHA256)
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("smppd: tenant %s: smpp_password_sha256 must be 64 hex digits", t.ID)
		}
		tt := &tenant{id: t.ID, systemID: t.SMPPSystemID, maxBinds: max(t.SMPPMaxBinds, 1)}
		copy(tt.pwHash[:], h)
		for _, n := range t.SMPPMONumbers {
			if tt.moNumbers == nil {
				tt.moNumbers = map[string]bool{}
			}
			tt.moNumbers[strings.TrimPrefix(n, "+")] = true
		}
		if t.RateLimit > 0 {
			tt.limit = rate.NewLimiter(rate.Limit(t.RateLimit), t.RateLimit)
		}
		for _, a := range t.SMPPAllowedIPs {
			p, err := parsePrefix(a)
			if err != nil {
				return nil, fmt.Errorf("smppd: tenant %s: smpp_allowed_ips: %w", t.ID, err)
			}
			tt.allowed = append(tt.allowed, p)
		}
		s.tenants[t.SMPPSystemID] = tt
	}
	s.asm = newAssembler(cfg.ReassemblyTimeout)
	s.srv = smpp.NewServer(smpp.ServerConfig{
		Bind:        s.bind,
		Submit:      s.submit,
		Unbound:     s.unbound,
		EnquireLink: cfg.EnquireLink,
		Window:      10,
		// Submit handlers per session: above any window an ESME uses, so the
		// window is the ESME's limit (beyond this it gets ESME_RTHROTTLED).
		Concurrency: 1024,
		TLS:         cfg.TLS,
		Logger:      cfg.Logger,
	})
	s.receipts = newReceipts(s)
	return s, nil
}

// Serve accepts ESMEs on ln until ctx ends, then unbinds them and waits for
// everything it started.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	fanned := make(chan error, 1)
	go func() {
		err := s.runFanOut(ctx)
		stop() // without the fan-out no receipt reaches a bind: close the door
		fanned <- err
	}()
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	var err error
	served := false
	select {
	case <-ctx.Done():
	case err = <-errc:
		served = true
	}
	stop()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	cerr := s.srv.Close(cctx)
	s.receipts.wait()
	s.asm.close()
	if !served {
		err = <-errc
	}
	if errors.Is(err, smpp.ErrServerClosed) {
		err = nil
	}
	ferr := <-fanned
	if errors.Is(ferr, context.Canceled) {
		ferr = nil
	}
	return errors.Join(err, cerr, ferr)
}

// runFanOut runs the fan-out of the tenants' receipts and MO until ctx ends.
func (s *Server) runFanOut(ctx context.Context) error {
	if len(s.tenants) == 0 || len(s.cfg.Brokers) == 0 {
		<-ctx.Done() // nothing to fan out, or no Kafka (unit tests of binds and submits)
		return nil
	}
	return newFanOut(s.cfg.TopicPrefix, s.tenants, s.cfg.Producer).run(ctx, s.cfg.Brokers)
}

// bind authenticates an ESME: the password's SHA-256 against the tenant's in
// constant time, then the tenant's bind limit. An unknown system_id is
// answered like a wrong password, so that system_ids cannot be guessed one by
// one; every refusal from an address slows its next answers down.
func (s *Server) bind(ctx context.Context, req smpp.BindRequest) uint32 {
	host := hostOf(req.RemoteAddr)
	sum := sha256.Sum256([]byte(req.Password))
	t, known := s.tenants[req.SystemID]
	want := [sha256.Size]byte{}
	if known {
		want = t.pwHash
	}
	ok := subtle.ConstantTimeCompare(sum[:], want[:]) == 1 && known
	if !ok {
		s.log.Info("smpp bind refused: bad credentials", "system_id", req.SystemID, "remote", req.RemoteAddr, "known_system_id", known)
		s.failures.penalise(ctx, host)
		return smpp.StatusInvPassword
	}
	if !t.allows(host) {
		s.log.Info("smpp bind refused: address not allowed", "tenant", t.id, "remote", req.RemoteAddr)
		s.failures.penalise(ctx, host)
		return smpp.StatusBindFailed
	}
	s.mu.Lock()
	if s.binds[t.id] >= t.maxBinds {
		s.mu.Unlock()
		s.log.Info("smpp bind refused: too many binds", "tenant", t.id, "max", t.maxBinds, "remote", req.RemoteAddr)
		s.failures.penalise(ctx, host)
		return smpp.StatusBindFailed
	}
	s.binds[t.id]++
	s.mu.Unlock()
	s.failures.forgive(host)
	s.log.Info("smpp bound", "tenant", t.id, "mode", req.Mode.String(), "remote", req.RemoteAddr)
	if req.Mode != smpp.BindTransmitter {
		s.receipts.bound(t)
	}
	return smpp.StatusOK
}

func (s *Server) unbound(ss *smpp.ServerSession) {
	t := s.tenants[ss.SystemID()]
	if t == nil {
		return
	}
	s.mu.Lock()
	s.binds[t.id]--
	s.mu.Unlock()
	if ss.Mode() != smpp.BindTransmitter {
		s.receipts.unbound(t)
	}
	s.log.Info("smpp unbound", "tenant", t.id, "mode", ss.Mode().String(), "err", ss.Err())
}

// parsePrefix reads an address or a CIDR range.
func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a CIDR range", s)
	}
	return p.Masked(), nil
}

func (t *tenant) allows(host string) bool {
	if len(t.allowed) == 0 {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	return slices.ContainsFunc(t.allowed, func(p netip.Prefix) bool { return p.Contains(a) })
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// failures slows down the bind failures of an address: each recent failure
// adds a second to the answer of the next one, up to maxPenalty, so guessing
// passwords costs time while a mistyped one costs little.
type failures struct {
	mu sync.Mutex
	by map[string]failure
}

type failure struct {
	count int
	last  time.Time
}

const (
	penaltyStep   = time.Second
	maxPenalty    = 10 * time.Second
	failureMemory = 5 * time.Minute
)

func newFailures() *failures { return &failures{by: map[string]failure{}} }

// penalise records a failure of host and waits as long as its failures earn.
func (f *failures) penalise(ctx context.Context, host string) {
	now := time.Now()
	f.mu.Lock()
	fl := f.by[host]
	if now.Sub(fl.last) > failureMemory {
		fl.count = 0
	}
	delay := min(time.Duration(fl.count)*penaltyStep, maxPenalty)
	fl.count++
	fl.last = now
	f.by[host] = fl
	for h, old := range f.by { // bounded by the addresses that failed lately
		if now.Sub(old.last) > failureMemory {
			delete(f.by, h)
		}
	}
	f.mu.Unlock()
	if delay == 0 {
		return
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (f *failures) forgive(host string) {
	f.mu.Lock()
	delete(f.by, host)
	f.mu.Unlock()
}
