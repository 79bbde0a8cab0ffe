package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/services/ingest"
)

// TestBadRecordsGoToDLQWhileGoodOnesFlow publishes good and bad records with
// one key, so all on one partition, and checks that the bad ones land in the
// DLQ unchanged with their reason while every good one behind them is
// accepted.
func TestBadRecordsGoToDLQWhileGoodOnesFlow(t *testing.T) {
	brokers := testenv.Kafka(t)
	cfg := config.Default()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.ReplicationFactor = testenv.ReplicationFactor()
	cfg.Kafka.TopicPrefix = testenv.TopicPrefix(t)
	cfg.Ingest.AdminAddr = "127.0.0.1:0"

	good := func(ref string) string {
		return fmt.Sprintf(`{"tenant":"acme","client_ref":%q,"from":"ACME","to":"+447700900123","text":"hello"}`, ref)
	}
	records := []struct {
		value    string
		wantCode string // "" when it must be accepted
	}{
		{good("g1"), ""},
		{`{"tenant":"acme","from":"ACME","to":"+447700900123","text":`, "malformed_json"},
		{good("g2"), ""},
		{`{"tenant":"acme","from":"ACME","text":"no destination"}`, "required"},
		{`not json at all`, "malformed_json"},
		{`{"tenant":"acme","from":"ACME","to":"+447700900123","text":"hi","colour":"red"}`, "unknown_field"},
		{"{\"tenant\":\"acme\",\"from\":\"ACME\",\"to\":\"+447700900123\",\"text\":\"a\xff\xfeb\"}", "invalid_text"},
		{`{"tenant":"acme","from":"ACME","to":"+447700900123","text":"\ud800"}`, "invalid_text"},
		{`{"tenant":"acme","from":"ACME","to":"+447700900123","text":"a\u0000"}`, "invalid_text"},
		{`{"tenant":"acme","from":"ACME","to":"+447700900123","text":"hi","to":"+447700900456"}`, "duplicate_field"},
		{good("g3"), ""},
	}
	msgs := make([]kafka.Message, len(records))
	for i, r := range records {
		msgs[i] = kafka.Message{Topic: cfg.Kafka.TopicPrefix + schemas.TopicRequests, Key: []byte("acme"), Value: []byte(r.value)}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := service.CreateTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "ingest", func(ctx context.Context) error {
		return ingest.Run(ctx, cfg, slog.New(slog.DiscardHandler))
	})

	p := kafka.NewProducer(brokers, time.Millisecond)
	defer p.Close()
	if err := p.Produce(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	var wantDLQ, wantAccepted int
	for _, r := range records {
		if r.wantCode == "" {
			wantAccepted++
		} else {
			wantDLQ++
		}
	}
	dlq := readN(ctx, t, brokers, cfg.Kafka.TopicPrefix+schemas.TopicRequestsDLQ, wantDLQ)
	accepted := readN(ctx, t, brokers, cfg.Kafka.TopicPrefix+schemas.TopicRouterBulk, wantAccepted)

	// Dead letters: the original bytes and key, the reason and the origin.
	var sourcePartition string
	i := 0
	for offset, r := range records {
		if r.wantCode == "" {
			continue
		}
		d := dlq[i]
		i++
		h := headers(d)
		if string(d.Value) != r.value || string(d.Key) != "acme" {
			t.Errorf("dead letter %d: key %q value %q, want the record unchanged (%q)", i, d.Key, d.Value, r.value)
		}
		if h[schemas.HeaderErrorCode] != r.wantCode || h[schemas.HeaderError] == "" {
			t.Errorf("dead letter of %q: code %q (%q), want %q with a message", r.value, h[schemas.HeaderErrorCode], h[schemas.HeaderError], r.wantCode)
		}
		if h[schemas.HeaderSourceOffset] != strconv.Itoa(offset) || h[schemas.HeaderSourceTopic] != cfg.Kafka.TopicPrefix+schemas.TopicRequests {
			t.Errorf("dead letter of %q: from %s@%s, want offset %d of %s", r.value, h[schemas.HeaderSourceTopic], h[schemas.HeaderSourceOffset], offset, schemas.TopicRequests)
		}
		if sourcePartition == "" {
			sourcePartition = h[schemas.HeaderSourcePartition]
		} else if h[schemas.HeaderSourcePartition] != sourcePartition {
			t.Errorf("records with one key came from partitions %s and %s", sourcePartition, h[schemas.HeaderSourcePartition])
		}
	}

	// Every good record behind the bad ones is accepted (on the router's bulk
	// intake, keyed by tenant; compare as a set).
	got := map[string]bool{}
	for j, rec := range accepted {
		var m sluicepb.Message
		if err := proto.Unmarshal(rec.Value, &m); err != nil {
			t.Fatalf("accepted record %d: %v", j, err)
		}
		if m.To != "+447700900123" || m.Tenant != "acme" {
			t.Errorf("accepted %q: to %q tenant %q", m.ClientRef, m.To, m.Tenant)
		}
		got[m.ClientRef] = true
	}
	for _, want := range []string{"g1", "g2", "g3"} {
		if !got[want] {
			t.Errorf("good record %s was not accepted; accepted: %v", want, got)
		}
	}
}

// readN reads the first n records of a topic (partition by partition, in
// offset order), failing the test if there are fewer, or more within a
// short grace period.
func readN(ctx context.Context, t *testing.T, brokers []string, topic string, n int) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for {
		recs, err := kafka.ReadAll(ctx, brokers, topic)
		if err != nil {
			t.Fatalf("%s: read %d of %d records: %v", topic, len(out), n, err)
		}
		out = recs
		if len(out) >= n {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: read %d of %d records: %v", topic, len(out), n, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
	if recs, err := kafka.ReadAll(ctx, brokers, topic); err == nil && len(recs) > n {
		t.Errorf("%s: more than %d records; extra: %q", topic, n, recs[n].Value)
	}
	return out[:n]
}

func headers(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}
