package dlr

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// TestStoreRestore restores a table from its changelog three ways: into an
// empty store (the whole log), into the same store after more changes (only
// the changes after its checkpoint), and into a store whose checkpoint is
// beyond the log's end (wiped, the whole log again). The rows and the
// pending count match the log each time.
func TestStoreRestore(t *testing.T) {
	cfg := config.Default()
	cfg.Kafka.Brokers = testenv.Kafka(t)
	cfg.Kafka.ReplicationFactor = testenv.ReplicationFactor()
	cfg.Kafka.TopicPrefix = testenv.TopicPrefix(t)
	if err := service.CreateTopics(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	changelog := cfg.Kafka.TopicPrefix + schemas.TopicDLRPending
	p := kafka.NewProducer(cfg.Kafka.Brokers, 0)
	defer p.Close()
	// Keys of partition 0 of the changelog, as the producer places them.
	var keys []string
	const partitions = 12
	for i := 0; len(keys) < 30; i++ {
		k := fmt.Sprintf("sim-a:%d", i)
		if kafka.PartitionOf([]byte(k), partitions) == 0 {
			keys = append(keys, k)
		}
	}
	put := func(key string, p *sluicepb.Pending) kafka.Message {
		v, err := proto.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return kafka.Message{Topic: changelog, Key: []byte(key), Value: v}
	}
	var recs []kafka.Message
	for _, k := range keys[:20] {
		recs = append(recs, put(k, &sluicepb.Pending{DeadlineMs: 1}))
	}
	recs = append(recs, put(keys[0], &sluicepb.Pending{Done: true, DeadlineMs: 2}), kafka.Message{Topic: changelog, Key: []byte(keys[1])})
	if err := p.Produce(t.Context(), recs...); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	db, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := db.Store('c', 0, changelog, pendingMeta)
	check := func(wantReplayed, wantLive int, wantRows map[string]bool) {
		t.Helper()
		n, err := s.Restore(t.Context(), cfg.Kafka.Brokers)
		if err != nil {
			t.Fatal(err)
		}
		if n != wantReplayed || s.Live() != int64(wantLive) {
			t.Errorf("replayed %d, %d pending; want %d, %d", n, s.Live(), wantReplayed, wantLive)
		}
		tx := s.Begin()
		defer tx.Discard()
		for k, want := range wantRows {
			if _, ok, err := tx.Get(k); err != nil || ok != want {
				t.Errorf("row %s present %v (%v), want %v", k, ok, err, want)
			}
		}
	}
	check(22, 18, map[string]bool{keys[0]: true, keys[1]: false, keys[2]: true, keys[25]: false})

	recs = nil
	for _, k := range keys[20:] {
		recs = append(recs, put(k, &sluicepb.Pending{DeadlineMs: 3}))
	}
	if err := p.Produce(t.Context(), recs...); err != nil {
		t.Fatal(err)
	}
	check(10, 28, map[string]bool{keys[25]: true, keys[1]: false})

	if err := s.SaveCheckpoint(1 << 40); err != nil {
		t.Fatal(err)
	}
	check(32, 28, map[string]bool{keys[0]: true, keys[1]: false, keys[25]: true})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
