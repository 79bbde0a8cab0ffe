package sender

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// reportHealth publishes the slot's bind state to sluice.carrier.health
// (compacted, key "carrier:slot") whenever it changes and every healthEvery
// while the slot runs, and a last "not bound" when the slot stops. The
// fields of sluicepb.CarrierHealth mean:
//
//   - bound: this slot holds an open bind to the carrier now;
//   - since_ms: when bound last changed (the start of the outage, or of the bind);
//   - reported_at_ms: when this report was made; a report older than three
//     intervals (30 s) means the slot's owner is gone (killed, partitioned):
//     treat the slot as unknown, and the carrier as down if no slot is fresh and bound;
//   - last_error: why the last bind attempt failed or the last bind was lost
//     ("" when it has not failed since the slot started).
func (s *slot) reportHealth(ctx context.Context) {
	tick := time.NewTicker(healthEvery)
	defer tick.Stop()
	for {
		st, changed, rchanged := s.bindStatus()
		s.publishHealth(ctx, st)
		select {
		case <-ctx.Done():
			// The binder is unbinding: say so once it is done, not before.
			s.awaitUnbound()
			return
		case <-changed:
		case <-rchanged:
		case <-tick.C:
		}
	}
}

func (s *slot) awaitUnbound() {
	wait := time.NewTimer(unbindTimeout + time.Second)
	defer wait.Stop()
	for {
		st, changed, rchanged := s.bindStatus()
		if !st.bound {
			s.publishHealth(context.Background(), st)
			return
		}
		select {
		case <-changed:
		case <-rchanged:
		case <-wait.C:
			return
		}
	}
}

// bindStatus is the slot's bind state: with a receiver bind besides, bound
// only when both are. The channels close at the next change of either bind
// (the second is nil without a receiver bind, and never ready).
func (s *slot) bindStatus() (bindState, <-chan struct{}, <-chan struct{}) {
	st, changed := s.binder.status()
	if s.rx == nil {
		return st, changed, nil
	}
	rst, rchanged := s.rx.status()
	if !rst.bound && st.bound {
		st.bound, st.since = false, rst.since
	} else if rst.bound && st.bound && rst.since.After(st.since) {
		st.since = rst.since
	}
	if rst.lastErr != "" && (st.lastErr == "" || rst.since.After(st.since)) {
		st.lastErr = "receiver: " + rst.lastErr
	}
	return st, changed, rchanged
}

func (s *slot) publishHealth(ctx context.Context, st bindState) {
	h := &sluicepb.CarrierHealth{
		Carrier:      s.carrier.ID,
		Slot:         uint32(s.claim.Partition),
		Bound:        st.bound,
		SinceMs:      st.since.UnixMilli(),
		ReportedAtMs: s.env.now().UnixMilli(),
		LastError:    st.lastErr,
	}
	v, err := proto.Marshal(h)
	if err != nil {
		panic(fmt.Sprintf("encode carrier health: %v", err)) // a plain struct always encodes
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = s.env.producer.Produce(pctx, kafka.Message{
		Topic: s.env.prefix + schemas.TopicCarrierHealth,
		Key:   fmt.Appendf(nil, "%s:%d", s.carrier.ID, s.claim.Partition),
		Value: v,
	})
	if err != nil {
		s.log.Warn("carrier health not published", "err", err)
	}
}
