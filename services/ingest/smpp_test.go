package ingest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/pkg/text"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/services/ingest/smppd"
)

// smppConfig is testConfig with the SMPP front door on and two SMPP tenants:
// acme (system_id "acme", password "secret1", 2 binds) and globex ("globex",
// "secret2", 1 bind).
func smppConfig(t testing.TB) config.Config {
	cfg := testConfig(t)
	cfg.Ingest.SMPPAddr = "127.0.0.1:0"
	for i := range cfg.Tenants {
		switch cfg.Tenants[i].ID {
		case "acme":
			cfg.Tenants[i].SMPPSystemID, cfg.Tenants[i].SMPPPasswordSHA256, cfg.Tenants[i].SMPPMaxBinds = "acme", keyHash("secret1"), 2
		case "globex":
			cfg.Tenants[i].SMPPSystemID, cfg.Tenants[i].SMPPPasswordSHA256, cfg.Tenants[i].SMPPMaxBinds = "globex", keyHash("secret2"), 1
		}
	}
	return cfg
}

// startSMPP runs ingest until the test ends and returns its SMPP address.
func startSMPP(t testing.TB, cfg config.Config) string {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	h := hooks{smppReady: func(a string) { addr <- a }}
	go func() { done <- run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), h) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("ingest stopped with: %v", err)
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-done:
		done <- err
		t.Fatalf("ingest did not start: %v", err)
	case <-time.After(50 * time.Second):
		t.Fatal("SMPP front door not listening after 50 s")
	}
	return ""
}

func smppCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func bindSMPP(t testing.TB, addr, systemID, password string, mode smpp.BindMode, onDeliver func(context.Context, *smpp.Deliver) error) (*smpp.Session, error) {
	t.Helper()
	s, err := smpp.Dial(smppCtx(t), smpp.ClientConfig{
		Addr: addr, SystemID: systemID, Password: password, Mode: mode, Window: 20,
		OnDeliver: onDeliver, BindTimeout: 30 * time.Second, RespTimeout: 30 * time.Second,
	})
	if err == nil {
		t.Cleanup(func() { _ = s.Close(context.Background()) }) // may already be closed
	}
	return s, err
}

func bindStatus(err error) uint32 {
	var se *smpp.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

func TestSMPPSubmitPublishesBeforeResp(t *testing.T) {
	cfg := smppConfig(t)
	addr := startSMPP(t, cfg)
	s, err := bindSMPP(t, addr, "acme", "secret1", smpp.BindTransceiver, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := smppCtx(t)

	short, err := s.Submit(ctx, &smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "447700900123", DestTON: 1, ShortMessage: []byte("Your code is 123456"), RegisteredDelivery: 1})
	if err != nil || short.Status != 0 || short.MessageID == "" {
		t.Fatalf("short submit: %+v, %v", short, err)
	}

	// A long UCS-2 message, sent as concatenated parts (UDH), all in the window at once.
	long := strings.Repeat("Привет, мир! 👋 ", 12)
	_, parts, err := text.Split(long, 0x42, 10)
	if err != nil || len(parts) < 3 {
		t.Fatalf("split: %d parts, %v", len(parts), err)
	}
	ids := make([]string, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Go(func() {
			r, err := s.Submit(ctx, &smpp.SubmitSM{SourceAddr: "+447700900999", DestAddr: "+447700900124", ESMClass: smpp.ESMClassUDHI, DataCoding: 0x08, ShortMessage: append(slices.Clone(p.UDH), p.Payload...)})
			if err != nil || r.Status != 0 {
				t.Errorf("part %d: %+v, %v", i+1, r, err)
			}
			ids[i] = r.MessageID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("parts answered with ids %q, want one id", ids)
		}
	}

	// The records are on the topics as soon as the responses came: no waiting.
	got := map[string]string{}
	for _, m := range acceptedMessages(t, cfg) {
		got[m.Id] = m.Text
		if m.Id == short.MessageID && (m.To != "+447700900123" || m.Tenant != "acme" || m.Metadata[smppd.MetaRegisteredDelivery] != "1") {
			t.Errorf("short message published as %+v", m)
		}
	}
	if len(got) != 2 || got[short.MessageID] != "Your code is 123456" || got[ids[0]] != long {
		t.Fatalf("accepted %d messages %q, want the short one and the long one whole", len(got), got)
	}
	accepted := 0
	for _, rec := range records(t, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+schemas.TopicStatus) {
		var st message.Status
		if err := json.Unmarshal(rec.Value, &st); err != nil {
			t.Fatal(err)
		}
		if st.Status == message.StatusAccepted && (st.MessageID == short.MessageID || st.MessageID == ids[0]) {
			accepted++
		}
	}
	if accepted != 2 {
		t.Fatalf("%d accepted status events, want 2", accepted)
	}
}

func TestSMPPBindRefusals(t *testing.T) {
	cfg := smppConfig(t)
	addr := startSMPP(t, cfg)

	_, err := bindSMPP(t, addr, "acme", "wrong", smpp.BindTransceiver, nil)
	if got := bindStatus(err); got != smpp.StatusInvPassword {
		t.Errorf("wrong password: %v, want ESME_RINVPASWD", err)
	}
	_, err = bindSMPP(t, addr, "nobody", "secret1", smpp.BindTransmitter, nil)
	if got := bindStatus(err); got != smpp.StatusInvPassword {
		t.Errorf("unknown system_id: %v, want ESME_RINVPASWD", err)
	}

	first, err := bindSMPP(t, addr, "globex", "secret2", smpp.BindTransmitter, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bindSMPP(t, addr, "globex", "secret2", smpp.BindReceiver, nil)
	if got := bindStatus(err); got != smpp.StatusBindFailed {
		t.Errorf("bind beyond smpp_max_binds: %v, want ESME_RBINDFAIL", err)
	}
	if err := first.Close(smppCtx(t)); err != nil {
		t.Fatal(err)
	}
	// The slot is free again once the first bind has ended.
	var again *smpp.Session
	waitFor(t, "globex's bind slot to free up", func() bool {
		again, err = bindSMPP(t, addr, "globex", "secret2", smpp.BindTransmitter, nil)
		return err == nil
	})
	_ = again
}

func TestSMPPSubmitRefusals(t *testing.T) {
	cfg := smppConfig(t)
	addr := startSMPP(t, cfg)
	s, err := bindSMPP(t, addr, "acme", "secret1", smpp.BindTransmitter, nil)
	if err != nil {
		t.Fatal(err)
	}
	ucs := []byte{0x04, 0x1F} // "П"
	tests := []struct {
		name string
		sm   smpp.SubmitSM
		want uint32
	}{
		{"invalid destination", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "12", DestTON: 1, ShortMessage: []byte("hi")}, smpp.StatusInvDstAddr},
		{"national destination", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "07700900123", DestTON: 2, ShortMessage: []byte("hi")}, smpp.StatusInvDstAddr},
		{"invalid source", smpp.SubmitSM{SourceAddr: "ACME!SENDER-TOO-LONG", DestAddr: "+447700900123", ShortMessage: []byte("hi")}, smpp.StatusInvSrcAddr},
		{"empty text", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "+447700900123"}, smpp.StatusInvMsgLen},
		{"too long", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "+447700900123", TLVs: map[uint16][]byte{smpp.TagMessagePayload: []byte(strings.Repeat("x", 160*11))}}, smpp.StatusInvMsgLen},
		{"odd UCS-2", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "+447700900123", DataCoding: 0x08, ShortMessage: ucs[:1]}, smppd.StatusInvDCS},
		{"UCS-2 lone high surrogate", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "+447700900123", DataCoding: 0x08, ShortMessage: []byte{0x00, 0x41, 0xD8, 0x3D}}, smppd.StatusInvDCS},
		{"UCS-2 lone low surrogate", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "+447700900123", DataCoding: 0x08, ShortMessage: []byte{0xDE, 0x00, 0x00, 0x41}}, smppd.StatusInvDCS},
		{"UCS-2 NUL", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "+447700900123", DataCoding: 0x08, ShortMessage: []byte{0x00, 0x41, 0x00, 0x00}}, smppd.StatusInvDCS},
		{"Latin-1 NUL", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "+447700900123", DataCoding: 0x03, ShortMessage: []byte("hi\x00")}, smppd.StatusInvDCS},
		{"8-bit octets not UTF-8", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "+447700900123", DataCoding: 0x04, ShortMessage: []byte{0xFF, 0xFE}}, smppd.StatusInvDCS},
		{"unsupported data_coding", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "+447700900123", DataCoding: 0x05, ShortMessage: []byte("hi")}, smppd.StatusInvDCS},
		{"validity beyond a week", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "+447700900123", ShortMessage: []byte("hi"), ValidityPeriod: "000010000000000R"}, smppd.StatusInvExpiry},
		{"malformed validity", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "+447700900123", ShortMessage: []byte("hi"), ValidityPeriod: "tomorrow"}, smppd.StatusInvExpiry},
		{"bad UDH", smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "+447700900123", ESMClass: smpp.ESMClassUDHI, ShortMessage: []byte{0x09, 0x00}}, smppd.StatusInvESMClass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Submit(smppCtx(t), &tt.sm)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tt.want {
				t.Errorf("status %s, want %s", smpp.StatusName(r.Status), smpp.StatusName(tt.want))
			}
		})
	}
	if n := len(acceptedMessages(t, cfg)); n != 0 {
		t.Errorf("%d messages accepted, want none", n)
	}
}

// TestSMPPMalformedPDU writes a submit_sm whose body does not decode on a bound
// session: the server answers generic_nack, keeps the bind and keeps serving.
func TestSMPPMalformedPDU(t *testing.T) {
	cfg := smppConfig(t)
	addr := startSMPP(t, cfg)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(nc)
	writePDU := func(id, seq uint32, body []byte) {
		b := make([]byte, 16, 16+len(body))
		binary.BigEndian.PutUint32(b[0:], uint32(16+len(body)))
		binary.BigEndian.PutUint32(b[4:], id)
		binary.BigEndian.PutUint32(b[12:], seq)
		if _, err := nc.Write(append(b, body...)); err != nil {
			t.Fatal(err)
		}
	}
	readPDU := func() (id, status, seq uint32) {
		var h [16]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			t.Fatal(err)
		}
		n := binary.BigEndian.Uint32(h[0:])
		if _, err := io.CopyN(io.Discard, r, int64(n-16)); err != nil {
			t.Fatal(err)
		}
		return binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint32(h[12:])
	}
	// bind_transmitter: system_id, password, system_type, version, ton, npi, range.
	writePDU(0x00000002, 1, []byte("acme\x00secret1\x00\x00\x34\x00\x00\x00"))
	if id, status, _ := readPDU(); id != 0x80000002 || status != 0 {
		t.Fatalf("bind answered 0x%08X status %s", id, smpp.StatusName(status))
	}
	malformed := []struct {
		name   string
		id     uint32
		body   []byte
		answer uint32 // command id of the answer
	}{
		{"submit_sm cut short", 0x00000004, []byte{0xFF, 0xFF, 0xFF}, 0x80000004},
		{"submit_sm with a truncated TLV", 0x00000004, []byte("\x00\x00\x00ACME\x00\x01\x01447700900123\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x02hi\x04\x24\x00\x10ab"), 0x80000000},
		{"unknown command", 0x0000FFFF, []byte("junk"), 0x80000000},
	}
	for i, m := range malformed {
		seq := uint32(10 + i)
		writePDU(m.id, seq, m.body)
		if id, status, got := readPDU(); id != m.answer || got != seq || status == 0 {
			t.Fatalf("%s answered 0x%08X seq %d status %s, want 0x%08X with an error status", m.name, id, got, smpp.StatusName(status), m.answer)
		}
	}
	writePDU(0x00000015, 3, nil) // enquire_link: the bind is still up
	if id, status, seq := readPDU(); id != 0x80000015 || status != 0 || seq != 3 {
		t.Fatalf("enquire_link answered 0x%08X seq %d status %s", id, seq, smpp.StatusName(status))
	}
	// And the server still accepts others.
	if _, err := bindSMPP(t, addr, "acme", "secret1", smpp.BindTransmitter, nil); err != nil {
		t.Fatal(err)
	}
}

// TestSMPPReceiptsSurviveDisconnect: a receipt reaches a bound transceiver; a
// receipt that comes while the tenant is offline waits in Kafka and arrives
// after it binds again.
func TestSMPPReceiptsSurviveDisconnect(t *testing.T) {
	cfg := smppConfig(t)
	addr := startSMPP(t, cfg)
	type got struct {
		id    string
		state uint8
		text  string
	}
	receipts := make(chan got, 10)
	onDeliver := func(_ context.Context, d *smpp.Deliver) error {
		id := strings.TrimSuffix(string(d.TLVs[smpp.TagReceiptedMessageID]), "\x00")
		st := d.TLVs[smpp.TagMessageState]
		if !d.IsReceipt() || len(st) != 1 {
			t.Errorf("deliver_sm is not a receipt: %+v", d)
			return nil
		}
		receipts <- got{id: id, state: st[0], text: string(d.ShortMessage)}
		return nil
	}
	s, err := bindSMPP(t, addr, "acme", "secret1", smpp.BindTransceiver, onDeliver)
	if err != nil {
		t.Fatal(err)
	}
	ctx := smppCtx(t)
	submit := func(s *smpp.Session, rd uint8) string {
		r, err := s.Submit(ctx, &smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "447700900123", DestTON: 1, ShortMessage: []byte("hello"), RegisteredDelivery: rd})
		if err != nil || r.Status != 0 {
			t.Fatalf("submit: %+v, %v", r, err)
		}
		return r.MessageID
	}
	first, second, silent := submit(s, 1), submit(s, 1), submit(s, 0)

	produceWhenReady(t, cfg.Kafka.Brokers, finalStatus(t, cfg, first, message.StatusDelivered), finalStatus(t, cfg, silent, message.StatusDelivered))
	r := <-receipts
	if r.id != first || r.state != smpp.MessageStateDelivered || !strings.Contains(r.text, "stat:DELIVRD") || !strings.HasPrefix(r.text, "id:"+first+" ") {
		t.Fatalf("receipt %+v, want DELIVRD of %s", r, first)
	}

	// Offline: the second message's receipt must wait for the next bind.
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	produceWhenReady(t, cfg.Kafka.Brokers, finalStatus(t, cfg, second, message.StatusUndelivered))
	if _, err := bindSMPP(t, addr, "acme", "secret1", smpp.BindReceiver, onDeliver); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case r = <-receipts:
		case <-ctx.Done():
			t.Fatal("no receipt after the rebind")
		}
		if r.id == first {
			continue // at least once: the first may come again if its commit was cut short
		}
		if r.id != second || r.state != smpp.MessageStateUndeliverable || !strings.Contains(r.text, "stat:UNDELIV") {
			t.Fatalf("receipt %+v, want UNDELIV of %s (none for %s, which asked for none)", r, second, silent)
		}
		break
	}
}

// TestSMPPReceiptsFollowTheBind runs two replicas: a tenant submits on one and
// is bound for receipts only on the other, then only on the first; each
// receipt reaches the replica that holds the tenant's receiving bind.
func TestSMPPReceiptsFollowTheBind(t *testing.T) {
	cfg := smppConfig(t)
	a, b := startSMPP(t, cfg), startSMPP(t, cfg)
	ctx := smppCtx(t)
	tx, err := bindSMPP(t, a, "acme", "secret1", smpp.BindTransmitter, nil)
	if err != nil {
		t.Fatal(err)
	}
	submit := func() string {
		r, err := tx.Submit(ctx, &smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "447700900123", DestTON: 1, ShortMessage: []byte("hello"), RegisteredDelivery: 1})
		if err != nil || r.Status != 0 {
			t.Fatalf("submit: %+v, %v", r, err)
		}
		return r.MessageID
	}
	receive := func(addr, want string) {
		t.Helper()
		got := make(chan string, 10)
		rx, err := bindSMPP(t, addr, "acme", "secret1", smpp.BindReceiver, func(_ context.Context, d *smpp.Deliver) error {
			got <- strings.TrimSuffix(string(d.TLVs[smpp.TagReceiptedMessageID]), "\x00")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case id := <-got:
				if id != want {
					continue // an earlier receipt again (at least once)
				}
			case <-ctx.Done():
				t.Fatalf("receipt of %s never reached the bind on %s", want, addr)
			}
			break
		}
		if err := rx.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}

	first := submit()
	produceWhenReady(t, cfg.Kafka.Brokers, finalStatus(t, cfg, first, message.StatusDelivered))
	receive(b, first)
	second := submit()
	produceWhenReady(t, cfg.Kafka.Brokers, finalStatus(t, cfg, second, message.StatusDelivered))
	receive(a, second)
}

// finalStatus is the final status event of message id as the dlr service
// writes it: the accepted message's fields, metadata included. It waits for
// the accepted event: written with the accepted record in one produce, it
// can become readable (its partition's high watermark) after it.
func finalStatus(t *testing.T, cfg config.Config, id, status string) kafka.Message {
	t.Helper()
	var out kafka.Message
	waitFor(t, "the accepted status of "+id, func() bool {
		for _, rec := range records(t, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+schemas.TopicStatus) {
			var st message.Status
			if err := json.Unmarshal(rec.Value, &st); err != nil {
				t.Fatal(err)
			}
			if st.MessageID == id && st.Status == message.StatusAccepted {
				st.Status, st.EventTime, st.EventID = status, time.Now().UTC(), message.EventID(id, status)
				v, err := st.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				out = kafka.Message{Topic: rec.Topic, Key: rec.Key, Value: v}
				return true
			}
		}
		return false
	})
	return out
}

// BenchmarkSMPPSubmit measures submits accepted per second (each published
// with its status before its submit_sm_resp) from one ESME with 100
// submit_sm outstanding.
func BenchmarkSMPPSubmit(b *testing.B) {
	cfg := smppConfig(b)
	addr := startSMPP(b, cfg)
	s, err := smpp.Dial(smppCtx(b), smpp.ClientConfig{Addr: addr, SystemID: "acme", Password: "secret1", Mode: smpp.BindTransmitter, Window: 100, RespTimeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := context.Background()
	var next atomic.Int64
	cpu := testenv.CPUTime(b)
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				r, err := s.Submit(ctx, &smpp.SubmitSM{SourceAddr: "ACME", DestAddr: fmt.Sprintf("4474001%05d", i%100000), DestTON: 1, ShortMessage: []byte("Your code is 123456")})
				if err != nil || r.Status != 0 {
					b.Errorf("submit: %+v, %v", r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
	reportCPU(b, cpu, b.N)
}

func TestSMPPAllowedIPs(t *testing.T) {
	cfg := smppConfig(t)
	for i := range cfg.Tenants {
		switch cfg.Tenants[i].ID {
		case "acme":
			cfg.Tenants[i].SMPPAllowedIPs = []string{"10.0.0.0/8", "127.0.0.1"}
		case "globex":
			cfg.Tenants[i].SMPPAllowedIPs = []string{"192.0.2.0/24"}
		}
	}
	addr := startSMPP(t, cfg)
	if _, err := bindSMPP(t, addr, "acme", "secret1", smpp.BindTransmitter, nil); err != nil {
		t.Errorf("bind from an allowed address: %v", err)
	}
	if _, err := bindSMPP(t, addr, "globex", "secret2", smpp.BindTransmitter, nil); bindStatus(err) != smpp.StatusBindFailed {
		t.Errorf("bind from an address not allowed: %v, want ESME_RBINDFAIL", err)
	}
}

// TestSMPPTLS: with a certificate configured the port speaks TLS: a TLS ESME
// binds and submits, a plain one cannot bind.
func TestSMPPTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice-test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := smppConfig(t)
	cfg.Ingest.SMPPTLSCert, cfg.Ingest.SMPPTLSKey = filepath.Join(dir, "smpp.crt"), filepath.Join(dir, "smpp.key")
	for path, block := range map[string]*pem.Block{cfg.Ingest.SMPPTLSCert: {Type: "CERTIFICATE", Bytes: der}, cfg.Ingest.SMPPTLSKey: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addr := startSMPP(t, cfg)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	s, err := smpp.Dial(smppCtx(t), smpp.ClientConfig{Addr: addr, SystemID: "acme", Password: "secret1", Mode: smpp.BindTransmitter, TLS: &tls.Config{RootCAs: roots}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	r, err := s.Submit(smppCtx(t), &smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "+447700900123", ShortMessage: []byte("over TLS")})
	if err != nil || r.Status != 0 || r.MessageID == "" {
		t.Fatalf("submit over TLS: %+v, %v", r, err)
	}
	if _, err := smpp.Dial(smppCtx(t), smpp.ClientConfig{Addr: addr, SystemID: "acme", Password: "secret1", Mode: smpp.BindTransmitter, BindTimeout: 5 * time.Second}); err == nil {
		t.Fatal("a plain-text ESME bound to the TLS port")
	}
}

// TestSMPPReceiptRefusedForGood: an ESME that refuses a receipt with a
// permanent status (ESME_RX_P_APPN) does not get it again, and the receipts
// behind it still come.
func TestSMPPReceiptRefusedForGood(t *testing.T) {
	cfg := smppConfig(t)
	addr := startSMPP(t, cfg)
	tx, err := bindSMPP(t, addr, "acme", "secret1", smpp.BindTransmitter, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := smppCtx(t)
	var ids []string
	for range 2 {
		r, err := tx.Submit(ctx, &smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "447700900123", DestTON: 1, ShortMessage: []byte("hello"), RegisteredDelivery: 1})
		if err != nil || r.Status != 0 {
			t.Fatalf("submit: %+v, %v", r, err)
		}
		ids = append(ids, r.MessageID)
	}

	// A receiver that answers its first deliver_sm with ESME_RX_P_APPN.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.SetDeadline(time.Now().Add(45 * time.Second)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(nc)
	write := func(id, status, seq uint32, body []byte) {
		b := make([]byte, 16, 16+len(body))
		binary.BigEndian.PutUint32(b[0:], uint32(16+len(body)))
		binary.BigEndian.PutUint32(b[4:], id)
		binary.BigEndian.PutUint32(b[8:], status)
		binary.BigEndian.PutUint32(b[12:], seq)
		if _, err := nc.Write(append(b, body...)); err != nil {
			t.Fatal(err)
		}
	}
	// next returns the next deliver_sm's sequence and body, answering keepalives.
	next := func() (uint32, []byte) {
		for {
			var h [16]byte
			if _, err := io.ReadFull(r, h[:]); err != nil {
				t.Fatal(err)
			}
			body := make([]byte, binary.BigEndian.Uint32(h[0:])-16)
			if _, err := io.ReadFull(r, body); err != nil {
				t.Fatal(err)
			}
			id, seq := binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[12:])
			switch id {
			case 0x00000005: // deliver_sm
				return seq, body
			case 0x00000015: // enquire_link
				write(0x80000015, 0, seq, nil)
			}
		}
	}
	write(0x00000001, 0, 1, []byte("acme\x00secret1\x00\x00\x34\x00\x00\x00")) // bind_receiver
	if _, err := io.ReadFull(r, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, r, int64(len("sluice")+1)); err != nil { // bind_receiver_resp's system_id
		t.Fatal(err)
	}

	produceWhenReady(t, cfg.Kafka.Brokers, finalStatus(t, cfg, ids[0], message.StatusDelivered))
	seq, body := next()
	if !bytes.Contains(body, []byte("id:"+ids[0])) {
		t.Fatalf("first deliver_sm %q, want the receipt of %s", body, ids[0])
	}
	write(0x80000005, smpp.StatusPermAppErr, seq, nil)

	produceWhenReady(t, cfg.Kafka.Brokers, finalStatus(t, cfg, ids[1], message.StatusDelivered))
	seq, body = next()
	if !bytes.Contains(body, []byte("id:"+ids[1])) {
		t.Fatalf("after a permanent refusal the next deliver_sm is %q, want the receipt of %s", body, ids[1])
	}
	write(0x80000005, 0, seq, []byte{0})
}

// TestSMPPMOToTenantNumbers: messages from handsets to the tenant's numbers
// (sluice.mo, as the sender writes them) reach its receiver bind as
// deliver_sm; those to other numbers do not.
func TestSMPPMOToTenantNumbers(t *testing.T) {
	cfg := smppConfig(t)
	for i := range cfg.Tenants {
		if cfg.Tenants[i].ID == "acme" {
			cfg.Tenants[i].SMPPMONumbers = []string{"+447700900500", "60123"}
		}
	}
	addr := startSMPP(t, cfg)
	got := make(chan *smpp.Deliver, 10)
	if _, err := bindSMPP(t, addr, "acme", "secret1", smpp.BindReceiver, func(_ context.Context, d *smpp.Deliver) error {
		got <- d
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("Reply with more words than one SMS holds. ", 8)
	mo := func(to, txt string) kafka.Message {
		v, err := proto.Marshal(&sluicepb.MO{Carrier: "sim-a", SourceAddr: "+447700900777", DestAddr: to, Text: txt, ReceivedAtMs: time.Now().UnixMilli()})
		if err != nil {
			t.Fatal(err)
		}
		return kafka.Message{Topic: cfg.Kafka.TopicPrefix + schemas.TopicMO, Key: []byte("+447700900777"), Value: v}
	}
	produceWhenReady(t, cfg.Kafka.Brokers, mo("+447700900999", "not for acme"), mo("447700900500", "STOP 🙅 спасибо"), mo("60123", long))
	want := map[string]string{"STOP 🙅 спасибо": "447700900500", long: "60123"}
	ctx := smppCtx(t)
	for len(want) > 0 {
		var d *smpp.Deliver
		select {
		case d = <-got:
		case <-ctx.Done():
			t.Fatalf("MO messages %q never arrived", want)
		}
		body := d.ShortMessage
		if p, ok := d.TLVs[smpp.TagMessagePayload]; ok {
			body = p
		}
		txt, err := text.Decode(d.DataCoding, body)
		if err != nil {
			t.Fatal(err)
		}
		to, ok := want[txt]
		if !ok || d.IsReceipt() || d.DestAddr != to || d.SourceAddr != "447700900777" || d.SourceTON != 1 {
			t.Fatalf("deliver_sm %+v with text %q", d, txt)
		}
		delete(want, txt)
	}
}

// TestSMPPBindGroupReadsOnlyItsTenant: the fan-out copies each SMPP tenant's
// receipts, once, to the tenant's own topic, so that the group behind a
// tenant's binds reads that tenant's records and nothing else: with acme,
// globex and an HTTP-only tenant all busy, acme's group reads (and commits)
// exactly acme's three receipts, and never touches sms.status.
func TestSMPPBindGroupReadsOnlyItsTenant(t *testing.T) {
	cfg := smppConfig(t)
	addr := startSMPP(t, cfg)
	ctx := smppCtx(t)
	var mu sync.Mutex
	got := map[string][]string{} // system_id → receipted ids
	receiver := func(systemID, password string) *smpp.Session {
		s, err := bindSMPP(t, addr, systemID, password, smpp.BindTransceiver, func(_ context.Context, d *smpp.Deliver) error {
			mu.Lock()
			defer mu.Unlock()
			got[systemID] = append(got[systemID], strings.TrimSuffix(string(d.TLVs[smpp.TagReceiptedMessageID]), "\x00"))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	acme, globex := receiver("acme", "secret1"), receiver("globex", "secret2")
	submit := func(s *smpp.Session, rd uint8) string {
		r, err := s.Submit(ctx, &smpp.SubmitSM{SourceAddr: "ACME", DestAddr: "447700900123", DestTON: 1, ShortMessage: []byte("hello"), RegisteredDelivery: rd})
		if err != nil || r.Status != 0 {
			t.Fatalf("submit: %+v, %v", r, err)
		}
		return r.MessageID
	}
	var acmeIDs, finals []string
	for range 3 {
		acmeIDs = append(acmeIDs, submit(acme, 1))
	}
	finals = append(finals, acmeIDs...)
	finals = append(finals, submit(acme, 0), submit(globex, 1), submit(globex, 1))
	var recs []kafka.Message
	for _, id := range finals {
		recs = append(recs, finalStatus(t, cfg, id, message.StatusDelivered))
	}
	// A tenant without SMPP, even one whose status looks like an SMPP one's.
	other := message.Status{EventID: message.EventID("m-slow", message.StatusDelivered), MessageID: "m-slow", Tenant: "slow",
		Status: message.StatusDelivered, EventTime: time.Now().UTC(), Metadata: map[string]string{smppd.MetaRegisteredDelivery: "1"}}
	v, err := other.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, kafka.Message{Topic: cfg.Kafka.TopicPrefix + schemas.TopicStatus, Key: []byte("m-slow"), Value: v})
	produceWhenReady(t, cfg.Kafka.Brokers, recs...)

	for {
		mu.Lock()
		done := len(got["acme"]) >= 3 && len(got["globex"]) >= 2
		mu.Unlock()
		if done {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("receipts: %v, want acme's 3 and globex's 2", got)
		case <-time.After(50 * time.Millisecond):
		}
	}
	mu.Lock()
	if a := slices.Sorted(slices.Values(got["acme"])); !slices.Equal(slices.Compact(a), slices.Sorted(slices.Values(acmeIDs))) {
		t.Errorf("acme's binds got receipts of %v, want %v", a, acmeIDs)
	}
	mu.Unlock()

	topic := schemas.SMPPReceiptsTopic(cfg.Kafka.TopicPrefix, "acme")
	copies, err := kafka.ReadAll(ctx, cfg.Kafka.Brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range copies {
		var st message.Status
		if err := json.Unmarshal(rec.Value, &st); err != nil || st.Tenant != "acme" || !slices.Contains(acmeIDs, st.MessageID) {
			t.Errorf("%s holds %s (%v), not one of acme's receipts", topic, rec.Value, err)
		}
	}
	group := cfg.Kafka.TopicPrefix + smppd.ReceiptGroupPrefix + "acme"
	lm := kafka.NewLagMonitor(cfg.Kafka.Brokers, nil)
	lm.Watch(group, topic, cfg.Kafka.TopicPrefix+schemas.TopicStatus)
	for {
		lags, err := lm.Lag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var read int64
		for _, l := range lags {
			if l.Topic != topic && l.Committed >= 0 {
				t.Fatalf("acme's group committed %s/%d: it reads its own topic only", l.Topic, l.Partition)
			}
			read += max(l.Committed, 0)
		}
		if read == int64(len(copies)) && len(copies) >= 3 {
			t.Logf("acme's group read %d records; sms.status holds %d", read, len(records(t, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+schemas.TopicStatus)))
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("acme's group committed %d records of %d in %s", read, len(copies), topic)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
