package ingest

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

func ix(i int) *int { return &i }

func batchOf(msgs ...string) string { return `{"messages":[` + strings.Join(msgs, ",") + `]}` }

// TestHTTPRejects sends every bad request to a running ingest and checks the
// exact answer; then one good message, which must be all that reached the
// accepted and status topics.
func TestHTTPRejects(t *testing.T) {
	cfg := testConfig(t)
	base := startIngest(t, cfg, hooks{})

	type httpCase struct {
		name, key, contentType, body string
		status                       int
		errors                       []APIError
	}
	one := func(code, field, message string) []APIError {
		return []APIError{{FieldError: FieldError{Code: code, Field: field, Message: message}}}
	}
	var cases []httpCase
	for _, c := range messageCases {
		cases = append(cases, httpCase{c.name, "acme-key", "application/json", c.body, http.StatusBadRequest, one(c.code, c.field, c.message)})
	}
	thousandAndOne := make([]string, MaxBatch+1)
	for i := range thousandAndOne {
		thousandAndOne[i] = good()
	}
	unauthorized := one(CodeUnauthorized, "", "a valid API key is required: Authorization: Bearer <key>")
	cases = append(cases,
		httpCase{"tenant in the body", "acme-key", "application/json", withTenant("globex", good()), http.StatusBadRequest, one("unknown_field", "tenant", "unknown field")},
		httpCase{"empty body", "acme-key", "application/json", "", http.StatusBadRequest, one("malformed_json", "", "empty body")},
		httpCase{"not json", "acme-key", "application/json", "hello", http.StatusBadRequest, one("malformed_json", "", "invalid character 'h' looking for beginning of value")},
		httpCase{"array body", "acme-key", "application/json", `[` + good() + `]`, http.StatusBadRequest, one("invalid_type", "", "must be a JSON object")},
		httpCase{"trailing data", "acme-key", "application/json", good() + ` {}`, http.StatusBadRequest, one("malformed_json", "", "unexpected data after the JSON object")},
		httpCase{"empty batch", "acme-key", "application/json", `{"messages":[]}`, http.StatusBadRequest, one("empty_batch", "messages", "at least one message is required")},
		httpCase{"null batch", "acme-key", "application/json", `{"messages":null}`, http.StatusBadRequest, one("empty_batch", "messages", "at least one message is required")},
		httpCase{"batch not an array", "acme-key", "application/json", `{"messages":{}}`, http.StatusBadRequest, one("invalid_type", "messages", "must be an array")},
		httpCase{"batch with an extra field", "acme-key", "application/json", `{"messages":[` + good() + `],"tenant":"globex"}`, http.StatusBadRequest, one("unknown_field", "tenant", "unknown field")},
		httpCase{"batch of 1001", "acme-key", "application/json", batchOf(thousandAndOne...), http.StatusBadRequest, one("batch_too_large", "messages", "at most 1000 messages per request, got 1001")},
		httpCase{"batch with bad messages", "acme-key", "application/json",
			batchOf(good(), good(`to=-`), good(), good(`priority="now"`), `7`), http.StatusBadRequest, []APIError{
				{Index: ix(1), FieldError: FieldError{Code: "required", Field: "to", Message: "is required"}},
				{Index: ix(3), FieldError: FieldError{Code: "invalid_priority", Field: "priority", Message: "must be otp, transactional or marketing"}},
				{Index: ix(4), FieldError: FieldError{Code: "invalid_type", Message: "must be a JSON object"}},
			}},
		httpCase{"batch repeating a client_ref", "acme-key", "application/json",
			batchOf(good(`client_ref="a"`), good(`client_ref="b"`), good(`client_ref="a"`)), http.StatusBadRequest, []APIError{
				{Index: ix(2), FieldError: FieldError{Code: "duplicate_client_ref", Field: "client_ref", Message: "repeats the client_ref of message 0"}},
			}},
		httpCase{"messages twice", "acme-key", "application/json", `{"messages":[` + good() + `],"messages":[` + good(`to="+447400654321"`) + `]}`, http.StatusBadRequest, one("duplicate_field", "messages", "appears more than once in the object")},
		httpCase{"batch with bad text", "acme-key", "application/json",
			batchOf(good(), good(`text="\ud800"`), good("text=\"\xff\""), `{"from":"ACME","to":"+447400123456","text":"x","to":"+447400654321"}`), http.StatusBadRequest, []APIError{
				{Index: ix(1), FieldError: FieldError{Code: "invalid_text", Field: "text", Message: `holds a lone UTF-16 surrogate (\ud800)`}},
				{Index: ix(2), FieldError: FieldError{Code: "invalid_text", Field: "text", Message: "is not valid UTF-8 (byte 0xff)"}},
				{Index: ix(3), FieldError: FieldError{Code: "duplicate_field", Field: "to", Message: "appears more than once in the object"}},
			}},
		httpCase{"body too large", "acme-key", "application/json", good(`text="` + strings.Repeat("x", MaxBodySize) + `"`), http.StatusRequestEntityTooLarge, one("body_too_large", "", fmt.Sprintf("the body is larger than %d bytes", MaxBodySize))},
		httpCase{"text/plain", "acme-key", "text/plain", good(), http.StatusUnsupportedMediaType, one("unsupported_media_type", "", "the body must be application/json")},
		httpCase{"no API key", "", "application/json", good(), http.StatusUnauthorized, unauthorized},
		httpCase{"wrong API key", "acme-key2", "application/json", good(), http.StatusUnauthorized, unauthorized},
		httpCase{"the key's hash as key", keyHash("acme-key"), "application/json", good(), http.StatusUnauthorized, unauthorized},
	)
	if len(cases) < 30 {
		t.Fatalf("%d bad requests, want at least 30", len(cases))
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, http.MethodPost, base+"/v1/messages", tt.key, tt.contentType, []byte(tt.body))
			if a.status != tt.status {
				t.Fatalf("status %d (%s), want %d", a.status, a.body, tt.status)
			}
			got := decode[ErrorBody](t, a)
			if !reflect.DeepEqual(got.Errors, tt.errors) {
				t.Fatalf("errors\n got %s\nwant %+v", a.body, tt.errors)
			}
		})
	}

	// Another scheme than Bearer is refused too, and says which it wants.
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(good()))
	req.SetBasicAuth("acme", "acme-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("basic auth: %d, WWW-Authenticate %q; want 401 with a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// Nothing refused reached Kafka: one good message is all there is.
	ok := post(t, base, "acme-old-key", good(`client_ref="the-good-one"`))
	if ok.status != http.StatusAccepted {
		t.Fatalf("good message: %d %s", ok.status, ok.body)
	}
	res := decode[Result](t, ok)
	accepted := acceptedMessages(t, cfg)
	if len(accepted) != 1 || accepted[0].Id != res.MessageID || accepted[0].Tenant != "acme" {
		t.Fatalf("accepted topic holds %d messages (%v), want only %s", len(accepted), accepted, res.MessageID)
	}
	if n := len(records(t, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+schemas.TopicStatus)); n != 1 {
		t.Errorf("status topic holds %d events, want 1 (accepted)", n)
	}
	if n := len(records(t, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+schemas.TopicRequestsDLQ)); n != 0 {
		t.Errorf("DLQ holds %d records; HTTP errors are answered, not dead-lettered", n)
	}
}

// TestHTTPAcceptAndGet posts one message and a batch, checks the answers and
// the records, and reads each message back; another tenant sees none.
func TestHTTPAcceptAndGet(t *testing.T) {
	cfg := testConfig(t)
	base := startIngest(t, cfg, hooks{})

	single := post(t, base, "acme-key", good(`client_ref="s1"`, `text="Thanks 😀"`))
	if single.status != http.StatusAccepted {
		t.Fatalf("single: %d %s", single.status, single.body)
	}
	s := decode[Result](t, single)
	if s.ClientRef != "s1" || s.Segments != 1 || s.Encoding != "ucs2" || s.Duplicate {
		t.Errorf("single: %+v", s)
	}

	// A batch carrying trace context: it travels into the Kafka headers.
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(batchOf(
		good(`client_ref="b1"`), good(), good(`client_ref="b3"`, `text="`+strings.Repeat("a", 161)+`"`))))
	req.Header.Set("Authorization", "Bearer acme-key")
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var batch struct{ Messages []Result }
	a := answer{status: resp.StatusCode}
	a.body, _ = readAll(resp)
	if a.status != http.StatusAccepted {
		t.Fatalf("batch: %d %s", a.status, a.body)
	}
	batch = decode[struct{ Messages []Result }](t, a)
	if len(batch.Messages) != 3 || batch.Messages[0].ClientRef != "b1" || batch.Messages[1].ClientRef != "" ||
		batch.Messages[2].Segments != 2 || batch.Messages[2].Encoding != "gsm7" {
		t.Fatalf("batch results: %+v", batch.Messages)
	}

	ids := []string{s.MessageID}
	for _, r := range batch.Messages {
		ids = append(ids, r.MessageID)
	}
	var got []string
	traced := 0
	for _, rec := range intakeRecords(t, cfg) {
		var m sluicepb.Message
		if err := proto.Unmarshal(rec.Value, &m); err != nil || string(rec.Key) != m.Tenant {
			t.Errorf("intake record keyed %q: %v (tenant %q)", rec.Key, err, m.Tenant)
		}
		got = append(got, m.Id)
		for _, h := range rec.Headers {
			if h.Key == "traceparent" && strings.Contains(string(h.Value), traceID) {
				traced++
			}
		}
	}
	if !reflect.DeepEqual(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(ids))) {
		t.Errorf("accepted records %v, want %v", got, ids)
	}
	if traced != 3 {
		t.Errorf("%d accepted records carry the request's trace, want the batch's 3", traced)
	}

	for _, id := range ids {
		a := call(t, http.MethodGet, base+"/v1/messages/"+id, "acme-key", "", nil)
		if a.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", id, a.status, a.body)
		}
		st := decode[struct {
			MessageID string `json:"message_id"`
			Status    string `json:"status"`
			Tenant    string `json:"tenant"`
		}](t, a)
		if st.MessageID != id || st.Status != "accepted" || st.Tenant != "acme" {
			t.Errorf("GET %s: %s", id, a.body)
		}
		// Another tenant's message and a message that does not exist look
		// the same.
		other := call(t, http.MethodGet, base+"/v1/messages/"+id, "globex-key", "", nil)
		missing := call(t, http.MethodGet, base+"/v1/messages/"+id+"x", "acme-key", "", nil)
		if other.status != http.StatusNotFound || string(other.body) != string(missing.body) || missing.status != http.StatusNotFound {
			t.Errorf("GET of acme's %s by globex: %d %s; of a missing one: %d %s", id, other.status, other.body, missing.status, missing.body)
		}
	}
	if a := call(t, http.MethodGet, base+"/v1/messages/"+s.MessageID, "", "", nil); a.status != http.StatusUnauthorized {
		t.Errorf("GET without a key: %d", a.status)
	}

	// Other methods and paths get the API's error format.
	for _, tt := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{http.MethodGet, "/v1/messages", http.StatusMethodNotAllowed, CodeMethodNotAllowed, "POST"},
		{http.MethodDelete, "/v1/messages/" + s.MessageID, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "GET"},
		{http.MethodGet, "/v2/messages", http.StatusNotFound, CodeNotFound, ""},
	} {
		a := call(t, tt.method, base+tt.path, "acme-key", "", nil)
		e := decode[ErrorBody](t, a)
		if a.status != tt.status || len(e.Errors) != 1 || e.Errors[0].Code != tt.code || a.header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d %s (Allow %q), want %d %s", tt.method, tt.path, a.status, a.body, a.header.Get("Allow"), tt.status, tt.code)
		}
	}
}

// TestHTTPRateLimit freezes the clock: the tenant's one request per second
// is spent by the first request, and every other one is refused with
// Retry-After, while other tenants are not limited.
func TestHTTPRateLimit(t *testing.T) {
	cfg := testConfig(t)
	base := startIngest(t, cfg, hooks{now: func() time.Time { return now }})
	if a := post(t, base, "slow-key", good()); a.status != http.StatusAccepted {
		t.Fatalf("first request: %d %s", a.status, a.body)
	}
	for range 3 {
		a := post(t, base, "slow-key", good())
		if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" {
			t.Fatalf("over the limit: %d, Retry-After %q; want 429 and 1", a.status, a.header.Get("Retry-After"))
		}
		if e := decode[ErrorBody](t, a); len(e.Errors) != 1 || e.Errors[0].Code != CodeRateLimited {
			t.Fatalf("over the limit: %s", a.body)
		}
	}
	for range 5 {
		if a := post(t, base, "acme-key", good()); a.status != http.StatusAccepted {
			t.Fatalf("unlimited tenant: %d %s", a.status, a.body)
		}
	}
	if n := len(acceptedMessages(t, cfg)); n != 6 {
		t.Errorf("%d accepted, want 6 (1 slow, 5 acme)", n)
	}
}

// TestMetrics: accepted, rejected (by code), duplicate and latency figures
// on the admin endpoint.
func TestMetrics(t *testing.T) {
	cfg := testConfig(t)
	admin := make(chan string, 1)
	base := startIngest(t, cfg, hooks{adminReady: func(a string) { admin <- a }})
	adminAddr := <-admin
	for _, body := range []string{good(`client_ref="m1"`), good(`client_ref="m1"`), good(), good(`to="+442079460000"`)} {
		post(t, base, "acme-key", body)
	}
	a := call(t, http.MethodGet, "http://"+adminAddr+"/metrics", "", "", nil)
	if a.status != http.StatusOK {
		t.Fatalf("/metrics: %d", a.status)
	}
	lines := map[string]string{}
	for l := range strings.Lines(string(a.body)) {
		l = strings.TrimSpace(l)
		if i := strings.LastIndex(l, " "); i > 0 && strings.HasPrefix(l, "sluice_ingest_") {
			name, value := l[:i], l[i+1:]
			// Drop the labels every series carries (service, scope...)
			// and keep the ones that matter here.
			lines[metricKey(name)] = value
		}
	}
	for key, want := range map[string]string{
		`sluice_ingest_accepted_total{front_door="http"}`:                                         "2",
		`sluice_ingest_duplicates_total{front_door="http"}`:                                       "1",
		`sluice_ingest_rejected_total{code="not_mobile",front_door="http"}`:                       "1",
		`sluice_ingest_http_request_duration_seconds_count{code="202",route="POST /v1/messages"}`: "3",
		`sluice_ingest_http_request_duration_seconds_count{code="400",route="POST /v1/messages"}`: "1",
	} {
		if lines[key] != want {
			t.Errorf("%s = %q, want %s; sluice_ingest series: %v", key, lines[key], want, lines)
		}
	}
}

// metricKey keeps a series' name and its code, front_door and route labels.
func metricKey(series string) string {
	name, labels, ok := strings.Cut(series, "{")
	if !ok {
		return series
	}
	var keep []string
	for kv := range strings.SplitSeq(strings.TrimSuffix(labels, "}"), ",") {
		k, _, _ := strings.Cut(kv, "=")
		if k == "code" || k == "front_door" || k == "route" {
			keep = append(keep, kv)
		}
	}
	slices.Sort(keep)
	return name + "{" + strings.Join(keep, ",") + "}"
}
