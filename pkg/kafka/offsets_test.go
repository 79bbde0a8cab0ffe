package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// deadBroker is an address where nothing listens: a broker that is down.
func deadBroker(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// Offsets, a partition's range and a topic's records are read from whichever
// broker answers, even when the first one listed is down.
func TestOffsetsAndRangesWithFirstBrokerDown(t *testing.T) {
	up := testenv.Kafka(t)
	topic := testenv.TopicPrefix(t) + "ranges"
	ensureTopics(t, up, kafka.TopicSpec{Name: topic, Partitions: 3})
	produceToPartition(t, up, topic, 0, 10)
	produceToPartition(t, up, topic, 2, 3)
	brokers := append([]string{deadBroker(t)}, up...)
	ctx := t.Context()

	spans, err := kafka.TopicOffsets(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]kafka.Span{0: {0, 10}, 1: {0, 0}, 2: {0, 3}}
	if fmt.Sprint(spans) != fmt.Sprint(want) {
		t.Errorf("spans %v, want %v", spans, want)
	}
	if s, err := kafka.PartitionOffsets(ctx, brokers, topic, 2); err != nil || s != want[2] {
		t.Errorf("partition 2: %v, %v; want %v", s, err, want[2])
	}

	tests := []struct {
		partition int
		from      int64
		want      []int64 // offsets handed over
	}{
		{0, kafka.FirstOffset, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{0, 7, []int64{7, 8, 9}},
		{0, 10, nil},
		{1, kafka.FirstOffset, nil},
		{2, -5, []int64{0, 1, 2}},
	}
	for _, tt := range tests {
		var got []int64
		end, err := kafka.ReadRange(ctx, brokers, topic, tt.partition, tt.from, func(m kafka.Message) error {
			got = append(got, m.Offset)
			return nil
		})
		if err != nil || end != want[tt.partition].Next || !slices.Equal(got, tt.want) {
			t.Errorf("ReadRange(%d from %d) = %v, end %d, %v; want %v, end %d", tt.partition, tt.from, got, end, err, tt.want, want[tt.partition].Next)
		}
	}

	stop := errors.New("stop")
	n := 0
	if _, err := kafka.ReadRange(ctx, brokers, topic, 0, kafka.FirstOffset, func(kafka.Message) error {
		if n++; n == 4 {
			return stop
		}
		return nil
	}); !errors.Is(err, stop) || n != 4 {
		t.Errorf("fn's error: %v after %d records, want it after 4", err, n)
	}

	all, err := kafka.ReadAll(ctx, brokers, topic)
	if err != nil || len(all) != 13 {
		t.Fatalf("ReadAll: %d records, %v; want 13", len(all), err)
	}
}

// Tail says it has caught up once the records there were at its start are
// handed over (at once for an empty partition), and hands over later ones.
func TestTail(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.TopicPrefix(t) + "tail"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: 2})
	produceToPartition(t, brokers, topic, 0, 5)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	type seen struct {
		partition int
		offset    int64
		caught    bool
	}
	events := make(chan seen, 64)
	for p := range 2 {
		go kafka.Tail(ctx, brokers, topic, p,
			func(m kafka.Message) { events <- seen{partition: p, offset: m.Offset} },
			func() { events <- seen{partition: p, caught: true} },
			slog.New(slog.DiscardHandler))
	}
	next := func() seen {
		select {
		case e := <-events:
			return e
		case <-ctx.Done():
			t.Fatal("Tail handed nothing over")
			return seen{}
		}
	}
	var order []string
	for len(order) < 7 { // 5 records and 2 caught-ups
		e := next()
		order = append(order, fmt.Sprint(e))
		if e.partition == 0 && e.caught && len(order) != 6 && len(order) != 7 {
			t.Errorf("partition 0 caught up after %v, before its 5 records", order)
		}
	}
	produceToPartition(t, brokers, topic, 1, 1)
	if e := next(); e != (seen{partition: 1, offset: 0}) {
		t.Errorf("after the catch-up: %v, want partition 1's first record", e)
	}
}
