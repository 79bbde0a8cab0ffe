package smscsim

import (
	"bytes"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/smpp"
)

// Each id form setting shows in what a bind sees: the submit_sm_resp id, the
// receipt text's id: and the receipted_message_id TLV are one number, each
// written as configured (given here as fmt verbs), and ReceiptIDs declares
// them as sluice's receipt_ids would.
func TestIDForms(t *testing.T) {
	tests := []struct {
		name            string
		cfg             CarrierConfig
		respBase        int
		resp, text, tlv string // fmt verbs for the id number
		wantReceiptIDs  config.ReceiptIDs
	}{
		{"defaults: hex everywhere", CarrierConfig{}, 16, "%016x", "%016x", "%016x", config.ReceiptIDs{}},
		{"explicit same, decimal resp", CarrierConfig{RespIDForm: "decimal", DLRTextIDForm: "same", DLRTLVIDForm: "same"}, 10, "%d", "%d", "%d", config.ReceiptIDs{}},
		{"dlr_id_format decimal (older name): text decimal, TLV as the resp", CarrierConfig{DLRIDFormat: "decimal"}, 16, "%016x", "%d", "%016x",
			config.ReceiptIDs{Resp: "hex", Text: "decimal", TLV: "same"}},
		{"decimal resp, hex text", CarrierConfig{RespIDForm: "decimal", DLRTextIDForm: "hex"}, 10, "%d", "%016x", "%d",
			config.ReceiptIDs{Resp: "decimal", Text: "hex", TLV: "same"}},
		{"hex resp upper case zero-padded, decimal text", CarrierConfig{DLRTextIDForm: "decimal", IDCase: "upper", IDZeroPad: 20}, 16, "%020X", "%020d", "%020X",
			config.ReceiptIDs{Resp: "hex", Text: "decimal", TLV: "same"}},
		{"TLV in decimal too", CarrierConfig{DLRTextIDForm: "decimal", DLRTLVIDForm: "decimal"}, 16, "%016x", "%d", "%d",
			config.ReceiptIDs{Resp: "hex", Text: "decimal", TLV: "decimal"}},
		{"decimal resp padded, TLV hex upper case", CarrierConfig{RespIDForm: "decimal", DLRTLVIDForm: "hex", IDCase: "upper", IDZeroPad: 24}, 10, "%024d", "%024d", "%024X",
			config.ReceiptIDs{Resp: "decimal", Text: "same", TLV: "hex"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.ID, cfg.SystemID, cfg.Password, cfg.Addr, cfg.DLRDelay = "c", "sys", "pw", "127.0.0.1:0", time.Millisecond
			sim := startSim(t, cfg)
			rc := newReceipts()
			s := dial(t, smpp.ClientConfig{Addr: sim.Addr("c"), SystemID: "sys", Password: "pw", OnDeliver: rc.onDeliver})
			resp, err := s.Submit(testCtx(t), &smpp.SubmitSM{DestAddr: "447700900123", ShortMessage: []byte("x"), RegisteredDelivery: 1})
			if err != nil || resp.Status != smpp.StatusOK {
				t.Fatalf("submit: %+v %v", resp, err)
			}
			n, err := strconv.ParseUint(resp.MessageID, tt.respBase, 64)
			if err != nil {
				t.Fatalf("submit_sm_resp id %q not in base %d: %v", resp.MessageID, tt.respBase, err)
			}
			if want := fmt.Sprintf(tt.resp, n); resp.MessageID != want {
				t.Errorf("submit_sm_resp id %q, want %q", resp.MessageID, want)
			}
			d := rc.wait(t, 1)[0]
			r, err := smpp.ParseReceipt(d.ShortMessage)
			if err != nil {
				t.Fatalf("receipt %q: %v", d.ShortMessage, err)
			}
			if want := fmt.Sprintf(tt.text, n); r.ID != want {
				t.Errorf("text id: %q, want %q", r.ID, want)
			}
			if got, want := string(d.TLVs[smpp.TagReceiptedMessageID]), fmt.Sprintf(tt.tlv, n)+"\x00"; got != want {
				t.Errorf("receipted_message_id %q, want %q", got, want)
			}
			ids, err := cfg.ReceiptIDs()
			if err != nil || ids != tt.wantReceiptIDs {
				t.Errorf("ReceiptIDs() = %+v, %v; want %+v", ids, err, tt.wantReceiptIDs)
			}
		})
	}
}

func TestIDFormsValidated(t *testing.T) {
	tests := []struct {
		cfg  CarrierConfig
		want string // in the error
	}{
		{CarrierConfig{RespIDForm: "octal"}, `resp_id_form "octal": want hex or decimal`},
		{CarrierConfig{RespIDForm: "same"}, `resp_id_form "same"`}, // the resp is what same refers to
		{CarrierConfig{DLRTextIDForm: "base64"}, `dlr_text_id_form "base64": want same, decimal or hex`},
		{CarrierConfig{DLRTLVIDForm: "HEX"}, `dlr_tlv_id_form "HEX"`},
		{CarrierConfig{DLRIDFormat: "same"}, `dlr_id_format "same": want hex or decimal`}, // as before
		{CarrierConfig{DLRIDFormat: "decimal", DLRTextIDForm: "decimal"}, "set only one"},
		{CarrierConfig{IDCase: "mixed"}, `id_case "mixed": want lower or upper`},
		{CarrierConfig{IDZeroPad: -1}, "id_zero_pad -1: want 0 to 64"},
		{CarrierConfig{IDZeroPad: 65}, "id_zero_pad 65"},
	}
	for _, tt := range tests {
		tt.cfg.ID = "c"
		_, err := newCarrier(tt.cfg, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "carrier c") {
			t.Errorf("%+v: error %v, want one naming carrier c and saying %q", tt.cfg, err, tt.want)
		}
	}

	doc := "id: c\nresp_id_form: decimal\ndlr_text_id_form: hex\ndlr_tlv_id_form: same\nid_case: upper\nid_zero_pad: 12\n"
	var cfg CarrierConfig
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	want := CarrierConfig{ID: "c", RespIDForm: "decimal", DLRTextIDForm: "hex", DLRTLVIDForm: "same", IDCase: "upper", IDZeroPad: 12}
	if cfg.ID != want.ID || cfg.RespIDForm != want.RespIDForm || cfg.DLRTextIDForm != want.DLRTextIDForm ||
		cfg.DLRTLVIDForm != want.DLRTLVIDForm || cfg.IDCase != want.IDCase || cfg.IDZeroPad != want.IDZeroPad {
		t.Errorf("decoded %+v", cfg)
	}
}
