package ingest

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/smpp/nodesmpp"
	"github.com/sluice-sms/sluice/pkg/text"
)

// TestSMPPNodeESME: node-smpp, an independent ESME, binds to the front door,
// submits a long UCS-2 message (as UDH parts) and a short GSM-7 one, gets
// sluice's ids back, and receives both receipts.
func TestSMPPNodeESME(t *testing.T) {
	cfg := smppConfig(t)
	addr := startSMPP(t, cfg)

	long := strings.Repeat("Доставка заказа 🚚 ", 10)
	enc, parts, err := text.Split(long, 0x21, 10)
	if err != nil || enc != text.UCS2 || len(parts) < 3 {
		t.Fatalf("split: %v, %d parts, %v", enc, len(parts), err)
	}
	var submits []nodesmpp.Submit
	for _, p := range parts {
		s, err := text.Decode(text.DataCoding(enc), p.Payload)
		if err != nil {
			t.Fatal(err)
		}
		submits = append(submits, nodesmpp.Submit{SourceAddr: "ACME", DestAddr: "447700900125", DestAddrTON: 1, UDH: hex.EncodeToString(p.UDH), Message: s, DataCoding: 8, RegisteredDelivery: 1})
	}
	submits = append(submits, nodesmpp.Submit{SourceAddr: "ACME", DestAddr: "447700900126", DestAddrTON: 1, Message: "Hello from node {ok}", RegisteredDelivery: 1})
	lines := nodesmpp.ESME(smppCtx(t), t, nodesmpp.ESMEConfig{Addr: addr, SystemID: "acme", Password: "secret1", Submits: submits, Delivers: 2})
	if m := lines.Next(t, "bind"); m["bind"] != 0.0 {
		t.Fatalf("bind: %v", m)
	}
	ids := make([]string, len(submits))
	for range submits {
		m := lines.Next(t, "submit_resp")
		i, ok := m["submit_resp"].(float64)
		if !ok || m["status"] != 0.0 {
			t.Fatalf("submit_sm_resp: %v", m)
		}
		ids[int(i)], _ = m["id"].(string)
	}
	longID, shortID := ids[0], ids[len(ids)-1]
	for _, id := range ids[:len(parts)] {
		if id != longID {
			t.Fatalf("parts answered with ids %q, want one", ids)
		}
	}
	texts := map[string]string{}
	for _, m := range acceptedMessages(t, cfg) {
		texts[m.Id] = m.Text
	}
	if len(texts) != 2 || texts[longID] != long || texts[shortID] != "Hello from node {ok}" {
		t.Fatalf("accepted %q", texts)
	}

	produceWhenReady(t, cfg.Kafka.Brokers, finalStatus(t, cfg, longID, message.StatusDelivered), finalStatus(t, cfg, shortID, message.StatusExpired))
	want := map[string]float64{longID: float64(smpp.MessageStateDelivered), shortID: float64(smpp.MessageStateExpired)}
	for len(want) > 0 {
		m := lines.Next(t, "deliver")
		id, _ := m["deliver"].(string)
		state, ok := want[id]
		if !ok {
			t.Fatalf("unexpected deliver_sm %v", m)
		}
		if m["message_state"] != state || m["esm_class"] != 4.0 || !strings.HasPrefix(m["message"].(string), "id:"+id+" ") {
			t.Fatalf("receipt %v, want message_state %v", m, state)
		}
		delete(want, id)
	}
}
