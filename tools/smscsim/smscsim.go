// Package smscsim simulates carriers' SMSCs for tests, the devstack and load runs: each
// carrier has its own SMPP listener and credentials, answers submit_sm with a unique
// message id (hex unless configured otherwise, see idforms.go), and sends a delivery receipt after a delay with an outcome drawn from
// configured weights, retrying the receipt until an ESME acknowledges it.
package smscsim

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-sms/sluice/pkg/smpp"
)

// Receipt outcomes a carrier can be configured with.
var outcomeStats = []string{smpp.StatDelivered, smpp.StatUndeliverable, smpp.StatExpired, smpp.StatRejected}

// receiptErr is the "err:" value each outcome carries.
var receiptErr = map[string]string{
	smpp.StatDelivered:     "000",
	smpp.StatUndeliverable: "001",
	smpp.StatExpired:       "000",
	smpp.StatRejected:      "002",
}

const (
	defaultDLRDelay   = 100 * time.Millisecond
	defaultRetryDelay = time.Second
	// deliveriesAtOnce bounds a carrier's concurrent deliver_sm attempts; each session's
	// window bounds them further.
	deliveriesAtOnce = 256
)

// CarrierConfig describes one simulated carrier.
type CarrierConfig struct {
	ID       string `yaml:"id"`
	SystemID string `yaml:"system_id"`
	Password string `yaml:"password"`
	// Addr is the SMPP listen address, e.g. 127.0.0.1:0.
	Addr string `yaml:"addr"`
	// DLRDelay is the time from submit_sm to its receipt; default 100ms.
	DLRDelay time.Duration `yaml:"dlr_delay"`
	// RetryDelay is the wait before resending an unacknowledged receipt; default 1s.
	RetryDelay time.Duration `yaml:"retry_delay"`
	// DLRWindow is how many deliver_sm a session may have unanswered at once; default
	// 10. Real SMSCs often allow hundreds, which is what tests an ESME's back-pressure.
	DLRWindow int `yaml:"dlr_window"`
	// Outcomes weighs DELIVRD, UNDELIV, EXPIRED and REJECTD; default all DELIVRD.
	Outcomes map[string]int `yaml:"outcomes"`
	// MaxBinds refuses binds beyond this many open at once (ESME_RBINDFAIL), as a
	// carrier's account limit does; 0 for no limit.
	MaxBinds int `yaml:"max_binds"`
	// TPS answers submit_sm beyond this many in any one second (a sliding window), all
	// binds together, with ESME_RTHROTTLED; 0 for no limit.
	TPS int `yaml:"tps"`
	// DLRJitter adds a uniformly random [0, DLRJitter) to each receipt's delay.
	DLRJitter time.Duration `yaml:"dlr_jitter"`
	// DLRDistribution is "fixed" (default: DLRDelay plus the jitter) or "exponential"
	// (exponentially distributed with mean DLRDelay, as handset delivery times are,
	// plus the jitter).
	DLRDistribution string `yaml:"dlr_distribution"`
	// The forms a message id is written in, which differ between real SMSCs (a
	// sluice carrier's receipt_ids declares them; ReceiptIDs gives it). Each is
	// the same number: RespIDForm in the submit_sm_resp, "hex" (default) or
	// "decimal"; DLRTextIDForm in a receipt text's id: and DLRTLVIDForm in its
	// receipted_message_id TLV, each "same" as the resp (default; SMPP 3.4 says
	// so of the TLV), "decimal" or "hex".
	RespIDForm    string `yaml:"resp_id_form"`
	DLRTextIDForm string `yaml:"dlr_text_id_form"`
	DLRTLVIDForm  string `yaml:"dlr_tlv_id_form"`
	// DLRIDFormat is DLRTextIDForm's older name, "hex" or "decimal"; set one.
	DLRIDFormat string `yaml:"dlr_id_format"`
	// IDCase is the case of hex ids' letters: "lower" (default) or "upper".
	IDCase string `yaml:"id_case"`
	// IDZeroPad writes every id with at least this many digits, leading zeros
	// filling (0 to 64, SMPP's longest message_id); hex ids have 16 at least,
	// as they always had.
	IDZeroPad int `yaml:"id_zero_pad"`
	// DuplicateDLRs is the fraction of receipts sent twice.
	DuplicateDLRs float64 `yaml:"duplicate_dlrs"`
	// MOEvery sends a mobile-originated message (MOText, default "STOP") from a random
	// subscriber every interval, to a bound receiver; 0 for none. Sim.SendMO sends one.
	MOEvery time.Duration `yaml:"mo_every"`
	MOText  string        `yaml:"mo_text"`
	// Faults can also be changed while the simulator runs (Sim.SetFaults).
	Faults `yaml:",inline"`
}

// Faults are a carrier's misbehaviours.
type Faults struct {
	// Latency delays each submit_sm_resp, plus a uniformly random [0, LatencyJitter).
	Latency       time.Duration `yaml:"latency"`
	LatencyJitter time.Duration `yaml:"latency_jitter"`
	// Errors refuses that fraction of submit_sm with each command status, e.g.
	// {0x08: 0.05, 0x0B: 0.01}.
	Errors map[uint32]float64 `yaml:"errors"`
	// StallRate is the fraction of submit_sm accepted but answered only after Stall: the
	// ESME sees no response in time (outcome unknown) though the message went through.
	StallRate float64       `yaml:"stall_rate"`
	Stall     time.Duration `yaml:"stall"`
	// DisconnectRate is the fraction of submit_sm that are accepted and then the
	// connection dropped before the answer.
	DisconnectRate float64 `yaml:"disconnect_rate"`
	// Down refuses every bind with ESME_RBINDFAIL and drops the bound sessions: a
	// carrier out of service.
	Down bool `yaml:"down"`
}

func (f Faults) validate() error {
	total := f.StallRate + f.DisconnectRate
	for st, p := range f.Errors {
		if st == smpp.StatusOK || p < 0 {
			return fmt.Errorf("errors: status 0x%02X with rate %v", st, p)
		}
		total += p
	}
	if f.StallRate < 0 || f.DisconnectRate < 0 || total > 1 {
		return fmt.Errorf("fault rates must be fractions adding up to at most 1 (got %v)", total)
	}
	return nil
}

// draw picks what happens to one submit_sm: a refusal status, a stall, a disconnect,
// or nothing (status 0, both false).
func (f Faults) draw() (status uint32, stall, disconnect bool) {
	x := rand.Float64()
	for _, st := range slices.Sorted(maps.Keys(f.Errors)) {
		if x -= f.Errors[st]; x < 0 {
			return st, false, false
		}
	}
	if x -= f.StallRate; x < 0 {
		return 0, true, false
	}
	if x -= f.DisconnectRate; x < 0 {
		return 0, false, true
	}
	return 0, false, false
}

// CarrierStats are a carrier's counters since Start.
type CarrierStats struct {
	Binds        int64 `json:"binds"`         // successful binds
	BindsOpen    int64 `json:"binds_open"`    // bound sessions now
	BindFailures int64 `json:"bind_failures"` // refused binds
	PeakBinds    int64 `json:"peak_binds"`    // most binds open at once
	Throttled    int64 `json:"throttled"`     // submit_sm refused with ESME_RTHROTTLED
	Submits      int64 `json:"submits"`       // submit_sm accepted
	SubmitParts  int64 `json:"submit_parts"`  // of which parts of a concatenated message
	// UniqueSubmits counts distinct (destination, data coding, text without UDH)
	// submissions, DuplicateSubmits the repeats of one already seen.
	UniqueSubmits    int64            `json:"unique_submits"`
	DuplicateSubmits int64            `json:"duplicate_submits"`
	DLRsRequested    int64            `json:"dlrs_requested"` // submits asking for a receipt
	DLRsSent         int64            `json:"dlrs_sent"`      // deliver_sm attempts written, retries included
	DLRsAcked        int64            `json:"dlrs_acked"`     // receipts acknowledged with ESME_ROK
	DLRsRefused      int64            `json:"dlrs_refused"`   // deliver_sm answered with a non-zero status
	DLRsPending      int64            `json:"dlrs_pending"`   // receipts not acknowledged yet
	Outcomes         map[string]int64 `json:"outcomes"`       // receipts generated, by stat
	// Received counts every submit_sm, refused or not; PeakTPS is the most of them in
	// any one second (a sliding window), the figure a carrier's TPS limit is about.
	Received    int64 `json:"received"`
	PeakTPS     int64 `json:"peak_tps"`
	Injected    int64 `json:"injected_errors"` // submit_sm refused by Faults.Errors
	Stalled     int64 `json:"stalled"`         // answered late by Faults.StallRate
	Disconnects int64 `json:"disconnects"`     // connections dropped by the simulator
	DLRDups     int64 `json:"dlr_duplicates"`  // receipts queued a second time
	MOsSent     int64 `json:"mos_sent"`        // MO messages acknowledged by an ESME
}

// Sim is a running simulator.
type Sim struct {
	carriers map[string]*carrier
	log      *slog.Logger
	httpSrv  *http.Server
	httpLn   net.Listener

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start runs the carriers and, if httpAddr is not empty, the HTTP stats endpoint
// (GET /stats). It logs through slog.Default.
func Start(ctx context.Context, carriers []CarrierConfig, httpAddr string) (*Sim, error) {
	return StartWithLogger(ctx, carriers, httpAddr, slog.Default())
}

// StartWithLogger is Start with an explicit logger.
func StartWithLogger(ctx context.Context, carriers []CarrierConfig, httpAddr string, log *slog.Logger) (*Sim, error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Sim{carriers: make(map[string]*carrier), log: log, cancel: cancel}
	for _, cfg := range carriers {
		if err := s.addCarrier(runCtx, cfg); err != nil {
			return nil, errors.Join(err, s.Close())
		}
	}
	if httpAddr != "" {
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", httpAddr)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("smscsim: listen http %s: %w", httpAddr, err), s.Close())
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /stats", s.serveStats)
		s.httpLn = ln
		s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		s.wg.Go(func() {
			if err := s.httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				log.Error("smscsim: http server", "err", err)
			}
		})
	}
	return s, nil
}

func (s *Sim) addCarrier(ctx context.Context, cfg CarrierConfig) error {
	if cfg.ID == "" {
		return errors.New("smscsim: carrier without id")
	}
	if _, dup := s.carriers[cfg.ID]; dup {
		return fmt.Errorf("smscsim: carrier %q configured twice", cfg.ID)
	}
	c, err := newCarrier(cfg, s.log.With("carrier", cfg.ID))
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("smscsim: carrier %s: listen %s: %w", cfg.ID, cfg.Addr, err)
	}
	c.ln = ln
	s.carriers[cfg.ID] = c
	s.wg.Go(func() {
		if err := c.srv.Serve(ln); !errors.Is(err, smpp.ErrServerClosed) {
			c.log.Error("smscsim: smpp server", "err", err)
		}
	})
	s.wg.Go(func() { c.runReceipts(ctx) })
	if cfg.MOEvery > 0 {
		s.wg.Go(func() { c.runMO(ctx) })
	}
	c.log.Info("smscsim: carrier listening", "addr", ln.Addr().String(), "system_id", cfg.SystemID)
	return nil
}

// Addr is the carrier's actual SMPP address ("" for an unknown carrier).
func (s *Sim) Addr(carrierID string) string {
	if c, ok := s.carriers[carrierID]; ok {
		return c.ln.Addr().String()
	}
	return ""
}

// HTTPAddr is the stats endpoint's actual address ("" without one).
func (s *Sim) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Stats returns every carrier's counters, by carrier id.
func (s *Sim) Stats() map[string]CarrierStats {
	out := make(map[string]CarrierStats, len(s.carriers))
	for id, c := range s.carriers {
		out[id] = c.stats()
	}
	return out
}

func (s *Sim) serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(s.Stats()); err != nil {
		s.log.Warn("smscsim: write stats", "err", err)
	}
}

// Close stops the receipts, unbinds every session and stops the listeners.
func (s *Sim) Close() error {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if s.httpSrv != nil {
		errs = append(errs, s.httpSrv.Shutdown(ctx))
	}
	for _, c := range s.carriers {
		errs = append(errs, c.srv.Close(ctx))
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// carrier is one simulated SMSC.
type carrier struct {
	cfg   CarrierConfig
	log   *slog.Logger
	srv   *smpp.Server
	ln    net.Listener
	forms idForms
	draw  func() string
	idPfx uint32

	nextID, binds, bindFailures, submits, parts     atomic.Int64
	dlrsRequested, dlrsSent, dlrsAcked, dlrsPending atomic.Int64
	dlrsRefused                                     atomic.Int64
	unique, duplicates, throttled                   atomic.Int64
	received, injected, stalled, disconnects        atomic.Int64
	dlrDups, mosSent                                atomic.Int64

	mu         sync.Mutex
	faults     Faults
	seen       map[[16]byte]struct{}
	outcomes   map[string]int64
	open, peak int64 // binds open now and at most
	arrivals   window
	accepted   window // submit_sm let through the TPS limit

	queue receiptQueue
	slots chan struct{}
}

func newCarrier(cfg CarrierConfig, log *slog.Logger) (*carrier, error) {
	if cfg.DLRDelay <= 0 {
		cfg.DLRDelay = defaultDLRDelay
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = defaultRetryDelay
	}
	draw, err := outcomeDrawer(cfg.Outcomes)
	if err != nil {
		return nil, fmt.Errorf("smscsim: carrier %s: %w", cfg.ID, err)
	}
	if err := cfg.Faults.validate(); err != nil {
		return nil, fmt.Errorf("smscsim: carrier %s: %w", cfg.ID, err)
	}
	switch cfg.DLRDistribution {
	case "", "fixed", "exponential":
	default:
		return nil, fmt.Errorf("smscsim: carrier %s: dlr_distribution %q: want fixed or exponential", cfg.ID, cfg.DLRDistribution)
	}
	forms, err := cfg.idForms()
	if err != nil {
		return nil, fmt.Errorf("smscsim: carrier %s: %w", cfg.ID, err)
	}
	if cfg.MOText == "" {
		cfg.MOText = "STOP"
	}
	c := &carrier{
		cfg:      cfg,
		log:      log,
		forms:    forms,
		draw:     draw,
		faults:   cfg.Faults,
		idPfx:    rand.Uint32(),
		seen:     make(map[[16]byte]struct{}),
		outcomes: make(map[string]int64),
		queue:    newReceiptQueue(),
		slots:    make(chan struct{}, max(deliveriesAtOnce, cfg.DLRWindow)),
	}
	c.srv = smpp.NewServer(smpp.ServerConfig{
		SystemID: cfg.ID,
		Bind:     c.bind,
		Submit:   c.submit,
		Unbound:  c.unbound,
		// Latency and stalls hold a handler each: let a whole window wait.
		Concurrency: 4096,
		Window:      cfg.DLRWindow,
		Logger:      log,
	})
	return c, nil
}

// outcomeDrawer returns a weighted random choice among the configured outcomes.
func outcomeDrawer(weights map[string]int) (func() string, error) {
	if len(weights) == 0 {
		return func() string { return smpp.StatDelivered }, nil
	}
	total := 0
	for _, stat := range slices.Sorted(maps.Keys(weights)) {
		w := weights[stat]
		if !slices.Contains(outcomeStats, stat) {
			return nil, fmt.Errorf("unknown outcome %q (want one of %v)", stat, outcomeStats)
		}
		if w < 0 {
			return nil, fmt.Errorf("negative weight %d for %s", w, stat)
		}
		total += w
	}
	if total == 0 {
		return nil, errors.New("outcome weights add up to zero")
	}
	return func() string {
		n := rand.IntN(total)
		for _, stat := range outcomeStats {
			if n < weights[stat] {
				return stat
			}
			n -= weights[stat]
		}
		panic("unreachable: weights changed")
	}, nil
}

func (c *carrier) bind(_ context.Context, req smpp.BindRequest) uint32 {
	var status uint32
	switch {
	case req.SystemID != c.cfg.SystemID:
		status = smpp.StatusInvSystemID
	case req.Password != c.cfg.Password:
		status = smpp.StatusInvPassword
	case c.currentFaults().Down:
		status = smpp.StatusBindFailed
	case !c.reserveBind():
		status = smpp.StatusBindFailed
	}
	if status != smpp.StatusOK {
		c.bindFailures.Add(1)
		c.log.Info("smscsim: bind refused", "system_id", req.SystemID, "remote", req.RemoteAddr, "status", smpp.StatusName(status))
		return status
	}
	c.binds.Add(1)
	c.log.Info("smscsim: bound", "system_id", req.SystemID, "mode", req.Mode.String(), "remote", req.RemoteAddr)
	return smpp.StatusOK
}

// reserveBind counts a bind in, unless MaxBinds are already open.
func (c *carrier) reserveBind() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.MaxBinds > 0 && c.open >= int64(c.cfg.MaxBinds) {
		return false
	}
	c.open++
	c.peak = max(c.peak, c.open)
	return true
}

func (c *carrier) unbound(*smpp.ServerSession) {
	c.mu.Lock()
	c.open--
	c.mu.Unlock()
}

// admit applies the TPS limit over a sliding one-second window.
func (c *carrier) admit(now time.Time) bool {
	if c.cfg.TPS <= 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.accepted.count(now) >= c.cfg.TPS {
		return false
	}
	c.accepted.add(now)
	return true
}

func (c *carrier) currentFaults() Faults {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.faults
}

// setFaults changes the carrier's faults; going down drops every bound session.
func (c *carrier) setFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	c.mu.Lock()
	c.faults = f
	c.mu.Unlock()
	if f.Down {
		for _, ss := range c.srv.Sessions(c.cfg.SystemID) {
			c.disconnects.Add(1)
			ss.Abort()
		}
	}
	return nil
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (c *carrier) submit(ctx context.Context, ss *smpp.ServerSession, sm *smpp.SubmitSM) smpp.SubmitResp {
	now := time.Now()
	c.received.Add(1)
	c.mu.Lock()
	c.arrivals.add(now)
	f := c.faults
	c.mu.Unlock()
	defer sleep(ctx, f.Latency+randDuration(f.LatencyJitter))
	if sm.DestAddr == "" {
		return smpp.SubmitResp{Status: smpp.StatusInvDstAddr}
	}
	if !c.admit(now) {
		c.throttled.Add(1)
		return smpp.SubmitResp{Status: smpp.StatusThrottled}
	}
	status, stall, disconnect := f.draw()
	if status != smpp.StatusOK {
		c.injected.Add(1)
		return smpp.SubmitResp{Status: status}
	}
	resp := c.accept(sm)
	switch {
	case stall:
		c.stalled.Add(1)
		sleep(ctx, f.Stall)
	case disconnect:
		c.disconnects.Add(1)
		ss.Abort()
	}
	return resp
}

func randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// accept takes a message: counts it, schedules its receipt and returns its id.
func (c *carrier) accept(sm *smpp.SubmitSM) smpp.SubmitResp {
	c.submits.Add(1)
	body, concatenated := userText(sm)
	if concatenated {
		c.parts.Add(1)
	}
	key := dedupKey(sm.DestAddr, sm.DataCoding, body)
	c.mu.Lock()
	_, dup := c.seen[key]
	c.seen[key] = struct{}{}
	c.mu.Unlock()
	if dup {
		c.duplicates.Add(1)
	} else {
		c.unique.Add(1)
	}
	n := uint64(c.idPfx)<<32 | uint64(uint32(c.nextID.Add(1)))
	id := c.forms.format(n, c.forms.resp)

	if wanted := sm.RegisteredDelivery & 0x03; wanted != 0 {
		stat := c.draw()
		// registered_delivery 2 asks for failure receipts only.
		if wanted == 1 || stat != smpp.StatDelivered {
			c.dlrsRequested.Add(1)
			c.dlrsPending.Add(1)
			c.mu.Lock()
			c.outcomes[stat]++
			c.mu.Unlock()
			d := c.receipt(c.forms.format(n, c.forms.text), c.forms.format(n, c.forms.tlv), stat, sm, body)
			c.queue.push(time.Now().Add(c.receiptDelay()), d)
			if c.cfg.DuplicateDLRs > 0 && rand.Float64() < c.cfg.DuplicateDLRs {
				c.dlrDups.Add(1)
				c.dlrsPending.Add(1)
				c.queue.push(time.Now().Add(c.receiptDelay()), d)
			}
		}
	}
	return smpp.SubmitResp{MessageID: id}
}

// receiptDelay draws the time from a submit to its receipt.
func (c *carrier) receiptDelay() time.Duration {
	d := c.cfg.DLRDelay
	if c.cfg.DLRDistribution == "exponential" {
		d = time.Duration(rand.ExpFloat64() * float64(c.cfg.DLRDelay))
	}
	return d + randDuration(c.cfg.DLRJitter)
}

// userText splits off a user data header, and reports whether the submit is one part
// of a concatenated message (UDH or SAR TLVs).
func userText(sm *smpp.SubmitSM) ([]byte, bool) {
	text := sm.ShortMessage
	if p, ok := sm.TLVs[smpp.TagMessagePayload]; ok && len(text) == 0 {
		text = p
	}
	_, sar := sm.TLVs[0x020C] // sar_msg_ref_num
	if sm.ESMClass&smpp.ESMClassUDHI != 0 && len(text) > 0 && int(text[0])+1 <= len(text) {
		return text[int(text[0])+1:], true
	}
	return text, sar
}

func dedupKey(dest string, coding uint8, text []byte) [16]byte {
	h := sha256.New()
	h.Write([]byte(dest))
	h.Write([]byte{0, coding})
	h.Write(text)
	var k [16]byte
	copy(k[:], h.Sum(nil))
	return k
}

// receipt builds the deliver_sm for a submit's outcome, quoting the message id
// as textID in the text and as tlvID in receipted_message_id.
func (c *carrier) receipt(textID, tlvID, stat string, sm *smpp.SubmitSM, text []byte) *smpp.Deliver {
	now := time.Now().UTC()
	r := smpp.Receipt{ID: textID, Sub: 1, SubmitDate: now, DoneDate: now.Add(c.cfg.DLRDelay), Stat: stat, Err: receiptErr[stat]}
	if stat == smpp.StatDelivered {
		r.Dlvrd = 1
	}
	if sm.DataCoding == 0 || sm.DataCoding == 1 { // text the receipt can quote
		r.Text = string(text[:min(len(text), 20)])
	}
	state, _ := smpp.MessageStateOf(stat)
	return &smpp.Deliver{
		SourceAddr: sm.DestAddr, SourceTON: sm.DestTON, SourceNPI: sm.DestNPI,
		DestAddr: sm.SourceAddr, DestTON: sm.SourceTON, DestNPI: sm.SourceNPI,
		ESMClass:     smpp.ESMClassDeliveryReceipt,
		ShortMessage: r.Format(),
		TLVs: map[uint16][]byte{
			smpp.TagReceiptedMessageID: append([]byte(tlvID), 0),
			smpp.TagMessageState:       {state},
		},
	}
}

// runReceipts sends receipts as they fall due, each in its own goroutine (bounded), and
// puts back the ones no ESME acknowledged.
func (c *carrier) runReceipts(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		d, ok := c.queue.pop(ctx)
		if !ok {
			return
		}
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-c.slots }()
			if err := c.deliver(ctx, d); err != nil {
				c.log.Debug("smscsim: receipt not acknowledged, will retry", "err", err)
				c.queue.push(time.Now().Add(c.cfg.RetryDelay), d)
				return
			}
			c.dlrsAcked.Add(1)
			c.dlrsPending.Add(-1)
		})
	}
}

// deliver sends a receipt on one of the system's receiver sessions, chosen at random.
func (c *carrier) deliver(ctx context.Context, d *smpp.Deliver) error {
	sessions := c.srv.Receivers(c.cfg.SystemID)
	if len(sessions) == 0 {
		return errors.New("no receiver bound")
	}
	ss := sessions[rand.IntN(len(sessions))]
	err := ss.Deliver(ctx, d)
	refused := errors.As(err, new(*smpp.StatusError))
	if refused {
		c.dlrsRefused.Add(1)
	}
	if err == nil || refused || errors.Is(err, smpp.ErrOutcomeUnknown) {
		c.dlrsSent.Add(1)
	}
	return err
}

func (c *carrier) stats() CarrierStats {
	st := CarrierStats{
		Binds:            c.binds.Load(),
		BindFailures:     c.bindFailures.Load(),
		Throttled:        c.throttled.Load(),
		Submits:          c.submits.Load(),
		SubmitParts:      c.parts.Load(),
		UniqueSubmits:    c.unique.Load(),
		DuplicateSubmits: c.duplicates.Load(),
		DLRsRequested:    c.dlrsRequested.Load(),
		DLRsSent:         c.dlrsSent.Load(),
		DLRsAcked:        c.dlrsAcked.Load(),
		DLRsRefused:      c.dlrsRefused.Load(),
		DLRsPending:      c.dlrsPending.Load(),
		Received:         c.received.Load(),
		Injected:         c.injected.Load(),
		Stalled:          c.stalled.Load(),
		Disconnects:      c.disconnects.Load(),
		DLRDups:          c.dlrDups.Load(),
		MOsSent:          c.mosSent.Load(),
	}
	c.mu.Lock()
	st.Outcomes = maps.Clone(c.outcomes)
	st.BindsOpen, st.PeakBinds = c.open, c.peak
	st.PeakTPS = c.arrivals.peak
	c.mu.Unlock()
	return st
}
