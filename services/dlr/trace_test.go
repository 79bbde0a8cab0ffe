package dlr

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// TestSpanLink checks that the correlation span links to the submit's span,
// whose context came in the submit record's traceparent header, even when
// the receipt arrives first.
func TestSpanLink(t *testing.T) {
	db, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err := newMetrics(noopMeter(), db)
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c := &correlator{dlrTopic: "dlr", outcomes: "outcomes", unmatched: "unmatched", cfg: config.Default().DLR, m: m, tracer: tp.Tracer("test")}
	s := db.Store('c', 0, "pending", pendingMeta)

	const traceID, spanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	sv, _ := proto.Marshal(&sluicepb.SubmitResult{Message: &sluicepb.Message{Id: "m1", Carrier: "sim-a", Segments: 1}, SmscMessageId: "x1", SubmittedAtMs: 1000})
	dv, _ := proto.Marshal(&sluicepb.RawDLR{Carrier: "sim-a", SmscMessageId: "x1", Stat: "DELIVRD", ReceivedAtMs: 2000})
	key := []byte("sim-a:x1")
	tx := s.Begin()
	defer tx.Discard()
	if _, err := c.step(tx, "dlr", kafka.Message{Key: key, Value: dv}); err != nil {
		t.Fatal(err)
	}
	out, err := c.step(tx, "submits", kafka.Message{Key: key, Value: sv, Headers: []kafka.Header{{Key: "traceparent", Value: []byte("00-" + traceID + "-" + spanID + "-01")}}})
	if err != nil || len(out) != 1 {
		t.Fatalf("step: %v, %d outputs", err, len(out))
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "dlr.correlate" {
		t.Fatalf("spans %v, want one dlr.correlate", spans)
	}
	links := spans[0].Links()
	if len(links) != 1 || links[0].SpanContext.TraceID().String() != traceID || links[0].SpanContext.SpanID().String() != spanID {
		t.Errorf("links %+v, want the submit's span %s/%s", links, traceID, spanID)
	}
	if spans[0].Parent().IsValid() {
		t.Error("the correlation span has a parent; a receipt comes too late to be the submit's child")
	}
}
