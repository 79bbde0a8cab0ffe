package smppd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/text"
)

// SMPP statuses pkg/smpp does not name.
const (
	StatusInvESMClass uint32 = 0x43  // ESME_RINVESMCLASS
	StatusSubmitFail  uint32 = 0x45  // ESME_RSUBMITFAIL
	StatusInvDCS      uint32 = 0x104 // ESME_RINVDCS (SMPP 5.0; 3.4 has no better one)
	StatusInvExpiry   uint32 = 0x62  // ESME_RINVEXPIRY
)

// TLV tags of segmentation (SMPP 3.4 section 5.3.2).
const (
	tagSARMsgRefNum     uint16 = 0x020C
	tagSARTotalSegments uint16 = 0x020E
	tagSARSegmentSeqnum uint16 = 0x020F
)

// submit answers one submit_sm: a whole message is validated and published
// before its submit_sm_resp; a part of a long one waits for the others, and all
// parts are answered with the id of the whole message once it is published.
func (s *Server) submit(ctx context.Context, ss *smpp.ServerSession, sm *smpp.SubmitSM) smpp.SubmitResp {
	t := s.tenants[ss.SystemID()]
	if t == nil { // cannot happen: the session bound with a known system_id
		return smpp.SubmitResp{Status: smpp.StatusInvBindStatus}
	}
	if t.limit != nil && !t.limit.Allow() {
		return smpp.SubmitResp{Status: smpp.StatusThrottled}
	}
	p, err := parseSubmit(sm)
	if err != nil {
		return s.refused(t, err)
	}
	if p.total > 1 {
		return s.asm.add(ctx, t.id, p, func(whole *part) smpp.SubmitResp { return s.publish(ctx, t, whole) })
	}
	return s.publish(ctx, t, p)
}

func (s *Server) publish(ctx context.Context, t *tenant, p *part) smpp.SubmitResp {
	body, err := text.DecodeExact(p.dataCoding, p.payload)
	if err != nil {
		return s.refused(t, &Rejection{Status: StatusInvDCS, Reason: err.Error()})
	}
	req := message.Request{From: p.src, To: p.dst, Text: body, Validity: p.validity}
	if rd := p.registeredDelivery & 0x03; rd != 0 {
		req.Metadata = map[string]string{
			MetaRegisteredDelivery: strconv.Itoa(int(rd)),
			MetaSourceAddr:         p.rawSrc,
			MetaDestAddr:           p.rawDst,
		}
	}
	id, err := s.cfg.Intake.Submit(ctx, t.id, req)
	if err != nil {
		return s.refused(t, err)
	}
	return smpp.SubmitResp{MessageID: id}
}

func (s *Server) refused(t *tenant, err error) smpp.SubmitResp {
	var rej *Rejection
	if errors.As(err, &rej) {
		s.log.Info("smpp submit refused", "tenant", t.id, "status", smpp.StatusName(rej.Status), "reason", rej.Reason)
		return smpp.SubmitResp{Status: rej.Status}
	}
	s.log.Error("smpp submit failed", "tenant", t.id, "err", err)
	return smpp.SubmitResp{Status: smpp.StatusSysErr} // temporary: the ESME resends
}

// part is a submit_sm as the front door reads it: a whole message (total 1)
// or one part of a long one, its payload without user data header.
type part struct {
	src, dst           string // as sluice writes numbers: '+' added to international ones
	rawSrc, rawDst     string // as the ESME sent them, for the receipt
	dataCoding         uint8
	registeredDelivery uint8
	validity           string // as a Go duration; "" for sluice's default
	ref                int    // concatenation reference
	total, seq         int    // 1, 1 for a whole message
	payload            []byte
}

// parseSubmit reads a submit_sm: the text from short_message or
// message_payload, a long message's part from its UDH or SAR TLVs.
func parseSubmit(sm *smpp.SubmitSM) (*part, error) {
	p := &part{
		src: address(sm.SourceAddr, sm.SourceTON), dst: address(sm.DestAddr, sm.DestTON),
		rawSrc: sm.SourceAddr, rawDst: sm.DestAddr,
		dataCoding: sm.DataCoding, registeredDelivery: sm.RegisteredDelivery,
		total: 1, seq: 1,
		payload: sm.ShortMessage,
	}
	if sm.ValidityPeriod != "" {
		d, err := parseSMPPTime(sm.ValidityPeriod, time.Now())
		if err != nil {
			return nil, &Rejection{Status: StatusInvExpiry, Reason: "validity_period: " + err.Error()}
		}
		p.validity = d.String()
	}
	if mp, ok := sm.TLVs[smpp.TagMessagePayload]; ok {
		if len(sm.ShortMessage) > 0 {
			return nil, &Rejection{Status: smpp.StatusInvMsgLen, Reason: "both short_message and message_payload are set"}
		}
		p.payload = mp
	}
	if sm.ESMClass&smpp.ESMClassUDHI != 0 {
		if err := p.readUDH(); err != nil {
			return nil, err
		}
	} else if ref, ok := sm.TLVs[tagSARMsgRefNum]; ok {
		total, seq := sm.TLVs[tagSARTotalSegments], sm.TLVs[tagSARSegmentSeqnum]
		if len(ref) != 2 || len(total) != 1 || len(seq) != 1 {
			return nil, &Rejection{Status: StatusInvESMClass, Reason: "incomplete or malformed sar_* TLVs"}
		}
		p.ref, p.total, p.seq = int(binary.BigEndian.Uint16(ref)), int(total[0]), int(seq[0])
	}
	if p.total < 1 || p.seq < 1 || p.seq > p.total {
		return nil, &Rejection{Status: StatusInvESMClass, Reason: fmt.Sprintf("part %d of %d", p.seq, p.total)}
	}
	return p, nil
}

// readUDH strips the user data header off the payload, keeping its
// concatenation element (8- or 16-bit reference) if there is one.
func (p *part) readUDH() error {
	b := p.payload
	if len(b) == 0 || int(b[0])+1 > len(b) {
		return &Rejection{Status: StatusInvESMClass, Reason: "UDHI set but no valid user data header"}
	}
	udh := b[1 : 1+int(b[0])]
	p.payload = b[1+int(b[0]):]
	for len(udh) >= 2 {
		iei, n := udh[0], int(udh[1])
		if 2+n > len(udh) {
			return &Rejection{Status: StatusInvESMClass, Reason: "truncated user data header element"}
		}
		ie := udh[2 : 2+n]
		switch {
		case iei == 0x00 && n == 3:
			p.ref, p.total, p.seq = int(ie[0]), int(ie[1]), int(ie[2])
		case iei == 0x08 && n == 4:
			p.ref, p.total, p.seq = int(binary.BigEndian.Uint16(ie)), int(ie[2]), int(ie[3])
		}
		udh = udh[2+n:]
	}
	return nil
}

// parseSMPPTime reads an SMPP time (section 7.1.1, "YYMMDDhhmmsstnnp") as the
// time from now it names: relative ('R') or absolute, nn quarter hours ahead of
// ('+') or behind ('-') UTC. Months and years of a relative time count 30 and
// 365 days.
func parseSMPPTime(v string, now time.Time) (time.Duration, error) {
	if len(v) != 16 || strings.Trim(v[:15], "0123456789") != "" {
		return 0, fmt.Errorf("%q is not an SMPP time", v)
	}
	n := func(i int) int { return int(v[i]-'0')*10 + int(v[i+1]-'0') }
	switch v[15] {
	case 'R':
		d := time.Duration(n(0))*365*24*time.Hour + time.Duration(n(2))*30*24*time.Hour + time.Duration(n(4))*24*time.Hour +
			time.Duration(n(6))*time.Hour + time.Duration(n(8))*time.Minute + time.Duration(n(10))*time.Second
		if d <= 0 {
			return 0, fmt.Errorf("relative time %q is zero", v)
		}
		return d, nil
	case '+', '-':
		offset := time.Duration(n(13)) * 15 * time.Minute
		if v[15] == '-' {
			offset = -offset
		}
		at := time.Date(2000+n(0), time.Month(n(2)), n(4), n(6), n(8), n(10), int(v[12]-'0')*1e8, time.UTC).Add(-offset)
		if n(2) < 1 || n(2) > 12 || n(4) < 1 || n(4) > 31 || n(6) > 23 || n(8) > 59 || n(10) > 59 || n(13) > 48 {
			return 0, fmt.Errorf("%q is not a valid date", v)
		}
		if !at.After(now) {
			return 0, fmt.Errorf("%q is in the past", v)
		}
		return at.Sub(now).Round(time.Second), nil
	}
	return 0, fmt.Errorf("%q ends neither in R, + nor -", v)
}

// address writes an international number (TON 1, or unknown TON and digits
// only) with sluice's leading '+'; anything else (alphanumeric senders,
// short codes) stays as sent.
func address(a string, ton uint8) string {
	if a == "" || strings.HasPrefix(a, "+") || strings.Trim(a, "0123456789") != "" {
		return a
	}
	if ton == 1 || (ton == 0 && len(a) > 8) {
		return "+" + a
	}
	return a
}

// assembler joins the parts of long messages. The submit_sm_resp of every part
// waits until the whole message is published (or refused), so an ESME never
// holds an OK for a part sluice could still lose; an ESME must therefore keep
// all parts of a message in its window at once. Parts that do not complete
// within the timeout are answered ESME_RSUBMITFAIL and forgotten.
type assembler struct {
	timeout time.Duration
	mu      sync.Mutex
	groups  map[groupKey]*group
	closed  bool
}

type groupKey struct {
	tenant, src, dst string
	ref, total       int
}

type group struct {
	parts   map[int]*part
	waiters []chan smpp.SubmitResp
	timer   *time.Timer
}

func newAssembler(timeout time.Duration) *assembler {
	return &assembler{timeout: timeout, groups: map[groupKey]*group{}}
}

// add files p and waits for the answer of its message; the part that
// completes the message publishes it with publish.
func (a *assembler) add(ctx context.Context, tenant string, p *part, publish func(*part) smpp.SubmitResp) smpp.SubmitResp {
	key := groupKey{tenant: tenant, src: p.rawSrc, dst: p.rawDst, ref: p.ref, total: p.total}
	ch := make(chan smpp.SubmitResp, 1)
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return smpp.SubmitResp{Status: smpp.StatusSysErr}
	}
	g := a.groups[key]
	if g == nil {
		g = &group{parts: map[int]*part{}}
		g.timer = time.AfterFunc(a.timeout, func() { a.expire(key, g) })
		a.groups[key] = g
	}
	g.parts[p.seq] = p // a resent part replaces the first copy
	g.waiters = append(g.waiters, ch)
	complete := len(g.parts) == p.total
	if complete {
		delete(a.groups, key)
		g.timer.Stop()
	}
	a.mu.Unlock()

	if complete {
		resp := publish(g.join())
		for _, w := range g.waiters {
			w <- resp
		}
	}
	select {
	case r := <-ch:
		return r
	case <-ctx.Done(): // the session ended; nobody reads the answer
		return smpp.SubmitResp{Status: smpp.StatusSysErr}
	}
}

// join concatenates the parts' octets in order: a GSM-7 escape or a UTF-16
// surrogate pair split across parts is whole again before decoding.
func (g *group) join() *part {
	whole := *g.parts[1]
	whole.payload = nil
	for i := 1; i <= len(g.parts); i++ {
		whole.payload = append(whole.payload, g.parts[i].payload...)
	}
	whole.total, whole.seq = 1, 1
	return &whole
}

func (a *assembler) expire(key groupKey, g *group) {
	a.mu.Lock()
	if a.groups[key] != g {
		a.mu.Unlock()
		return
	}
	delete(a.groups, key)
	a.mu.Unlock()
	for _, w := range g.waiters {
		w <- smpp.SubmitResp{Status: StatusSubmitFail}
	}
}

func (a *assembler) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for key, g := range a.groups {
		g.timer.Stop()
		delete(a.groups, key)
	}
}
