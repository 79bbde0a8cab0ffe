package kafka_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// produceToPartition writes n records to one partition.
func produceToPartition(t *testing.T, brokers []string, topic string, partition, n int) {
	t.Helper()
	w := &kgo.Writer{
		Addr: kgo.TCP(brokers...), Topic: topic, RequiredAcks: kgo.RequireAll, BatchTimeout: time.Millisecond,
		// The key's only byte is the partition.
		Balancer: kgo.BalancerFunc(func(m kgo.Message, _ ...int) int { return int(m.Key[0]) }),
	}
	defer w.Close()
	msgs := make([]kgo.Message, n)
	for i := range msgs {
		msgs[i] = kgo.Message{Key: []byte{byte(partition)}, Value: []byte("x")}
	}
	if err := w.WriteMessages(t.Context(), msgs...); err != nil {
		t.Fatalf("produce to %s/%d: %v", topic, partition, err)
	}
}

func commit(t *testing.T, brokers []string, group, topic string, offsets map[int]int64) {
	t.Helper()
	var parts []kgo.OffsetCommit
	for p, o := range offsets {
		parts = append(parts, kgo.OffsetCommit{Partition: p, Offset: o})
	}
	client := &kgo.Client{Addr: kgo.TCP(brokers...)}
	// Generation -1, no member: a commit for a group with no members.
	resp, err := client.OffsetCommit(t.Context(), &kgo.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: map[string][]kgo.OffsetCommit{topic: parts}})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	for _, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				t.Fatalf("commit %s/%d: %v", topic, p.Partition, p.Error)
			}
		}
	}
}

// TestLagMonitor: lag per partition is the end offset minus the committed
// one, or every retained record where nothing is committed; the same
// figures reach the meter, labelled by group, topic and partition.
func TestLagMonitor(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	topic, group := prefix+"lag", prefix+"lag-group"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: 3})
	produceToPartition(t, brokers, topic, 0, 10)
	produceToPartition(t, brokers, topic, 1, 5)
	commit(t, brokers, group, topic, map[int]int64{0: 4})

	m := kafka.NewLagMonitor(brokers, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if lags, err := m.Lag(t.Context()); err != nil || lags != nil {
		t.Fatalf("no group watched: %v, %v; want nothing", lags, err)
	}
	m.Watch(group, topic)
	m.Watch(group, topic) // watching twice changes nothing
	want := []kafka.PartitionLag{
		{Group: group, Topic: topic, Partition: 0, Committed: 4, End: 10, Lag: 6},
		{Group: group, Topic: topic, Partition: 1, Committed: -1, End: 5, Lag: 5},
		{Group: group, Topic: topic, Partition: 2, Committed: -1, End: 0, Lag: 0},
	}
	got, err := m.Lag(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Lag =\n%+v\nwant\n%+v", got, want)
	}

	// Found by prefix, with its committed topics: the same figures; a group
	// of another prefix is not reported.
	commit(t, brokers, prefix+"other-group", topic, map[int]int64{0: 1})
	byPrefix := kafka.NewLagMonitor(brokers, nil)
	byPrefix.WatchPrefix(prefix + "lag-")
	got, err = byPrefix.Lag(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Lag by prefix =\n%+v\nwant\n%+v", got, want)
	}

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	if _, err := m.Register(mp.Meter("test")); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	points := map[[3]string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, md := range sm.Metrics {
			if md.Name != "sluice_kafka_consumer_lag" {
				continue
			}
			for _, dp := range md.Data.(metricdata.Gauge[int64]).DataPoints {
				g, _ := dp.Attributes.Value("group")
				tp, _ := dp.Attributes.Value("topic")
				p, _ := dp.Attributes.Value("partition")
				points[[3]string{g.AsString(), tp.AsString(), p.Emit()}] = dp.Value
			}
		}
	}
	wantPoints := map[[3]string]int64{{group, topic, "0"}: 6, {group, topic, "1"}: 5, {group, topic, "2"}: 0}
	if len(points) != len(wantPoints) {
		t.Fatalf("gauge points %v, want %v", points, wantPoints)
	}
	for k, v := range wantPoints {
		if points[k] != v {
			t.Errorf("gauge %v = %d, want %d", k, points[k], v)
		}
	}
}

// TestLagOfRunningGroup: a group run with GroupConfig.Lag is watched, and
// its lag falls to zero once it has committed everything.
func TestLagOfRunningGroup(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	topic, group := prefix+"lag-run", prefix+"lag-run-group"
	const partitions, n = 2, 40
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: partitions})
	produceKeyed(t, brokers, topic, n)

	m := kafka.NewLagMonitor(brokers, nil)
	total := func() int64 {
		lags, err := m.Lag(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, l := range lags {
			sum += l.Lag
		}
		return sum
	}
	if got := total(); got != 0 {
		t.Fatalf("lag %d before the group ran, want 0: nothing watched", got)
	}

	ctx, cancel := context.WithCancel(t.Context())
	var seen atomic.Int64
	done := goRun(t, func() error {
		return kafka.ConsumeBatches(ctx, kafka.GroupConfig{Brokers: brokers, Group: group, Topics: []string{topic}, Lag: m},
			kafka.BatchOptions{Max: 10, Linger: 10 * time.Millisecond},
			func(_ context.Context, _ string, batch []kafka.Message) error {
				seen.Add(int64(len(batch)))
				return nil
			})
	})
	waitFor(t, 60*time.Second, "all records consumed", func() bool { return seen.Load() >= n })
	waitFor(t, 30*time.Second, "lag back to zero", func() bool { return total() == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lags, err := m.Lag(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(lags) != partitions {
		t.Fatalf("lag of %d partitions, want %d: %+v", len(lags), partitions, lags)
	}
	var end int64
	for _, l := range lags {
		if l.Group != group || l.Committed != l.End {
			t.Errorf("partition %+v: committed is not the end", l)
		}
		end += l.End
	}
	if end != n {
		t.Errorf("end offsets add up to %d, want %d", end, n)
	}
}
