package dlr_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/services/dlr"
)

// dlrURLs is an application's dlr-url receiver: it refuses its first fail
// calls, then records the query of each.
type dlrURLs struct {
	mu   sync.Mutex
	fail int
	got  []url.Values
}

func (d *dlrURLs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.Method != http.MethodGet {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	if d.fail > 0 {
		d.fail--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	d.got = append(d.got, r.URL.Query())
}

func (d *dlrURLs) calls() []url.Values {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]url.Values(nil), d.got...)
}

// TestKannelDLRURL publishes the status events of messages sent with Kannel
// callbacks and checks the calls each URL gets: one per event its mask
// selects, with the escapes filled in, through the retry topic when the
// application refuses; the tenant's webhook gets every event besides, and a
// retry of one does not repeat the other.
func TestKannelDLRURL(t *testing.T) {
	cfg := testConfig(t)
	cfg.DLR.WebhookBackoff = 20 * time.Millisecond
	app := &dlrURLs{fail: 2}
	appSrv := httptest.NewServer(app)
	defer appSrv.Close()
	hook := &endpoint{secret: "s3cret", got: map[string]int{}}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()
	cfg.Tenants = []config.Tenant{
		{ID: "kan", KannelUsername: "tester", KannelPasswordSHA256: fmt.Sprintf("%064x", 1), Webhook: hookSrv.URL, WebhookSecret: hook.secret},
		{ID: "plain"}, // not of the Kannel door: its dlr_callback names nothing to call
	}
	f := newFeed(t, cfg)
	runDLR(t, cfg)

	pattern := appSrv.URL + "/dlr?id=%I&type=%d&to=%p&from=%P&smsc=%i&ts=%T"
	submitted := time.Now().Add(-time.Second).UTC().Truncate(time.Millisecond)
	event := func(id, tenant, status string, mask uint32, afterSubmit bool) kafka.Message {
		m := msg(id, "sim-a", 1)
		m.Tenant, m.From, m.DlrUrl, m.DlrMask = tenant, "ACME", pattern, mask
		st := message.StatusOf(m, status, submitted.Add(time.Second))
		if afterSubmit {
			st.SubmittedAt = &submitted
		}
		v, err := st.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return kafka.Message{Topic: cfg.Kafka.TopicPrefix + schemas.TopicStatus, Key: []byte(id), Value: v}
	}
	f.send(
		event("k1", "kan", message.StatusAccepted, 31, false),   // never a callback
		event("k1", "kan", message.StatusSubmitted, 31, true),   // 8
		event("k1", "kan", message.StatusDelivered, 31, true),   // 1
		event("k2", "kan", message.StatusSubmitted, 3, true),    // not in 3
		event("k2", "kan", message.StatusUndelivered, 3, true),  // 2
		event("k3", "kan", message.StatusFailed, 3, false),      // 16, reported as 2 under 3
		event("k4", "kan", message.StatusDelivered, 2, true),    // not in 2
		event("p1", "plain", message.StatusDelivered, 31, true), // not a Kannel tenant
	)
	want := map[string]bool{"k1/8": true, "k1/1": true, "k2/2": true, "k3/2": true}
	eventually(t, "the dlr-url calls", func() (bool, error) { return len(app.calls()) >= len(want), nil })
	eventually(t, "the webhooks", func() (bool, error) { got, _ := hook.delivered(); return len(got) == 7, nil })
	// Both webhook groups have committed everything: no call is still to come.
	eventually(t, "the webhook groups drained", func() (bool, error) {
		p := cfg.Kafka.TopicPrefix
		ok, err := drained(t.Context(), cfg.Kafka.Brokers, p+dlr.GroupWebhooks, p+schemas.TopicStatus)
		if err != nil || !ok {
			return false, err
		}
		return drained(t.Context(), cfg.Kafka.Brokers, p+dlr.GroupWebhookRetry, p+schemas.TopicWebhookRetry)
	})

	calls := app.calls()
	if len(calls) != len(want) {
		t.Fatalf("%d dlr-url calls, want %d: %v", len(calls), len(want), calls)
	}
	for _, q := range calls {
		key := q.Get("id") + "/" + q.Get("type")
		if !want[key] {
			t.Errorf("unexpected call %v", q)
		}
		delete(want, key)
		if q.Get("to") != "+447700900123" || q.Get("from") != "ACME" || q.Get("smsc") != "sim-a" || q.Get("ts") != fmt.Sprint(submitted.Add(time.Second).Unix()) {
			t.Errorf("call %v: escapes not filled in", q)
		}
	}
	// The app's two refusals went through the retry topic, the webhook's none.
	retries := readAll(t.Context(), t, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+schemas.TopicWebhookRetry)
	if len(retries) != 2 {
		t.Errorf("retry topic has %d records, want 2", len(retries))
	}
	for _, r := range retries {
		for _, h := range r.Headers {
			if h.Key == "sluice-webhook-target" && string(h.Value) != "dlr_url" {
				t.Errorf("retry record for %s", h.Value)
			}
		}
	}
	got, _ := hook.delivered()
	for id, n := range got {
		if n != 1 {
			t.Errorf("webhook got event %s %d times", id, n)
		}
	}
}
