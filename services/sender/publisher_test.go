package sender

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// countingProducer is the real producer, counting its calls.
type countingProducer struct {
	*kafka.Producer
	calls atomic.Int64
}

func (c *countingProducer) ProduceMany(ctx context.Context, msgs ...kafka.Message) error {
	c.calls.Add(1)
	return c.Producer.ProduceMany(ctx, msgs...)
}

func TestPublisher(t *testing.T) {
	const callers, perCaller = 20, 3
	tests := []struct {
		name string
		// extra is one more caller, whose records go to this topic (under
		// the test's prefix) when not empty.
		extra     string
		wantErr   bool
		wantInLog int
	}{
		{name: "concurrent callers share one write", wantInLog: callers * perCaller},
		{name: "a failed write fails every caller in it", extra: "missing", wantErr: true, wantInLog: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, brokers, topic := resultsTopic(t)
			prod := &countingProducer{Producer: kafka.NewProducer(brokers, time.Millisecond)}
			defer prod.Close()

			n := callers * perCaller
			batches := callers
			if tt.extra != "" {
				n++
				batches++
			}
			// A linger longer than the test: the write goes out only once
			// every caller's records are in, so exactly one call is expected.
			p := newPublisher(prod, time.Hour, n)
			runCtx, stop := context.WithCancel(ctx)
			var run sync.WaitGroup
			run.Go(func() { p.run(runCtx) })
			defer func() { stop(); run.Wait() }()

			errs := make(chan error, batches)
			var wg sync.WaitGroup
			for c := range callers {
				wg.Go(func() {
					msgs := make([]kafka.Message, perCaller)
					for i := range msgs {
						msgs[i] = kafka.Message{Topic: topic, Value: fmt.Appendf(nil, "%d-%d", c, i)}
					}
					errs <- p.publish(ctx, msgs...)
				})
			}
			if tt.extra != "" {
				wg.Go(func() { errs <- p.publish(ctx, kafka.Message{Topic: topic + "." + tt.extra, Value: []byte("x")}) })
			}
			wg.Wait()
			close(errs)
			failed := 0
			for err := range errs {
				if err != nil {
					failed++
				}
			}
			if want := map[bool]int{true: batches, false: 0}[tt.wantErr]; failed != want {
				t.Errorf("%d of %d callers failed, want %d", failed, batches, want)
			}
			if got := prod.calls.Load(); got != 1 {
				t.Errorf("%d produce calls, want 1", got)
			}
			if got := readAll(ctx, t, brokers, topic); got != tt.wantInLog {
				t.Errorf("%d records in the topic, want %d", got, tt.wantInLog)
			}
		})
	}
}

// resultsTopic creates a topic of one partition for the test, and returns
// it with a context that ends with the test or after 30 s.
func resultsTopic(t *testing.T) (context.Context, []string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	brokers := testenv.Kafka(t)
	topic := testenv.TopicPrefix(t) + "results"
	if err := kafka.EnsureTopics(ctx, brokers, testenv.ReplicationFactor(), []kafka.TopicSpec{{Name: topic, Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	return ctx, brokers, topic
}

// readAll counts the records in partition 0 of topic: its end less its
// start, since nothing there is compacted or transactional.
func readAll(ctx context.Context, t *testing.T, brokers []string, topic string) int {
	t.Helper()
	span, err := kafka.PartitionOffsets(ctx, brokers, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	return int(span.Next - span.First)
}

// flakyProducer refuses its first fails calls, as a Kafka that lost a
// leader does, then writes with the real producer.
type flakyProducer struct {
	*kafka.Producer
	fails atomic.Int64
}

func (f *flakyProducer) ProduceMany(ctx context.Context, msgs ...kafka.Message) error {
	if f.fails.Add(-1) >= 0 {
		return errors.New("not leader for partition")
	}
	return f.Producer.ProduceMany(ctx, msgs...)
}

// TestPublishSubmittedWaitsOutKafka: the records of a submitted message are
// written once Kafka takes writes again, not left for a replay that would
// not come before the next rebalance.
func TestPublishSubmittedWaitsOutKafka(t *testing.T) {
	ctx, brokers, topic := resultsTopic(t)
	prod := &flakyProducer{Producer: kafka.NewProducer(brokers, time.Millisecond)}
	defer prod.Close()
	prod.fails.Store(3)
	s := &slot{pub: newPublisher(prod, time.Millisecond, 16), log: slog.New(slog.DiscardHandler)}
	runCtx, stop := context.WithCancel(ctx)
	var run sync.WaitGroup
	run.Go(func() { s.pub.run(runCtx) })
	defer func() { stop(); run.Wait() }()

	recs := []kafka.Message{{Topic: topic, Value: []byte("submit result")}, {Topic: topic, Value: []byte("submitted")}}
	if err := s.publishSubmitted(ctx, recs); err != nil {
		t.Fatalf("publish after 3 refusals: %v", err)
	}
	if left := prod.fails.Load(); left != -1 {
		t.Errorf("%d refusals left, want every one used and one write", left+1)
	}
	if got := readAll(ctx, t, brokers, topic); got != 2 {
		t.Errorf("%d records in the topic, want 2", got)
	}

	// Abandoned work (a stopping slot past its drain time) gives up.
	prod.fails.Store(1 << 30)
	gone, abandon := context.WithCancel(ctx)
	abandon()
	if err := s.publishSubmitted(gone, recs); err == nil {
		t.Error("abandoned publish returned no error")
	}
}
