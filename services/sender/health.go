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
		st, changed := s.binder.status()
		s.publishHealth(ctx, st)
		select {
		case <-ctx.Done():
			// The binder is unbinding: say so once it is done, not before.
			s.awaitUnbound()
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

func (s *slot) awaitUnbound() {
	wait := time.NewTimer(unbindTimeout + time.Second)
	defer wait.Stop()
	for {
		st, changed := s.binder.status()
		if !st.bound {
			s.publishHealth(context.Background(), st)
			return
		}
		select {
		case <-changed:
		case <-wait.C:
			return
		}
	}
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
