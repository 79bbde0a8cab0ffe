package sender

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

func TestBuildSubmitsPerLongMessageMode(t *testing.T) {
	long := strings.Repeat("0123456789", 40) // 400 GSM-7 characters: 3 parts of 153
	m := &sluicepb.Message{Id: "m1", From: "ACME", To: "+447700900123", Text: long}
	tests := []struct {
		mode       string
		wantSubmit int
		check      func(t *testing.T, sms []*smpp.SubmitSM)
	}{
		{config.LongUDH, 3, func(t *testing.T, sms []*smpp.SubmitSM) {
			for i, sm := range sms {
				if sm.ESMClass != smpp.ESMClassUDHI || !bytes.Equal(sm.ShortMessage[:5], []byte{5, 0, 3, byte(refOf("m1")), 3}) || sm.ShortMessage[5] != byte(i+1) {
					t.Errorf("part %d: esm_class %#x, header % x", i, sm.ESMClass, sm.ShortMessage[:6])
				}
			}
		}},
		{config.LongSAR, 3, func(t *testing.T, sms []*smpp.SubmitSM) {
			for i, sm := range sms {
				ref := refOf("m1")
				if sm.ESMClass != 0 || !bytes.Equal(sm.TLVs[tagSARMsgRefNum], []byte{byte(ref >> 8), byte(ref)}) ||
					sm.TLVs[tagSARTotalSegments][0] != 3 || sm.TLVs[tagSARSegmentSeqnum][0] != byte(i+1) || len(sm.ShortMessage) != 153 && i < 2 {
					t.Errorf("part %d: esm_class %#x, TLVs %v, %d octets", i, sm.ESMClass, sm.TLVs, len(sm.ShortMessage))
				}
			}
		}},
		{config.LongPayload, 1, func(t *testing.T, sms []*smpp.SubmitSM) {
			if len(sms[0].ShortMessage) != 0 || string(sms[0].TLVs[smpp.TagMessagePayload]) != long {
				t.Errorf("payload submit: short_message %q, message_payload of %d octets", sms[0].ShortMessage, len(sms[0].TLVs[smpp.TagMessagePayload]))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			sms, parts, err := buildSubmits(m, tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			if len(sms) != tt.wantSubmit || parts != 3 {
				t.Fatalf("%d submits for %d parts, want %d for 3", len(sms), parts, tt.wantSubmit)
			}
			for _, sm := range sms {
				if sm.RegisteredDelivery != smpp.RegisteredDeliveryFinal || sm.DestAddr != "447700900123" || sm.SourceTON != 5 {
					t.Errorf("submit %+v: want a receipt asked for, E.164 digits, alphanumeric source", sm)
				}
			}
			tt.check(t, sms)
		})
	}
}
