package sendertest

import (
	"context"
	"log/slog"
	"net"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/services/sender"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

// safety bounds every wait of a test; nothing is asserted about time. A
// receipt burst through a pool of 2 on three brokers (acks from every
// replica) took 42 s of it on an idle 2-core machine.
const safety = 2 * time.Minute

func TestMain(m *testing.M) { testenv.Main(m) }

type harness struct {
	t        testing.TB
	ctx      context.Context
	brokers  []string
	cfg      config.Config
	sim      *smscsim.Sim
	producer *kafka.Producer
}

// newHarness starts the simulated carriers and a sluice config whose carriers
// point at them: binds, tps and window from the simulator's max_binds, tps
// (or the values given in carriers) and 10.
func newHarness(t testing.TB, sims []smscsim.CarrierConfig, carriers []config.Carrier) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	t.Cleanup(cancel)
	// Labelled so that a CPU profile of a benchmark tells the simulator's
	// goroutines (they inherit the label) from the sender's.
	var sim *smscsim.Sim
	var err error
	pprof.Do(ctx, pprof.Labels("part", "smscsim"), func(context.Context) {
		sim, err = smscsim.StartWithLogger(ctx, sims, "", slog.New(slog.DiscardHandler))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sim.Close(); err != nil {
			t.Errorf("sim close: %v", err)
		}
	})
	h := &harness{t: t, ctx: ctx, brokers: testenv.Kafka(t), sim: sim}
	h.cfg = config.Default()
	h.cfg.Kafka.Brokers = h.brokers
	h.cfg.Kafka.ReplicationFactor = testenv.ReplicationFactor()
	h.cfg.Kafka.TopicPrefix = testenv.TopicPrefix(t)
	h.cfg.Sender.AdminAddr = "127.0.0.1:0"
	for i, c := range carriers {
		host, portStr, err := net.SplitHostPort(sim.Addr(sims[i].ID))
		if err != nil {
			t.Fatal(err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			t.Fatal(err)
		}
		c.ID, c.Host, c.Port, c.SystemID, c.Password = sims[i].ID, host, port, sims[i].SystemID, sims[i].Password
		h.cfg.Carriers = append(h.cfg.Carriers, c)
	}
	if err := h.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// A busy shared broker sometimes answers "not available" for a moment.
	for err := service.CreateTopics(ctx, h.cfg); err != nil; err = service.CreateTopics(ctx, h.cfg) {
		select {
		case <-ctx.Done():
			t.Fatal(err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	h.producer = kafka.NewProducer(h.brokers, 5*time.Millisecond)
	t.Cleanup(func() { _ = h.producer.Close() })
	return h
}

// simCarrier is a simulated carrier with its limits.
func simCarrier(id string, maxBinds, tps int) smscsim.CarrierConfig {
	return smscsim.CarrierConfig{ID: id, SystemID: "sluice", Password: id + "-pw", Addr: "127.0.0.1:0",
		DLRDelay: 20 * time.Millisecond, MaxBinds: maxBinds, TPS: tps}
}

// runSender runs one sender replica until the returned stop is called.
func (h *harness) runSender() (stop func()) {
	return testenv.Run(h.t, "sender", func(ctx context.Context) (err error) {
		pprof.Do(ctx, pprof.Labels("part", "sender"), func(ctx context.Context) {
			err = sender.Run(ctx, h.cfg, slog.New(slog.DiscardHandler))
		})
		return err
	})
}

// message is an outbound message to carrier, as the router writes it.
func message(id, carrier string, p sluicepb.Priority, text string) *sluicepb.Message {
	return &sluicepb.Message{Id: id, Tenant: "acme", From: "ACME", To: "+447700900123", Text: text,
		Priority: p, Carrier: carrier, AcceptedAtMs: time.Now().UnixMilli(), Segments: 1}
}

func (h *harness) send(msgs ...*sluicepb.Message) {
	h.t.Helper()
	recs := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		v, err := proto.Marshal(m)
		if err != nil {
			h.t.Fatal(err)
		}
		lane := schemas.LaneBulk
		if m.Priority == sluicepb.Priority_PRIORITY_OTP {
			lane = schemas.LaneOTP
		}
		recs[i] = kafka.Message{Topic: schemas.OutboundTopic(h.cfg.Kafka.TopicPrefix, m.Carrier, lane), Key: []byte(m.Id), Value: v}
	}
	if err := h.producer.Produce(h.ctx, recs...); err != nil {
		h.t.Fatal(err)
	}
}

// collector gathers the records of one topic, decoded.
type collector[T proto.Message] struct {
	mu      sync.Mutex
	records []T
	changed chan struct{}
}

// collect reads topic (a catalogue name, or a full name when full) from its
// start into a collector until the test ends.
func collect[T proto.Message](h *harness, topic string, newT func() T) *collector[T] {
	c := &collector[T]{changed: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	h.t.Cleanup(func() { cancel(); wg.Wait() })
	add := func(m kafka.Message) {
		v := newT()
		if err := proto.Unmarshal(m.Value, v); err != nil {
			h.t.Errorf("%s: undecodable record: %v", topic, err)
			return
		}
		c.mu.Lock()
		c.records = append(c.records, v)
		c.mu.Unlock()
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
	wg.Go(func() {
		// A busy shared broker may not answer for a new topic at once: ask
		// until it does. FollowPartition then reads on past broker errors.
		n, err := kafka.PartitionCount(ctx, h.brokers, topic)
		for err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			n, err = kafka.PartitionCount(ctx, h.brokers, topic)
		}
		for p := range n {
			wg.Go(func() {
				kafka.FollowPartition(ctx, h.brokers, topic, p, kafka.FirstOffset, add, slog.New(slog.DiscardHandler))
			})
		}
	})
	return c
}

// wait returns the records once cond holds of them, or fails the test.
func (c *collector[T]) wait(h *harness, what string, cond func([]T) bool) []T {
	h.t.Helper()
	for {
		c.mu.Lock()
		got := slices.Clone(c.records)
		c.mu.Unlock()
		if cond(got) {
			return got
		}
		select {
		case <-c.changed:
		case <-time.After(100 * time.Millisecond):
		case <-h.ctx.Done():
			h.t.Fatalf("%s: never happened (%d records)", what, len(got))
		}
	}
}

// waitSim waits until the carrier's simulator counters satisfy cond.
// waitCommitted waits until group (without its topic prefix) has committed
// every record topic holds now.
func (h *harness) waitCommitted(group, topic string) {
	h.t.Helper()
	ends, err := kafka.TopicOffsets(h.ctx, h.brokers, topic)
	if err != nil {
		h.t.Fatal(err)
	}
	parts := make([]int, 0, len(ends))
	for p := range ends {
		parts = append(parts, p)
	}
	for {
		got, err := kafka.CommittedOffsets(h.ctx, h.brokers, h.cfg.Kafka.TopicPrefix+group, topic, parts)
		done := err == nil
		for p, end := range ends {
			done = done && got[p] >= end.Next
		}
		if done {
			return
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-h.ctx.Done():
			h.t.Fatalf("%s never committed all of %s (ends %v): %v %v", group, topic, ends, got, err)
		}
	}
}

func (h *harness) waitSim(carrier, what string, cond func(smscsim.CarrierStats) bool) smscsim.CarrierStats {
	h.t.Helper()
	for {
		st := h.sim.Stats()[carrier]
		if cond(st) {
			return st
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-h.ctx.Done():
			h.t.Fatalf("%s: never happened: %+v", what, st)
		}
	}
}

func (h *harness) topic(name string) string { return h.cfg.Kafka.TopicPrefix + name }

func submits(h *harness) *collector[*sluicepb.SubmitResult] {
	return collect(h, h.topic(schemas.TopicSubmits), func() *sluicepb.SubmitResult { return new(sluicepb.SubmitResult) })
}

func outcomes(h *harness) *collector[*sluicepb.SegmentOutcome] {
	return collect(h, h.topic(schemas.TopicDLROutcomes), func() *sluicepb.SegmentOutcome { return new(sluicepb.SegmentOutcome) })
}

// byMessage counts records per message id.
func byMessage[T interface{ GetMessage() *sluicepb.Message }](recs []T) map[string]int {
	out := map[string]int{}
	for _, r := range recs {
		out[r.GetMessage().GetId()]++
	}
	return out
}
