package sendertest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/services/sender"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

func carrier(binds, tps, window int) config.Carrier {
	return config.Carrier{Binds: binds, TPS: tps, Window: window}
}

func messages(n int, carrierID string, p sluicepb.Priority) []*sluicepb.Message {
	out := make([]*sluicepb.Message, n)
	for i := range out {
		out[i] = message(fmt.Sprintf("%s-%d", carrierID, i), carrierID, p, fmt.Sprintf("message %d", i))
	}
	return out
}

// A carrier that allows fewer parts per second than sluice is configured for
// answers ESME_RTHROTTLED: the sender slows down and resubmits until every
// message is accepted, none lost, none failed, none sent to the retry lane.
func TestThrottledMessagesAreResubmitted(t *testing.T) {
	const n = 300
	sim := simCarrier("sim-a", 0, 100)
	h := newHarness(t, []smscsim.CarrierConfig{sim}, []config.Carrier{carrier(2, 1000, 20)})
	subs, outs := submits(h), outcomes(h)
	h.runSender()
	h.send(messages(n, "sim-a", sluicepb.Priority_PRIORITY_TRANSACTIONAL)...)

	got := subs.wait(h, "every message submitted", func(r []*sluicepb.SubmitResult) bool { return len(byMessage(r)) == n })
	st := h.sim.Stats()["sim-a"]
	if st.Throttled == 0 {
		t.Errorf("the carrier never throttled (stats %+v): the test proves nothing", st)
	}
	if st.UniqueSubmits != n {
		t.Errorf("carrier accepted %d distinct messages, want %d", st.UniqueSubmits, n)
	}
	if len(got) < n {
		t.Errorf("%d submit results for %d messages", len(got), n)
	}
	if o := outs.wait(h, "outcomes read", func([]*sluicepb.SegmentOutcome) bool { return true }); len(o) != 0 {
		t.Errorf("%d messages ended without being accepted, first %v", len(o), o[0])
	}
}

// Retry-later statuses go through the retry lane, a bounded number of times;
// permanent statuses end the message at once. Both end "failed" with the
// SMPP status as error code.
func TestRefusedMessagesRetriedOrFailed(t *testing.T) {
	tests := []struct {
		name        string
		status      uint32
		wantSubmits int // per message
	}{
		{"retry later (ESME_RSYSERR)", smpp.StatusSysErr, 3},
		{"permanent (ESME_RINVDSTADR)", smpp.StatusInvDstAddr, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 20
			sim := simCarrier("sim-a", 0, 0)
			sim.Errors = map[uint32]float64{tt.status: 1}
			c := carrier(1, 1000, 10)
			c.RetryAttempts, c.RetryDelay = 3, 50*time.Millisecond
			h := newHarness(t, []smscsim.CarrierConfig{sim}, []config.Carrier{c})
			outs := outcomes(h)
			h.runSender()
			h.send(messages(n, "sim-a", sluicepb.Priority_PRIORITY_MARKETING)...)

			got := outs.wait(h, "every message failed", func(r []*sluicepb.SegmentOutcome) bool { return len(byMessage(r)) == n })
			want := fmt.Sprintf("smpp_0x%08x", tt.status)
			for _, o := range got {
				if o.Status != "failed" || o.ErrorCode != want {
					t.Errorf("outcome %s %s, want failed %s", o.Status, o.ErrorCode, want)
				}
			}
			st := h.waitSim("sim-a", "all attempts seen", func(st smscsim.CarrierStats) bool { return st.Received >= int64(n*tt.wantSubmits) })
			if st.Received != int64(n*tt.wantSubmits) || st.Submits != 0 {
				t.Errorf("carrier received %d submit_sm (%d accepted), want %d attempts", st.Received, st.Submits, n*tt.wantSubmits)
			}
		})
	}
}

// A retry-later refusal followed by the carrier's recovery: the retried
// messages go through, each accepted once.
func TestRetriedMessagesGoThroughWhenTheCarrierRecovers(t *testing.T) {
	const n = 20
	sim := simCarrier("sim-a", 0, 0)
	sim.Errors = map[uint32]float64{smpp.StatusTempAppErr: 1}
	c := carrier(1, 1000, 10)
	c.RetryDelay = 300 * time.Millisecond
	h := newHarness(t, []smscsim.CarrierConfig{sim}, []config.Carrier{c})
	subs := submits(h)
	h.runSender()
	h.send(messages(n, "sim-a", sluicepb.Priority_PRIORITY_TRANSACTIONAL)...)
	h.waitSim("sim-a", "every first attempt refused", func(st smscsim.CarrierStats) bool { return st.Injected >= n })
	if err := h.sim.SetFaults("sim-a", smscsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	got := subs.wait(h, "every message submitted", func(r []*sluicepb.SubmitResult) bool { return len(byMessage(r)) == n })
	for _, r := range got {
		if r.Message.Attempt == 0 {
			t.Errorf("message %s accepted at attempt 0, before the carrier recovered", r.Message.Id)
		}
	}
	if st := h.sim.Stats()["sim-a"]; st.UniqueSubmits != n || st.DuplicateSubmits != 0 {
		t.Errorf("carrier stats %+v, want %d distinct messages, no duplicates", st, n)
	}
}

// A submit without a response: marketing is never resent (it ends
// "unknown"), otp is resent, up to retry_attempts, then ends "unknown" too.
func TestOutcomeUnknownPolicyPerLane(t *testing.T) {
	tests := []struct {
		priority    sluicepb.Priority
		wantSubmits int64
	}{
		{sluicepb.Priority_PRIORITY_MARKETING, 1},
		{sluicepb.Priority_PRIORITY_OTP, 2},
	}
	for _, tt := range tests {
		t.Run(tt.priority.String(), func(t *testing.T) {
			sim := simCarrier("sim-a", 0, 0)
			sim.StallRate, sim.Stall = 1, 5*time.Second
			c := carrier(1, 1000, 10)
			c.RespTimeout, c.RetryAttempts = 300*time.Millisecond, 2
			h := newHarness(t, []smscsim.CarrierConfig{sim}, []config.Carrier{c})
			outs := outcomes(h)
			h.runSender()
			h.send(message("m1", "sim-a", tt.priority, "hello"))
			got := outs.wait(h, "the message ended", func(r []*sluicepb.SegmentOutcome) bool { return len(r) > 0 })
			if got[0].Status != "unknown" || got[0].ErrorCode != "outcome_unknown" {
				t.Errorf("outcome %s %s, want unknown outcome_unknown", got[0].Status, got[0].ErrorCode)
			}
			if st := h.sim.Stats()["sim-a"]; st.Received != tt.wantSubmits || st.Submits != tt.wantSubmits {
				t.Errorf("carrier received %d submit_sm, want %d", st.Received, tt.wantSubmits)
			}
		})
	}
}

// A carrier's routing error (a status listed in its routing_errors) hands the
// message back to the router on its intake, with the carrier marked as
// failed for it; nothing ends "failed" and nothing is retried on the carrier.
func TestRoutingErrorsGoBackToTheRouter(t *testing.T) {
	const n = 20
	sim := simCarrier("sim-a", 0, 0)
	sim.Errors = map[uint32]float64{smpp.StatusInvDstAddr: 1}
	c := carrier(1, 1000, 10)
	c.RoutingErrors = []uint32{smpp.StatusInvDstAddr}
	h := newHarness(t, []smscsim.CarrierConfig{sim}, []config.Carrier{c})
	back := collect(h, h.topic(schemas.TopicRouterBulk), func() *sluicepb.Message { return new(sluicepb.Message) })
	outs := outcomes(h)
	h.runSender()
	h.send(messages(n, "sim-a", sluicepb.Priority_PRIORITY_TRANSACTIONAL)...)

	got := back.wait(h, "every message back at the router", func(r []*sluicepb.Message) bool { return len(r) >= n })
	ids := map[string]bool{}
	for _, m := range got {
		ids[m.Id] = true
		if !slices.Equal(m.FailedCarriers, []string{"sim-a"}) {
			t.Errorf("message %s came back with failed carriers %v, want [sim-a]", m.Id, m.FailedCarriers)
		}
	}
	if len(ids) != n {
		t.Errorf("%d distinct messages came back, want %d", len(ids), n)
	}
	if o := outs.wait(h, "outcomes read", func([]*sluicepb.SegmentOutcome) bool { return true }); len(o) != 0 {
		t.Errorf("%d messages ended at the carrier, first %v", len(o), o[0])
	}
	if st := h.sim.Stats()["sim-a"]; st.Received != n {
		t.Errorf("carrier received %d submit_sm, want one per message (%d)", st.Received, n)
	}
}

// A message written twice to the outbound lanes (the router replays its
// uncommitted input after a crash) reaches the carrier once, and the copies
// are committed with the rest: a restarted sender does not send them again.
// A retry of the same message (a higher attempt) is sent.
func TestCopiesAreSubmittedOnce(t *testing.T) {
	const n = 100
	h := newHarness(t, []smscsim.CarrierConfig{simCarrier("sim-a", 0, 0)}, []config.Carrier{carrier(2, 1000, 20)})
	batch := func(name string) []*sluicepb.Message {
		out := make([]*sluicepb.Message, n)
		for i := range out {
			id := fmt.Sprintf("%s-%d", name, i)
			out[i] = message(id, "sim-a", sluicepb.Priority_PRIORITY_TRANSACTIONAL, "text of "+id) // the simulator tells messages apart by text
		}
		return out
	}
	stop := h.runSender()
	first := batch("first")
	h.send(first...)
	h.waitSim("sim-a", "the first copies submitted", func(st smscsim.CarrierStats) bool { return st.Submits >= n })
	h.send(first...)
	retry := proto.Clone(first[0]).(*sluicepb.Message)
	retry.Attempt = 1
	h.send(retry)
	// Records behind the copies in both partitions: once they are sent, the
	// copies have been read.
	h.send(batch("behind")...)
	h.waitSim("sim-a", "the records behind the copies submitted", func(st smscsim.CarrierStats) bool { return st.Submits >= 2*n+1 })
	// The copies are committed with the rest while the sender runs (its
	// commit on stop may come after a rebalance has ended the generation,
	// and is then replayed, as at-least-once allows).
	h.waitCommitted(sender.GroupPrefix+"sim-a", schemas.OutboundTopic(h.cfg.Kafka.TopicPrefix, "sim-a", schemas.LaneBulk))
	stop()

	// A restarted sender resumes after the copies.
	h.runSender()
	h.send(batch("after")...)
	st := h.waitSim("sim-a", "the records after the restart submitted", func(st smscsim.CarrierStats) bool { return st.Submits >= 3*n+1 })
	if st.Submits != 3*n+1 || st.UniqueSubmits != 3*n || st.DuplicateSubmits != 1 {
		t.Errorf("carrier got %d submits of %d distinct messages, %d twice; want %d of %d, only the retry twice: the copies were sent (stats %+v)",
			st.Submits, st.UniqueSubmits, st.DuplicateSubmits, 3*n+1, 3*n, st)
	}
}
