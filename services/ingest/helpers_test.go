package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// testConfig is a configuration on the test broker with its own topics and
// three tenants: acme and globex (keys "acme-key", "globex-key") and slow,
// allowed one HTTP request per second.
func testConfig(t testing.TB) config.Config {
	cfg := testenv.Config(t)
	cfg.Tenants = []config.Tenant{
		{ID: "acme", APIKeySHA256: []string{keyHash("acme-key"), keyHash("acme-old-key")}},
		{ID: "globex", APIKeySHA256: []string{keyHash("globex-key")}},
		{ID: "slow", APIKeySHA256: []string{keyHash("slow-key")}, HTTPRateLimit: 1},
	}
	return cfg
}

// startIngest runs the service until the test ends and returns the base URL
// of its HTTP API.
func startIngest(t testing.TB, cfg config.Config, h hooks) string {
	t.Helper()
	base, _ := startIngestStoppable(t, cfg, h)
	return base
}

// startIngestStoppable is startIngest, with the function that stops it
// before the test ends.
func startIngestStoppable(t testing.TB, cfg config.Config, h hooks) (string, func()) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	h.httpReady = func(a string) { ingestHosts.Store(a, true); addr <- a }
	if admin := h.adminReady; admin != nil {
		h.adminReady = func(a string) { ingestHosts.Store(a, true); admin(a) }
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), h) }()
	stopped := false
	shutdown := func() {
		if stopped {
			return
		}
		stopped = true
		stop()
		if err := <-done; err != nil {
			t.Errorf("ingest stopped with: %v", err)
		}
	}
	t.Cleanup(shutdown)
	select {
	case a := <-addr:
		return "http://" + a, shutdown
	case err := <-done:
		stopped = true
		t.Fatalf("ingest did not start: %v", err)
	case <-time.After(50 * time.Second):
		t.Fatal("ingest HTTP API not listening after 50 s")
	}
	return "", shutdown
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func call(t testing.TB, method, url, key, contentType string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: data}
}

func post(t testing.TB, base, key, body string) answer {
	t.Helper()
	return call(t, http.MethodPost, base+"/v1/messages", key, "application/json", []byte(body))
}

func decode[T any](t testing.TB, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("answer %d %q: %v", a.status, a.body, err)
	}
	return v
}

// records returns every record topic holds now, partition by partition.
func records(t testing.TB, brokers []string, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := kafka.ReadAll(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// intakeRecords are the records of the router's intakes, otp then bulk.
func intakeRecords(t testing.TB, cfg config.Config) []kafka.Message {
	t.Helper()
	return append(records(t, cfg.Kafka.Brokers, schemas.IntakeTopic(cfg.Kafka.TopicPrefix, true)),
		records(t, cfg.Kafka.Brokers, schemas.IntakeTopic(cfg.Kafka.TopicPrefix, false))...)
}

// acceptedMessages decodes the accepted messages: the router intakes' records.
func acceptedMessages(t testing.TB, cfg config.Config) []*sluicepb.Message {
	t.Helper()
	var out []*sluicepb.Message
	for _, rec := range intakeRecords(t, cfg) {
		m := &sluicepb.Message{}
		if err := proto.Unmarshal(rec.Value, m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// produceWhenReady produces once ingest has created the topics.
func produceWhenReady(t testing.TB, brokers []string, msgs ...kafka.Message) {
	t.Helper()
	p := kafka.NewProducer(brokers, time.Millisecond)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := p.Produce(ctx, msgs...)
		if err == nil {
			return
		}
		if !errors.Is(err, kafka.ErrUnknownTopicOrPartition) || ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
