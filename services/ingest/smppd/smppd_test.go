package smppd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/text"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

func TestParseSubmit(t *testing.T) {
	tests := []struct {
		name              string
		sm                smpp.SubmitSM
		ref, total, seq   int
		payload, src, dst string
		status            uint32 // of the refusal, 0: accepted
	}{
		{name: "whole", sm: smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "447700900123", DestTON: 1, ShortMessage: []byte("hi")},
			total: 1, seq: 1, payload: "hi", src: "ACME", dst: "+447700900123"},
		{name: "unknown TON, international digits", sm: smpp.SubmitSM{SourceAddr: "12345", DestAddr: "447700900123", ShortMessage: []byte("hi")},
			total: 1, seq: 1, payload: "hi", src: "12345", dst: "+447700900123"},
		{name: "national number kept", sm: smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "07700900123", DestTON: 2, ShortMessage: []byte("hi")},
			total: 1, seq: 1, payload: "hi", src: "ACME", dst: "07700900123"},
		{name: "UDH 8-bit reference", sm: smpp.SubmitSM{ESMClass: 0x40, ShortMessage: []byte{5, 0, 3, 0x42, 3, 2, 'a', 'b'}},
			ref: 0x42, total: 3, seq: 2, payload: "ab"},
		{name: "UDH 16-bit reference and another element", sm: smpp.SubmitSM{ESMClass: 0x40, ShortMessage: []byte{12, 0x05, 4, 0, 0, 0, 0, 0x08, 4, 0x12, 0x34, 2, 1, 'x'}},
			ref: 0x1234, total: 2, seq: 1, payload: "x"},
		{name: "UDH without concatenation", sm: smpp.SubmitSM{ESMClass: 0x40, ShortMessage: []byte{4, 0x05, 2, 0, 0, 'x'}},
			total: 1, seq: 1, payload: "x"},
		{name: "SAR TLVs", sm: smpp.SubmitSM{ShortMessage: []byte("part"), TLVs: map[uint16][]byte{tagSARMsgRefNum: {1, 2}, tagSARTotalSegments: {4}, tagSARSegmentSeqnum: {4}}},
			ref: 0x0102, total: 4, seq: 4, payload: "part"},
		{name: "message_payload", sm: smpp.SubmitSM{TLVs: map[uint16][]byte{smpp.TagMessagePayload: []byte("long text")}},
			total: 1, seq: 1, payload: "long text"},
		{name: "short_message and message_payload", sm: smpp.SubmitSM{ShortMessage: []byte("a"), TLVs: map[uint16][]byte{smpp.TagMessagePayload: []byte("b")}},
			status: smpp.StatusInvMsgLen},
		{name: "UDH longer than the message", sm: smpp.SubmitSM{ESMClass: 0x40, ShortMessage: []byte{9, 0}}, status: StatusInvESMClass},
		{name: "UDH element cut short", sm: smpp.SubmitSM{ESMClass: 0x40, ShortMessage: []byte{3, 0, 3, 1}}, status: StatusInvESMClass},
		{name: "part beyond total", sm: smpp.SubmitSM{ESMClass: 0x40, ShortMessage: []byte{5, 0, 3, 1, 2, 3}}, status: StatusInvESMClass},
		{name: "part zero", sm: smpp.SubmitSM{ESMClass: 0x40, ShortMessage: []byte{5, 0, 3, 1, 2, 0}}, status: StatusInvESMClass},
		{name: "SAR incomplete", sm: smpp.SubmitSM{TLVs: map[uint16][]byte{tagSARMsgRefNum: {1, 2}}}, status: StatusInvESMClass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseSubmit(&tt.sm)
			var rej *Rejection
			if tt.status != 0 {
				if !errors.As(err, &rej) || rej.Status != tt.status {
					t.Fatalf("got %v, want a refusal with %s", err, smpp.StatusName(tt.status))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.ref != tt.ref || p.total != tt.total || p.seq != tt.seq || string(p.payload) != tt.payload || p.src != tt.src || p.dst != tt.dst {
				t.Fatalf("got ref %d part %d/%d payload %q src %q dst %q", p.ref, p.seq, p.total, p.payload, p.src, p.dst)
			}
		})
	}
}

func FuzzParseSubmit(f *testing.F) {
	f.Add(uint8(0x40), []byte{5, 0, 3, 1, 2, 1, 'a'})
	f.Add(uint8(0x40), []byte{6, 8, 4, 1, 2, 3, 1})
	f.Add(uint8(0), []byte("hello"))
	f.Fuzz(func(t *testing.T, esm uint8, sm []byte) {
		p, err := parseSubmit(&smpp.SubmitSM{ESMClass: esm, ShortMessage: sm})
		if err != nil {
			var rej *Rejection
			if !errors.As(err, &rej) || rej.Status == 0 {
				t.Fatalf("error %v is not a refusal with a status", err)
			}
			return
		}
		if p.seq < 1 || p.seq > p.total || len(p.payload) > len(sm) || !bytes.HasSuffix(sm, p.payload) {
			t.Fatalf("part %d/%d, payload %q of %q", p.seq, p.total, p.payload, sm)
		}
	})
}

func TestAssemblerJoinsPartsInOrder(t *testing.T) {
	a := newAssembler(time.Hour)
	defer a.close()
	ctx := t.Context()
	published := make(chan string, 1)
	publish := func(whole *part) smpp.SubmitResp {
		published <- string(whole.payload)
		return smpp.SubmitResp{MessageID: "m1"}
	}
	answers := make(chan smpp.SubmitResp, 3)
	for _, seq := range []int{3, 1, 2} { // out of order, as concurrent submits may come
		go func() {
			answers <- a.add(ctx, "acme", &part{rawSrc: "A", rawDst: "B", ref: 7, total: 3, seq: seq, payload: []byte{byte('a' + seq - 1)}}, publish)
		}()
	}
	for range 3 {
		if r := <-answers; r.MessageID != "m1" || r.Status != 0 {
			t.Fatalf("part answered %+v", r)
		}
	}
	if got := <-published; got != "abc" {
		t.Fatalf("published %q, want abc", got)
	}
}

func TestAssemblerExpiresIncompleteMessages(t *testing.T) {
	a := newAssembler(10 * time.Millisecond)
	defer a.close()
	r := a.add(t.Context(), "acme", &part{ref: 1, total: 2, seq: 1, payload: []byte("a")}, func(*part) smpp.SubmitResp {
		t.Error("an incomplete message was published")
		return smpp.SubmitResp{}
	})
	if r.Status != StatusSubmitFail {
		t.Fatalf("incomplete part answered %+v, want ESME_RSUBMITFAIL", r)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.groups) != 0 {
		t.Fatalf("%d groups kept after expiry", len(a.groups))
	}
}

func TestFailuresGrowPerAddress(t *testing.T) {
	f := newFailures()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // count the penalties without serving them
	for range 3 {
		f.penalise(ctx, "10.0.0.1")
	}
	f.penalise(ctx, "10.0.0.2")
	if got := f.by["10.0.0.1"].count; got != 3 {
		t.Fatalf("10.0.0.1 has %d failures, want 3", got)
	}
	f.forgive("10.0.0.1")
	if _, ok := f.by["10.0.0.1"]; ok || f.by["10.0.0.2"].count != 1 {
		t.Fatalf("after a successful bind: %+v", f.by)
	}
}

func TestReceiptOf(t *testing.T) {
	done := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	meta := func(rd string) map[string]string {
		return map[string]string{MetaRegisteredDelivery: rd, MetaSourceAddr: "ACME", MetaDestAddr: "447700900123"}
	}
	tests := []struct {
		name   string
		st     message.Status
		want   bool
		stat   string
		state  uint8
		errFld string
	}{
		{"delivered", message.Status{Tenant: "acme", MessageID: "m1", Status: "delivered", ErrorCode: "0", Metadata: meta("1"), DoneAt: &done}, true, "DELIVRD", smpp.MessageStateDelivered, "000"},
		{"undelivered", message.Status{Tenant: "acme", MessageID: "m1", Status: "undelivered", ErrorCode: "34", Metadata: meta("1")}, true, "UNDELIV", smpp.MessageStateUndeliverable, "034"},
		{"failures only, failed", message.Status{Tenant: "acme", MessageID: "m1", Status: "expired", Metadata: meta("2")}, true, "EXPIRED", smpp.MessageStateExpired, "000"},
		{"failures only, delivered", message.Status{Tenant: "acme", MessageID: "m1", Status: "delivered", Metadata: meta("2")}, false, "", 0, ""},
		{"not final", message.Status{Tenant: "acme", MessageID: "m1", Status: "submitted", Metadata: meta("1")}, false, "", 0, ""},
		{"no receipt asked", message.Status{Tenant: "acme", MessageID: "m1", Status: "delivered"}, false, "", 0, ""},
		{"another tenant", message.Status{Tenant: "globex", MessageID: "m1", Status: "delivered", Metadata: meta("1")}, false, "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.st.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			d, ok := receiptOf("acme", v)
			if ok != tt.want {
				t.Fatalf("receipt: %v, want %v", ok, tt.want)
			}
			if !ok {
				return
			}
			r, err := smpp.ParseReceipt(d.ShortMessage)
			if err != nil {
				t.Fatal(err)
			}
			if r.ID != "m1" || r.Stat != tt.stat || r.Err != tt.errFld || d.TLVs[smpp.TagMessageState][0] != tt.state ||
				string(d.TLVs[smpp.TagReceiptedMessageID]) != "m1\x00" || d.SourceAddr != "447700900123" || d.DestAddr != "ACME" || !d.IsReceipt() {
				t.Fatalf("receipt %+v (%q)", d, d.ShortMessage)
			}
			if tt.st.DoneAt != nil && !strings.Contains(string(d.ShortMessage), "done date:2611270930") {
				t.Fatalf("done date missing from %q", d.ShortMessage)
			}
		})
	}
}

func TestAllowedAddresses(t *testing.T) {
	var allowed []netip.Prefix
	for _, s := range []string{"10.1.0.0/16", "192.0.2.7", "2001:db8::/32"} {
		p, err := parsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		allowed = append(allowed, p)
	}
	if _, err := parsePrefix("10.1.0.0/33"); err == nil {
		t.Error("a bad range was accepted")
	}
	tn := &tenant{allowed: allowed}
	for host, want := range map[string]bool{
		"10.1.200.3": true, "10.2.0.1": false, "192.0.2.7": true, "192.0.2.8": false,
		"::ffff:192.0.2.7": true, "2001:db8::1": true, "2001:db9::1": false, "not-an-ip": false,
	} {
		if got := tn.allows(host); got != want {
			t.Errorf("allows(%s) = %v, want %v", host, got, want)
		}
	}
	if !(&tenant{}).allows("203.0.113.1") {
		t.Error("a tenant without a list refused an address")
	}
}

func TestParseSMPPTime(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration // 0: refused
	}{
		{"000001000000000R", 24 * time.Hour},
		{"000000013000000R", 90 * time.Minute},
		{"000100000000000R", 30 * 24 * time.Hour},
		{"261127110000004+", time.Hour}, // 11:00 at UTC+1 is 10:00 UTC
		{"261127080000008-", time.Hour}, // 08:00 at UTC-2 is 10:00 UTC
		{"261127083000000+", 0},         // in the past
		{"000000000000000R", 0},         // zero
		{"261327110000000+", 0},         // month 13
		{"26112711000000+", 0},          // 15 characters
		{"2611271100000a0+", 0},         // not digits
		{"261127110000000X", 0},         // neither R nor +/-
	}
	for _, tt := range tests {
		got, err := parseSMPPTime(tt.v, now)
		if tt.want == 0 {
			if err == nil {
				t.Errorf("%s: accepted as %s", tt.v, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %s, %v; want %s", tt.v, got, err, tt.want)
		}
	}
}

// intakeFunc lets a test stand in for ingest's validation and publishing,
// which the ingest package's tests exercise over real Kafka.
type intakeFunc func(ctx context.Context, tenant string, req message.Request) (string, error)

func (f intakeFunc) Submit(ctx context.Context, tenant string, req message.Request) (string, error) {
	return f(ctx, tenant, req)
}

// TestThrottledBeyondTheTenantRate: a tenant over its rate gets
// ESME_RTHROTTLED, not an error that would make its ESME drop the message.
func TestThrottledBeyondTheTenantRate(t *testing.T) {
	s, err := New(Config{
		Tenants: []config.Tenant{{ID: "acme", SMPPSystemID: "acme", SMPPPasswordSHA256: hexSHA256("pw"), RateLimit: 1}},
		Intake:  intakeFunc(func(context.Context, string, message.Request) (string, error) { return "m", nil }),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Two submits' worth of tokens and no refill within the test.
	s.tenants["acme"].limit = rate.NewLimiter(rate.Every(time.Hour), 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	c, err := smpp.Dial(ctx, smpp.ClientConfig{Addr: ln.Addr().String(), SystemID: "acme", Password: "pw", Mode: smpp.BindTransmitter})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var got []uint32
	for range 3 {
		r, err := c.Submit(ctx, &smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "447700900123", ShortMessage: []byte("hi")})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Status)
	}
	if want := []uint32{0, 0, smpp.StatusThrottled}; !slices.Equal(got, want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
}

func hexSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestMOOf(t *testing.T) {
	tn := &tenant{moNumbers: map[string]bool{"447700900500": true, "60123": true}}
	tests := []struct {
		to, text, src string
		want          bool
		dc            uint8
		srcTON        uint8
	}{
		{"+447700900500", "STOP", "+447700900777", true, 0x00, 1},
		{"447700900500", "привет", "+447700900777", true, 0x08, 1},
		{"60123", "hi", "0770090077", true, 0x00, 0},
		{"+447700900501", "STOP", "+447700900777", false, 0, 0},
		{"60123", "", "+447700900777", false, 0, 0},
	}
	for _, tt := range tests {
		v, err := proto.Marshal(&sluicepb.MO{SourceAddr: tt.src, DestAddr: tt.to, Text: tt.text})
		if err != nil {
			t.Fatal(err)
		}
		d, ok := tn.moOf(v)
		if ok != tt.want {
			t.Errorf("MO to %s %q: %v, want %v", tt.to, tt.text, ok, tt.want)
			continue
		}
		if !ok {
			continue
		}
		got, err := text.Decode(d.DataCoding, d.ShortMessage)
		if err != nil || got != tt.text || d.DataCoding != tt.dc || d.SourceTON != tt.srcTON || d.DestAddr != tt.to || d.IsReceipt() {
			t.Errorf("MO to %s: %+v (%q, %v)", tt.to, d, got, err)
		}
	}
	if _, ok := tn.moOf([]byte{0xFF, 0xFF}); ok {
		t.Error("a record that is not an MO was delivered")
	}
}
