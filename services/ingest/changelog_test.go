package ingest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas"
)

// TestDividedIndexColdStartReadsChangelog: a divided replica whose disk is
// gone starts from the index changelog, not from sms.status. The first
// replica accepts messages, each of which then gets a later status; once
// the index group has committed all of sms.status, it stops, and a replica
// with an empty disk answers duplicate: true and the latest status for
// every message having read no sms.status record at all.
func TestDividedIndexColdStartReadsChangelog(t *testing.T) {
	const n = 30
	cfg := testConfig(t)
	cfg.Ingest.PeerAddr, cfg.Ingest.PeerSecret = "127.0.0.1:0", "peer-secret"
	cfg.Ingest.StateDir = t.TempDir()
	base, stop := startIngestStoppable(t, cfg, hooks{})
	refs := make([]string, n)
	for i := range refs {
		refs[i] = fmt.Sprintf("cold-%d", i)
		if r := post(t, base, "acme-key", good(`client_ref="`+refs[i]+`"`)); r.status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", refs[i], r.status, r.body)
		}
	}
	deliverAll(t, cfg, base, refs)
	for _, ref := range refs {
		id := message.IDForClientRef("acme", ref)
		waitFor(t, "the index to hold "+ref+" delivered", func() bool { return statusOf(t, base, id) == message.StatusDelivered })
	}
	waitCommittedToEnd(t, cfg)
	stop()

	cold := cfg
	cold.Ingest.StateDir = t.TempDir()
	admin := make(chan string, 1)
	base = startIngest(t, cold, hooks{adminReady: func(a string) { admin <- a }})
	adminAddr := <-admin
	for _, ref := range refs {
		r := post(t, base, "acme-key", good(`client_ref="`+ref+`"`))
		if got := decode[Result](t, r); r.status != http.StatusAccepted || !got.Duplicate {
			t.Errorf("%s after a cold start: %d %+v, want a duplicate", ref, r.status, got)
		}
		if st := statusOf(t, base, message.IDForClientRef("acme", ref)); st != message.StatusDelivered {
			t.Errorf("%s after a cold start: status %q, want delivered", ref, st)
		}
	}
	fromStatus, fromChangelog := indexRead(t, adminAddr, "status"), indexRead(t, adminAddr, "changelog")
	if fromStatus != 0 {
		t.Errorf("the cold replica read %d sms.status records, want 0: everything was in the changelog", fromStatus)
	}
	if fromChangelog < n {
		t.Errorf("the cold replica read %d changelog records, want at least %d", fromChangelog, n)
	}
	t.Logf("cold start: %d changelog records, %d sms.status records", fromChangelog, fromStatus)
}

// deliverAll publishes a delivered event for each ref's message, made from
// its accepted event as GET shows it.
func deliverAll(t *testing.T, cfg config.Config, base string, refs []string) {
	t.Helper()
	p := kafka.NewProducer(cfg.Kafka.Brokers, time.Millisecond)
	defer p.Close()
	var msgs []kafka.Message
	for _, ref := range refs {
		id := message.IDForClientRef("acme", ref)
		r := call(t, http.MethodGet, base+"/v1/messages/"+id, "acme-key", "", nil)
		var ev map[string]any
		if err := json.Unmarshal(r.body, &ev); err != nil || r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", id, r.status, r.body)
		}
		ev["status"], ev["event_id"] = message.StatusDelivered, id+"-delivered"
		ev["event_time"] = time.Now().UTC().Format(time.RFC3339Nano)
		v, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Topic: cfg.Kafka.TopicPrefix + schemas.TopicStatus, Key: []byte(id), Value: v})
	}
	if err := p.Produce(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// statusOf is the status GET shows for acme's message id ("" if none).
func statusOf(t *testing.T, base, id string) string {
	t.Helper()
	r := call(t, http.MethodGet, base+"/v1/messages/"+id, "acme-key", "", nil)
	var ev struct {
		Status string `json:"status"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &ev) != nil {
		return ""
	}
	return ev.Status
}

// waitCommittedToEnd waits until the index group has committed every
// partition of sms.status to its end.
func waitCommittedToEnd(t *testing.T, cfg config.Config) {
	t.Helper()
	topic := cfg.Kafka.TopicPrefix + schemas.TopicStatus
	n, err := kafka.PartitionCount(t.Context(), cfg.Kafka.Brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	ends, err := kafka.PartitionsOffsets(t.Context(), cfg.Kafka.Brokers, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the index group to commit sms.status to its end", func() bool {
		committed, err := kafka.CommittedOffsets(t.Context(), cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+IndexGroup, topic, parts)
		if err != nil {
			return false
		}
		for _, p := range parts {
			if !ends[p].Empty() && committed[p] < ends[p].Next {
				return false
			}
		}
		return true
	})
}

// indexRead is sluice_ingest_index_read_total of source on the admin
// endpoint.
func indexRead(t *testing.T, admin, source string) int64 {
	t.Helper()
	a := call(t, http.MethodGet, "http://"+admin+"/metrics", "", "", nil)
	for l := range strings.Lines(string(a.body)) {
		name, value, ok := strings.Cut(strings.TrimSpace(l), " ")
		if ok && strings.HasPrefix(name, "sluice_ingest_index_read_total") && strings.Contains(name, `source="`+source+`"`) {
			v, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return v
		}
	}
	t.Fatalf("no sluice_ingest_index_read_total{source=%q} on %s", source, admin)
	return 0
}
