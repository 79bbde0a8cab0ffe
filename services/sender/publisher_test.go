package sender

import (
	"context"
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
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			brokers := testenv.Kafka(t)
			topic := testenv.TopicPrefix(t) + "results"
			if err := kafka.EnsureTopics(ctx, brokers, testenv.ReplicationFactor(), []kafka.TopicSpec{{Name: topic, Partitions: 1}}); err != nil {
				t.Fatal(err)
			}
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
			if got := readAll(ctx, t, brokers, topic, tt.wantInLog); got != tt.wantInLog {
				t.Errorf("%d records in the topic, want %d", got, tt.wantInLog)
			}
		})
	}
}

// readAll counts the records of partition 0 of topic, reading until it has
// want of them, then a moment more to see any extra one.
func readAll(ctx context.Context, t *testing.T, brokers []string, topic string, want int) int {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	var follow sync.WaitGroup
	defer func() { cancel(); follow.Wait() }()
	var got atomic.Int64
	enough := make(chan struct{})
	follow.Go(func() {
		kafka.FollowPartition(ctx, brokers, topic, 0, 0, func(kafka.Message) {
			if got.Add(1) == int64(want) {
				close(enough)
			}
		}, slog.New(slog.DiscardHandler))
	})
	if want > 0 {
		select {
		case <-enough:
		case <-ctx.Done():
			t.Fatalf("only %d of %d records read", got.Load(), want)
		}
	}
	time.Sleep(500 * time.Millisecond) // nothing more may come; not a timing assertion on the code under test
	return int(got.Load())
}
