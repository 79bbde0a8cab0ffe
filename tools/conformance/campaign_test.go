package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// A campaign of 2,000 messages, a fifth of them two parts long, to an SMSC
// whose submit_sm_resp ids are hex, whose receipt texts quote them in
// decimal and whose receipted_message_id TLVs are as the resp (SMPP 3.4),
// with the carrier set to receipt_ids: decimal: every message ends as the
// SMSC's receipts say, none is left submitted, none has two finals.
func TestCampaignHexRespDecimalText(t *testing.T) {
	const n = 2000
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	s := startStack(t, ctx, []smsc{{name: "campaign", receiptIDs: "decimal", carrier: func(c *config.Carrier) {
		c.Binds, c.Window, c.TPS = 2, 50, 5000
	}}})
	msgs := make([]*sluicepb.Message, n)
	parts := 0
	for i := range msgs {
		p := 1
		if i%5 == 0 {
			p = 2
		}
		parts += p
		m := newMessage("campaign", i%100, p)
		m.Id = fmt.Sprintf("campaign-%d", i)
		if p > 1 {
			m.Text = long(m.Id, p)
		} else {
			m.Text = "conformance " + m.Id
		}
		msgs[i] = m
	}
	s.send(msgs)
	s.waitFinals(msgs)
	s.settle(map[string]int{"campaign": parts})
	checkFinals(t, s, msgs, false)
	s.ev.mu.Lock()
	defer s.ev.mu.Unlock()
	if got := s.ev.submits["campaign"]; got != parts {
		t.Errorf("the SMSC answered %d submit_sm, want one per part: %d", got, parts)
	}
	t.Logf("%d messages, %d parts, %d receipts answered", n, parts, s.ev.receipts["campaign"])
}
