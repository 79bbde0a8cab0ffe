package sender

import (
	"testing"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/smpp"
)

func TestRawDLRAndMO(t *testing.T) {
	text := smpp.Receipt{ID: "0A1F", Sub: 1, Dlvrd: 1, Stat: smpp.StatDelivered, Err: "000"}.Format()
	tests := []struct {
		name string
		d    *smpp.Deliver
		id   string
	}{
		{"deliver_sm text only", &smpp.Deliver{ESMClass: smpp.ESMClassDeliveryReceipt, ShortMessage: text}, "a1f"},
		{"data_sm payload", &smpp.Deliver{ESMClass: smpp.ESMClassDeliveryReceipt, TLVs: map[uint16][]byte{smpp.TagMessagePayload: text}}, "a1f"},
		{"TLV wins", &smpp.Deliver{ESMClass: smpp.ESMClassDeliveryReceipt, ShortMessage: text,
			TLVs: map[uint16][]byte{smpp.TagReceiptedMessageID: []byte("BEEF\x00"), smpp.TagMessageState: {5}}}, "beef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := RawDLR("sim-a", config.ReceiptIDs{}.WithDefaults(), tt.d, 1)
			if r.SmscMessageId != tt.id || r.Stat != "DELIVRD" || r.Carrier != "sim-a" {
				t.Errorf("RawDLR = %+v, want id %s DELIVRD", r, tt.id)
			}
		})
	}

	mo := MO("sim-a", &smpp.Deliver{SourceAddr: "447700900123", SourceTON: 1, DestAddr: "12345", DataCoding: 8,
		TLVs: map[uint16][]byte{smpp.TagMessagePayload: {0, 'S', 0, 'T', 0, 'O', 0, 'P'}}}, 1)
	if mo.Text != "STOP" || mo.SourceAddr != "+447700900123" || mo.DestAddr != "12345" || mo.Encoding != "ucs2" || mo.ConcatTotal != 0 {
		t.Errorf("MO from data_sm = %+v", mo)
	}
	mo = MO("sim-a", &smpp.Deliver{SourceAddr: "7700", SourceTON: 3, ESMClass: smpp.ESMClassUDHI,
		ShortMessage: append([]byte{5, 0, 3, 1, 2, 1}, "STOP"...)}, 1)
	if mo.Text != "STOP" || mo.SourceAddr != "7700" || mo.Encoding != "gsm7" || mo.ConcatRef != 1 || mo.ConcatTotal != 2 || mo.ConcatSeq != 1 {
		t.Errorf("MO part with a header = %+v", mo)
	}
}
