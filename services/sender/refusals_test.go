package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// testMetrics returns the sender's metrics on a reader the test collects.
func testMetrics(t *testing.T) (*metrics, *sdkmetric.ManualReader) {
	t.Helper()
	meter, reader := testenv.Meter(t)
	m, err := newMetrics(meter)
	if err != nil {
		t.Fatal(err)
	}
	return m, reader
}

func TestRefusalsCountedByCarrierAndReason(t *testing.T) {
	m, reader := testMetrics(t)
	now := func() time.Time { return time.Unix(0, 0) }
	log := slog.New(slog.DiscardHandler)
	a, b := newDeliverObserver("a", m, log, now), newDeliverObserver("b", m, log, now)
	receipt := &smpp.Deliver{ESMClass: smpp.ESMClassDeliveryReceipt}
	kafkaDown := errors.New("kafka: leader not available")
	tests := []struct {
		obs *deliverObserver
		err error
	}{
		{a, fmt.Errorf("%w: %w", smpp.ErrSessionEnded, context.Canceled)},
		{a, kafkaDown},
		{a, smpp.ErrNoHandler},
		{b, kafkaDown},
		{b, kafkaDown},
	}
	for _, tt := range tests {
		tt.obs.refused(receipt, tt.err)
	}
	want := map[string]int64{
		"a/session_ended": 1, "a/publish_failed": 1, "a/no_handler": 1,
		"b/session_ended": 0, "b/publish_failed": 2, "b/no_handler": 0, // zeros shown, not missing
	}
	got := testenv.Counters(t, reader, "sluice_sender_deliver_sm_refused_total", "carrier", "reason")
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if n, ok := got[k]; !ok || n != v {
			t.Errorf("refused{%s} = %d (present %v), want %d", k, n, ok, v)
		}
	}
}

// testObservers are the deliver observers of carriers a and b, logging JSON
// to buf on a clock the test sets.
func testObservers(t *testing.T) (obs map[string]*deliverObserver, reader *sdkmetric.ManualReader, buf *bytes.Buffer, clock *time.Time) {
	m, reader := testMetrics(t)
	clock, buf = new(time.Time), new(bytes.Buffer)
	now := func() time.Time { return *clock }
	log := slog.New(slog.NewJSONHandler(buf, nil))
	obs = map[string]*deliverObserver{
		"a": newDeliverObserver("a", m, log.With("carrier", "a"), now),
		"b": newDeliverObserver("b", m, log.With("carrier", "b"), now),
	}
	return obs, reader, buf, clock
}

// At most one warn line per carrier per warnLogEvery, each saying how many
// refusals went unlogged since the previous one.
func TestRefusalLogRateLimited(t *testing.T) {
	obs, _, buf, clock := testObservers(t)
	tests := []struct {
		at       time.Duration
		carrier  string
		logged   bool
		unlogged int64 // refused_unlogged_since_last of the line
	}{
		{0, "a", true, 0},
		{time.Second, "a", false, 0},
		{time.Second, "b", true, 0}, // another carrier has its own allowance
		{2 * time.Second, "a", false, 0},
		{warnLogEvery, "a", true, 2},
		{warnLogEvery + time.Second, "a", false, 0},
		{3 * warnLogEvery, "a", true, 1},
	}
	for i, tt := range tests {
		*clock = time.Unix(0, 0).Add(tt.at)
		buf.Reset()
		obs[tt.carrier].refused(&smpp.Deliver{ESMClass: smpp.ESMClassDeliveryReceipt}, errors.New("kafka down"))
		if !tt.logged {
			if buf.Len() != 0 {
				t.Errorf("step %d: logged %s, want nothing", i, buf.String())
			}
			continue
		}
		var line struct {
			Level, Carrier, Reason, Kind string
			Unlogged                     int64 `json:"refused_unlogged_since_last"`
		}
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("step %d: %q: %v", i, buf.String(), err)
		}
		if line.Level != "WARN" || line.Carrier != tt.carrier || line.Reason != refusedPublish || line.Kind != "receipt" || line.Unlogged != tt.unlogged {
			t.Errorf("step %d: logged %+v, want a warning for %s with %d unlogged", i, line, tt.carrier, tt.unlogged)
		}
	}
}
