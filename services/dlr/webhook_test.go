package dlr_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/services/dlr"
)

// endpoint is a tenant's webhook receiver: it fails its first failures
// requests, then records the events whose signature checks.
type endpoint struct {
	secret string
	mu     sync.Mutex
	fail   int
	got    map[string]int // event id -> deliveries
	bad    int            // requests with a wrong signature or event id
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail > 0 {
		e.fail--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	// A status event is named by its event_id, an MO by its mo_id.
	var ev struct {
		EventID string `json:"event_id"`
		MOID    string `json:"mo_id"`
	}
	if json.Unmarshal(body, &ev) != nil || ev.EventID+ev.MOID != r.Header.Get(dlr.HeaderEventID) ||
		!dlr.Verify(e.secret, r.Header.Get(dlr.HeaderTimestamp), body, r.Header.Get(dlr.HeaderSignature)) {
		e.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	e.got[ev.EventID+ev.MOID]++
}

func (e *endpoint) delivered() (map[string]int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]int{}
	for k, v := range e.got {
		out[k] = v
	}
	return out, e.bad
}

// TestWebhooks sends status events of three tenants: one with a healthy
// endpoint, one whose endpoint fails its first requests (delivered through
// the retry topic), one without webhook. Each event with a webhook arrives,
// signed; the others go nowhere.
func TestWebhooks(t *testing.T) {
	cfg := testConfig(t)
	cfg.DLR.WebhookBackoff = 20 * time.Millisecond
	good := &endpoint{secret: "s3cret-good", got: map[string]int{}}
	flaky := &endpoint{secret: "s3cret-flaky", got: map[string]int{}, fail: 7}
	goodSrv, flakySrv := httptest.NewServer(good), httptest.NewServer(flaky)
	defer goodSrv.Close()
	defer flakySrv.Close()
	cfg.Tenants = []config.Tenant{
		{ID: "good", Webhook: goodSrv.URL + "/hook", WebhookSecret: good.secret},
		{ID: "flaky", Webhook: flakySrv.URL + "/hook", WebhookSecret: flaky.secret},
		{ID: "quiet"},
	}
	f := newFeed(t, cfg)
	runDLR(t, cfg)

	want := map[string]map[string]bool{"good": {}, "flaky": {}}
	var recs []kafka.Message
	for i := range 60 {
		tenant := []string{"good", "flaky", "quiet"}[i%3]
		m := msg(fmt.Sprintf("wh-%d", i), "sim-a", 1)
		m.Tenant = tenant
		st := message.StatusOf(m, message.StatusDelivered, time.Now())
		v, err := st.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if want[tenant] != nil {
			want[tenant][st.EventID] = true
		}
		recs = append(recs, kafka.Message{Topic: cfg.Kafka.TopicPrefix + schemas.TopicStatus, Key: []byte(m.Id), Value: v})
	}
	f.send(recs...)

	for tenant, e := range map[string]*endpoint{"good": good, "flaky": flaky} {
		eventually(t, tenant+" webhooks delivered", func() (bool, error) {
			got, _ := e.delivered()
			return len(got) == len(want[tenant]), nil
		})
		got, bad := e.delivered()
		for id := range got {
			if !want[tenant][id] {
				t.Errorf("%s received event %s of another tenant", tenant, id)
			}
		}
		if bad > 0 {
			t.Errorf("%s received %d requests with a bad signature", tenant, bad)
		}
	}
	// The flaky endpoint's 7 refusals each went through the retry topic.
	if n := len(readAll(t.Context(), t, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+schemas.TopicWebhookRetry)); n != 7 {
		t.Errorf("retry topic has %d records, want 7", n)
	}
	if dlr.Verify("other-secret", "1", []byte("{}"), dlr.Sign("s3cret", "1", []byte("{}"))) {
		t.Error("a signature verifies with another secret")
	}
}
