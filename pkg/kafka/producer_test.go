package kafka_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

func TestEnsureTopics(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	compacted := kafka.TopicSpec{Name: prefix + "compacted", Partitions: 3,
		Config: map[string]string{"cleanup.policy": "compact", "retention.ms": "3600000"}}
	plain := kafka.TopicSpec{Name: prefix + "plain", Partitions: 1}

	wantPartitions := map[string]int{compacted.Name: 3, plain.Name: 1}
	steps := []struct {
		name       string
		partitions int // of the compacted topic in this call
	}{
		{"creates", 3},
		{"second call is fine", 3},
		{"existing topics are left as they are", 5},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			spec := compacted
			spec.Partitions = step.partitions
			if err := kafka.EnsureTopics(t.Context(), brokers, testenv.ReplicationFactor(), []kafka.TopicSpec{spec, plain}); err != nil {
				t.Fatal(err)
			}
			for topic, want := range wantPartitions {
				got, err := kafka.PartitionCount(t.Context(), brokers, topic)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("%s has %d partitions, want %d", topic, got, want)
				}
			}
			got := topicConfig(t, brokers, compacted.Name, "cleanup.policy", "retention.ms")
			for k, want := range compacted.Config {
				if got[k] != want {
					t.Errorf("%s: %s = %q, want %q", compacted.Name, k, got[k], want)
				}
			}
		})
	}
}

func TestPartitionCountOfMissingTopic(t *testing.T) {
	brokers := testenv.Kafka(t)
	if n, err := kafka.PartitionCount(t.Context(), brokers, testenv.TopicPrefix(t)+"missing"); err == nil {
		t.Fatalf("PartitionCount of a missing topic = %d, want an error", n)
	}
}

// TestProduceGathersCalls writes from many goroutines at once, one of them
// to a topic that does not exist: the calls are gathered into shared
// requests, yet each call gets its own answer, and the bad one fails only
// itself.
func TestProduceGathersCalls(t *testing.T) {
	const callers, each = 32, 20
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	good, missing := prefix+"good", prefix+"missing"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: good, Partitions: 6})
	p := kafka.NewProducer(brokers, 5*time.Millisecond)
	defer p.Close()

	var g errgroup.Group
	for c := range callers {
		g.Go(func() error {
			msgs := make([]kafka.Message, each)
			for i := range msgs {
				msgs[i] = kafka.Message{Topic: good, Key: []byte(fmt.Sprintf("%d-%d", c, i)), Value: []byte("v")}
			}
			return p.Produce(t.Context(), msgs...)
		})
	}
	badErr := make(chan error, 1)
	go func() { badErr <- p.Produce(t.Context(), kafka.Message{Topic: missing, Value: []byte("v")}) }()
	if err := g.Wait(); err != nil {
		t.Fatalf("a call to an existing topic failed: %v", err)
	}
	if err := <-badErr; !errors.Is(err, kgo.UnknownTopicOrPartition) {
		t.Errorf("produce to a missing topic: %v, want UnknownTopicOrPartition", err)
	}
	all, err := kafka.ReadAll(t.Context(), brokers, good)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != callers*each {
		t.Errorf("%d records in %s, want %d", len(all), good, callers*each)
	}
}

func topicConfig(t *testing.T, brokers []string, topic string, names ...string) map[string]string {
	t.Helper()
	client := &kgo.Client{Addr: kgo.TCP(brokers...)}
	resp, err := client.DescribeConfigs(t.Context(), &kgo.DescribeConfigsRequest{Resources: []kgo.DescribeConfigRequestResource{{
		ResourceType: kgo.ResourceTypeTopic, ResourceName: topic, ConfigNames: names,
	}}})
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	got := map[string]string{}
	for _, r := range resp.Resources {
		if r.Error != nil {
			t.Fatalf("describe configs %s: %v", r.ResourceName, r.Error)
		}
		for _, e := range r.ConfigEntries {
			got[e.ConfigName] = e.ConfigValue
		}
	}
	return got
}
