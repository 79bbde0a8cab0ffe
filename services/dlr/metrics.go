package dlr

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"

	"github.com/sluice-sms/sluice/pkg/state"
)

// metrics are the dlr service's instruments.
type metrics struct {
	receipts metric.Int64Counter     // by result: matched, early, duplicate, late, unmatched, ...
	timeouts metric.Int64Counter     // messages or segments ended by a timer, by status
	finals   metric.Int64Counter     // final statuses published, by status
	rows     metric.Int64Counter     // status events written to ClickHouse
	lag      metric.Float64Histogram // age of a batch's oldest record when ClickHouse took it
	webhooks metric.Int64Counter     // webhook and dlr-url attempts, by result (ok, failed, abandoned) and target (webhook, dlr_url)
	mo       metric.Int64Counter     // MOs published, by outcome (owner, reply, unowned)

	retention retentionMetrics // the analytics retention job's
}

func newMetrics(meter metric.Meter, db *state.DB) (*metrics, error) {
	var m metrics
	var err error
	if m.receipts, err = meter.Int64Counter("sluice_dlr_receipts", metric.WithDescription("Delivery receipts by what became of them")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if m.timeouts, err = meter.Int64Counter("sluice_dlr_timeouts", metric.WithDescription("Segments or messages ended by a timer, without a receipt")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if m.finals, err = meter.Int64Counter("sluice_dlr_final_statuses", metric.WithDescription("Final statuses published to sms.status")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if m.rows, err = meter.Int64Counter("sluice_dlr_analytics_rows", metric.WithDescription("Status events written to ClickHouse")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if m.lag, err = meter.Float64Histogram("sluice_dlr_analytics_lag", metric.WithUnit("s"), metric.WithDescription("Age of a batch's oldest status event when ClickHouse took it")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if m.webhooks, err = meter.Int64Counter("sluice_dlr_webhook_deliveries", metric.WithDescription("Webhook delivery attempts by result")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if m.mo, err = meter.Int64Counter("sluice_dlr_mo", metric.WithDescription("Mobile-originated messages published, by whose they are: owner (of the number), reply (to a tenant's message), unowned")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if m.retention, err = newRetentionMetrics(meter); err != nil {
		return nil, err
	}
	_, err = meter.Int64ObservableGauge("sluice_dlr_pending", metric.WithDescription("Submits and receipts waiting for their other half, and long messages waiting for segments"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(db.Live())
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &m, nil
}
