package dlr_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/services/dlr"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childConfigEnv); path != "" {
		os.Exit(runChild(path))
	}
	testenv.Main(m)
}

// testConfig is a config on the shared test Kafka and ClickHouse, with
// topics and database of the test's own.
func testConfig(t testing.TB) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Kafka.Brokers = testenv.Kafka(t)
	cfg.Kafka.ReplicationFactor = testenv.ReplicationFactor()
	cfg.Kafka.TopicPrefix = testenv.TopicPrefix(t)
	cfg.ClickHouse.Addr, cfg.ClickHouse.Database = testenv.ClickHouseDatabase(t)
	cfg.ClickHouse.FlushInterval = 100 * time.Millisecond
	cfg.DLR.AdminAddr = "127.0.0.1:0"
	cfg.DLR.SweepInterval = 50 * time.Millisecond
	cfg.DLR.StateDir = t.TempDir()
	if err := service.CreateTopics(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runDLR runs the service in this process until stop is called or the
// test ends.
func runDLR(t testing.TB, cfg config.Config) (stop func()) {
	t.Helper()
	return testenv.Run(t, "dlr", func(ctx context.Context) error {
		return dlr.Run(ctx, cfg, slog.New(slog.DiscardHandler))
	})
}

// feed publishes records the way the sender does.
type feed struct {
	t   testing.TB
	cfg config.Config
	p   *kafka.Producer
}

func newFeed(t testing.TB, cfg config.Config) *feed {
	p := kafka.NewProducer(cfg.Kafka.Brokers, time.Millisecond)
	t.Cleanup(func() { _ = p.Close() })
	return &feed{t: t, cfg: cfg, p: p}
}

func (f *feed) send(msgs ...kafka.Message) {
	f.t.Helper()
	if err := f.p.Produce(f.t.Context(), msgs...); err != nil {
		f.t.Fatal(err)
	}
}

func (f *feed) submit(s *sluicepb.SubmitResult) kafka.Message {
	f.t.Helper()
	v, err := proto.Marshal(s)
	if err != nil {
		f.t.Fatal(err)
	}
	key := s.Message.Id
	if s.SmscMessageId != "" {
		key = message.SMSCKey(s.Message.Carrier, s.SmscMessageId)
	}
	return kafka.Message{Topic: f.cfg.Kafka.TopicPrefix + schemas.TopicSubmits, Key: []byte(key), Value: v}
}

func (f *feed) dlr(d *sluicepb.RawDLR) kafka.Message {
	f.t.Helper()
	v, err := proto.Marshal(d)
	if err != nil {
		f.t.Fatal(err)
	}
	return kafka.Message{Topic: f.cfg.Kafka.TopicPrefix + schemas.TopicDLRRaw, Key: []byte(message.SMSCKey(d.Carrier, d.SmscMessageId)), Value: v}
}

// readAll returns every record of topic, all partitions, up to their ends now.
func readAll(ctx context.Context, t *testing.T, brokers []string, topic string) []kafka.Message {
	t.Helper()
	out, err := kafka.ReadAll(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// statuses reads sms.status: the events of each message, in order.
func statuses(ctx context.Context, t *testing.T, cfg config.Config) map[string][]message.Status {
	t.Helper()
	out := map[string][]message.Status{}
	for _, rec := range readAll(ctx, t, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+schemas.TopicStatus) {
		var st message.Status
		if err := json.Unmarshal(rec.Value, &st); err != nil {
			t.Fatal(err)
		}
		out[st.MessageID] = append(out[st.MessageID], st)
	}
	return out
}

// drained tells whether group has committed every partition of topics up to
// its end: everything it will ever publish for them is then published.
func drained(ctx context.Context, brokers []string, group string, topics ...string) (bool, error) {
	lm := kafka.NewLagMonitor(brokers, slog.New(slog.DiscardHandler))
	lm.Watch(group, topics...)
	lags, err := lm.Lag(ctx)
	if err != nil {
		return false, err
	}
	for _, l := range lags {
		// A partition never written has nothing to commit.
		if l.End > 0 && l.Committed < l.End {
			return false, nil
		}
	}
	return true, nil
}

// eventually polls cond until it holds; errors count as "not yet" (a new
// topic's partitions may have no leader for a moment) and the last one is
// reported if it never holds.
func eventually(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	var last error
	for {
		ok, err := cond()
		if ok && err == nil {
			return
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting: %s (last error: %v)", what, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitDrained waits until the correlator and the aggregator have handled
// everything published so far, twice in a row (the correlator's outcomes
// feed the aggregator).
func waitDrained(t testing.TB, cfg config.Config) {
	t.Helper()
	p := cfg.Kafka.TopicPrefix
	eventually(t, "dlr stages drained", func() (bool, error) {
		for range 2 {
			ok, err := drained(t.Context(), cfg.Kafka.Brokers, p+dlr.GroupCorrelator, p+schemas.TopicSubmits, p+schemas.TopicDLRRaw)
			if err != nil || !ok {
				return false, err
			}
			ok, err = drained(t.Context(), cfg.Kafka.Brokers, p+dlr.GroupAggregator, p+schemas.TopicDLROutcomes)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	})
}

func msg(id, carrier string, segments uint32) *sluicepb.Message {
	return &sluicepb.Message{
		Id: id, Tenant: "acme", CampaignId: "c1", Carrier: carrier, Country: "GB", To: "+447700900123",
		Segments: segments, AcceptedAtMs: time.Now().Add(-time.Minute).UnixMilli(),
	}
}
