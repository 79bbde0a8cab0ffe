package conformance

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/schemas"

	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// A case of the matrix: an SMSC of matrix.js with one habit, the carrier's
// receipt_ids for it, and what sluice must make of it.
type matrixCase struct {
	smsc
	parts int // parts per message
	// extraSubmits is how many submits beyond one per part the case allows:
	// the documented copies of an unknown outcome, or the case's own retries.
	extraSubmits func(msgs int) int
	refuse5      bool // destinations ending in 5 end failed
	minBinds     int  // the case's SMSC ends binds: sluice binds again
	mo           int  // mobile-originated messages the SMSC sends
}

const perCase = 10

var matrix = []matrixCase{
	// Receipt ids.
	{smsc: smsc{name: "hex_resp_decimal_text", receiptIDs: "decimal"}},
	{smsc: smsc{name: "hex_case", receiptIDs: "{resp: hex}"}},
	{smsc: smsc{name: "leading_zeros", receiptIDs: "{resp: decimal}"}},
	{smsc: smsc{name: "long_ids", receiptIDs: "{resp: decimal}"}},
	{smsc: smsc{name: "non_numeric", receiptIDs: "same"}},
	{smsc: smsc{name: "tlv_text_bases", receiptIDs: "{resp: hex, tlv: decimal}"}},
	{smsc: smsc{name: "tlv_only", receiptIDs: "decimal"}},
	{smsc: smsc{name: "text_only", receiptIDs: "decimal"}},
	// Receipt timing and form.
	{smsc: smsc{name: "receipt_before_resp", receiptIDs: "decimal"}},
	{smsc: smsc{name: "duplicate_receipt", receiptIDs: "decimal"}},
	{smsc: smsc{name: "intermediate", receiptIDs: "decimal"}},
	{smsc: smsc{name: "long_parts", receiptIDs: "decimal"}, parts: 3},
	{smsc: smsc{name: "data_sm", receiptIDs: "decimal"}},
	// Protocol behaviour.
	{smsc: smsc{name: "seq_collide", receiptIDs: "decimal"}},
	{smsc: smsc{name: "smsc_unbind", receiptIDs: "decimal"}, extraSubmits: window, minBinds: 2},
	{smsc: smsc{name: "generic_nack", receiptIDs: "decimal"}, extraSubmits: func(msgs int) int { return msgs }},
	{smsc: smsc{name: "nonzero_resp", receiptIDs: "decimal"}, refuse5: true},
	// Redelivery and flow control.
	{smsc: smsc{name: "resend_next_bind", receiptIDs: "decimal"}, extraSubmits: window, minBinds: 2},
	{smsc: smsc{name: "stops_reading", receiptIDs: "decimal"}, mo: 20000},
}

// window is the bound of copies when a bind drops with submits in flight: the
// carrier's window (10 here), resent because their outcome is unknown.
func window(int) int { return 10 }

// TestMatrix runs every case against its own node-smpp SMSC at once, through
// one sender and one dlr: every message ends with exactly one final status,
// the one the SMSC's receipt says, and the carrier got no more copies than
// the case allows.
func TestMatrix(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	smscs := make([]smsc, len(matrix))
	for i, c := range matrix {
		smscs[i] = c.smsc
	}
	s := startStack(t, ctx, smscs)
	var all []*sluicepb.Message
	byCase := map[string][]*sluicepb.Message{}
	for _, c := range matrix {
		for i := range perCase {
			m := newMessage(c.name, i, max(c.parts, 1))
			byCase[c.name] = append(byCase[c.name], m)
			all = append(all, m)
		}
	}
	mos := followMO(t, ctx, s)
	s.send(all)
	s.waitFinals(all)
	wantReceipts := map[string]int{}
	for _, c := range matrix {
		wantReceipts[c.name] = perCase * max(c.parts, 1)
	}
	s.settle(wantReceipts)
	s.ev.mu.Lock()
	t.Logf("submits %v\nreceipts answered %v\nreceipts refused %v", s.ev.submits, s.ev.receipts, s.ev.refusals)
	s.ev.mu.Unlock()

	for _, c := range matrix {
		t.Run(c.name, func(t *testing.T) {
			checkFinals(t, s, byCase[c.name], c.refuse5)
			parts := perCase * max(c.parts, 1)
			extra := 0
			if c.extraSubmits != nil {
				extra = c.extraSubmits(perCase)
			}
			s.ev.mu.Lock()
			got, binds := s.ev.submits[c.name], s.ev.binds[c.name]
			s.ev.mu.Unlock()
			if got < parts || got > parts+extra {
				t.Errorf("the SMSC answered %d submit_sm, want %d to %d", got, parts, parts+extra)
			}
			if binds < max(c.minBinds, 1) {
				t.Errorf("%d binds, want at least %d", binds, max(c.minBinds, 1))
			}
			if c.mo > 0 {
				mos.wait(t, ctx, carrierID(c.name), c.mo)
			}
		})
	}
}

// newMessage is the i-th message of a case, its destination's last digit i
// (which decides its receipt).
func newMessage(name string, i, parts int) *sluicepb.Message {
	id := fmt.Sprintf("%s-%d", name, i)
	text := "conformance " + id
	if parts > 1 {
		text = long(id, parts)
	}
	return &sluicepb.Message{Id: id, Tenant: "acme", From: "ACME", To: fmt.Sprintf("+4477009001%02d", i),
		Text: text, Priority: sluicepb.Priority_PRIORITY_TRANSACTIONAL, Carrier: carrierID(name),
		AcceptedAtMs: time.Now().UnixMilli(), Segments: uint32(parts)}
}

// checkFinals: each message has exactly one final status, and it is the
// one its receipt says (or failed, with the SMSC's status, for a refusal).
func checkFinals(t *testing.T, s *stack, msgs []*sluicepb.Message, refuse5 bool) {
	t.Helper()
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	for _, m := range msgs {
		finals := s.st.finals[m.Id]
		want := expect(m.To, refuse5)
		if len(finals) != 1 {
			t.Errorf("%s: %d final statuses %+v, want one %s", m.Id, len(finals), finals, want)
			continue
		}
		f := finals[0]
		if f.Status != want || f.Carrier != m.Carrier {
			t.Errorf("%s to %s: final %s on %s (%s), want %s on %s", m.Id, m.To, f.Status, f.Carrier, f.ErrorCode, want, m.Carrier)
		}
		if want == message.StatusFailed && f.ErrorCode != "smpp_0x0000000b" {
			t.Errorf("%s: failed with %q, want the SMSC's smpp_0x0000000b", m.Id, f.ErrorCode)
		}
	}
}

// mos counts the distinct mobile-originated messages in sluice.mo by carrier.
type mos struct {
	mu      sync.Mutex
	texts   map[string]map[string]bool
	changed chan struct{}
}

func followMO(t *testing.T, ctx context.Context, s *stack) *mos {
	out := &mos{texts: map[string]map[string]bool{}, changed: make(chan struct{}, 1)}
	follow(t, ctx, s.cfg, schemas.TopicMO, func(m kafka.Message) {
		var mo sluicepb.MO
		if err := proto.Unmarshal(m.Value, &mo); err != nil {
			t.Errorf("sluice.mo: %v", err)
			return
		}
		out.mu.Lock()
		if out.texts[mo.Carrier] == nil {
			out.texts[mo.Carrier] = map[string]bool{}
		}
		out.texts[mo.Carrier][mo.Text] = true
		out.mu.Unlock()
		select {
		case out.changed <- struct{}{}:
		default:
		}
	})
	return out
}

// wait waits until carrier's distinct MOs number n, and fails on more.
func (o *mos) wait(t *testing.T, ctx context.Context, carrier string, n int) {
	t.Helper()
	for {
		o.mu.Lock()
		got := len(o.texts[carrier])
		o.mu.Unlock()
		if got > n {
			t.Fatalf("%d distinct MO from %s, want %d", got, carrier, n)
		}
		if got == n {
			return
		}
		select {
		case <-o.changed:
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("%d distinct MO from %s, want %d", got, carrier, n)
		}
	}
}
