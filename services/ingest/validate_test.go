package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// TestTopicRejects checks the exact error of every bad sms.requests record
// (the Kafka test publishes the same records and checks the dead letters).
func TestTopicRejects(t *testing.T) {
	in := &intake{limits: testLimits, tenants: map[string]bool{"acme": true}}
	cases := topicCases()
	if len(cases) < 30 {
		t.Fatalf("%d bad records, want at least 30", len(cases))
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			m, ferr := in.validateRecord([]byte(tt.body), now)
			if ferr == nil {
				t.Fatalf("accepted as %s, want %s", m.Id, tt.code)
			}
			want := FieldError{Code: tt.code, Field: tt.field, Message: tt.message}
			if *ferr != want {
				t.Fatalf("got  %+v\nwant %+v", *ferr, want)
			}
		})
	}
}

func TestTopicTenants(t *testing.T) {
	body := []byte(withTenant("anyone", good()))
	open := &intake{limits: testLimits, tenants: map[string]bool{}}
	if _, ferr := open.validateRecord(body, now); ferr != nil {
		t.Errorf("with no tenants declared, any tenant is accepted; got %v", ferr)
	}
	closed := &intake{limits: testLimits, tenants: map[string]bool{"acme": true}}
	if _, ferr := closed.validateRecord(body, now); ferr == nil || ferr.Code != CodeUnknownTenant {
		t.Errorf("undeclared tenant: got %v, want %s", ferr, CodeUnknownTenant)
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
	m, ferr := Accept("acme", req, now, testLimits)
	if ferr != nil {
		t.Fatal(ferr)
	}
	sendAt := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	checks := []struct {
		name      string
		got, want any
	}{
		{"id", m.Id, message.IDForClientRef("acme", "order-8812-otp")},
		{"tenant", m.Tenant, "acme"},
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
	// The same (tenant, client_ref) always gets the same id; another
	// tenant's same client_ref another one.
	again, _ := Accept("acme", req, now.Add(time.Hour), testLimits)
	other, _ := Accept("globex", req, now, testLimits)
	if again.Id != m.Id || other.Id == m.Id {
		t.Errorf("ids: first %s, retried %s, other tenant %s", m.Id, again.Id, other.Id)
	}
}

func TestAcceptGoodInputs(t *testing.T) {
	tests := []struct {
		name, from, to string
		wantTo         string
		country        string
	}{
		{"alphanumeric sender", "ACME", "+447400123456", "+447400123456", "GB"},
		{"sender with space and dot", "Acme Co.", "+447400123456", "+447400123456", "GB"},
		{"11-character sender", "ACMECORPORA", "+447400123456", "+447400123456", "GB"},
		{"short code", "12345", "+447400123456", "+447400123456", "GB"},
		{"long code with plus", "+447400123456", "+33612345678", "+33612345678", "FR"},
		{"long code without plus", "447400123456", "+4915112345678", "+4915112345678", "DE"},
		{"number with spaces", "ACME", "+44 7400 123456", "+447400123456", "GB"},
		{"fixed line or mobile (US)", "ACME", "+14155552671", "+14155552671", "US"},
		{"Ofcom drama range", "ACME", "+447700900123", "+447700900123", "GB"},
		{"Isle of Man mobile", "ACME", "+447624123456", "+447624123456", "IM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ferr := Accept("acme", message.Request{From: tt.from, To: tt.to, Text: "hi"}, now, testLimits)
			if ferr != nil {
				t.Fatal(ferr)
			}
			if m.To != tt.wantTo || m.Country != tt.country || m.From != tt.from {
				t.Errorf("to %s country %s from %s, want %s %s %s", m.To, m.Country, m.From, tt.wantTo, tt.country, tt.from)
			}
		})
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
		{strings.Repeat("a", 153*10), sluicepb.Encoding_ENCODING_GSM7, 10},
		{"Thanks 😀", sluicepb.Encoding_ENCODING_UCS2, 1},
		{strings.Repeat("é", 71), sluicepb.Encoding_ENCODING_GSM7, 1}, // é is in the GSM-7 alphabet
		{strings.Repeat("ж", 71), sluicepb.Encoding_ENCODING_UCS2, 2},
	}
	for _, tt := range tests {
		m, ferr := Accept("t", message.Request{From: "A", To: "+447400123456", Text: tt.text}, now, testLimits)
		if ferr != nil {
			t.Fatalf("%.20q: %v", tt.text, ferr)
		}
		if m.Encoding != tt.enc || m.Segments != tt.segments {
			t.Errorf("%.20q: %v/%d, want %v/%d", tt.text, m.Encoding, m.Segments, tt.enc, tt.segments)
		}
	}
}

// TestAcceptsFaithfulText: what the strict decoding must still accept, and
// how it travels: escapes that decode to valid text (a surrogate pair is one
// character), a replacement character sent on purpose, metadata keys that
// differ only in case (a map, not struct fields), and characters outside
// GSM-7, which go UCS-2.
func TestAcceptsFaithfulText(t *testing.T) {
	for _, tt := range []struct {
		name, body, text, encoding string
		metadata                   int
	}{
		{"escaped surrogate pair", good(`text="Thanks \ud83d\ude00"`), "Thanks 😀", "ucs2", 0},
		{"upper-case escapes", good(`text="\uD83D\uDE00"`), "😀", "ucs2", 0},
		{"raw emoji", good(`text="Thanks 😀"`), "Thanks 😀", "ucs2", 0},
		{"a replacement character on purpose", good(`text="\ufffd�"`), "\ufffd\ufffd", "ucs2", 0},
		{"escapes of GSM-7 text", good(`text="\u0041\n\"\\\/"`), "A\n\"\\/", "gsm7", 0},
		{"cyrillic", good(`text="Привет"`), "Привет", "ucs2", 0},
		{"metadata keys differing in case", good(`metadata={"k":"a","K":"b"}`), "Your code is 123456", "gsm7", 2},
		{"the same key in two objects", `{"from":"ACME","to":"+447400123456","text":"x","metadata":{"text":"y"}}`, "x", "gsm7", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, ferr := DecodeRequest([]byte(withTenant("acme", tt.body)))
			if ferr != nil {
				t.Fatal(ferr)
			}
			m, ferr := Accept("acme", req, now, testLimits)
			if ferr != nil {
				t.Fatal(ferr)
			}
			if m.Text != tt.text || message.EncodingName(m.Encoding) != tt.encoding || len(m.Metadata) != tt.metadata {
				t.Errorf("text %q (%s), %d metadata keys; want %q (%s), %d", m.Text, message.EncodingName(m.Encoding), len(m.Metadata), tt.text, tt.encoding, tt.metadata)
			}
		})
	}
}

// TestCheckText is the text check of the front doors that do not speak
// JSON (SMPP decodes into a Go string).
func TestCheckText(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"hello", ""},
		{"😀 ж €", ""},
		{"\ufffd", ""},
		{"a\xffb", "invalid_text: text: is not valid UTF-8"},
		{"\xed\xa0\x80", "invalid_text: text: is not valid UTF-8"}, // a surrogate written as UTF-8
		{"a\x00", "invalid_text: text: must not contain NUL (U+0000)"},
	} {
		got := ""
		if ferr := CheckText("text", tt.text); ferr != nil {
			got = ferr.Error()
		}
		if got != tt.want {
			t.Errorf("CheckText(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
