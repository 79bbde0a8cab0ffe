package kafka_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

func TestDescribeCluster(t *testing.T) {
	brokers := testenv.Kafka(t)
	c, err := kafka.DescribeCluster(t.Context(), brokers)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Brokers) < len(brokers) || c.Controller == kafka.NoBroker {
		t.Errorf("cluster %+v: want at least %d brokers and a controller", c, len(brokers))
	}
}

// TestPartitionsAndTopics: the metadata of a new topic lists each of its
// partitions with a leader among its replicas, all in sync; Topics names it,
// and both stop doing so once DeleteTopics has removed it.
func TestPartitionsAndTopics(t *testing.T) {
	brokers := testenv.Kafka(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	topic := testenv.TopicPrefix(t) + "meta"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: 3})

	ps, err := kafka.Partitions(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 {
		t.Fatalf("%d partitions, want 3: %+v", len(ps), ps)
	}
	for _, p := range ps {
		if p.Topic != topic || len(p.Replicas) != testenv.ReplicationFactor() || !slices.Contains(p.Replicas, p.Leader) || len(p.ISR) != len(p.Replicas) {
			t.Errorf("partition %+v: want %d replicas, the leader one of them, all in sync", p, testenv.ReplicationFactor())
		}
	}
	if all, err := kafka.Partitions(ctx, brokers); err != nil || !slices.ContainsFunc(all, func(p kafka.PartitionInfo) bool { return p.Topic == topic }) {
		t.Errorf("partitions of every topic: %v, without %s", err, topic)
	}
	if _, err := kafka.Partitions(ctx, brokers, topic+"-missing"); !errors.Is(err, kafka.ErrUnknownTopicOrPartition) {
		t.Errorf("partitions of a missing topic: %v, want %v", err, kafka.ErrUnknownTopicOrPartition)
	}
	names, err := kafka.Topics(ctx, brokers)
	if err != nil || !slices.Contains(names, topic) {
		t.Fatalf("topics %v (%v), want %s among them", names, err, topic)
	}

	if err := kafka.DeleteTopics(ctx, brokers, topic); err != nil {
		t.Fatal(err)
	}
	// Deletion completes asynchronously.
	waitFor(t, 30*time.Second, topic+" gone", func() bool {
		names, err := kafka.Topics(ctx, brokers)
		return err == nil && !slices.Contains(names, topic)
	})
	if err := kafka.DeleteTopics(ctx, brokers, topic); !errors.Is(err, kafka.ErrUnknownTopicOrPartition) {
		t.Errorf("deleting a deleted topic: %v, want %v", err, kafka.ErrUnknownTopicOrPartition)
	}
}

// TestMoveLeadership moves the leadership of a partition to another of its
// replicas, as the chaos tests do: a reassignment to the same replicas
// rotated, so that the next one is preferred, then a preferred leader
// election.
func TestMoveLeadership(t *testing.T) {
	if testenv.ReplicationFactor() < 2 {
		t.Skip("one replica: nowhere to move the leadership")
	}
	brokers := testenv.Kafka(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	topic := testenv.TopicPrefix(t) + "lead"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: 2})
	ps, err := kafka.Partitions(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	var p kafka.PartitionInfo
	for _, q := range ps {
		if q.ID == 1 {
			p = q
		}
	}
	at := slices.Index(p.Replicas, p.Leader)
	if at < 0 {
		t.Fatalf("partition %+v: leader not among its replicas", p)
	}
	rotated := append(slices.Clone(p.Replicas[at+1:]), p.Replicas[:at+1]...)

	if err := kafka.ReassignPartitions(ctx, brokers, []kafka.Assignment{{Topic: topic, Partition: 1, Replicas: rotated}}); err != nil {
		t.Fatal(err)
	}
	// The controller applies the new order a moment after it answers; an
	// election before that finds the preferred leader leading already.
	var now kafka.PartitionInfo
	waitFor(t, 30*time.Second, "partition 1 led by broker "+strconv.Itoa(rotated[0]), func() bool {
		if err := kafka.ElectPreferredLeaders(ctx, brokers, topic, []int{1}); err != nil {
			t.Logf("elect: %v", err)
			return false
		}
		ps, err := kafka.Partitions(ctx, brokers, topic)
		if err != nil {
			return false
		}
		for _, q := range ps {
			if q.ID == 1 {
				now = q
			}
		}
		return now.Leader == rotated[0]
	})
	if !slices.Equal(now.Replicas, rotated) {
		t.Errorf("replicas %v after the reassignment, want %v", now.Replicas, rotated)
	}
	// Partition 0 was not reassigned: its preferred leader leads it already
	// (or is made to), which is no error.
	if err := kafka.ElectPreferredLeaders(ctx, brokers, topic, []int{0}); err != nil {
		t.Errorf("electing partition 0's preferred leader: %v", err)
	}
}

// TestCommitOffsets: offsets committed outside a generation read back, and
// a partition with none reads -1.
func TestCommitOffsets(t *testing.T) {
	brokers := testenv.Kafka(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	prefix := testenv.TopicPrefix(t)
	topic, group := prefix+"in", prefix+"group"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: 3})
	produceKeyed(t, brokers, topic, 30)

	if err := kafka.CommitOffsets(ctx, brokers, group, topic, map[int]int64{0: 1, 2: 2}); err != nil {
		t.Fatal(err)
	}
	got, err := kafka.CommittedOffsets(ctx, brokers, group, topic, []int{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int]int64{0: 1, 1: -1, 2: 2}; !maps.Equal(got, want) {
		t.Errorf("committed offsets %v, want %v", got, want)
	}
}
