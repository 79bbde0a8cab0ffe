package testenv

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Meter is a meter whose measurements the test reads back with Counters.
func Meter(t testing.TB) (metric.Meter, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp.Meter("test"), reader
}

// Counters reads the int64 counter name by the values of attrs, joined with
// "/" ("" for a point without them); points of one key are summed.
func Counters(t testing.TB, reader *sdkmetric.ManualReader, name string, attrs ...string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, md := range sm.Metrics {
			sum, ok := md.Data.(metricdata.Sum[int64])
			if md.Name != name || !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				key := make([]string, len(attrs))
				for i, a := range attrs {
					v, _ := dp.Attributes.Value(attribute.Key(a))
					key[i] = v.AsString()
				}
				out[strings.Join(key, "/")] += dp.Value
			}
		}
	}
	return out
}
