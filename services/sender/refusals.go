package sender

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sluice-sms/sluice/pkg/smpp"
)

// refusalLogEvery bounds the warn lines about refused deliver_sm to one per
// carrier per interval: an SMSC resending into a Kafka outage would
// otherwise write one per receipt. The metric counts every one.
const refusalLogEvery = 10 * time.Second

// Why a deliver_sm was refused (the reason label).
const (
	refusedPublish      = "publish_failed" // not stored in Kafka (error or timeout)
	refusedSessionEnded = "session_ended"  // the bind closed or was lost first: stop, rebalance, connection lost
	refusedNoHandler    = "no_handler"     // a bind that takes no deliver_sm (a transmitter)
)

// deliverObserver measures one carrier's deliver_sm handling, all its binds
// together: how long storing one takes, how long binds stop reading for want
// of a free handler, and every deliver_sm refused, counted and logged.
type deliverObserver struct {
	m       *metrics
	carrier metric.MeasurementOption
	reasons map[string]metric.AddOption // built once: building an attribute set costs more than the measurement
	log     *slog.Logger
	now     func() time.Time

	mu         sync.Mutex
	lastLog    time.Time
	suppressed int64 // refusals not logged since the last line
}

func newDeliverObserver(carrier string, m *metrics, log *slog.Logger, now func() time.Time) *deliverObserver {
	o := &deliverObserver{
		m:       m,
		carrier: metric.WithAttributes(attribute.String("carrier", carrier)),
		reasons: map[string]metric.AddOption{},
		log:     log,
		now:     now,
	}
	for _, r := range []string{refusedPublish, refusedSessionEnded, refusedNoHandler} {
		o.reasons[r] = metric.WithAttributes(attribute.String("carrier", carrier), attribute.String("reason", r))
		// Every series exists from the start, at 0, so that "none refused" shows as 0
		// rather than as no data.
		m.refused.Add(context.Background(), 0, o.reasons[r])
	}
	return o
}

// timed wraps a deliver_sm handler to record how long each call takes: what
// receipt_handlers must cover (see the README).
func (o *deliverObserver) timed(h func(context.Context, *smpp.Deliver) error) func(context.Context, *smpp.Deliver) error {
	return func(ctx context.Context, d *smpp.Deliver) error {
		start := o.now()
		err := h(ctx, d)
		o.m.deliverStore.Record(ctx, o.now().Sub(start).Seconds(), o.carrier)
		return err
	}
}

// paused records a bind's read loop waiting for a free handler.
func (o *deliverObserver) paused(d time.Duration) {
	o.m.readPauses.Record(context.Background(), d.Seconds(), o.carrier)
}

// refused counts a deliver_sm that was not acknowledged, and logs it unless a
// line went out within refusalLogEvery.
func (o *deliverObserver) refused(d *smpp.Deliver, err error) {
	reason := refusalReason(err)
	o.m.refused.Add(context.Background(), 1, o.reasons[reason])
	o.mu.Lock()
	now := o.now()
	if !o.lastLog.IsZero() && now.Sub(o.lastLog) < refusalLogEvery {
		o.suppressed++
		o.mu.Unlock()
		return
	}
	suppressed := o.suppressed
	o.lastLog, o.suppressed = now, 0
	o.mu.Unlock()
	kind := "mo"
	if d.ESMClass&esmTypeMask == esmTypeReceipt {
		kind = "receipt"
	}
	o.log.Warn("deliver_sm refused, the SMSC will redeliver it", "reason", reason, "kind", kind, "err", err,
		"refused_unlogged_since_last", suppressed)
}

func refusalReason(err error) string {
	switch {
	case errors.Is(err, smpp.ErrSessionEnded):
		return refusedSessionEnded
	case errors.Is(err, smpp.ErrNoHandler):
		return refusedNoHandler
	}
	return refusedPublish
}
