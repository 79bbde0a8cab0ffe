package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/kafka/embedded"
)

// Kafka returns the bootstrap brokers of a Kafka cluster for this test:
// SLUICE_TEST_KAFKA_BROKERS when set, else an embedded broker that lives
// until the test ends. Topics are not created automatically on either.
func Kafka(t testing.TB) []string {
	t.Helper()
	if v := os.Getenv(EnvKafkaBrokers); v != "" {
		return strings.Split(v, ",")
	}
	b, err := embedded.Start()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(b.Close)
	return b.Addrs()
}

// WaitKafka returns once the cluster at brokers serves metadata listing at
// least as many live brokers as addresses given, and a controller (an open port alone does not mean the broker
// has joined its cluster). It retries until ctx ends.
func WaitKafka(ctx context.Context, brokers []string) error {
	return retry(ctx, func(ctx context.Context) error {
		// An attempt waits 5 s at most: a broker still starting is asked
		// again rather than waited for.
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := kafka.DescribeCluster(ctx, brokers)
		if err != nil {
			return err
		}
		if len(c.Brokers) < len(brokers) || c.Controller == kafka.NoBroker {
			return fmt.Errorf("metadata lists %d of %d brokers, controller %d", len(c.Brokers), len(brokers), c.Controller)
		}
		return nil
	})
}

// retry calls try every 250 ms until it succeeds or ctx ends, and then
// returns the last error.
func retry(ctx context.Context, try func(context.Context) error) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		err := try(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// deleteTopics deletes every topic whose name starts with prefix.
func deleteTopics(brokers []string, prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all, err := kafka.Topics(ctx, brokers)
	if err != nil {
		return err
	}
	var names []string
	for _, name := range all {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return kafka.DeleteTopics(ctx, brokers, names...)
}
