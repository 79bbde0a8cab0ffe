package telemetry

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	kgo "github.com/segmentio/kafka-go"
)

func setup(t *testing.T) *Telemetry {
	t.Helper()
	tel, err := Setup(context.Background(), Config{Service: "test", AdminAddr: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestAdminEndpoints(t *testing.T) {
	tel := setup(t)
	c, err := tel.Meter().Int64Counter("sluice_test_things_total")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3)

	if code, body := get(t, tel.Handler(), "/metrics"); code != 200 || !strings.Contains(body, "sluice_test_things_total") || !strings.Contains(body, " 3") {
		t.Errorf("/metrics = %d, lacks the counter:\n%.2000s", code, body)
	}
	if code, _ := get(t, tel.Handler(), "/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get(t, tel.Handler(), "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before ready = %d, want 503", code)
	}
	tel.SetReady(true)
	if code, _ := get(t, tel.Handler(), "/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d", code)
	}
}

func TestServeListensAndStops(t *testing.T) {
	tel := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tel.Serve(ctx) }()
	resp, err := http.Get("http://" + tel.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz = %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve returned %v after a clean stop", err)
	}
}

func TestTraceContextThroughKafkaHeaders(t *testing.T) {
	tel := setup(t)
	ctx, span := tel.Tracer().Start(context.Background(), "produce")
	defer span.End()
	headers := []kgo.Header{{Key: "traceparent", Value: []byte("stale")}, {Key: "other", Value: []byte("kept")}}
	Inject(ctx, &headers)
	if len(headers) != 2 {
		t.Fatalf("Inject must replace traceparent, not add one: %v", headers)
	}
	got := Extract(context.Background(), headers)
	_, child := tel.Tracer().Start(got, "consume")
	defer child.End()
	if child.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Errorf("trace id %s after the round trip, want %s", child.SpanContext().TraceID(), span.SpanContext().TraceID())
	}
}

func TestLoggerAddsTraceID(t *testing.T) {
	tel := setup(t)
	var buf bytes.Buffer
	log := NewLogger(&buf, slog.LevelInfo, "sluice-test")
	ctx, span := tel.Tracer().Start(context.Background(), "work")
	log.InfoContext(ctx, "hello")
	span.End()
	if out := buf.String(); !strings.Contains(out, `"trace_id":"`+span.SpanContext().TraceID().String()) || !strings.Contains(out, `"service":"sluice-test"`) {
		t.Errorf("log line lacks trace id or service: %s", out)
	}
}
