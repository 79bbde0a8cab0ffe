package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

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
	client := &kgo.Client{Addr: kgo.TCP(brokers...), Timeout: 5 * time.Second}
	return retry(ctx, func(ctx context.Context) error {
		md, err := client.Metadata(ctx, &kgo.MetadataRequest{Topics: []string{}})
		if err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
		if len(md.Brokers) < len(brokers) || md.Controller.ID < 0 {
			return fmt.Errorf("metadata lists %d of %d brokers, controller %d", len(md.Brokers), len(brokers), md.Controller.ID)
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
	client := &kgo.Client{Addr: kgo.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kgo.MetadataRequest{})
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var names []string
	for _, tp := range md.Topics {
		if strings.HasPrefix(tp.Name, prefix) {
			names = append(names, tp.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	resp, err := client.DeleteTopics(ctx, &kgo.DeleteTopicsRequest{Topics: names})
	if err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	var errs []error
	for name, err := range resp.Errors {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
