package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sluice-sms/sluice/pkg/backoff"
)

// Administration of the cluster: what tests, test environments and tools
// need to see and steer, so that none of them has to speak kafka-go itself.

// ErrUnknownTopicOrPartition is the broker's error for a topic or partition
// it does not have, as Produce returns it; compare with errors.Is.
const ErrUnknownTopicOrPartition = kgo.UnknownTopicOrPartition

// NoBroker stands for a broker that the cluster's metadata does not list: a
// partition without a leader, or a replica on a broker that has not joined
// (again) yet.
const NoBroker = -1

// adminTimeout bounds the requests that make the controller act
// (reassignments, elections), which take longer than a lookup.
const adminTimeout = 30 * time.Second

// Cluster is the cluster as its metadata describes it.
type Cluster struct {
	// Brokers are the ids of the brokers the metadata lists (the live ones).
	Brokers []int
	// Controller is the controller's id; NoBroker while there is none.
	Controller int
}

// DescribeCluster returns the brokers and controller of the cluster.
func DescribeCluster(ctx context.Context, brokers []string) (Cluster, error) {
	// An empty, non-nil list asks for no topic (nil would ask for all).
	md, err := newClient(brokers).Metadata(ctx, &kgo.MetadataRequest{Topics: []string{}})
	if err != nil {
		return Cluster{}, fmt.Errorf("metadata: %w", err)
	}
	c := Cluster{Controller: brokerID(md.Controller)}
	for _, b := range md.Brokers {
		c.Brokers = append(c.Brokers, b.ID)
	}
	return c, nil
}

// Topics returns the names of every topic of the cluster, internal ones
// included, sorted.
func Topics(ctx context.Context, brokers []string) ([]string, error) {
	md, err := newClient(brokers).Metadata(ctx, &kgo.MetadataRequest{})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	names := make([]string, 0, len(md.Topics))
	for _, t := range md.Topics {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	return names, nil
}

// PartitionInfo is a partition as the cluster's metadata describes it. A
// broker it names but the metadata does not list is NoBroker.
type PartitionInfo struct {
	Topic string
	ID    int
	// Leader is the id of the partition's leader.
	Leader int
	// Replicas are the ids of the brokers that hold the partition, its
	// preferred leader first.
	Replicas []int
	// ISR are the ids of the replicas in sync with the leader.
	ISR []int
}

// Partitions returns the partitions of topics, or of every topic when none
// is named. A topic named that the cluster does not serve is an error; when
// listing every topic, one the metadata answers with an error (one being
// created or deleted) is left out.
func Partitions(ctx context.Context, brokers []string, topics ...string) ([]PartitionInfo, error) {
	md, err := newClient(brokers).Metadata(ctx, &kgo.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var (
		out  []PartitionInfo
		errs []error
	)
	for _, t := range md.Topics {
		if t.Error != nil {
			if len(topics) > 0 {
				errs = append(errs, fmt.Errorf("metadata of %s: %w", t.Name, t.Error))
			}
			continue
		}
		for _, p := range t.Partitions {
			out = append(out, PartitionInfo{
				Topic:    t.Name,
				ID:       p.ID,
				Leader:   brokerID(p.Leader),
				Replicas: brokerIDs(p.Replicas),
				ISR:      brokerIDs(p.Isr),
			})
		}
	}
	return out, errors.Join(errs...)
}

// brokerID is b's id, or NoBroker for the zero Broker kafka-go puts where
// the metadata names a broker it does not list (its Host alone tells).
func brokerID(b kgo.Broker) int {
	if b.Host == "" {
		return NoBroker
	}
	return b.ID
}

func brokerIDs(bs []kgo.Broker) []int {
	ids := make([]int, len(bs))
	for i, b := range bs {
		ids[i] = brokerID(b)
	}
	return ids
}

// Assignment is the replicas a partition is to have, its preferred leader
// first.
type Assignment struct {
	Topic     string
	Partition int
	Replicas  []int
}

// ReassignPartitions asks the controller to give each partition the
// replicas of its assignment. It returns once the controller has accepted
// them: replicas that must copy the log catch up afterwards, and the
// leadership stays where it is until an election (ElectPreferredLeaders).
func ReassignPartitions(ctx context.Context, brokers []string, assignments []Assignment) error {
	req := &kgo.AlterPartitionReassignmentsRequest{Timeout: adminTimeout}
	for _, a := range assignments {
		req.Assignments = append(req.Assignments, kgo.AlterPartitionReassignmentsRequestAssignment{
			Topic: a.Topic, PartitionID: a.Partition, BrokerIDs: a.Replicas,
		})
	}
	c := newClient(brokers)
	c.Timeout = adminTimeout
	resp, err := c.AlterPartitionReassignments(ctx, req)
	if err == nil {
		err = resp.Error
	}
	if err != nil {
		return fmt.Errorf("reassign partitions: %w", err)
	}
	var errs []error
	for _, r := range resp.PartitionResults {
		if r.Error != nil {
			errs = append(errs, fmt.Errorf("reassign %s/%d: %w", r.Topic, r.PartitionID, r.Error))
		}
	}
	return errors.Join(errs...)
}

// ElectPreferredLeaders runs a preferred leader election for partitions of
// topic: each moves its leadership to the first of its replicas, if that
// one is in sync. A partition already led by it is no error. The metadata
// may show the old leader for a moment after it returns.
func ElectPreferredLeaders(ctx context.Context, brokers []string, topic string, partitions []int) error {
	c := newClient(brokers)
	c.Timeout = adminTimeout
	// kafka-go sends election type 0: preferred.
	resp, err := c.ElectLeaders(ctx, &kgo.ElectLeadersRequest{Topic: topic, Partitions: partitions, Timeout: adminTimeout})
	if err == nil {
		err = resp.Error
	}
	if err != nil {
		return fmt.Errorf("elect leaders of %s: %w", topic, err)
	}
	var errs []error
	for _, r := range resp.PartitionResults {
		if r.Error != nil && !errors.Is(r.Error, kgo.ElectionNotNeeded) {
			errs = append(errs, fmt.Errorf("elect the leader of %s/%d: %w", topic, r.Partition, r.Error))
		}
	}
	return errors.Join(errs...)
}

// DeleteTopics deletes topics. The brokers finish the deletion after it
// returns: the metadata may list a topic for a moment more.
func DeleteTopics(ctx context.Context, brokers []string, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	resp, err := newClient(brokers).DeleteTopics(ctx, &kgo.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	var errs []error
	for name, err := range resp.Errors {
		if err != nil {
			errs = append(errs, fmt.Errorf("delete topic %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// CommitOffsets commits, for group, the next offset to read of partitions
// of topic, outside any generation, as an administrator's tool does: the
// coordinator refuses it while the group has members.
func CommitOffsets(ctx context.Context, brokers []string, group, topic string, next map[int]int64) error {
	return whileTemporary(ctx, func() error { return commitOffsets(ctx, brokers, group, topic, next) })
}

// whileTemporary runs op again, with backoff, while it fails with an error
// Kafka marks as temporary (a group's coordinator that is moving or still
// loading), until ctx ends.
func whileTemporary(ctx context.Context, op func() error) error {
	b := backoff.New(50*time.Millisecond, time.Second)
	for {
		err := op()
		var kerr kgo.Error
		if err == nil || !errors.As(err, &kerr) || !kerr.Temporary() {
			return err
		}
		if werr := b.Wait(ctx); werr != nil {
			return errors.Join(err, werr)
		}
	}
}

func commitOffsets(ctx context.Context, brokers []string, group, topic string, next map[int]int64) error {
	commits := make([]kgo.OffsetCommit, 0, len(next))
	for p, o := range next {
		commits = append(commits, kgo.OffsetCommit{Partition: p, Offset: o})
	}
	resp, err := newClient(brokers).OffsetCommit(ctx, &kgo.OffsetCommitRequest{
		GroupID: group, GenerationID: -1, Topics: map[string][]kgo.OffsetCommit{topic: commits},
	})
	if err != nil {
		return fmt.Errorf("commit offsets of %s: %w", group, err)
	}
	var errs []error
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			errs = append(errs, fmt.Errorf("commit the offset of %s/%d for %s: %w", topic, p.Partition, group, p.Error))
		}
	}
	return errors.Join(errs...)
}

// CommittedOffsets returns group's committed offset (the next to read) of
// each of partitions of topic: -1 where it has committed none.
func CommittedOffsets(ctx context.Context, brokers []string, group, topic string, partitions []int) (map[int]int64, error) {
	var out map[int]int64
	err := whileTemporary(ctx, func() error {
		var err error
		out, err = committedOffsets(ctx, brokers, group, topic, partitions)
		return err
	})
	return out, err
}

func committedOffsets(ctx context.Context, brokers []string, group, topic string, partitions []int) (map[int]int64, error) {
	resp, err := newClient(brokers).OffsetFetch(ctx, &kgo.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: partitions}})
	if err == nil {
		err = resp.Error
	}
	if err != nil {
		return nil, fmt.Errorf("committed offsets of %s: %w", group, err)
	}
	out := make(map[int]int64, len(partitions))
	var errs []error
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			errs = append(errs, fmt.Errorf("committed offset of %s/%d for %s: %w", topic, p.Partition, group, p.Error))
			continue
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, errors.Join(errs...)
}
