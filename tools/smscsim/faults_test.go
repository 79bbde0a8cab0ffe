package smscsim

import (
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-sms/sluice/pkg/smpp"
)

func TestInjectedFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		check  func(t *testing.T, resp smpp.SubmitResp, err error, st CarrierStats)
	}{
		{"refused with the configured status", Faults{Errors: map[uint32]float64{smpp.StatusSysErr: 1}},
			func(t *testing.T, resp smpp.SubmitResp, err error, st CarrierStats) {
				if err != nil || resp.Status != smpp.StatusSysErr || st.Injected != 1 || st.Submits != 0 {
					t.Errorf("resp %+v err %v stats %+v, want ESME_RSYSERR and nothing accepted", resp, err, st)
				}
			}},
		{"stalled: accepted, answered too late", Faults{StallRate: 1, Stall: 2 * time.Second},
			func(t *testing.T, _ smpp.SubmitResp, err error, st CarrierStats) {
				if !errors.Is(err, smpp.ErrOutcomeUnknown) || st.Stalled != 1 || st.Submits != 1 {
					t.Errorf("err %v stats %+v, want outcome unknown and the message accepted", err, st)
				}
			}},
		{"disconnected: accepted, connection dropped", Faults{DisconnectRate: 1},
			func(t *testing.T, _ smpp.SubmitResp, err error, st CarrierStats) {
				if !errors.Is(err, smpp.ErrOutcomeUnknown) || st.Disconnects != 1 || st.Submits != 1 {
					t.Errorf("err %v stats %+v, want outcome unknown and the message accepted", err, st)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := startSim(t, CarrierConfig{ID: "c", SystemID: "sys", Password: "pw", Addr: "127.0.0.1:0", Faults: tt.faults})
			s, err := smpp.Dial(testCtx(t), smpp.ClientConfig{Addr: sim.Addr("c"), SystemID: "sys", Password: "pw", RespTimeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(testCtx(t))
			resp, err := s.Submit(testCtx(t), &smpp.SubmitSM{DestAddr: "447700900123", ShortMessage: []byte("x")})
			st := waitFor(t, sim, "c", func(st CarrierStats) bool { return st.Received == 1 && st.Submits+st.Injected == 1 })
			tt.check(t, resp, err, st)
		})
	}
}

func TestDownCarrierRefusesBindsAndDropsSessions(t *testing.T) {
	sim := startSim(t, CarrierConfig{ID: "c", SystemID: "sys", Password: "pw", Addr: "127.0.0.1:0"})
	cfg := smpp.ClientConfig{Addr: sim.Addr("c"), SystemID: "sys", Password: "pw"}
	s, err := smpp.Dial(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.SetFaults("c", Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-testCtx(t).Done():
		t.Fatal("session survived the carrier going down")
	}
	var se *smpp.StatusError
	if _, err := smpp.Dial(testCtx(t), cfg); !errors.As(err, &se) || se.Status != smpp.StatusBindFailed {
		t.Fatalf("bind to a down carrier: %v, want ESME_RBINDFAIL", err)
	}
	if err := sim.SetFaults("c", Faults{}); err != nil {
		t.Fatal(err)
	}
	dial(t, cfg) // back up
}

func TestDecimalReceiptIDsAndDuplicates(t *testing.T) {
	sim := startSim(t, CarrierConfig{ID: "c", SystemID: "sys", Password: "pw", Addr: "127.0.0.1:0",
		DLRDelay: time.Millisecond, DLRIDFormat: "decimal", DuplicateDLRs: 1})
	rc := newReceipts()
	s := dial(t, smpp.ClientConfig{Addr: sim.Addr("c"), SystemID: "sys", Password: "pw", OnDeliver: rc.onDeliver})
	resp, err := s.Submit(testCtx(t), &smpp.SubmitSM{DestAddr: "447700900123", ShortMessage: []byte("x"), RegisteredDelivery: 1})
	if err != nil || resp.Status != smpp.StatusOK {
		t.Fatalf("submit: %+v %v", resp, err)
	}
	n, err := strconv.ParseUint(resp.MessageID, 16, 64)
	if err != nil {
		t.Fatalf("submit_sm_resp id %q is not hex: %v", resp.MessageID, err)
	}
	want := strconv.FormatUint(n, 10)
	for i, d := range rc.wait(t, 2) {
		// dlr_id_format is the text's form; the TLV stays as the resp, as SMPP 3.4 has it.
		r, err := smpp.ParseReceipt(d.ShortMessage)
		if err != nil || r.ID != want || string(d.TLVs[smpp.TagReceiptedMessageID]) != resp.MessageID+"\x00" {
			t.Errorf("receipt %d: %q (%v) TLV %q, want text id %s in decimal, TLV %s", i, d.ShortMessage, err, d.TLVs[smpp.TagReceiptedMessageID], want, resp.MessageID)
		}
	}
	st := waitFor(t, sim, "c", func(st CarrierStats) bool { return st.DLRsAcked == 2 })
	if st.DLRDups != 1 || st.DLRsPending != 0 {
		t.Errorf("stats %+v, want one duplicate receipt, none pending", st)
	}
}

func TestSendMO(t *testing.T) {
	sim := startSim(t, CarrierConfig{ID: "c", SystemID: "sys", Password: "pw", Addr: "127.0.0.1:0"})
	rc := newReceipts()
	dial(t, smpp.ClientConfig{Addr: sim.Addr("c"), SystemID: "sys", Password: "pw", OnDeliver: rc.onDeliver})
	if err := sim.SendMO(testCtx(t), "c", "447700900123", "12345", "STOP ✋"); err != nil {
		t.Fatal(err)
	}
	d := rc.wait(t, 1)[0]
	// UCS-2 (the emoji is not GSM-7): UTF-16BE.
	if d.IsReceipt() || d.DataCoding != 8 || d.SourceAddr != "447700900123" || d.SourceTON != 1 || !strings.HasPrefix(string(d.ShortMessage), "\x00S\x00T") {
		t.Errorf("MO = %+v", d)
	}
	if st := sim.Stats()["c"]; st.MOsSent != 1 {
		t.Errorf("mos_sent = %d, want 1", st.MOsSent)
	}
}

func TestFaultsFromYAML(t *testing.T) {
	var cfg CarrierConfig
	doc := "id: c\nlatency: 5ms\nerrors: {0x08: 0.05, 0x0B: 0.01}\nstall_rate: 0.01\nstall: 15s\ndown: true\ndlr_id_format: decimal\n"
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Latency != 5*time.Millisecond || cfg.Errors[0x08] != 0.05 || cfg.Errors[0x0B] != 0.01 || cfg.Stall != 15*time.Second || !cfg.Down || cfg.DLRIDFormat != "decimal" {
		t.Errorf("decoded %+v", cfg)
	}
	if err := (Faults{Errors: map[uint32]float64{8: 0.7}, StallRate: 0.5}).validate(); err == nil {
		t.Error("rates adding up to 1.2 accepted")
	}
}

func TestReceiptDelayDistributions(t *testing.T) {
	if _, err := newCarrier(CarrierConfig{ID: "c", DLRDistribution: "poisson"}, nil); err == nil {
		t.Error("unknown dlr_distribution accepted")
	}
	tests := []struct {
		dist         string
		wantDistinct bool
	}{
		{"fixed", false},
		{"exponential", true},
	}
	for _, tt := range tests {
		c, err := newCarrier(CarrierConfig{ID: "c", DLRDelay: time.Second, DLRDistribution: tt.dist}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[time.Duration]bool{}
		for range 100 {
			d := c.receiptDelay()
			if d < 0 || tt.dist == "fixed" && d != time.Second {
				t.Fatalf("%s: delay %v", tt.dist, d)
			}
			seen[d] = true
		}
		if distinct := len(seen) > 50; distinct != tt.wantDistinct {
			t.Errorf("%s: %d distinct delays in 100", tt.dist, len(seen))
		}
	}
}
