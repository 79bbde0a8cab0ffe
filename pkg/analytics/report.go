package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// CarrierReportRow is one line of the per-carrier delivery report (query
// carrier_report): distinct messages, and delivery latency in milliseconds.
type CarrierReportRow struct {
	Carrier   string
	Sent      uint64 // submitted to the carrier, or with a carrier outcome
	Delivered uint64
	Failed    uint64 // undelivered, expired or failed
	Unknown   uint64
	P50Ms     float64
	P99Ms     float64
}

// CarrierReport runs the carrier_report query over [from, to).
func CarrierReport(ctx context.Context, conn driver.Conn, database string, from, to time.Time) ([]CarrierReportRow, error) {
	cols, rows, err := Query(ctx, conn, database, "carrier_report", from, to)
	if err != nil {
		return nil, err
	}
	want := []string{"carrier", "sent", "delivered", "failed", "unknown", "p50_ms", "p99_ms"}
	if fmt.Sprint(cols) != fmt.Sprint(want) {
		return nil, fmt.Errorf("carrier_report returns columns %v, want %v", cols, want)
	}
	out := make([]CarrierReportRow, 0, len(rows))
	for _, r := range rows {
		row := CarrierReportRow{}
		var ok [7]bool
		row.Carrier, ok[0] = r[0].(string)
		row.Sent, ok[1] = r[1].(uint64)
		row.Delivered, ok[2] = r[2].(uint64)
		row.Failed, ok[3] = r[3].(uint64)
		row.Unknown, ok[4] = r[4].(uint64)
		row.P50Ms, ok[5] = r[5].(float64)
		row.P99Ms, ok[6] = r[6].(float64)
		for i, good := range ok {
			if !good {
				return nil, fmt.Errorf("carrier_report column %s has type %T", cols[i], r[i])
			}
		}
		out = append(out, row)
	}
	return out, nil
}
