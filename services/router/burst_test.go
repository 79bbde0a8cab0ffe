package router

import (
	"context"
	"fmt"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// An otp published behind a marketing backlog on the same sluice.accepted
// partitions is routed even while nothing of the backlog moves: the otp
// intake is a group of its own that reads past marketing without writing
// it. To make "nothing moves" certain, a stand-in member holds every
// partition of the bulk intake's group until the otp is out.
func TestOTPAheadOfMarketingBacklog(t *testing.T) {
	const backlog = 20000
	h := newHarness(t, nil)
	otpLane, bulkIntake := h.outbound("a", schemas.LaneOTP), h.topic(schemas.TopicRouterBulk)
	w := h.watch(otpLane)
	release := holdGroup(t, h, h.cfg.Kafka.TopicPrefix+Group, h.topic(schemas.TopicAccepted))

	var msgs []*sluicepb.Message
	for i := range backlog {
		msgs = append(msgs, msg(fmt.Sprintf("mk-%d", i), "acme", sluicepb.Priority_PRIORITY_MARKETING))
	}
	h.accept(msgs...)
	h.start()
	h.accept(msg("otp-behind", "acme", sluicepb.Priority_PRIORITY_OTP))
	until(t, "the otp behind the backlog", func() bool { return ids(t, w.of(otpLane))["otp-behind"] == 1 })
	if n := endTotal(t, h, bulkIntake); n != 0 {
		t.Fatalf("%d marketing messages went through the bulk intake, which was held", n)
	}
	release()
	until(t, "the backlog through the bulk intake once released", func() bool { return endTotal(t, h, bulkIntake) == backlog })
}

// holdGroup joins group as a member that assigns itself every partition
// (it leads the group, having joined first) and never reads; the returned
// function leaves the group.
func holdGroup(t *testing.T, h *harness, group, topic string) (release func()) {
	t.Helper()
	cg, err := kgo.NewConsumerGroup(kgo.ConsumerGroupConfig{
		ID: group, Brokers: h.cfg.Kafka.Brokers, Topics: []string{topic},
		GroupBalancers:    []kgo.GroupBalancer{hogBalancer{}},
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
		JoinGroupBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	joined := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		for {
			if _, err := cg.Next(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				continue
			}
			if first {
				close(joined)
				first = false
			}
		}
	}()
	select {
	case <-joined:
	case <-time.After(waitLimit):
		t.Fatal("stand-in member did not join")
	}
	var released bool
	release = func() {
		if released {
			return
		}
		released = true
		cancel()
		<-done
		_ = cg.Close()
	}
	t.Cleanup(release)
	return release
}

// hogBalancer speaks the router's protocol ("range") and, when it leads,
// gives every partition to the member that says "hog".
type hogBalancer struct{ kgo.RangeGroupBalancer }

func (hogBalancer) UserData() ([]byte, error) { return []byte("hog"), nil }

func (hogBalancer) AssignGroups(members []kgo.GroupMember, partitions []kgo.Partition) kgo.GroupMemberAssignments {
	out := kgo.GroupMemberAssignments{}
	for _, m := range members {
		out[m.ID] = map[string][]int{}
		if string(m.UserData) != "hog" {
			continue
		}
		for _, p := range partitions {
			out[m.ID][p.Topic] = append(out[m.ID][p.Topic], p.ID)
		}
	}
	return out
}
