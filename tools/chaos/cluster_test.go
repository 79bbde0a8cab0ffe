package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
)

// TestBrokerCluster runs campaigns on a three-node cluster of the test's own
// (replication factor 3, min.insync.replicas 2) while a broker that leads
// partitions of the stack's topics is killed with SIGKILL, and while the
// leadership of every partition moves to another broker: no code path may
// depend on one broker, so every message must still end in one final status
// and one row.
func TestBrokerCluster(t *testing.T) {
	n, rate, down, timeout := brokerFaultSize()
	k := startKafka(t, 3)
	s := startStackWith(t, Options{Brokers: k.addrs(), ReplicationFactor: 3})
	prefix := s.Cfg.Kafka.TopicPrefix
	var results []Result

	// The busiest leader takes the most partitions away at once; broker 1 is
	// also the first address in every service's broker list, the one a client
	// that depended on one broker would use.
	victims := []struct {
		name string
		pick func(ctx context.Context) (id int, err error)
	}{
		{"kill_-9_the_busiest_leader", func(ctx context.Context) (int, error) {
			id, _, err := busiestLeader(ctx, k.addrs(), prefix)
			return id, err
		}},
		{"kill_-9_the_first_listed_broker", func(context.Context) (int, error) { return k.nodes[0].id, nil }},
	}
	for i, v := range victims {
		t.Run(v.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			var victim *kafkaNode
			f := Fault{
				Name: fmt.Sprintf("%s, %s", strings.ReplaceAll(v.name, "_", " "), down), Down: down,
				Stop: func(ctx context.Context) error {
					id, err := v.pick(ctx)
					if err != nil {
						return err
					}
					leads, err := leaderCount(ctx, k.addrs(), prefix, id)
					if err != nil {
						return err
					}
					victim = k.node(id)
					t.Logf("killing broker %d, leader of %d of the stack's partitions", id, leads)
					victim.kill()
					return nil
				},
				Start: func(ctx context.Context) error { return victim.start(ctx) },
			}
			res, err := s.Run(ctx, f, Campaign(fmt.Sprintf("chaos-cluster-kill-%d", i), n, 13+uint64(i)), rate, nil)
			results = append(results, res)
			checkResult(t, res)
			if err != nil {
				logLag(t, s)
				t.Fatal(err)
			}
		})
	}

	t.Run("leadership_moved", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var moved int
		f := Fault{
			Name: "kafka leadership of every partition moved",
			Stop: func(ctx context.Context) (err error) {
				moved, err = moveLeaders(ctx, k.addrs(), prefix)
				return err
			},
			Start: func(context.Context) error { return nil },
		}
		res, err := s.Run(ctx, f, Campaign("chaos-cluster-moved", n, 17), rate, nil)
		results = append(results, res)
		checkResult(t, res)
		if err != nil {
			t.Fatal(err)
		}
		if moved == 0 {
			t.Error("no partition's leader moved")
		}
		t.Logf("moved the leaders of %d partitions", moved)
	})
	logResults(t, fmt.Sprintf("three-broker cluster (%d messages per fault at %.0f msg/s)", n, rate), results)
}

// stackPartitions returns the partitions of the topics whose names start
// with prefix, as the cluster sees them now.
func stackPartitions(ctx context.Context, brokers []string, prefix string) ([]kafka.PartitionInfo, error) {
	all, err := kafka.Partitions(ctx, brokers)
	if err != nil {
		return nil, err
	}
	var ps []kafka.PartitionInfo
	for _, p := range all {
		if strings.HasPrefix(p.Topic, prefix) {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("no topics with prefix %q", prefix)
	}
	return ps, nil
}

// healthyPartitions waits until every partition of the stack has all its
// replicas known and in sync, as after an earlier fault the cluster
// recovers: a replica on a broker the metadata does not list yet comes back
// as kafka.NoBroker, which no reassignment can name.
func healthyPartitions(ctx context.Context, brokers []string, prefix string) ([]kafka.PartitionInfo, error) {
	var ps []kafka.PartitionInfo
	var last error
	err := poll(ctx, func() bool {
		ps, last = stackPartitions(ctx, brokers, prefix)
		if last != nil {
			return false
		}
		for _, p := range ps {
			if len(p.ISR) != len(p.Replicas) {
				last = fmt.Errorf("%s/%d: %d of %d replicas in sync", p.Topic, p.ID, len(p.ISR), len(p.Replicas))
				return false
			}
			for _, r := range p.Replicas {
				if r == kafka.NoBroker {
					last = fmt.Errorf("%s/%d: a replica on a broker not listed", p.Topic, p.ID)
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("cluster not healthy: %w (%v)", last, err)
	}
	return ps, nil
}

// logLag logs where a stalled campaign's messages wait.
func logLag(t *testing.T, s *Stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lag, err := s.Lag(ctx)
	for _, l := range lag {
		t.Log("lag:", l)
	}
	if err != nil {
		t.Log("lag:", err)
	}
}

// leaderCount returns how many of the prefix's partitions broker id leads.
func leaderCount(ctx context.Context, brokers []string, prefix string, id int) (int, error) {
	ps, err := stackPartitions(ctx, brokers, prefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range ps {
		if p.Leader == id {
			n++
		}
	}
	return n, nil
}

// busiestLeader returns the broker that leads the most partitions of the
// prefix's topics, and how many.
func busiestLeader(ctx context.Context, brokers []string, prefix string) (id, leads int, err error) {
	ps, err := stackPartitions(ctx, brokers, prefix)
	if err != nil {
		return 0, 0, err
	}
	count := map[int]int{}
	for _, p := range ps {
		count[p.Leader]++
	}
	for b, c := range count {
		if c > leads {
			id, leads = b, c
		}
	}
	return id, leads, nil
}

// moveLeaders makes the next replica of each partition of the prefix's
// topics its preferred leader (a reassignment to the same replicas,
// rotated), runs a preferred leader election and waits until every
// partition is led by its new preferred leader. It returns how many
// partitions changed leader.
func moveLeaders(ctx context.Context, brokers []string, prefix string) (int, error) {
	ps, err := healthyPartitions(ctx, brokers, prefix)
	if err != nil {
		return 0, err
	}
	var assignments []kafka.Assignment
	want := map[string]int{} // topic/partition: its new leader
	byTopic := map[string][]int{}
	for _, p := range ps {
		if len(p.Replicas) < 2 {
			return 0, fmt.Errorf("%s/%d has %d replicas: nowhere to move", p.Topic, p.ID, len(p.Replicas))
		}
		// Rotate so that the replica after the current leader comes first.
		at := 0
		for i, r := range p.Replicas {
			if r == p.Leader {
				at = i
			}
		}
		ids := make([]int, len(p.Replicas))
		for i := range ids {
			ids[i] = p.Replicas[(at+1+i)%len(p.Replicas)]
		}
		assignments = append(assignments, kafka.Assignment{Topic: p.Topic, Partition: p.ID, Replicas: ids})
		want[fmt.Sprintf("%s/%d", p.Topic, p.ID)] = ids[0]
		byTopic[p.Topic] = append(byTopic[p.Topic], p.ID)
	}
	if err := kafka.ReassignPartitions(ctx, brokers, assignments); err != nil {
		return 0, err
	}
	for topic, parts := range byTopic {
		if err := kafka.ElectPreferredLeaders(ctx, brokers, topic, parts); err != nil {
			return 0, err
		}
	}
	moved := 0
	err = poll(ctx, func() bool {
		now, err := stackPartitions(ctx, brokers, prefix)
		if err != nil {
			return false
		}
		moved = 0
		for _, p := range now {
			if want[fmt.Sprintf("%s/%d", p.Topic, p.ID)] == p.Leader {
				moved++
			}
		}
		return moved == len(want)
	})
	if err != nil {
		return moved, fmt.Errorf("%d of %d partitions on their new leader: %w", moved, len(want), err)
	}
	return moved, nil
}
