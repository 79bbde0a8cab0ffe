package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/kafka/embedded"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func startEmbedded(opts ...embedded.Option) func(testing.TB) []string {
	return func(t testing.TB) []string {
		b, err := embedded.Start(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b.Addrs()
	}
}

// TestKafkaRoundTrip checks what every sluice service relies on, on each
// kind of broker: topics created by CreateTopics, RequireAll produce, and a
// consumer group that reads every record and commits its offsets.
func TestKafkaRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		brokers func(testing.TB) []string
		rf      int
	}{
		{"testenv.Kafka", testenv.Kafka, testenv.ReplicationFactor()},
		{"embedded", startEmbedded(), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			brokers := tt.brokers(t)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			topic := testenv.TopicPrefix(t) + "roundtrip"
			const partitions = 3
			createTopic(ctx, t, brokers, topic, partitions, tt.rf)

			p := kafka.NewProducer(brokers, time.Millisecond)
			const n = 30
			want := make(map[string]string, n)
			msgs := make([]kafka.Message, 0, n)
			for i := range n {
				k, v := "key-"+strconv.Itoa(i), fmt.Sprintf("value %d \x00\xff", i)
				want[k] = v
				msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte(k), Value: []byte(v)})
			}
			if err := p.Produce(ctx, msgs...); err != nil {
				t.Fatalf("produce: %v", err)
			}
			if err := p.Close(); err != nil {
				t.Fatalf("close producer: %v", err)
			}

			group := testenv.TopicPrefix(t) + "group"
			var (
				mu         sync.Mutex
				committed  = make(map[int]int64) // partition → next offset
				unexpected []string
			)
			// One record a batch: each is committed on its own, as it is read.
			handle := func(_ context.Context, _ string, batch []kafka.Message) error {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range batch {
					if v, ok := want[string(m.Key)]; !ok || v != string(m.Value) {
						unexpected = append(unexpected, fmt.Sprintf("%q=%q (partition %d offset %d)", m.Key, m.Value, m.Partition, m.Offset))
					}
					delete(want, string(m.Key))
					committed[m.Partition] = m.Offset + 1
				}
				return nil
			}
			consumeCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- kafka.ConsumeBatches(consumeCtx, kafka.GroupConfig{Brokers: brokers, Group: group, Topics: []string{topic}},
					kafka.BatchOptions{Max: 1}, handle)
			}()
			waitErr := waitUntil(ctx, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(want) == 0 || len(unexpected) > 0
			})
			stop() // on shutdown the group commits what it has handled
			if err := <-done; err != nil {
				t.Fatalf("consumer group: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(unexpected) > 0 {
				t.Fatalf("unexpected records: %v", unexpected)
			}
			if waitErr != nil {
				t.Fatalf("fetch with %d records missing: %v", len(want), waitErr)
			}

			offsets := fetchCommitted(ctx, t, brokers, group, topic, partitions)
			var total int64
			for p := range partitions {
				if offsets[p] != committed[p] {
					t.Errorf("partition %d: committed offset %d, want %d", p, offsets[p], committed[p])
				}
				total += offsets[p]
			}
			if total != n {
				t.Errorf("committed offsets add up to %d, want %d", total, n)
			}
		})
	}
}

func createTopic(ctx context.Context, t *testing.T, brokers []string, topic string, partitions, rf int) {
	t.Helper()
	if err := kafka.EnsureTopics(ctx, brokers, rf, []kafka.TopicSpec{{Name: topic, Partitions: partitions}}); err != nil {
		t.Fatalf("create topic: %v", err)
	}
}

// waitUntil polls cond every 20 ms until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func fetchCommitted(ctx context.Context, t *testing.T, brokers []string, group, topic string, partitions int) map[int]int64 {
	t.Helper()
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	offsets, err := kafka.CommittedOffsets(ctx, brokers, group, topic, ps)
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	return offsets
}

func TestKafkaRejectsUnknownTopic(t *testing.T) {
	// Topics come from the catalogue only: producing to a missing topic must
	// fail, on the embedded broker as on the real one.
	brokers := testenv.Kafka(t)
	p := kafka.NewProducer(brokers, time.Millisecond)
	defer p.Close()
	err := p.Produce(t.Context(), kafka.Message{Topic: testenv.TopicPrefix(t) + "missing", Value: []byte("x")})
	if !errors.Is(err, kafka.ErrUnknownTopicOrPartition) {
		t.Fatalf("produce to a missing topic: got %v, want %v", err, kafka.ErrUnknownTopicOrPartition)
	}
}

func TestTopicPrefix(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9-]{1,40}-[0-9a-f]{8}\.$`)
	a, b := testenv.TopicPrefix(t), testenv.TopicPrefix(t)
	if a == b {
		t.Errorf("two prefixes are equal: %q", a)
	}
	t.Run("sub test/with spaces and ünïcode and a very long name that goes on", func(t *testing.T) {
		for _, p := range []string{a, b, testenv.TopicPrefix(t)} {
			if !valid.MatchString(p) {
				t.Errorf("prefix %q is not a short valid topic prefix", p)
			}
		}
	})
}

func TestClickHouseDatabase(t *testing.T) {
	var addr, db string
	t.Run("isolated database", func(t *testing.T) {
		addr, db = testenv.ClickHouseDatabase(t)
		conn, err := testenv.OpenClickHouse(addr, db)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx := t.Context()
		var version string
		if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
			t.Fatalf("select version: %v", err)
		}
		t.Logf("ClickHouse %s at %s, database %s", version, addr, db)
		if err := conn.Exec(ctx, "CREATE TABLE t (id UInt32, s String) ENGINE = MergeTree ORDER BY id"); err != nil {
			t.Fatalf("create table: %v", err)
		}
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO t (id, s) VALUES")
		if err != nil {
			t.Fatalf("prepare batch: %v", err)
		}
		for i := range 3 {
			if err := batch.Append(uint32(i), "row"); err != nil {
				t.Fatalf("append: %v", err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatalf("insert: %v", err)
		}
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".t").Scan(&n); err != nil {
			t.Fatalf("count: %v", err)
		}
		if n != 3 {
			t.Fatalf("count = %d, want 3", n)
		}
	})
	conn, err := testenv.OpenClickHouse(addr, "default")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var left uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM system.databases WHERE name = ?", db).Scan(&left); err != nil {
		t.Fatalf("look up database: %v", err)
	}
	if left != 0 {
		t.Errorf("database %s still exists after its test ended", db)
	}
}

func TestReplicationFactor(t *testing.T) {
	for _, tt := range []struct {
		brokers, rf string
		want        int
	}{
		{"", "3", 1}, // the embedded broker: one node, whatever the variable says
		{"127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", "3", 3},
		{"127.0.0.1:1", "", 1},
		{"127.0.0.1:1", "x", 1},
	} {
		t.Setenv(testenv.EnvKafkaBrokers, tt.brokers)
		t.Setenv(testenv.EnvKafkaReplication, tt.rf)
		if got := testenv.ReplicationFactor(); got != tt.want {
			t.Errorf("brokers %q, replication %q: %d, want %d", tt.brokers, tt.rf, got, tt.want)
		}
	}
}
