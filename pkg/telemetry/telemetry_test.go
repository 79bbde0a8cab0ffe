package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/kafka"
)

// setup builds a Telemetry with no OTLP exporter, whatever the environment
// running the tests says.
func setup(t *testing.T, service string) *Telemetry {
	t.Helper()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tel, err := Setup(context.Background(), Config{Service: service, AdminAddr: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return tel
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// sample finds the value of a Prometheus sample in the text exposition.
func sample(body, name string) string {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{[^}]*\})? (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestAdminEndpoints(t *testing.T) {
	tel := setup(t, "sluice-test")
	c, err := tel.Meter().Int64Counter("sluice_test_things_total")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3)

	code, body := get(t, tel.Handler(), "/metrics")
	if code != 200 || sample(body, "sluice_test_things_total") != "3" {
		t.Errorf("/metrics = %d, want the counter at 3:\n%.3000s", code, body)
	}
	if sample(body, "go_goroutines") == "" || !strings.Contains(body, `service_name="sluice-test"`) {
		t.Errorf("/metrics lacks the Go runtime metrics or the service's target_info:\n%.3000s", body)
	}

	steps := []struct {
		path  string
		ready *bool
		want  int
	}{
		{"/healthz", nil, 200},
		{"/readyz", nil, http.StatusServiceUnavailable},
		{"/readyz", ptr(true), 200},
		{"/healthz", nil, 200},
		{"/readyz", ptr(false), http.StatusServiceUnavailable},
		{"/healthz", nil, 200},
		{"/debug/pprof/heap?debug=1", nil, 200},
		{"/debug/pprof/goroutine?debug=1", nil, 200},
		{"/nothing", nil, http.StatusNotFound},
	}
	for i, s := range steps {
		if s.ready != nil {
			tel.SetReady(*s.ready)
		}
		if code, _ := get(t, tel.Handler(), s.path); code != s.want {
			t.Errorf("step %d: GET %s = %d, want %d", i, s.path, code, s.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// The devstack runs four services in one process: each must see only its
// own metrics, under its own name.
func TestServicesInOneProcessStayApart(t *testing.T) {
	a, b := setup(t, "sluice-a"), setup(t, "sluice-b")
	ca, _ := a.Meter().Int64Counter("sluice_a_total")
	cb, _ := b.Meter().Int64Counter("sluice_b_total")
	ca.Add(context.Background(), 1)
	cb.Add(context.Background(), 2)

	_, bodyA := get(t, a.Handler(), "/metrics")
	_, bodyB := get(t, b.Handler(), "/metrics")
	if sample(bodyA, "sluice_a_total") != "1" || sample(bodyA, "sluice_b_total") != "" || !strings.Contains(bodyA, `service_name="sluice-a"`) {
		t.Errorf("service a's /metrics:\n%.3000s", bodyA)
	}
	if sample(bodyB, "sluice_b_total") != "2" || sample(bodyB, "sluice_a_total") != "" || !strings.Contains(bodyB, `service_name="sluice-b"`) {
		t.Errorf("service b's /metrics:\n%.3000s", bodyB)
	}
	a.SetReady(true)
	if code, _ := get(t, b.Handler(), "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("b is ready because a is: /readyz = %d", code)
	}
}

func TestServeListensAndStops(t *testing.T) {
	tel := setup(t, "sluice-test")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tel.Serve(ctx) }()
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get("http://" + tel.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve returned %v after a clean stop", err)
	}
	if err := tel.Serve(context.Background()); err == nil {
		t.Error("a second Serve succeeded")
	}
	if _, err := http.Get("http://" + tel.Addr() + "/healthz"); err == nil {
		t.Error("admin server still answers after Serve returned")
	}
}

func TestAdminAddress(t *testing.T) {
	tel := setup(t, "sluice-test")
	addr := tel.Addr()
	if _, err := Setup(context.Background(), Config{Service: "dup", AdminAddr: addr}, nil); err == nil {
		t.Fatalf("Setup on the busy address %s succeeded", addr)
	}
	// Shutdown without Serve (a service that failed to start) frees the
	// port; a second Shutdown (the cleanup) is harmless.
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("admin address still bound after Shutdown: %v", err)
	}
	_ = ln.Close()
}

func TestTraceContextThroughKafkaHeaders(t *testing.T) {
	tel := setup(t, "sluice-test")
	ctx, span := tel.Tracer().Start(context.Background(), "produce")
	defer span.End()
	headers := []kafka.Header{{Key: "traceparent", Value: []byte("stale")}, {Key: "other", Value: []byte("kept")}}
	Inject(ctx, &headers)
	if len(headers) != 2 || string(headers[1].Value) != "kept" {
		t.Fatalf("Inject must replace traceparent and keep the rest: %v", headers)
	}
	want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"
	if got := string(headers[0].Value); got != want {
		t.Errorf("traceparent header = %q, want %q", got, want)
	}

	got := Extract(context.Background(), headers)
	_, child := tel.Tracer().Start(got, "consume")
	defer child.End()
	if child.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Errorf("trace id %s after the round trip, want %s", child.SpanContext().TraceID(), span.SpanContext().TraceID())
	}
	if keys := (HeaderCarrier{Headers: &headers}).Keys(); len(keys) != 2 || keys[0] != "traceparent" || keys[1] != "other" {
		t.Errorf("Keys = %v", keys)
	}
}

func TestLoggerAddsTraceID(t *testing.T) {
	tel := setup(t, "sluice-test")
	var buf bytes.Buffer
	log := NewLogger(&buf, slog.LevelInfo, "sluice-test").With("carrier", "sim-a").WithGroup("g")
	ctx, span := tel.Tracer().Start(context.Background(), "work")
	log.InfoContext(ctx, "with span")
	span.End()
	log.InfoContext(context.Background(), "without span")
	log.DebugContext(ctx, "below the level")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), buf.String())
	}
	var withSpan, withoutSpan map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &withSpan); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &withoutSpan); err != nil {
		t.Fatal(err)
	}
	g, _ := withSpan["g"].(map[string]any)
	if withSpan["service"] != "sluice-test" || withSpan["carrier"] != "sim-a" ||
		g["trace_id"] != span.SpanContext().TraceID().String() || g["span_id"] != span.SpanContext().SpanID().String() {
		t.Errorf("log line with a span: %s", lines[0])
	}
	if _, ok := withoutSpan["g"]; ok || withoutSpan["service"] != "sluice-test" {
		t.Errorf("log line without a span: %s", lines[1])
	}
}

// collector is an OTLP/HTTP trace receiver.
type collector struct {
	mu    sync.Mutex
	spans map[string]string // span name → service.name
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if err != nil || r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans[s.GetName()] = service
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(nil) // an empty ExportTraceServiceResponse
}

func TestOTLPExportWhenConfigured(t *testing.T) {
	col := &collector{spans: map[string]string{}}
	srv := httptest.NewServer(col)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")

	tel, err := Setup(context.Background(), Config{Service: "sluice-otlp"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.Tracer().Start(context.Background(), "submit_sm")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if service, ok := col.spans["submit_sm"]; !ok || service != "sluice-otlp" {
		t.Errorf("collector received %v, want span submit_sm of sluice-otlp", col.spans)
	}
}

func TestOTLPConfigured(t *testing.T) {
	tests := []struct {
		endpoint, traces, exporter string
		want                       bool
	}{
		{"", "", "", false},
		{"http://collector:4318", "", "", true},
		{"", "http://collector:4318/v1/traces", "", true},
		{"http://collector:4318", "", "otlp", true},
		{"http://collector:4318", "", "none", false},
	}
	for _, tt := range tests {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tt.endpoint)
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", tt.traces)
		t.Setenv("OTEL_TRACES_EXPORTER", tt.exporter)
		if got := otlpConfigured(); got != tt.want {
			t.Errorf("%+v: otlpConfigured = %v", tt, got)
		}
	}
}
