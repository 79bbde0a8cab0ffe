package sender

import (
	"math/big"
	"strings"
	"testing"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/smpp"
)

func TestCanonicalIDs(t *testing.T) {
	decimal := config.ReceiptIDsOf(config.ReceiptIDsDecimal).WithDefaults()
	hex := config.ReceiptIDsOf(config.ReceiptIDsHex).WithDefaults()
	same := config.ReceiptIDsOf(config.ReceiptIDsSame).WithDefaults()
	long := strings.Repeat("f", 24) // beyond 64 bits
	tests := []struct {
		name                   string
		forms                  config.ReceiptIDs
		resp, tlv, text, wantR string
	}{
		{"same, padding and case", same, "0A1F\x00", "0a1f", "A1F", "a1f"},
		{"same, leading zeros", same, "000123", "123", "0123", "123"},
		{"same, non-numeric", same, "Msg-7", "msg-7", "MSG-7", "msg-7"},
		{"same, zero", same, "0000", "0", "0", "0"},
		{"decimal: resp hex", decimal, "0A1F", "a1f", "2591", "2591"},
		{"decimal: resp hex, upper, zeros", decimal, "00000000000000FF", "FF", "0255", "255"},
		{"decimal: 20+ digits", decimal, long, long, "79228162514264337593543950335", "79228162514264337593543950335"},
		{"decimal: non-numeric", decimal, "not-a-number", "not-a-number", "not-a-number", "not-a-number"},
		{"hex: resp decimal", hex, "2591", "02591", "A1F", "2591"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := respID(tt.resp, tt.forms)
			fromTLV, fromText := receiptIDs(tt.tlv, tt.text, tt.forms)
			if r != tt.wantR || fromTLV != tt.wantR || fromText != tt.wantR {
				t.Errorf("resp %q -> %q, tlv %q -> %q, text %q -> %q; want all %q", tt.resp, r, tt.tlv, fromTLV, tt.text, fromText, tt.wantR)
			}
		})
	}
}

func TestRawDLRIDs(t *testing.T) {
	text := func(id string) []byte {
		return smpp.Receipt{ID: id, Sub: 1, Dlvrd: 1, Stat: smpp.StatDelivered, Err: "000"}.Format()
	}
	tlv := func(id string) map[uint16][]byte {
		return map[uint16][]byte{smpp.TagReceiptedMessageID: []byte(id + "\x00"), smpp.TagMessageState: {2}}
	}
	decimal := config.ReceiptIDsOf(config.ReceiptIDsDecimal).WithDefaults()
	tests := []struct {
		name    string
		forms   config.ReceiptIDs
		d       *smpp.Deliver
		id, alt string
	}{
		{"text only", decimal, &smpp.Deliver{ShortMessage: text("268435528")}, "268435528", ""},
		{"TLV only, no text", decimal, &smpp.Deliver{TLVs: tlv("10000048")}, "268435528", ""},
		{"TLV in the resp's form, text in decimal", decimal, &smpp.Deliver{ShortMessage: text("268435528"), TLVs: tlv("10000048")}, "268435528", ""},
		{"TLV and text disagree", decimal, &smpp.Deliver{ShortMessage: text("268435529"), TLVs: tlv("10000048")}, "268435528", "268435529"},
		{"TLV declared decimal", config.ReceiptIDs{Resp: config.ReceiptIDsHex, Text: config.ReceiptIDsDecimal, TLV: config.ReceiptIDsDecimal},
			&smpp.Deliver{ShortMessage: text("268435528"), TLVs: tlv("268435528")}, "268435528", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.d.ESMClass = smpp.ESMClassDeliveryReceipt
			r := RawDLR("sim-a", tt.forms, tt.d, 1)
			if r.SmscMessageId != tt.id || r.AltSmscMessageId != tt.alt || r.Stat != "DELIVRD" {
				t.Errorf("RawDLR = id %q alt %q stat %q, want id %q alt %q DELIVRD", r.SmscMessageId, r.AltSmscMessageId, r.Stat, tt.id, tt.alt)
			}
		})
	}
}

// FuzzCanonicalID: any id, in any declared base, gives an id that is either
// the number it spells in that base, in decimal, or the id as normalised; the
// same number written with other case or leading zeros gives the same id.
func FuzzCanonicalID(f *testing.F) {
	for _, s := range []string{"0A1F", "00ff\x00", "268435528", "msg-7", "", "0", strings.Repeat("f", 40), "+12", "1_000"} {
		f.Add(s, uint8(16))
		f.Add(s, uint8(10))
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, id string, b uint8) {
		base := []int{0, 10, 16}[int(b)%3]
		got := canonicalID(id, base)
		norm := message.NormalizeSMSCID(id)
		n, isNum := new(big.Int).SetString(norm, max(base, 16))
		if base != 0 && isNum && digitsIn(norm, base) {
			if n, _ = new(big.Int).SetString(norm, base); got != n.String() {
				t.Fatalf("canonicalID(%q, %d) = %q, want the number %s", id, base, got, n)
			}
			if again := canonicalID("000"+strings.ToUpper(norm), base); again != got {
				t.Fatalf("with leading zeros and upper case: %q, want %q", again, got)
			}
			return
		}
		if base == 0 && norm != "" && digitsIn(norm, 16) {
			if got != strings.TrimLeft(norm, "0") && got != "0" {
				t.Fatalf("canonicalID(%q, 0) = %q, want it without leading zeros", id, got)
			}
			return
		}
		if got != norm {
			t.Fatalf("canonicalID(%q, %d) = %q, want it as normalised, %q", id, base, got, norm)
		}
	})
}
