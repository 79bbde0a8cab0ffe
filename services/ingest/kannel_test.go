package ingest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas"
)

var acmeKannel = kannelUser{tenant: "acme"}

// TestParseSendSMS reads sendsms requests shaped like those of Kannel's user
// guide (its sendsms and DLR chapters) and the faults smsbox refuses, each
// with smsbox's answer.
func TestParseSendSMS(t *testing.T) {
	tests := []struct {
		name  string
		query string
		user  kannelUser
		want  sendSMS
		ans   *kannelAnswer
	}{
		{"guide: hello world", "username=foo&password=bar&to=447700900123&text=Hello+world", acmeKannel, sendSMS{}, &kannelNoSender},
		{"guide: hello world with a default sender", "username=foo&password=bar&to=447700900123&text=Hello+world", kannelUser{defaultSender: "ACME"},
			sendSMS{To: []string{"+447700900123"}, From: "ACME", Text: "Hello world", Deferred: -1, Validity: -1}, nil},
		{"guide: DLR", "username=tester&password=foobar&to=%2B447700900123&from=ACME&text=Hi&dlr-mask=31&dlr-url=http%3A%2F%2Fhost%2Fdlr%3Ftype%3D%25d%26to%3D%25p", acmeKannel,
			sendSMS{To: []string{"+447700900123"}, From: "ACME", Text: "Hi", DLRURL: "http://host/dlr?type=%d&to=%p", DLRMask: 31, Deferred: -1, Validity: -1}, nil},
		{"deprecated dlrmask and dlrurl", "to=447700900123&from=ACME&text=Hi&dlrmask=3&dlrurl=https://h/x", acmeKannel,
			sendSMS{To: []string{"+447700900123"}, From: "ACME", Text: "Hi", DLRURL: "https://h/x", DLRMask: 3, Deferred: -1, Validity: -1}, nil},
		{"mask without url takes the user's", "to=447700900123&from=ACME&text=Hi&dlr-mask=1", kannelUser{dlrURL: "http://u/d?%d"},
			sendSMS{To: []string{"+447700900123"}, From: "ACME", Text: "Hi", DLRURL: "http://u/d?%d", DLRMask: 1, Deferred: -1, Validity: -1}, nil},
		{"url without mask asks for nothing", "to=447700900123&from=ACME&text=Hi&dlr-url=http://h/x", acmeKannel,
			sendSMS{To: []string{"+447700900123"}, From: "ACME", Text: "Hi", DLRURL: "http://h/x", Deferred: -1, Validity: -1}, nil},
		{"several receivers, + and space, 00, dashes and a repeat", "to=447700900123+00447700900124%20%2B44-7700-900125+447700900123&from=ACME&text=x", acmeKannel,
			sendSMS{To: []string{"+447700900123", "+447700900124", "+447700900125"}, From: "ACME", Text: "x", Deferred: -1, Validity: -1}, nil},
		{"a denied receiver among good ones", "to=447700900123+44770090012x&from=ACME&text=x", acmeKannel,
			sendSMS{To: []string{"+447700900123"}, Denied: []string{"44770090012x"}, From: "ACME", Text: "x", Deferred: -1, Validity: -1}, nil},
		{"guide: UCS-2 octets", "to=447700900123&from=ACME&coding=2&text=%04%1F%04%40%04%38%04%32%04%35%04%42", acmeKannel,
			sendSMS{To: []string{"+447700900123"}, From: "ACME", Text: "Привет", Deferred: -1, Validity: -1}, nil},
		{"UCS-2 with charset UTF-8", "to=447700900123&from=ACME&coding=2&charset=UTF-8&text=%D0%9F%D1%80%D0%B8", acmeKannel,
			sendSMS{To: []string{"+447700900123"}, From: "ACME", Text: "При", Deferred: -1, Validity: -1}, nil},
		{"Latin-1 text", "to=447700900123&from=ACME&charset=ISO-8859-1&text=caf%E9", acmeKannel,
			sendSMS{To: []string{"+447700900123"}, From: "ACME", Text: "café", Deferred: -1, Validity: -1}, nil},
		{"UCS-2 surrogate pair", "to=447700900123&from=ACME&coding=2&text=%D8%3D%DE%00", acmeKannel,
			sendSMS{To: []string{"+447700900123"}, From: "ACME", Text: "😀", Deferred: -1, Validity: -1}, nil},
		{"deferred and validity in minutes", "to=447700900123&from=ACME&text=x&deferred=10&validity=90", acmeKannel,
			sendSMS{To: []string{"+447700900123"}, From: "ACME", Text: "x", Deferred: 10, Validity: 90}, nil},
		{"numbers read as sscanf does", "to=447700900123&from=ACME&text=x&dlr-mask=+3abc&dlr-url=http://h/x&coding=x", acmeKannel,
			sendSMS{To: []string{"+447700900123"}, From: "ACME", Text: "x", DLRURL: "http://h/x", DLRMask: 3, Deferred: -1, Validity: -1}, nil},

		{"no to", "from=ACME&text=x", acmeKannel, sendSMS{}, &kannelNoTo},
		{"empty to", "to=&from=ACME&text=x", acmeKannel, sendSMS{}, &kannelEmptyTo},
		{"to of blanks only", "to=+++&from=ACME&text=x", acmeKannel, sendSMS{}, &kannelDenied},
		{"every receiver denied", "to=abc+12x&from=ACME&text=x", acmeKannel, sendSMS{}, &kannelDenied},
		{"udh", "to=447700900123&from=ACME&text=x&udh=%05%00%03%01%02%01", acmeKannel, sendSMS{}, &kannelBadUDH},
		{"dlr-url not http", "to=447700900123&from=ACME&text=x&dlr-url=ftp://h/x&dlr-mask=1", acmeKannel, sendSMS{}, &kannelBadDLRURL},
		{"dlr-url too short", "to=447700900123&from=ACME&text=x&dlr-url=http:/&dlr-mask=1", acmeKannel, sendSMS{}, &kannelBadDLRURL},
		{"dlr-mask over 63", "to=447700900123&from=ACME&text=x&dlr-url=http://h/x&dlr-mask=64", acmeKannel, sendSMS{}, &kannelBadDLRMask},
		{"dlr-mask under -1", "to=447700900123&from=ACME&text=x&dlr-mask=-2", acmeKannel, sendSMS{}, &kannelBadDLRMask},
		{"coding 3", "to=447700900123&from=ACME&text=x&coding=3", acmeKannel, sendSMS{}, &kannelBadCoding},
		{"negative validity", "to=447700900123&from=ACME&text=x&validity=-5", acmeKannel, sendSMS{}, &kannelBadValidity},
		{"negative deferred", "to=447700900123&from=ACME&text=x&deferred=-5", acmeKannel, sendSMS{}, &kannelBadDeferred},
		{"odd UCS-2 octets", "to=447700900123&from=ACME&coding=2&text=%04%1F%04", acmeKannel, sendSMS{}, &kannelBadCharset},
		{"lone surrogate", "to=447700900123&from=ACME&coding=2&text=%D8%3D%00A", acmeKannel, sendSMS{}, &kannelBadCharset},
		{"unknown charset", "to=447700900123&from=ACME&charset=KLINGON&text=x", acmeKannel, sendSMS{}, &kannelBadCharset},
		{"no sender before a bad mask", "to=447700900123&text=x&dlr-mask=99", acmeKannel, sendSMS{}, &kannelNoSender},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, ans := parseSendSMS(q, tt.user)
			if !reflect.DeepEqual(ans, tt.ans) {
				t.Fatalf("answer %v, want %v", ans, tt.ans)
			}
			if tt.ans == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parsed\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestKannelCredentials(t *testing.T) {
	for _, tt := range []struct {
		query, user, pass string
		ok                bool
	}{
		{"username=foo&password=bar", "foo", "bar", true},
		{"user=foo&pass=bar", "foo", "bar", true},
		{"username=foo&user=other&password=bar", "foo", "bar", true},
		{"username=foo", "foo", "", false},
		{"password=bar", "", "bar", false},
	} {
		q, _ := url.ParseQuery(tt.query)
		user, pass, ok := kannelCredentials(q)
		if user != tt.user || pass != tt.pass || ok != tt.ok {
			t.Errorf("%s: %q %q %v, want %q %q %v", tt.query, user, pass, ok, tt.user, tt.pass, tt.ok)
		}
	}
}

// FuzzParseSendSMS: any query string parses without a panic into either an
// answer or receivers that are each once in E.164 form with the text valid
// for the shared validation to judge, and a mask within Kannel's bits.
func FuzzParseSendSMS(f *testing.F) {
	for _, s := range []string{
		"to=447700900123&from=ACME&text=Hello+world",
		"to=447700900123+00447700900124&from=ACME&text=x&dlr-mask=31&dlr-url=http://h/%d",
		"to=447700900123&from=ACME&coding=2&text=%D8%3D%DE%00",
		"to=447700900123&from=ACME&charset=ISO-8859-1&text=caf%E9&deferred=5&validity=60",
		"to=&text=x", "to=abc&from=A", "dlrmask=-1&dlr-mask=64",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, _ := url.ParseQuery(query) // what a server would pass on
		req, ans := parseSendSMS(q, kannelUser{defaultSender: "ACME", dlrURL: "http://u/"})
		if ans != nil {
			if ans.status != http.StatusBadRequest || !strings.HasSuffix(ans.text, "rejected") && ans != &kannelDenied {
				t.Fatalf("answer %v", ans)
			}
			return
		}
		if len(req.To) == 0 || len(req.To) > maxKannelReceivers || req.From == "" || req.DLRMask < 0 || req.DLRMask > 63 {
			t.Fatalf("parsed %+v", req)
		}
		for i, to := range req.To {
			if !strings.HasPrefix(to, "+") || slices.Contains(req.To[:i], to) || strings.Trim(to, "+0123456789") != "" {
				t.Fatalf("receiver %q of %v", to, req.To)
			}
		}
		if req.DLRMask != 0 && req.DLRURL == "" {
			t.Fatalf("mask %d without a URL", req.DLRMask)
		}
		_ = req.requests("acme", time.Unix(1_800_000_000, 0))
	})
}

func kannelConfig(t testing.TB) config.Config {
	cfg := testConfig(t)
	cfg.Tenants = append(cfg.Tenants,
		config.Tenant{ID: "kan", KannelUsername: "tester", KannelPasswordSHA256: keyHash("foobar"), KannelDefaultSender: "KAN"},
		config.Tenant{ID: "kan2", KannelUsername: "other", KannelPasswordSHA256: keyHash("secret"), KannelDLRURL: "http://tenant.example/dlr?t=%d"},
	)
	return cfg
}

// TestKannelSendSMS sends Kannel-style requests to a running ingest and
// checks each answer (status, body, headers) and, at the end, that exactly
// the accepted messages reached the router's intake, with their callbacks.
func TestKannelSendSMS(t *testing.T) {
	cfg := kannelConfig(t)
	base := startIngest(t, cfg, hooks{})
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name, method, contentType, query string
		status                           int
		body                             string
		code                             string // X-Sluice-Error-Code
		accepted                         int
	}{
		{"guide: GET", http.MethodGet, "", "username=tester&password=foobar&to=447700900123&text=Hello+world", 202, "0: Accepted for delivery", "", 1},
		{"POST form", http.MethodPost, form, "username=tester&password=foobar&to=447700900124&from=ACME&text=Hi&dlr-mask=3&dlr-url=http%3A%2F%2Fh%2Fd%3Ft%3D%25d", 202, "0: Accepted for delivery", "", 1},
		{"three receivers", http.MethodGet, "", "user=tester&pass=foobar&to=447700900125+447700900126+447700900127&text=x", 202, "0: Accepted for delivery", "", 3},
		{"deferred", http.MethodGet, "", "username=tester&password=foobar&to=447700900128&text=later&deferred=30", 202, "3: Queued for later delivery", "", 1},
		{"the user's dlr-url", http.MethodGet, "", "username=other&password=secret&to=447700900129&from=ACME&text=x&dlr-mask=1", 202, "0: Accepted for delivery", "", 1},
		{"wrong password", http.MethodGet, "", "username=tester&password=nope&to=447700900123&text=x", 403, "Authorization failed for sendsms", "", 0},
		{"another user's password", http.MethodGet, "", "username=tester&password=secret&to=447700900123&text=x", 403, "Authorization failed for sendsms", "", 0},
		{"no credentials", http.MethodGet, "", "to=447700900123&text=x", 403, "Authorization failed for sendsms", "", 0},
		{"no to", http.MethodGet, "", "username=tester&password=foobar&text=x", 400, "Missing receiver number, rejected", "", 0},
		{"empty to", http.MethodPost, form, "username=tester&password=foobar&to=&text=x", 400, "Empty receiver number not allowed, rejected", "", 0},
		{"bad dlr-mask", http.MethodGet, "", "username=tester&password=foobar&to=447700900123&text=x&dlr-mask=99", 400, "DLR-Mask field misformed, rejected", "", 0},
		{"text/plain POST", http.MethodPost, "text/plain", "username=tester&password=foobar&to=447700900123&text=x", 400, "Invalid content-type", "", 0},
		{"fixed line: the shared validation", http.MethodGet, "", "username=tester&password=foobar&to=442079460000&text=x", 400,
			"not_mobile: to: is a fixed-line number, not a mobile one, rejected", CodeNotMobile, 0},
		{"one bad receiver of two: none sent", http.MethodGet, "", "username=tester&password=foobar&to=447700900123+442079460000&text=x", 400,
			"not_mobile: to: is a fixed-line number, not a mobile one (receiver +442079460000), rejected", CodeNotMobile, 0},
		{"bad sender", http.MethodGet, "", "username=tester&password=foobar&to=447700900123&from=TOOLONGSENDERID&text=x", 400,
			"invalid_sender: from: an alphanumeric sender ID is at most 11 characters, rejected", CodeInvalidSender, 0},
		{"no text", http.MethodGet, "", "username=tester&password=foobar&to=447700900123", 400, "required: text: is required, rejected", CodeRequired, 0},
	}
	want := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, body := base+SendSMSPath+"?"+tt.query, []byte(nil)
			if tt.method == http.MethodPost {
				u, body = base+SendSMSPath, []byte(tt.query)
			}
			a := call(t, tt.method, u, "", tt.contentType, body)
			if a.status != tt.status || string(a.body) != tt.body || a.header.Get(HeaderErrorCode) != tt.code {
				t.Fatalf("%d %q (code %q), want %d %q (code %q)", a.status, a.body, a.header.Get(HeaderErrorCode), tt.status, tt.body, tt.code)
			}
			if ids := a.header.Get(HeaderMessageID); tt.accepted != 0 && len(strings.Split(ids, ",")) != tt.accepted {
				t.Errorf("message ids %q, want %d", ids, tt.accepted)
			}
		})
		want += tt.accepted
	}

	msgs := acceptedMessages(t, cfg)
	if len(msgs) != want {
		t.Fatalf("%d messages on the router's intake, want %d", len(msgs), want)
	}
	byTo := map[string]int{}
	for _, m := range msgs {
		byTo[m.To]++
		switch m.To {
		case "+447700900124":
			if m.Tenant != "kan" || m.From != "ACME" || m.DlrUrl != "http://h/d?t=%d" || m.DlrMask != 3 {
				t.Errorf("POST form message: %v", m)
			}
		case "+447700900129":
			if m.Tenant != "kan2" || m.DlrUrl != "http://tenant.example/dlr?t=%d" || m.DlrMask != 1 {
				t.Errorf("message with the user's dlr-url: %v", m)
			}
		case "+447700900128":
			if m.SendAtMs == 0 {
				t.Errorf("deferred message without send_at: %v", m)
			}
		default:
			if m.Tenant != "kan" || m.From != "KAN" || m.DlrUrl != "" || m.DlrMask != 0 {
				t.Errorf("message %v", m)
			}
		}
	}
	for to, n := range byTo {
		if n != 1 {
			t.Errorf("%s: %d messages", to, n)
		}
	}
	// The accepted status events carry the callback too.
	withCallback := 0
	for _, rec := range records(t, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+schemas.TopicStatus) {
		var st message.Status
		if err := json.Unmarshal(rec.Value, &st); err != nil {
			t.Fatal(err)
		}
		if st.DLRCallback != nil {
			withCallback++
			if st.Status != message.StatusAccepted || st.DLRCallback.From == "" {
				t.Errorf("status with a callback: %+v", st)
			}
		}
	}
	if withCallback != 2 {
		t.Errorf("%d status events with a dlr_callback, want 2", withCallback)
	}
}
