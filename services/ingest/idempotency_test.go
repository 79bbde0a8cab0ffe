package ingest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// TestIdempotentRetries retries one (tenant, client_ref) over HTTP, at once
// and in turn, then on the topic, then after a restart of ingest: it is
// published once. The same client_ref of another tenant is another message.
func TestIdempotentRetries(t *testing.T) {
	cfg := testConfig(t)
	base := startIngest(t, cfg, hooks{})
	body := good(`client_ref="order-1"`)
	want := message.IDForClientRef("acme", "order-1")

	// Eight copies at once: one is published, every answer names it.
	var wg sync.WaitGroup
	results := make([]Result, 8)
	for i := range results {
		wg.Go(func() {
			a := post(t, base, "acme-key", body)
			if a.status != http.StatusAccepted {
				t.Errorf("copy %d: %d %s", i, a.status, a.body)
				return
			}
			results[i] = decode[Result](t, a)
		})
	}
	wg.Wait()
	fresh := 0
	for _, r := range results {
		if r.MessageID != want {
			t.Errorf("answer names %s, want %s", r.MessageID, want)
		}
		if !r.Duplicate {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d answers say new, want 1", fresh)
	}
	// In a batch with a new message: the copy is marked, the new one sent.
	a := post(t, base, "acme-key", batchOf(body, good(`client_ref="order-2"`)))
	res := decode[struct{ Messages []Result }](t, a)
	if a.status != http.StatusAccepted || !res.Messages[0].Duplicate || res.Messages[1].Duplicate {
		t.Fatalf("batch with a copy: %d %s", a.status, a.body)
	}
	// A retry with another text is still the first message, and says so.
	if a := post(t, base, "acme-key", good(`client_ref="order-1"`, `text="`+strings.Repeat("ж", 100)+`"`)); a.status != http.StatusAccepted ||
		decode[Result](t, a) != (Result{MessageID: want, ClientRef: "order-1", Segments: 1, Encoding: "gsm7", Duplicate: true}) {
		t.Fatalf("retry with another text: %d %s", a.status, a.body)
	}
	// Another tenant's order-1 is its own message.
	if a := post(t, base, "globex-key", body); a.status != http.StatusAccepted || decode[Result](t, a).Duplicate {
		t.Fatalf("globex's order-1: %d %s", a.status, a.body)
	}

	// The same request on the topic, twice, then a sentinel on the same
	// partition: once the sentinel is accepted, the copies were handled.
	topic := cfg.Kafka.TopicPrefix + schemas.TopicRequests
	rec := func(ref string) kafka.Message {
		return kafka.Message{Topic: topic, Key: []byte("acme"), Value: []byte(withTenant("acme", good(`client_ref="`+ref+`"`)))}
	}
	produceWhenReady(t, cfg.Kafka.Brokers, rec("order-1"), rec("order-2"), rec("order-1"), rec("sentinel-1"))
	sentinel := message.IDForClientRef("acme", "sentinel-1")
	waitFor(t, "the sentinel", func() bool { return countIDs(acceptedMessages(t, cfg))[sentinel] == 1 })

	// A restarted ingest remembers, from sms.status.
	restarted := startIngest(t, cfg, hooks{})
	if a := post(t, restarted, "acme-key", body); a.status != http.StatusAccepted || !decode[Result](t, a).Duplicate {
		t.Fatalf("after a restart: %d %s, want a duplicate", a.status, a.body)
	}
	produceWhenReady(t, cfg.Kafka.Brokers, rec("order-1"), rec("sentinel-2"))
	sentinel2 := message.IDForClientRef("acme", "sentinel-2")
	waitFor(t, "the second sentinel", func() bool { return countIDs(acceptedMessages(t, cfg))[sentinel2] == 1 })

	got := countIDs(acceptedMessages(t, cfg))
	for id, n := range map[string]int{
		want: 1, message.IDForClientRef("acme", "order-2"): 1, message.IDForClientRef("globex", "order-1"): 1,
		sentinel: 1, sentinel2: 1,
	} {
		if got[id] != n {
			t.Errorf("message %s published %d times, want %d", id, got[id], n)
		}
	}
	if len(got) != 5 {
		t.Errorf("%d distinct messages published, want 5: %v", len(got), got)
	}
}

// countRejected counts the rejected events among sms.status records.
func countRejected(recs []kafka.Message) int {
	n := 0
	for _, rec := range recs {
		var st message.Status
		if json.Unmarshal(rec.Value, &st) == nil && st.Status == message.StatusRejected {
			n++
		}
	}
	return n
}

func countIDs(msgs []*sluicepb.Message) map[string]int {
	n := map[string]int{}
	for _, m := range msgs {
		n[m.Id]++
	}
	return n
}

// TestTopicBadRecords publishes every bad record of the table with good ones
// between them, on one partition: each bad one lands in the DLQ with its
// exact code, those naming a tenant produce a rejected status event, and
// only the good ones are accepted.
func TestTopicBadRecords(t *testing.T) {
	cfg := testConfig(t)
	startIngest(t, cfg, hooks{})
	topic := cfg.Kafka.TopicPrefix + schemas.TopicRequests
	cases := topicCases()
	var msgs []kafka.Message
	for i, c := range cases {
		msgs = append(msgs,
			kafka.Message{Topic: topic, Key: []byte("k"), Value: []byte(c.body), Headers: []kafka.Header{{Key: "case", Value: []byte(c.name)}}},
			kafka.Message{Topic: topic, Key: []byte("k"), Value: []byte(withTenant("acme", good(`client_ref="good-`+string(rune('A'+i%26))+string(rune('a'+i/26))+`"`)))})
	}
	produceWhenReady(t, cfg.Kafka.Brokers, msgs...)
	wantRejected := 0
	for _, c := range cases {
		ferr := &FieldError{Code: c.code, Field: c.field}
		if _, named := rejectedStatus([]byte(c.body), ferr, now); named && c.code != CodeUnknownTenant && !ambiguous(ferr) {
			wantRejected++
		}
	}
	// The dead letters and rejected events go in the write after the
	// accepted messages' (see intake.produce), to several partitions that
	// each become readable when its own batch is acknowledged: wait for all
	// three.
	dlq := cfg.Kafka.TopicPrefix + schemas.TopicRequestsDLQ
	statusTopic := cfg.Kafka.TopicPrefix + schemas.TopicStatus
	waitFor(t, "every good record, every dead letter and every rejected event", func() bool {
		return len(acceptedMessages(t, cfg)) >= len(cases) && len(records(t, cfg.Kafka.Brokers, dlq)) >= len(cases) &&
			countRejected(records(t, cfg.Kafka.Brokers, statusTopic)) >= wantRejected
	})

	if n := len(acceptedMessages(t, cfg)); n != len(cases) {
		t.Errorf("%d accepted, want the %d good ones only", n, len(cases))
	}
	byCase := map[string]kafka.Message{}
	for _, d := range records(t, cfg.Kafka.Brokers, dlq) {
		h := map[string]string{}
		for _, x := range d.Headers {
			h[x.Key] = string(x.Value)
		}
		byCase[h["case"]] = d
	}
	for _, c := range cases {
		d, ok := byCase[c.name]
		if !ok {
			t.Errorf("%s: no dead letter", c.name)
			continue
		}
		h := map[string]string{}
		for _, x := range d.Headers {
			h[x.Key] = string(x.Value)
		}
		want := (&FieldError{Code: c.code, Field: c.field, Message: c.message}).Error()
		if string(d.Value) != c.body || h[schemas.HeaderErrorCode] != c.code || h[schemas.HeaderError] != want {
			t.Errorf("%s: dead letter %q with %s / %s, want the record unchanged with %s / %s", c.name, d.Value, h[schemas.HeaderErrorCode], h[schemas.HeaderError], c.code, want)
		}
	}
	if len(byCase) != len(cases) {
		t.Errorf("%d dead letters, want %d", len(byCase), len(cases))
	}
	rejected := 0
	schema := testenv.JSONSchema(t, schemas.StatusSchemaPath)
	for _, rec := range records(t, cfg.Kafka.Brokers, statusTopic) {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(rec.Value))
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(doc); err != nil {
			t.Errorf("status event %s breaks the sms.status schema: %v", rec.Value, err)
		}
		var st message.Status
		if err := json.Unmarshal(rec.Value, &st); err != nil {
			t.Fatal(err)
		}
		if st.Status == message.StatusRejected {
			rejected++
			if st.ErrorCode == "" || !strings.HasPrefix(st.Reason, st.ErrorCode+": ") {
				t.Errorf("rejected event without its reason: %s", rec.Value)
			}
		}
	}
	// Every message case names acme, and all but the truncated one and
	// those repeating a top-level field (which may be the tenant) are
	// readable enough to say so.
	told := len(messageCases) - 1
	for _, c := range messageCases {
		if ambiguous(&FieldError{Code: c.code, Field: c.field}) {
			told--
		}
	}
	if rejected != wantRejected || wantRejected != told {
		t.Errorf("%d rejected status events, want %d (and %d message cases naming acme readably)", rejected, wantRejected, told)
	}
}
