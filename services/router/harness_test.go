package router

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// waitLimit bounds every wait of these tests: a deadline to fail by, not a
// measured time.
const waitLimit = 50 * time.Second

// harness is a router's surroundings on the test's Kafka: topics, a producer
// standing in for ingest and the sender, and readers of what comes out.
type harness struct {
	t    testing.TB
	cfg  config.Config
	prod *kafka.Producer
	log  *slog.Logger
}

func newHarness(t testing.TB, mutate func(*config.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, testPartitions, mutate)
}

// newHarnessWith creates the router's topics with at most partitions each.
func newHarnessWith(t testing.TB, partitions int, mutate func(*config.Config)) *harness {
	t.Helper()
	cfg := config.Default()
	cfg.Kafka.Brokers = testenv.Kafka(t)
	cfg.Kafka.ReplicationFactor = testenv.ReplicationFactor()
	cfg.Kafka.TopicPrefix = testenv.TopicPrefix(t)
	cfg.Kafka.BatchTimeout = 2 * time.Millisecond
	cfg.Router.AdminAddr = ""
	carrier := func(id string, binds int) config.Carrier {
		return config.Carrier{ID: id, Host: "127.0.0.1", Port: 2775, SystemID: "x", Binds: binds, TPS: 100, Window: 10}
	}
	cfg.Carriers = []config.Carrier{carrier("a", 2), carrier("b", 1), carrier("c", 1)}
	cfg.Routes = []config.Route{
		{Prefix: "+44", Carriers: []config.RouteCarrier{{ID: "a", Weight: 1}}, Failover: []string{"c"}},
		{Prefix: "+33", Carriers: []config.RouteCarrier{{ID: "a", Weight: 50}, {ID: "b", Weight: 50}}},
	}
	cfg.Tenants = []config.Tenant{{ID: "acme"}, {ID: "beta"}}
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	createTopics(t, cfg, partitions)
	cfg.Kafka.CreateTopics = false
	h := &harness{t: t, cfg: cfg, prod: kafka.NewProducer(cfg.Kafka.Brokers, 2*time.Millisecond)}
	t.Cleanup(func() { _ = h.prod.Close() })
	h.log = testLogger(t)
	return h
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

// start runs a router until the returned function stops it.
func (h *harness) start() (stop func()) {
	return h.startWith(nil)
}

func (h *harness) startWith(reload <-chan config.Config) (stop func()) {
	h.t.Helper()
	return testenv.Run(h.t, "router", func(ctx context.Context) error { return Serve(ctx, h.cfg, h.log, reload) })
}

func (h *harness) topic(name string) string { return h.cfg.Kafka.TopicPrefix + name }

func (h *harness) outbound(carrier, lane string) string {
	return schemas.OutboundTopic(h.cfg.Kafka.TopicPrefix, carrier, lane)
}

// accept publishes messages on the router's intake as ingest does.
func (h *harness) accept(msgs ...*sluicepb.Message) {
	h.t.Helper()
	recs := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		v, err := proto.Marshal(m)
		if err != nil {
			h.t.Fatal(err)
		}
		recs[i] = kafka.Message{Topic: schemas.IntakeTopic(h.cfg.Kafka.TopicPrefix, m.Priority == sluicepb.Priority_PRIORITY_OTP), Key: []byte(m.Tenant), Value: v}
	}
	h.produce(recs...)
}

func (h *harness) produce(recs ...kafka.Message) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for len(recs) > 0 {
		n := min(len(recs), 5000)
		if err := h.prod.Produce(ctx, recs[:n]...); err != nil {
			h.t.Fatal(err)
		}
		recs = recs[n:]
	}
}

// msg is an accepted message, valid for a day, to a UK number.
func msg(id, tenant string, p sluicepb.Priority) *sluicepb.Message {
	now := time.Now()
	return &sluicepb.Message{
		Id: id, Tenant: tenant, From: "ACME", To: "+447700900123", Text: "hello", Priority: p,
		AcceptedAtMs: now.UnixMilli(), ExpiresAtMs: now.Add(24 * time.Hour).UnixMilli(),
		Country: "GB", Encoding: sluicepb.Encoding_ENCODING_GSM7, Segments: 1,
	}
}

// watcher reads every partition of some topics from the start, for as long
// as the test runs.
type watcher struct {
	mu   sync.Mutex
	recs map[string][]kafka.Message // by topic
}

func (h *harness) watch(topics ...string) *watcher {
	h.t.Helper()
	w := &watcher{recs: map[string][]kafka.Message{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	h.t.Cleanup(func() { cancel(); wg.Wait() })
	for _, topic := range topics {
		n, err := kafka.PartitionCount(ctx, h.cfg.Kafka.Brokers, topic)
		if err != nil {
			h.t.Fatal(err)
		}
		for p := range n {
			wg.Go(func() {
				kafka.FollowPartition(ctx, h.cfg.Kafka.Brokers, topic, p, kafka.FirstOffset, func(m kafka.Message) {
					w.mu.Lock()
					w.recs[topic] = append(w.recs[topic], m)
					w.mu.Unlock()
				}, slog.New(slog.DiscardHandler))
			})
		}
	}
	return w
}

// of returns what has been read of topic so far.
func (w *watcher) of(topic string) []kafka.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]kafka.Message(nil), w.recs[topic]...)
}

// until waits for cond to hold, failing the test after waitLimit.
func until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// messages decodes outbound records.
func messages(t testing.TB, recs []kafka.Message) []*sluicepb.Message {
	t.Helper()
	out := make([]*sluicepb.Message, len(recs))
	for i, r := range recs {
		out[i] = &sluicepb.Message{}
		if err := proto.Unmarshal(r.Value, out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// statuses decodes sms.status records.
func statuses(t testing.TB, recs []kafka.Message) []message.Status {
	t.Helper()
	out := make([]message.Status, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r.Value, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// countStatus counts status events with a status and reason, by message id.
func countStatus(t testing.TB, recs []kafka.Message, status, reason string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, s := range statuses(t, recs) {
		if s.Status == status && s.Reason == reason {
			out[s.MessageID]++
		}
	}
	return out
}

// ids counts outbound messages by id.
func ids(t testing.TB, recs []kafka.Message) map[string]int {
	out := map[string]int{}
	for _, m := range messages(t, recs) {
		out[m.Id]++
	}
	return out
}

func idf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

func protoMarshal(t testing.TB, m *sluicepb.Message) ([]byte, error) {
	t.Helper()
	v, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return v, nil
}

func traceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// logLevel is Warn, or Debug with SLUICE_TEST_ROUTER_LOG=debug.
func logLevel() slog.Level {
	if os.Getenv("SLUICE_TEST_ROUTER_LOG") == "debug" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// testPartitions keeps the shared broker's load down: the router works with
// any partition count, as long as its co-partitioned topics agree.
const testPartitions = 4

// createTopics creates the topics a router uses, with at most partitions each.
func createTopics(t testing.TB, cfg config.Config, partitions int) {
	t.Helper()
	slots := make([]schemas.CarrierSlots, len(cfg.Carriers))
	for i, c := range cfg.Carriers {
		slots[i] = schemas.CarrierSlots{ID: c.ID, Binds: c.Binds}
	}
	topics, err := schemas.Resolve(cfg.Kafka.TopicPrefix, slots, nil)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, name := range []string{schemas.TopicAccepted, schemas.TopicStatus, schemas.TopicRouterOTP, schemas.TopicRouterBulk,
		schemas.TopicRouterSched, schemas.TopicRouterQuota, schemas.TopicOptOut, schemas.TopicMO, schemas.TopicCarrierHealth} {
		used[cfg.Kafka.TopicPrefix+name] = true
	}
	var specs []kafka.TopicSpec
	for _, tp := range topics {
		if used[tp.Name] || tp.PerCarrier {
			specs = append(specs, kafka.TopicSpec{Name: tp.Name, Partitions: min(tp.Partitions, partitions), Config: tp.Config()})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, cfg.Kafka.Brokers, testenv.ReplicationFactor(), specs); err != nil {
		t.Fatal(err)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: logLevel()}))
}

// Ids of the messages warmUp routes.
const (
	warmUpOTP  = "warm-up-otp"
	warmUpBulk = "warm-up-bulk"
)

// warmUp routes an otp and a bulk message of tenant beta to carrier a and
// waits for both: every group of the router has joined and works.
func (h *harness) warmUp(w *watcher, otpLane, bulkLane string) {
	h.t.Helper()
	h.accept(msg(warmUpOTP, "beta", sluicepb.Priority_PRIORITY_OTP), msg(warmUpBulk, "beta", sluicepb.Priority_PRIORITY_TRANSACTIONAL))
	until(h.t, "the router warmed up", func() bool {
		return ids(h.t, w.of(otpLane))[warmUpOTP] == 1 && ids(h.t, w.of(bulkLane))[warmUpBulk] == 1
	})
}
