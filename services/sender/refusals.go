package sender

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sluice-sms/sluice/pkg/smpp"
)

// Why a deliver_sm was refused (the reason label).
const (
	refusedPublish      = "publish_failed" // not stored in Kafka (error or timeout)
	refusedSessionEnded = "session_ended"  // the bind closed or was lost first: stop, rebalance, connection lost
	refusedNoHandler    = "no_handler"     // a bind that takes no deliver_sm (a transmitter)
)

// deliverObserver measures one carrier's deliver_sm handling, all its binds
// together: how long storing one takes, how long binds stop reading for want
// of a free handler, every deliver_sm refused and every receipt whose ids
// disagree, counted and logged (each kind at most once per warnLogEvery).
type deliverObserver struct {
	m       *metrics
	carrier metric.MeasurementOption
	reasons map[string]metric.AddOption // built once: building an attribute set costs more than the measurement
	log     *slog.Logger
	now     func() time.Time

	refusalLog, disagreementLog *logLimiter
}

func newDeliverObserver(carrier string, m *metrics, log *slog.Logger, now func() time.Time) *deliverObserver {
	o := &deliverObserver{
		m:               m,
		carrier:         metric.WithAttributes(attribute.String("carrier", carrier)),
		reasons:         map[string]metric.AddOption{},
		log:             log,
		now:             now,
		refusalLog:      newLogLimiter(warnLogEvery, now),
		disagreementLog: newLogLimiter(warnLogEvery, now),
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
// line went out within warnLogEvery.
func (o *deliverObserver) refused(d *smpp.Deliver, err error) {
	reason := refusalReason(err)
	o.m.refused.Add(context.Background(), 1, o.reasons[reason])
	ok, unlogged := o.refusalLog.allow()
	if !ok {
		return
	}
	kind := "mo"
	if d.ESMClass&esmTypeMask == esmTypeReceipt {
		kind = "receipt"
	}
	o.log.Warn("deliver_sm refused, the SMSC will redeliver it", "reason", reason, "kind", kind, "err", err,
		"refused_unlogged_since_last", unlogged)
}

// disagreed counts a receipt whose TLV and text ids differ once brought to
// one form (the dlr correlates on whichever matches a submit), and logs it
// unless a line went out within warnLogEvery.
func (o *deliverObserver) disagreed(ctx context.Context, tlvID, textID string) {
	o.m.idSplits.Add(ctx, 1, o.carrier)
	if ok, unlogged := o.disagreementLog.allow(); ok {
		o.log.WarnContext(ctx, "receipt's TLV and text ids disagree", "tlv_id", tlvID, "text_id", textID,
			"disagreements_unlogged_since_last", unlogged)
	}
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
