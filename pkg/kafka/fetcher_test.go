package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// TestOneFetchPerLeader reads many partitions at once, as a member's claims
// and followers do, and checks that every record arrives once and in order
// while the partitions of one leader share a request: each leader answers
// one request with the records, and at most one more that finds the
// readers done. The fetcher is held until every reader has subscribed, so
// the count does not depend on how fast each reader starts, and the topic
// is read once before, so it does not count a new topic's leader election.
func TestOneFetchPerLeader(t *testing.T) {
	const partitions, perPartition = 24, 50
	brokers := testenv.Kafka(t)
	topic := testenv.TopicPrefix(t) + "fetch"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: partitions})
	var msgs []kafka.Message
	for p := range partitions {
		for i := range perPartition {
			msgs = append(msgs, kafka.Message{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("%d/%d", p, i))})
		}
	}
	produceTo(t, brokers, msgs...)
	cluster, err := kafka.DescribeCluster(t.Context(), brokers)
	if err != nil {
		t.Fatal(err)
	}
	// A first read, one partition at a time, lets the new topic's leaders
	// settle: until then a request can meet a partition without a leader and
	// be retried on its own.
	for p := range partitions {
		if _, err := kafka.ReadRange(t.Context(), brokers, topic, p, kafka.FirstOffset, func(kafka.Message) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}

	meter, reader := testenv.Meter(t)
	if _, err := kafka.RegisterTraffic(meter); err != nil {
		t.Fatal(err)
	}
	subscribed, resume := kafka.PauseFetches(brokers)
	defer resume()
	before := testenv.Counters(t, reader, "sluice_kafka_requests", "kind")["fetch"]
	var mu sync.Mutex
	got := map[int][]string{}
	var g errgroup.Group
	for p := range partitions {
		g.Go(func() error {
			_, err := kafka.ReadRange(t.Context(), brokers, topic, p, kafka.FirstOffset, func(m kafka.Message) error {
				mu.Lock()
				defer mu.Unlock()
				got[p] = append(got[p], string(m.Value))
				return nil
			})
			return err
		})
	}
	waitFor(t, testTimeout, "every reader subscribed", func() bool { return subscribed() >= partitions })
	resume()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	requests := testenv.Counters(t, reader, "sluice_kafka_requests", "kind")["fetch"] - before

	for p := range partitions {
		if len(got[p]) != perPartition {
			t.Fatalf("partition %d: %d records, want %d", p, len(got[p]), perPartition)
		}
		for i, v := range got[p] {
			if want := fmt.Sprintf("%d/%d", p, i); v != want {
				t.Fatalf("partition %d record %d is %q, want %q", p, i, v, want)
			}
		}
	}
	if limit := int64(2 * len(cluster.Brokers)); requests > limit {
		t.Errorf("%d fetch requests for %d partitions on %d brokers: want at most %d, two per leader", requests, partitions, len(cluster.Brokers), limit)
	}
	t.Logf("%d partitions on %d brokers read with %d fetch requests", partitions, len(cluster.Brokers), requests)
}

// TestClaimSeekAndOffset checks a claim's position: Offset follows what
// Fetch handed out, and Seek goes back to re-read records.
func TestClaimSeekAndOffset(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	topic := prefix + "seek"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: 1})
	var msgs []kafka.Message
	for i := range 10 {
		msgs = append(msgs, kafka.Message{Topic: topic, Value: []byte(fmt.Sprint(i))})
	}
	produceTo(t, brokers, msgs...)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- kafka.RunGroup(ctx, kafka.GroupConfig{Brokers: brokers, Group: prefix + "g", Topics: []string{topic}}, func(ctx context.Context, c *kafka.Claim) error {
			defer cancel()
			for i := range 4 {
				m, err := c.Fetch(ctx, topic)
				if err != nil {
					return err
				}
				if m.Offset != int64(i) {
					return fmt.Errorf("fetch %d: offset %d", i, m.Offset)
				}
			}
			if got := c.Offset(topic); got != 4 {
				return fmt.Errorf("offset after 4 records: %d, want 4", got)
			}
			if err := c.Seek(topic, 1); err != nil {
				return err
			}
			b, err := c.FetchBatch(ctx, topic, 10*time.Second, kafka.BatchOptions{Max: 3, Linger: time.Second})
			if err != nil {
				return err
			}
			if len(b) != 3 || b[0].Offset != 1 || b[2].Offset != 3 {
				return fmt.Errorf("batch after seek to 1: %d records from %d", len(b), b[0].Offset)
			}
			if got := c.Offset(topic); got != 4 {
				return fmt.Errorf("offset after the batch: %d, want 4", got)
			}
			errc <- nil
			return nil
		})
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestFetcherStopsWhenIdle checks that the fetcher's goroutine ends once
// nothing reads through it, and that a later reader starts a new one. The
// broker list names a broker twice, so that this fetcher is the test's own.
func TestFetcherStopsWhenIdle(t *testing.T) {
	brokers := testenv.Kafka(t)
	own := append(slices.Clone(brokers), brokers[0])
	topic := testenv.TopicPrefix(t) + "idle"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: 1})
	produceTo(t, brokers, kafka.Message{Topic: topic, Value: []byte("x")})
	for round := range 2 {
		n := 0
		if _, err := kafka.ReadRange(t.Context(), own, topic, 0, kafka.FirstOffset, func(kafka.Message) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("round %d: read %d records, want 1", round, n)
		}
		waitFor(t, testTimeout, "the idle fetcher to stop", func() bool { return !kafka.FetcherRunning(own) })
	}
}
