package kafka_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// TestGroupMembers: two members that joined with their metadata are
// described with it, each with the partitions its Assigned hook was told,
// together every partition once.
func TestGroupMembers(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	topic, group := prefix+"in", prefix+"members"
	const partitions = 4
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: partitions})

	var mu sync.Mutex
	assigned := map[string][]int{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, meta := range []string{"http://a", "http://b"} {
		cfg := kafka.GroupConfig{Brokers: brokers, Group: group, Topics: []string{topic}, Meta: []byte(meta),
			Assigned: func(ps []int) { mu.Lock(); assigned[meta] = ps; mu.Unlock() }}
		wg.Go(func() {
			_ = kafka.RunGroup(ctx, cfg, func(ctx context.Context, c *kafka.Claim) error { <-ctx.Done(); return nil })
		})
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		members, stable, err := kafka.GroupMembers(ctx, brokers, group)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		done := stable && len(members) == 2 && len(assigned["http://a"])+len(assigned["http://b"]) == partitions
		var all []int
		for _, m := range members {
			if done && !slices.Equal(m.Partitions[topic], assigned[string(m.Meta)]) {
				done = false // the hooks have not heard of this generation yet
			}
			all = append(all, m.Partitions[topic]...)
		}
		mu.Unlock()
		slices.Sort(all)
		if done {
			t.Logf("stable with both after %s", time.Until(deadline.Add(-60*time.Second)).Abs())
			if !slices.Equal(all, []int{0, 1, 2, 3}) {
				t.Fatalf("members hold partitions %v, want each once", all)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group not stable with both members after 60 s: %+v, assigned %v", members, assigned)
		}
		time.Sleep(50 * time.Millisecond) // polling the coordinator
	}
}
