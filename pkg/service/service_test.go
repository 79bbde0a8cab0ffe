package service_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestConsumerLagOnMetrics: a service's /metrics reports the lag of its own
// consumer groups (named <prefix>sluice-<service>...), and no one else's.
func TestConsumerLagOnMetrics(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	topic := prefix + "in"
	ctx := t.Context()
	if err := kafka.EnsureTopics(ctx, brokers, testenv.ReplicationFactor(), []kafka.TopicSpec{{Name: topic, Partitions: 2}}); err != nil {
		t.Fatal(err)
	}
	// Four records on each partition, as a round robin would place them.
	var msgs []kafka.Message
	per := map[int]int{}
	for i := 0; len(msgs) < 8; i++ {
		k := []byte("k" + strconv.Itoa(i))
		if p := kafka.PartitionOf(k, 2); per[p] < 4 {
			per[p]++
			msgs = append(msgs, kafka.Message{Topic: topic, Key: k, Value: []byte("x")})
		}
	}
	p := kafka.NewProducer(brokers, time.Millisecond)
	defer p.Close()
	if err := p.Produce(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{prefix + "sluice-test-a", prefix + "sluice-other"} {
		if err := kafka.CommitOffsets(ctx, brokers, g, topic, map[int]int64{0: 1, 1: 1}); err != nil {
			t.Fatal(err)
		}
	}

	cfg := config.Default()
	cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix, cfg.Kafka.CreateTopics = brokers, prefix, false
	env, err := service.Start(ctx, "test", "127.0.0.1:0", cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()

	rec := httptest.NewRecorder()
	env.Tel.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var lines []string
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "sluice_kafka_consumer_lag{") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("lag series %q, want the two partitions of %ssluice-test-a", lines, prefix)
	}
	var total int
	for _, l := range lines {
		if !strings.Contains(l, `group="`+prefix+`sluice-test-a"`) || !strings.Contains(l, `topic="`+topic+`"`) {
			t.Errorf("series %s: not the service's group and topic", l)
		}
		var v int
		if _, err := fmt.Sscan(l[strings.LastIndex(l, " ")+1:], &v); err != nil {
			t.Fatal(err)
		}
		total += v
	}
	if total != len(msgs)-2 {
		t.Errorf("lag %d, want %d (8 written, 1 committed per partition)", total, len(msgs)-2)
	}
}
