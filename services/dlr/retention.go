package dlr

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/service"
)

// retentionEvery is how often the job looks for expired partitions. A month
// expires at midnight UTC on a 1st, so it goes within the hour.
const retentionEvery = time.Hour

// retention drops the analytics tables' monthly partitions older than
// clickhouse.retention_months, in place of TTL, which ClickHouse 18.16
// lacks. Every dlr replica runs it: a partition dropped twice is harmless.
type retention struct {
	conn   driver.Conn
	db     string
	months int
	now    func() time.Time
	log    *slog.Logger
	m      retentionMetrics
}

// retentionMetrics are the job's instruments.
type retentionMetrics struct {
	dropped  metric.Int64Counter // partitions dropped, by table
	failures metric.Int64Counter // passes that failed to drop something
}

func newRetentionMetrics(meter metric.Meter) (retentionMetrics, error) {
	var m retentionMetrics
	var err error
	if m.dropped, err = meter.Int64Counter("sluice_dlr_analytics_partitions_dropped", metric.WithDescription("Monthly ClickHouse partitions dropped as older than clickhouse.retention_months, by table")); err != nil {
		return m, fmt.Errorf("metrics: %w", err)
	}
	if m.failures, err = meter.Int64Counter("sluice_dlr_analytics_retention_failures", metric.WithDescription("Retention passes that failed to list or drop expired ClickHouse partitions")); err != nil {
		return m, fmt.Errorf("metrics: %w", err)
	}
	return m, nil
}

// startRetention runs the job on conn until stop is called or ctx ends;
// with clickhouse.retention_months 0 there is none.
func startRetention(ctx context.Context, env *service.Env, conn driver.Conn, m retentionMetrics) (stop func()) {
	months := env.Cfg.ClickHouse.RetentionMonths
	if months <= 0 {
		return func() {}
	}
	env.Log.Info("analytics retention on", "retention_months", months, "every", retentionEvery)
	r := &retention{conn: conn, db: env.Cfg.ClickHouse.Database, months: months, now: time.Now, log: env.Log, m: m}
	ctx, cancel := context.WithCancel(ctx)
	ticker := time.NewTicker(retentionEvery)
	var wg sync.WaitGroup
	wg.Go(func() { r.run(ctx, ticker.C) })
	return func() {
		cancel()
		wg.Wait()
		ticker.Stop()
	}
}

// run makes a pass at once, for a replica that was down at the turn of the
// month, and then one at each tick until ctx ends.
func (r *retention) run(ctx context.Context, tick <-chan time.Time) {
	for {
		r.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// pass drops what has expired by now. A failure is logged and counted; the
// next pass tries again.
func (r *retention) pass(ctx context.Context) {
	dropped, err := analytics.DropExpired(ctx, r.conn, r.db, r.months, r.now())
	for _, p := range dropped {
		r.log.Info("analytics partition dropped: older than the retention", "table", p.Table,
			"partition", p.ID, "rows", p.Rows, "retention_months", r.months)
		r.m.dropped.Add(ctx, 1, metric.WithAttributes(attribute.String("table", p.Table)))
	}
	if err != nil && ctx.Err() == nil {
		r.m.failures.Add(ctx, 1)
		r.log.Error("analytics retention: expired partitions not dropped; trying again at the next pass",
			"retention_months", r.months, "next_in", retentionEvery, "err", err)
	}
}
