package smpp

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-sms/sluice/pkg/smpp/nodesmpp"
	"github.com/sluice-sms/sluice/pkg/text"
)

// node-smpp (package nodesmpp) is an independent SMPP implementation; these
// tests run it as the SMSC against our client and as the ESME against our
// server.

// interopTexts are a GSM-7 text with extension characters and a long UCS-2
// text with emoji (surrogate pairs), as sluice splits them.
var interopTexts = []string{
	"Your code is 123456 {€5} ~ok~",
	strings.Repeat("Привет 👋 мир — ", 12), // 3 UCS-2 parts
}

func TestNodeSMSCDecodesOurSubmitsAndWeReadItsReceipts(t *testing.T) {
	lines := nodesmpp.SMSC(testCtx(t), t)
	port := lines.Next(t, "listening")["listening"].(float64)

	receipts := make(chan *Deliver, 16)
	s := dial(t, ClientConfig{Addr: fmt.Sprintf("127.0.0.1:%d", int(port)), SystemID: "sluice", Password: "pw",
		OnDeliver: func(_ context.Context, d *Deliver) error { receipts <- d; return nil }})

	var ids []string
	for _, msg := range interopTexts {
		enc, parts, err := text.Split(msg, 0x42, 10)
		if err != nil {
			t.Fatal(err)
		}
		var decoded strings.Builder
		for i, p := range parts {
			sm := &SubmitSM{DestAddr: "447700900123", SourceAddr: "ACME", SourceTON: 5, DataCoding: text.DataCoding(enc),
				RegisteredDelivery: RegisteredDeliveryFinal, ShortMessage: append(append([]byte(nil), p.UDH...), p.Payload...)}
			if p.UDH != nil {
				sm.ESMClass = ESMClassUDHI
			}
			resp, err := s.Submit(testCtx(t), sm)
			if err != nil || resp.Status != StatusOK {
				t.Fatalf("submit part %d: %+v %v", i, resp, err)
			}
			got := lines.Next(t, "submit")
			if got["submit"] != resp.MessageID {
				t.Errorf("node gave id %v, our client read %q", got["submit"], resp.MessageID)
			}
			ids = append(ids, resp.MessageID)
			if p.UDH != nil {
				udh, _ := got["udh"].([]any)
				if len(udh) != 1 || udh[0] != hex.EncodeToString(p.UDH[1:]) {
					t.Errorf("part %d: node read UDH %v, want %x", i, got["udh"], p.UDH[1:])
				}
			}
			if got["data_coding"].(float64) != float64(sm.DataCoding) || got["registered_delivery"].(float64) != 1 {
				t.Errorf("part %d: node read %v", i, got)
			}
			decoded.WriteString(got["message"].(string))
		}
		if decoded.String() != msg {
			t.Errorf("node decoded %q, want %q", decoded.String(), msg)
		}
	}

	for range ids {
		select {
		case d := <-receipts:
			r, err := ParseReceipt(d.ShortMessage)
			id := strings.TrimRight(string(d.TLVs[TagReceiptedMessageID]), "\x00")
			if err != nil || !d.IsReceipt() || r.Stat != StatDelivered || r.ID != id || !strings.HasPrefix(id, "n") ||
				len(d.TLVs[TagMessageState]) != 1 || d.TLVs[TagMessageState][0] != MessageStateDelivered {
				t.Errorf("receipt %q TLVs %v (%v)", d.ShortMessage, d.TLVs, err)
			}
		case <-testCtx(t).Done():
			t.Fatal("receipts from node never came")
		}
	}
	for range ids {
		if st := lines.Next(t, "deliver_sm_resp"); st["deliver_sm_resp"].(float64) != 0 {
			t.Errorf("node saw deliver_sm_resp status %v", st["deliver_sm_resp"])
		}
	}
}

func TestNodeESMESubmitsToOurServerAndReadsOurReceipts(t *testing.T) {
	type sub struct {
		sm *SubmitSM
		id string
	}
	subs := make(chan sub, 16)
	var mu sync.Mutex
	n := 0
	srv, addr := startServer(t, ServerConfig{
		Submit: func(_ context.Context, _ *ServerSession, sm *SubmitSM) SubmitResp {
			mu.Lock()
			n++
			id := fmt.Sprintf("S%d", n)
			mu.Unlock()
			subs <- sub{sm, id}
			return SubmitResp{MessageID: id}
		},
	})

	// node-smpp does not split messages: hand it sluice's parts.
	var (
		parts  []nodesmpp.Submit
		textOf []int // which of interopTexts each part is part of
	)
	for m, msg := range interopTexts {
		enc, ps, err := text.Split(msg, 0x17, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			s, err := text.Decode(text.DataCoding(enc), p.Payload)
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, nodesmpp.Submit{DestAddr: "447700900123", UDH: hex.EncodeToString(p.UDH), Message: s,
				DataCoding: text.DataCoding(enc), RegisteredDelivery: 1})
			textOf = append(textOf, m)
		}
	}
	lines := nodesmpp.ESME(testCtx(t), t, nodesmpp.ESMEConfig{Addr: addr, SystemID: "node", Password: "pw", Submits: parts, Delivers: len(parts)})
	if b := lines.Next(t, "bind"); b["bind"] != 0.0 {
		t.Fatalf("node's bind: %v", b)
	}

	// node submits all parts at once, and our server answers them as they come:
	// match them to the parts by their headers.
	byUDH := map[string]sub{}
	for i := range parts {
		select {
		case s := <-subs:
			udh := ""
			if s.sm.ESMClass&ESMClassUDHI != 0 && len(s.sm.ShortMessage) > 0 {
				udh = hex.EncodeToString(s.sm.ShortMessage[:s.sm.ShortMessage[0]+1])
			}
			byUDH[udh] = s
		case <-testCtx(t).Done():
			t.Fatalf("%d of %d submits reached our server", i, len(parts))
		}
	}
	got := make([]strings.Builder, len(interopTexts))
	ids := map[string]bool{}
	for i, p := range parts {
		s, ok := byUDH[p.UDH]
		if !ok {
			t.Fatalf("part %d (UDH %q) never reached our server intact; got %v", i, p.UDH, byUDH)
		}
		ids[s.id] = true
		body := s.sm.ShortMessage[len(p.UDH)/2:]
		decoded, err := text.Decode(s.sm.DataCoding, body)
		if err != nil || s.sm.DataCoding != p.DataCoding || s.sm.RegisteredDelivery != 1 {
			t.Fatalf("part %d: data_coding %d, registered_delivery %d, % x: %v", i, s.sm.DataCoding, s.sm.RegisteredDelivery, body, err)
		}
		got[textOf[i]].WriteString(decoded)
	}
	for range parts {
		resp := lines.Next(t, "submit_resp")
		if id, _ := resp["id"].(string); resp["status"].(float64) != 0 || !ids[id] {
			t.Errorf("node read submit_sm_resp %v, want one of %v", resp, ids)
		}
	}

	ss := srv.Sessions("node")
	if len(ss) != 1 {
		t.Fatalf("%d node sessions", len(ss))
	}
	receipts := map[string]string{}
	for id := range ids {
		receipt := Receipt{ID: id, Sub: 1, Dlvrd: 1, Stat: StatDelivered, Err: "000"}.Format()
		receipts[id] = string(receipt)
		if err := ss[0].Deliver(testCtx(t), &Deliver{SourceAddr: "447700900123", ESMClass: ESMClassDeliveryReceipt, ShortMessage: receipt,
			TLVs: map[uint16][]byte{TagReceiptedMessageID: []byte(id + "\x00"), TagMessageState: {MessageStateDelivered}}}); err != nil {
			t.Fatalf("deliver receipt to node: %v", err)
		}
	}
	for range ids {
		d := lines.Next(t, "deliver")
		id, _ := d["deliver"].(string)
		if d["message_state"].(float64) != float64(MessageStateDelivered) || d["esm_class"].(float64) != float64(ESMClassDeliveryReceipt) || d["message"] != receipts[id] {
			t.Errorf("node read receipt %v, want one of %v", d, receipts)
		}
		delete(receipts, id)
	}
	for i, want := range interopTexts {
		if got[i].String() != want {
			t.Errorf("our server decoded %q, want %q", got[i].String(), want)
		}
	}
}
