package dlr

import (
	"context"
	"fmt"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sluice-sms/sluice/pkg/kafka"
)

// table is a partition's state, kept in memory and backed by a compacted
// changelog topic that has the same partitioning as the input: every change
// is a record of the changelog, written before the input that caused it is
// committed, and a new owner of the partition reads the changelog back.
type table struct {
	topic string
	rows  map[string][]byte
}

// restore reads partition p of the changelog from its start to its end.
func restore(ctx context.Context, brokers []string, topic string, p int) (*table, error) {
	t := &table{topic: topic, rows: map[string][]byte{}}
	conn, err := kgo.DialLeader(ctx, "tcp", brokers[0], topic, p)
	if err != nil {
		return nil, fmt.Errorf("restore %s/%d: %w", topic, p, err)
	}
	first, last, err := conn.ReadOffsets()
	_ = conn.Close()
	if err != nil {
		return nil, fmt.Errorf("restore %s/%d: offsets: %w", topic, p, err)
	}
	if last <= first {
		return t, nil
	}
	r := kgo.NewReader(kgo.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return nil, fmt.Errorf("restore %s/%d: %w", topic, p, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return nil, fmt.Errorf("restore %s/%d: %w", topic, p, err)
		}
		if m.Value == nil {
			delete(t.rows, string(m.Key))
		} else {
			t.rows[string(m.Key)] = m.Value
		}
		if m.Offset >= last-1 {
			return t, nil
		}
	}
}

func (t *table) get(key string) ([]byte, bool) {
	v, ok := t.rows[key]
	return v, ok
}

// put stores a row and returns the changelog record that makes it durable.
func (t *table) put(key string, value []byte) kafka.Message {
	t.rows[key] = value
	return kafka.Message{Topic: t.topic, Key: []byte(key), Value: value}
}

// del removes a row and returns its tombstone.
func (t *table) del(key string) kafka.Message {
	delete(t.rows, key)
	return kafka.Message{Topic: t.topic, Key: []byte(key)}
}

func (t *table) len() int { return len(t.rows) }
