package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/pkg/smpp/nodesmpp"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/services/dlr"
	"github.com/sluice-sms/sluice/services/sender"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// smsc is one case of testdata/matrix.js as a sluice carrier.
type smsc struct {
	name       string
	receiptIDs string // receipt_ids as sluice.yaml writes it
	carrier    func(*config.Carrier)
}

// events counts what each of the script's SMSCs says it did.
type events struct {
	mu       sync.Mutex
	ports    map[string]int
	submits  map[string]int // submit_sm answered, refused or nacked
	receipts map[string]int // receipts answered by sluice with status 0
	refusals map[string]int // receipts answered otherwise
	binds    map[string]int
	changed  chan struct{}
}

func (e *events) add(m map[string]any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, _ := m["case"].(string)
	switch {
	case m["listening"] != nil:
		e.ports[c] = int(m["listening"].(float64))
	case m["submit"] != nil, m["refused"] != nil, m["nack"] != nil:
		e.submits[c]++
	case m["receipt"] != nil && m["status"] == 0.0:
		e.receipts[c]++
	case m["receipt"] != nil:
		e.refusals[c]++
	case m["bind"] != nil:
		e.binds[c]++
	}
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// stack is one sender and one dlr, in this process, for carriers that are
// the script's SMSCs.
type stack struct {
	t   *testing.T
	ctx context.Context
	cfg config.Config
	ev  *events
	st  *statuses
}

func startStack(t *testing.T, ctx context.Context, smscs []smsc) *stack {
	t.Helper()
	names := make([]string, len(smscs))
	for i, s := range smscs {
		names[i] = s.name
	}
	ev := &events{ports: map[string]int{}, submits: map[string]int{}, receipts: map[string]int{},
		refusals: map[string]int{}, binds: map[string]int{}, changed: make(chan struct{}, 1)}
	lines := nodesmpp.Matrix(ctx, t, names)
	for range smscs {
		ev.add(lines.Next(t, "listening"))
	}
	go lines.Each(ev.add)

	cfg := testenv.Config(t)
	testenv.WithClickHouse(t, &cfg)
	for _, s := range smscs {
		c := config.Carrier{ID: carrierID(s.name), Host: "127.0.0.1", Port: ev.ports[s.name],
			SystemID: "sluice", Password: "pw", Binds: 1, TPS: 1000, Window: 10, RetryDelay: 100 * time.Millisecond}
		var doc struct {
			R config.ReceiptIDs `yaml:"receipt_ids"`
		}
		if err := yaml.Unmarshal([]byte("receipt_ids: "+s.receiptIDs), &doc); err != nil {
			t.Fatalf("%s: receipt_ids %s: %v", s.name, s.receiptIDs, err)
		}
		c.ReceiptIDs = doc.R
		if s.carrier != nil {
			s.carrier(&c)
		}
		cfg.Carriers = append(cfg.Carriers, c)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// A busy shared broker sometimes answers "not available" for a moment.
	for err := service.CreateTopics(ctx, cfg); err != nil; err = service.CreateTopics(ctx, cfg) {
		select {
		case <-ctx.Done():
			t.Fatal(err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	s := &stack{t: t, ctx: ctx, cfg: cfg, ev: ev}
	s.st = followStatuses(t, ctx, cfg)
	testenv.Run(t, "sender", func(ctx context.Context) error { return sender.Run(ctx, cfg, slog.New(slog.DiscardHandler)) })
	testenv.Run(t, "dlr", func(ctx context.Context) error { return dlr.Run(ctx, cfg, slog.New(slog.DiscardHandler)) })
	return s
}

func carrierID(name string) string { return "n-" + strings.ReplaceAll(name, "_", "-") }

// send writes messages to their carriers' bulk lanes, as the router does.
func (s *stack) send(msgs []*sluicepb.Message) {
	s.t.Helper()
	p := kafka.NewProducer(s.cfg.Kafka.Brokers, time.Millisecond)
	defer func() { _ = p.Close() }()
	recs := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		v, err := proto.Marshal(m)
		if err != nil {
			s.t.Fatal(err)
		}
		recs[i] = kafka.Message{Topic: schemas.OutboundTopic(s.cfg.Kafka.TopicPrefix, m.Carrier, schemas.LaneBulk), Key: []byte(m.Id), Value: v}
	}
	if err := p.Produce(s.ctx, recs...); err != nil {
		s.t.Fatal(err)
	}
}

// statuses follows sms.status.
type statuses struct {
	mu      sync.Mutex
	next    map[int]int64               // partition → next offset to read
	finals  map[string][]message.Status // by message id
	changed chan struct{}
}

func followStatuses(t *testing.T, ctx context.Context, cfg config.Config) *statuses {
	st := &statuses{next: map[int]int64{}, finals: map[string][]message.Status{}, changed: make(chan struct{}, 1)}
	follow(t, ctx, cfg, schemas.TopicStatus, func(m kafka.Message) {
		var ev message.Status
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Errorf("sms.status: undecodable %q: %v", m.Value, err)
		}
		st.mu.Lock()
		st.next[m.Partition] = m.Offset + 1
		if message.IsFinal(ev.Status) {
			st.finals[ev.MessageID] = append(st.finals[ev.MessageID], ev)
		}
		st.mu.Unlock()
		select {
		case st.changed <- struct{}{}:
		default:
		}
	})
	return st
}

// follow hands fn every record of every partition of topic (a catalogue
// name), from the start, until the test ends; fn is called from one
// goroutine per partition.
func follow(t *testing.T, ctx context.Context, cfg config.Config, topic string, fn func(kafka.Message)) {
	t.Helper()
	topic = cfg.Kafka.TopicPrefix + topic
	n, err := kafka.PartitionCount(ctx, cfg.Kafka.Brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for p := range n {
		wg.Go(func() {
			kafka.FollowPartition(ctx, cfg.Kafka.Brokers, topic, p, kafka.FirstOffset, fn, slog.New(slog.DiscardHandler))
		})
	}
}

// waitFinals waits until every message has a final status.
func (s *stack) waitFinals(msgs []*sluicepb.Message) {
	s.t.Helper()
	for {
		s.st.mu.Lock()
		var missing []string
		for _, m := range msgs {
			if len(s.st.finals[m.Id]) == 0 {
				missing = append(missing, m.Id)
			}
		}
		s.st.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		select {
		case <-s.st.changed:
		case <-time.After(200 * time.Millisecond):
		case <-s.ctx.Done():
			s.ev.mu.Lock()
			defer s.ev.mu.Unlock()
			s.t.Fatalf("%d of %d messages have no final status (%v); the SMSCs answered submits %v, their receipts were answered %v",
				len(missing), len(msgs), missing[:min(len(missing), 10)], s.ev.submits, s.ev.receipts)
		}
	}
}

// settle waits until everything the SMSCs sent has been taken in: each case's
// receipts answered, every group of the sender and dlr caught up with its
// topics, and sms.status read to its end. Only then can a second final
// status no longer be on its way.
func (s *stack) settle(wantReceipts map[string]int) {
	s.t.Helper()
	for !s.receiptsIn(wantReceipts) {
		select {
		case <-s.ev.changed:
		case <-time.After(200 * time.Millisecond):
		case <-s.ctx.Done():
			s.t.Fatalf("receipts answered %v, want at least %v", s.ev.receipts, wantReceipts)
		}
	}
	lm := kafka.NewLagMonitor(s.cfg.Kafka.Brokers, slog.New(slog.DiscardHandler))
	lm.WatchPrefix(s.cfg.Kafka.TopicPrefix + "sluice-")
	for {
		lags, err := lm.Lag(s.ctx)
		behind := []string{}
		ends := map[int]int64{}
		for _, l := range lags {
			if l.Lag > 0 {
				behind = append(behind, fmt.Sprintf("%s %s/%d %d", l.Group, l.Topic, l.Partition, l.Lag))
			}
			if l.Topic == s.cfg.Kafka.TopicPrefix+schemas.TopicStatus {
				ends[l.Partition] = max(ends[l.Partition], l.End)
			}
		}
		if err == nil && len(behind) == 0 && len(ends) > 0 && s.st.readTo(ends) {
			return
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-s.ctx.Done():
			s.t.Fatalf("never settled: %v; behind: %v", err, behind)
		}
	}
}

func (s *stack) receiptsIn(want map[string]int) bool {
	s.ev.mu.Lock()
	defer s.ev.mu.Unlock()
	for c, n := range want {
		if s.ev.receipts[c] < n {
			return false
		}
	}
	return true
}

func (st *statuses) readTo(ends map[int]int64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	for p, end := range ends {
		if st.next[p] < end {
			return false
		}
	}
	return true
}

// expect is the final status a message to dest must end with, as matrix.js
// decides it from the destination's last digit.
func expect(dest string, refuse5 bool) string {
	switch dest[len(dest)-1] {
	case '1', '3':
		return message.StatusUndelivered
	case '2':
		return message.StatusExpired
	case '5':
		if refuse5 {
			return message.StatusFailed
		}
	}
	return message.StatusDelivered
}

// long is a text of parts GSM-7 parts that starts with id, so that each
// message's parts are its own.
func long(id string, parts int) string {
	return (id + " " + strings.Repeat("0123456789", 16*parts))[:153*(parts-1)+10]
}
