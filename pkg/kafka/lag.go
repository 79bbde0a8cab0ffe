package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	kgo "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// PartitionLag is how far a consumer group is behind on one partition.
type PartitionLag struct {
	Group     string
	Topic     string
	Partition int
	// Committed is the group's committed offset, -1 when it has none.
	Committed int64
	// End is the partition's high watermark, the next offset to be written.
	End int64
	// Lag is End minus Committed: records written and not yet committed.
	// Without a commit it counts every record still retained, since groups
	// start from the first offset.
	Lag int64
}

// LagMonitor computes the consumer lag of the groups it watches, from the
// committed offsets (OffsetFetch) and the partitions' ends (ListOffsets):
// kafka-go's own Lag does not work with a group. It asks the broker when
// asked, so lag is as fresh as the scrape that reads it. Every member of a
// group reports the same figures: aggregate with max, not sum.
type LagMonitor struct {
	client *kgo.Client
	log    *slog.Logger

	mu       sync.Mutex
	groups   map[string][]string // group → topics
	prefixes []string            // watch every group whose id starts so
}

// NewLagMonitor returns a monitor of no group yet.
func NewLagMonitor(brokers []string, log *slog.Logger) *LagMonitor {
	if log == nil {
		log = slog.Default()
	}
	return &LagMonitor{
		client: &kgo.Client{Addr: kgo.TCP(brokers...), Timeout: 10 * time.Second},
		log:    log,
		groups: map[string][]string{},
	}
}

// Watch adds a group and the topics it consumes; watching again adds topics.
func (m *LagMonitor) Watch(group string, topics ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := append(m.groups[group], topics...)
	slices.Sort(ts)
	m.groups[group] = slices.Compact(ts)
}

// WatchPrefix watches every group whose id starts with prefix, found on the
// broker at each computation, with the topics its members subscribe to and
// those it has committed offsets on. Services' groups are named
// <topic prefix>sluice-<service>[-...], so a service watches its own with
// one call and no code at each group.
func (m *LagMonitor) WatchPrefix(prefix string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.prefixes, prefix) {
		m.prefixes = append(m.prefixes, prefix)
	}
}

// Lag returns the lag of every partition of every watched group's topics,
// ordered by group, topic and partition.
func (m *LagMonitor) Lag(ctx context.Context) ([]PartitionLag, error) {
	m.mu.Lock()
	groups := make(map[string][]string, len(m.groups))
	for g, ts := range m.groups {
		groups[g] = slices.Clone(ts)
	}
	prefixes := slices.Clone(m.prefixes)
	m.mu.Unlock()
	var errs []error
	if len(prefixes) > 0 {
		if err := m.discover(ctx, prefixes, groups); err != nil {
			errs = append(errs, err)
		}
	}
	var topics []string
	for _, ts := range groups {
		topics = append(topics, ts...)
	}
	if len(topics) == 0 {
		return nil, errors.Join(errs...)
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)

	partitions, err := topicPartitions(ctx, m.client, topics)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	ends, err := listOffsets(ctx, m.client, partitions)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	var out []PartitionLag
	for g, ts := range groups {
		req := &kgo.OffsetFetchRequest{GroupID: g, Topics: map[string][]int{}}
		for _, t := range ts {
			req.Topics[t] = partitions[t]
		}
		resp, err := m.client.OffsetFetch(ctx, req)
		if err == nil {
			err = resp.Error
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("offsets of group %s: %w", g, err))
			continue
		}
		for _, t := range ts {
			committed := map[int]int64{}
			for _, p := range resp.Topics[t] {
				if p.Error == nil {
					committed[p.Partition] = p.CommittedOffset
				}
			}
			for _, p := range partitions[t] {
				e := ends[topicPartition{t, p}]
				c, ok := committed[p]
				if !ok {
					c = -1
				}
				lag := e.Next - c
				if c < 0 {
					lag = e.Next - e.First
				}
				out = append(out, PartitionLag{Group: g, Topic: t, Partition: p, Committed: c, End: e.Next, Lag: max(lag, 0)})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return out, errors.Join(errs...)
}

// discover adds to groups the broker's groups named with one of prefixes,
// with their topics: subscribed by a member, or with a committed offset.
func (m *LagMonitor) discover(ctx context.Context, prefixes []string, groups map[string][]string) error {
	list, err := m.client.ListGroups(ctx, &kgo.ListGroupsRequest{})
	if err == nil {
		err = list.Error
	}
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	var found []string
	for _, g := range list.Groups {
		if _, known := groups[g.GroupID]; known {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(g.GroupID, p) {
				found = append(found, g.GroupID)
				break
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	var errs []error
	desc, err := m.client.DescribeGroups(ctx, &kgo.DescribeGroupsRequest{GroupIDs: found})
	if err != nil {
		return fmt.Errorf("describe groups: %w", err)
	}
	for _, g := range desc.Groups {
		if g.Error != nil {
			errs = append(errs, fmt.Errorf("describe group %s: %w", g.GroupID, g.Error))
			continue
		}
		for _, mem := range g.Members {
			groups[g.GroupID] = append(groups[g.GroupID], mem.MemberMetadata.Topics...)
		}
	}
	for _, g := range found {
		resp, err := m.client.OffsetFetch(ctx, &kgo.OffsetFetchRequest{GroupID: g}) // no topics: all committed
		if err == nil {
			err = resp.Error
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("offsets of group %s: %w", g, err))
			continue
		}
		for t := range resp.Topics {
			groups[g] = append(groups[g], t)
		}
		slices.Sort(groups[g])
		groups[g] = slices.Compact(groups[g])
	}
	return errors.Join(errs...)
}

// Register reports the lag on meter as sluice_kafka_consumer_lag{group,
// topic, partition}, computed at each collection; a failed computation is
// logged and counted in sluice_kafka_consumer_lag_failures_total, and what
// could be computed is still reported.
func (m *LagMonitor) Register(meter metric.Meter) (metric.Registration, error) {
	gauge, err := meter.Int64ObservableGauge("sluice_kafka_consumer_lag",
		metric.WithDescription("Records written to a partition and not yet committed by the consumer group"),
		metric.WithUnit("{record}"))
	if err != nil {
		return nil, err
	}
	failures, err := meter.Int64Counter("sluice_kafka_consumer_lag_failures_total",
		metric.WithDescription("Consumer lag computations that failed, in whole or in part"))
	if err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		lags, err := m.Lag(ctx)
		if err != nil {
			failures.Add(ctx, 1)
			m.log.Warn("consumer lag", "err", err)
		}
		for _, l := range lags {
			o.ObserveInt64(gauge, l.Lag, metric.WithAttributes(
				attribute.String("group", l.Group),
				attribute.String("topic", l.Topic),
				attribute.Int("partition", l.Partition)))
		}
		return nil
	}, gauge)
}
