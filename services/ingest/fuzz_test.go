package ingest

import (
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// FuzzDecodeRequest: any sms.requests value is either refused with a
// machine-readable error or accepted as a well-formed message; nothing
// panics.
func FuzzDecodeRequest(f *testing.F) {
	for _, c := range topicCases() {
		f.Add([]byte(c.body))
	}
	f.Add([]byte(withTenant("acme", good(`client_ref="r"`, `priority="otp"`, `send_at="2026-11-27T09:00:00Z"`, `validity="1h"`))))
	in := &intake{limits: testLimits, tenants: map[string]bool{"acme": true}}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, ferr := in.validateRecord(data, now)
		if ferr != nil {
			if ferr.Code == "" || ferr.Message == "" || m != nil {
				t.Fatalf("refusal without a reason: %+v, %v", ferr, m)
			}
			return
		}
		checkAccepted(t, m.Tenant, m.To, m.Segments)
	})
}

// FuzzDecodeBody: any POST body decodes into messages or errors, and what
// decodes validates or is refused cleanly.
func FuzzDecodeBody(f *testing.F) {
	for _, c := range messageCases {
		f.Add([]byte(c.body))
	}
	f.Add([]byte(batchOf(good(), good(`client_ref="a"`))))
	f.Add([]byte(`{"messages":null}`))
	f.Add([]byte(`{"messages":[7]}`))
	// The strict decoding's refusals, in a batch and around it.
	f.Add([]byte(batchOf(good(), good(`text="\ud800"`), "{\"text\":\"\xff\"}", `{"to":"a","TO":"b"}`)))
	f.Add([]byte(`{"messages":[` + good() + `],"Messages":[]}`))
	f.Add([]byte(`{"messages":[` + good() + `],"messages":[` + good() + `]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		reqs, batch, errs := DecodeBody(body, "acme")
		if reqs == nil && len(errs) == 0 {
			t.Fatal("no messages and no error")
		}
		if !batch && len(reqs) > 1 || len(reqs) > MaxBatch {
			t.Fatalf("%d messages (batch %v)", len(reqs), batch)
		}
		for _, e := range errs {
			// Errors about the body as a whole have no index; a batch's
			// message errors do.
			if e.Code == "" || (e.Index != nil) != (batch && reqs != nil) {
				t.Fatalf("bad error %+v (batch %v, %d messages)", e, batch, len(reqs))
			}
		}
		for _, r := range reqs {
			if r == nil {
				continue
			}
			if r.Tenant != "acme" {
				t.Fatalf("tenant %q, want the key's", r.Tenant)
			}
			if m, ferr := Accept("acme", *r, now, testLimits); ferr == nil {
				checkAccepted(t, m.Tenant, m.To, m.Segments)
			}
		}
	})
}

// FuzzNormaliseNumber: an accepted number is E.164, its normal form is
// accepted again unchanged, and its country is known.
func FuzzNormaliseNumber(f *testing.F) {
	for _, s := range []string{"+447400123456", "+44 7400 123456", "+1 (415) 555-2671", "+33612345678", "+4915112345678",
		"+447700900123", "447400123456", "+", "+0", "+999123456789", "+44abc", "++44", "+44\x00", "+８８８"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		e164, country, ferr := NormaliseNumber(raw)
		if ferr != nil {
			if ferr.Field != "to" || (ferr.Code != CodeInvalidNumber && ferr.Code != CodeNotMobile) {
				t.Fatalf("%q: %+v", raw, ferr)
			}
			return
		}
		if len(e164) < 2 || e164[0] != '+' || strings.Trim(e164[1:], "0123456789") != "" || len(e164) > 16 {
			t.Fatalf("%q normalised to %q, not E.164", raw, e164)
		}
		again, country2, ferr := NormaliseNumber(e164)
		if ferr != nil || again != e164 || country2 != country {
			t.Fatalf("%q -> %q (%s) -> %q (%s) %v", raw, e164, country, again, country2, ferr)
		}
		if country == "" || country == phonenumbers.UNKNOWN_REGION {
			t.Fatalf("%q: no country", raw)
		}
	})
}

// FuzzCheckSender: an accepted sender ID is a short code, a long code or an
// alphanumeric ID of at most 11 characters.
func FuzzCheckSender(f *testing.F) {
	for _, s := range []string{"ACME", "Acme Co.", "12345", "+447400123456", "447400123456", "12", "ACME!", " A", "Café", "1234567890123456"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, from string) {
		if CheckSender(from) != nil {
			return
		}
		digits := strings.TrimPrefix(from, "+")
		numeric := digits != "" && strings.Trim(digits, "0123456789") == ""
		switch {
		case numeric && (len(digits) < 3 || len(digits) > 15):
			t.Fatalf("numeric sender %q accepted", from)
		case !numeric && (len(from) > 11 || strings.TrimSpace(from) != from):
			t.Fatalf("alphanumeric sender %q accepted", from)
		}
	})
}

func checkAccepted(t *testing.T, tenant, to string, segments uint32) {
	t.Helper()
	if tenant != "acme" || !strings.HasPrefix(to, "+") || segments < 1 || segments > uint32(testLimits.MaxSegments) {
		t.Fatalf("accepted a malformed message: tenant %q to %q segments %d", tenant, to, segments)
	}
}

// FuzzNumberTypeIsValidity keeps NormaliseNumber's shortcut honest: a number
// has a type exactly when libphonenumber calls it valid.
func FuzzNumberTypeIsValidity(f *testing.F) {
	for _, s := range []string{"+447400123456", "+15555555555", "+442079460000", "+447624123456", "+80012345678", "+4990012345678"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		num, err := phonenumbers.Parse(raw, "")
		if err != nil {
			return
		}
		if typed, valid := phonenumbers.GetNumberType(num) != phonenumbers.UNKNOWN, phonenumbers.IsValidNumber(num); typed != valid {
			t.Fatalf("%q: typed %v, valid %v", raw, typed, valid)
		}
	})
}
