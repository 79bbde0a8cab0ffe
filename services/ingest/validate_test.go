package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func TestAcceptRejects(t *testing.T) {
	tests := []struct {
		name, body  string
		code, field string
	}{
		{"malformed json", `{"tenant":`, "malformed_json", ""},
		{"not an object", `[1,2]`, "invalid_type", ""},
		{"trailing data", `{"tenant":"a","from":"A","to":"+447400123456","text":"x"} {}`, "malformed_json", ""},
		{"unknown field", `{"tenant":"a","from":"A","to":"+447400123456","text":"x","colour":"red"}`, "unknown_field", "colour"},
		{"number as text", `{"tenant":"a","from":"A","to":"+447400123456","text":5}`, "invalid_type", "text"},
		{"missing tenant", `{"from":"A","to":"+447400123456","text":"x"}`, "required", "tenant"},
		{"missing from", `{"tenant":"a","to":"+447400123456","text":"x"}`, "required", "from"},
		{"missing to", `{"tenant":"a","from":"A","text":"x"}`, "required", "to"},
		{"missing text", `{"tenant":"a","from":"A","to":"+447400123456"}`, "required", "text"},
		{"blank text", `{"tenant":"a","from":"A","to":"+447400123456","text":"  "}`, "required", "text"},
		{"no plus", `{"tenant":"a","from":"A","to":"447400123456","text":"x"}`, "invalid_number", "to"},
		{"letters in number", `{"tenant":"a","from":"A","to":"+44abc","text":"x"}`, "invalid_number", "to"},
		{"too short", `{"tenant":"a","from":"A","to":"+44123","text":"x"}`, "invalid_number", "to"},
		{"bad priority", `{"tenant":"a","from":"A","to":"+447400123456","text":"x","priority":"urgent"}`, "invalid_priority", "priority"},
		{"bad send_at", `{"tenant":"a","from":"A","to":"+447400123456","text":"x","send_at":"tomorrow"}`, "invalid_send_at", "send_at"},
		{"bad validity", `{"tenant":"a","from":"A","to":"+447400123456","text":"x","validity":"forever"}`, "invalid_validity", "validity"},
		{"negative validity", `{"tenant":"a","from":"A","to":"+447400123456","text":"x","validity":"-1h"}`, "invalid_validity", "validity"},
		{"too long", `{"tenant":"a","from":"A","to":"+447400123456","text":"` + strings.Repeat("x", 153*3+1) + `"}`, "text_too_long", "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, ferr := DecodeRequest([]byte(tt.body))
			if ferr == nil {
				_, ferr = Accept(req, now, Limits{MaxSegments: 3})
			}
			if ferr == nil {
				t.Fatal("accepted, want an error")
			}
			if ferr.Code != tt.code || ferr.Field != tt.field {
				t.Fatalf("got %s/%s (%s), want %s/%s", ferr.Code, ferr.Field, ferr.Message, tt.code, tt.field)
			}
		})
	}
}

func TestAcceptSpecExample(t *testing.T) {
	body := `{"tenant":"acme","client_ref":"order-8812-otp","campaign_id":"black-friday","from":"ACME",
		"to":"+447700900123","text":"Your code is 123456","priority":"otp","send_at":"2026-11-27T09:00:00Z",
		"validity":"24h","metadata":{"order":"8812"}}`
	req, ferr := DecodeRequest([]byte(body))
	if ferr != nil {
		t.Fatal(ferr)
	}
	m, ferr := Accept(req, now, Limits{MaxSegments: 10})
	if ferr != nil {
		t.Fatal(ferr)
	}
	sendAt := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	checks := []struct {
		name      string
		got, want any
	}{
		{"country", m.Country, "GB"},
		{"priority", m.Priority, sluicepb.Priority_PRIORITY_OTP},
		{"encoding", m.Encoding, sluicepb.Encoding_ENCODING_GSM7},
		{"segments", m.Segments, uint32(1)},
		{"send_at", m.SendAtMs, sendAt.UnixMilli()},
		{"expires_at", m.ExpiresAtMs, sendAt.Add(24 * time.Hour).UnixMilli()},
		{"metadata", m.Metadata["order"], "8812"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// The same (tenant, client_ref) always gets the same id.
	again, _ := Accept(req, now.Add(time.Hour), Limits{MaxSegments: 10})
	if again.Id != m.Id {
		t.Errorf("retried request got id %s, first got %s", again.Id, m.Id)
	}
}

func TestAcceptEncodings(t *testing.T) {
	tests := []struct {
		text     string
		enc      sluicepb.Encoding
		segments uint32
	}{
		{strings.Repeat("a", 160), sluicepb.Encoding_ENCODING_GSM7, 1},
		{strings.Repeat("a", 161), sluicepb.Encoding_ENCODING_GSM7, 2},
		{"Thanks 😀", sluicepb.Encoding_ENCODING_UCS2, 1},
		{strings.Repeat("é", 71), sluicepb.Encoding_ENCODING_GSM7, 1}, // é is in the GSM-7 alphabet
		{strings.Repeat("ж", 71), sluicepb.Encoding_ENCODING_UCS2, 2},
	}
	for _, tt := range tests {
		m, ferr := Accept(requestWithText(tt.text), now, Limits{MaxSegments: 10})
		if ferr != nil {
			t.Fatalf("%q: %v", tt.text, ferr)
		}
		if m.Encoding != tt.enc || m.Segments != tt.segments {
			t.Errorf("%.20q: %v/%d, want %v/%d", tt.text, m.Encoding, m.Segments, tt.enc, tt.segments)
		}
	}
}

func requestWithText(text string) message.Request {
	return message.Request{Tenant: "t", From: "A", To: "+447400123456", Text: text}
}
