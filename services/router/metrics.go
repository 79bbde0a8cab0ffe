package router

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// metrics are the router's instruments.
type metrics struct {
	routed    metric.Int64Counter
	rejected  metric.Int64Counter
	expired   metric.Int64Counter
	heldC     metric.Int64Counter
	throttled metric.Float64Counter
	keywords  metric.Int64Counter
	backlog   atomic.Int64 // messages held, every partition of this process
}

func newMetrics(m metric.Meter) (*metrics, error) {
	out := &metrics{}
	errs := make([]error, 7)
	out.routed, errs[0] = m.Int64Counter("sluice_router_routed_total", metric.WithDescription("Messages sent to a carrier's lane, by carrier, lane and how the carrier was chosen"))
	out.rejected, errs[1] = m.Int64Counter("sluice_router_rejected_total", metric.WithDescription("Messages the router ended rejected (or failed: no_carrier_left), by reason"))
	out.expired, errs[2] = m.Int64Counter("sluice_router_expired_total", metric.WithDescription("Messages past their validity before they could be sent"))
	out.heldC, errs[3] = m.Int64Counter("sluice_router_held_total", metric.WithDescription("Messages put in the schedule, by reason"))
	out.throttled, errs[4] = m.Float64Counter("sluice_router_tenant_throttled_seconds_total", metric.WithUnit("s"), metric.WithDescription("Time messages were held for their tenant's throughput limit, by tenant"))
	out.keywords, errs[5] = m.Int64Counter("sluice_router_optout_keywords_total", metric.WithDescription("MO opt-out and opt-in keywords, by kind"))
	_, errs[6] = m.Int64ObservableGauge("sluice_router_schedule_backlog", metric.WithDescription("Messages held in the schedule (send_at, quiet hours, throttled)"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(out.backlog.Load())
			return nil
		}))
	return out, errors.Join(errs...)
}

func (m *metrics) route(ctx context.Context, carrier, lane, how string) {
	m.routed.Add(ctx, 1, metric.WithAttributes(attribute.String("carrier", carrier), attribute.String("lane", lane), attribute.String("how", how)))
}

func (m *metrics) reject(ctx context.Context, reason string) {
	m.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
}

func (m *metrics) hold(ctx context.Context, tenant, reason string, wait time.Duration) {
	m.heldC.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
	if reason == holdThrottled {
		m.throttled.Add(ctx, wait.Seconds(), metric.WithAttributes(attribute.String("tenant", tenant)))
	}
}

// keyword counts opt-out keywords by kind; the word itself is subscriber
// input, unbounded, so not a label.
func (m *metrics) keyword(ctx context.Context, kind keyword) {
	k := "stop"
	if kind == keywordStart {
		k = "start"
	}
	m.keywords.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", k)))
}
