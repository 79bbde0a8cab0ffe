// Package telemetry sets up what every sluice service reports: OpenTelemetry
// traces (exported over OTLP/HTTP when the standard OTEL_* variables say so),
// metrics served to Prometheus at /metrics, health at /healthz and /readyz,
// Go profiles at /debug/pprof/,
// JSON logs carrying the trace id, and trace context in Kafka headers.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	promexporter "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Config names the service and where its admin endpoints listen.
type Config struct {
	Service   string
	AdminAddr string // serves /metrics, /healthz, /readyz
}

// Telemetry is one service's tracer, meter and admin endpoints. Several can
// live in one process (the devstack runs four services in one).
type Telemetry struct {
	cfg   Config
	tp    *sdktrace.TracerProvider
	mp    *sdkmetric.MeterProvider
	ready atomic.Bool
	mux   *http.ServeMux
	ln    net.Listener
	// lnTaken: Serve or Shutdown has taken the listener, the first of them
	// owns closing it.
	lnTaken atomic.Bool

	shutdown    sync.Once
	shutdownErr error
}

// Setup builds the providers and binds the admin address (so a busy port is
// an error at start, and AdminAddr ":0" gets a real port: see Addr). Spans
// are exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and OTEL_TRACES_EXPORTER is not
// "none"), configured by the standard OTEL_* variables; without an exporter
// spans still get ids, for the logs. Nothing global is set but the W3C
// propagator, so several services can share a process.
func Setup(ctx context.Context, cfg Config, log *slog.Logger) (*Telemetry, error) {
	if log == nil {
		log = slog.Default()
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(cfg.Service)))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promExp, err := promexporter.New(promexporter.WithRegisterer(reg), promexporter.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if otlpConfigured() {
		exp, err := otlptracehttp.New(ctx) // reads the standard OTEL_EXPORTER_OTLP_* variables
		if err != nil {
			return nil, fmt.Errorf("otlp exporter: %w", err)
		}
		topts = append(topts, sdktrace.WithBatcher(loggedExporter{SpanExporter: exp, log: log}))
		log.Info("exporting spans over OTLP/HTTP")
	}
	t := &Telemetry{
		cfg: cfg,
		tp:  sdktrace.NewTracerProvider(topts...),
		mp:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(promExp), sdkmetric.WithResource(res)),
		mux: http.NewServeMux(),
	}
	if cfg.AdminAddr != "" {
		if t.ln, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			return nil, errors.Join(fmt.Errorf("admin listener: %w", err), t.Shutdown(ctx))
		}
	}

	// One propagator for the process: W3C trace context and baggage.
	otel.SetTextMapPropagator(propagator)

	t.mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	t.mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !t.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	// Profiles of a live process: what limits a stage under real load.
	t.mux.HandleFunc("/debug/pprof/", pprof.Index)
	t.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	t.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return t, nil
}

func otlpConfigured() bool {
	if e := os.Getenv("OTEL_TRACES_EXPORTER"); e != "" && e != "otlp" {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// loggedExporter reports failed exports in the service's own log: the SDK
// would hand them to the process-wide error handler, shared by every
// service of a devstack process.
type loggedExporter struct {
	sdktrace.SpanExporter
	log *slog.Logger
}

func (e loggedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.SpanExporter.ExportSpans(ctx, spans); err != nil {
		e.log.Warn("span export failed", "spans", len(spans), "err", err)
	}
	return nil
}

// Tracer returns the service's tracer.
func (t *Telemetry) Tracer() trace.Tracer {
	return t.tp.Tracer("github.com/sluice-sms/sluice/" + t.cfg.Service)
}

// TracerProvider returns the service's tracer provider.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tp }

// Meter returns the service's meter.
func (t *Telemetry) Meter() metric.Meter {
	return t.mp.Meter("github.com/sluice-sms/sluice/" + t.cfg.Service)
}

// SetReady flips /readyz.
func (t *Telemetry) SetReady(ready bool) { t.ready.Store(ready) }

// Handler is the admin mux.
func (t *Telemetry) Handler() http.Handler { return t.mux }

// Addr is the admin server's address, with the real port when ":0" was asked.
func (t *Telemetry) Addr() string {
	if t.ln == nil {
		return ""
	}
	return t.ln.Addr().String()
}

// Serve runs the admin server until ctx ends, then shuts it down
// gracefully; it returns nil on a clean stop. Without an AdminAddr it only
// waits for ctx. It serves once: later calls, or calls after Shutdown, fail.
func (t *Telemetry) Serve(ctx context.Context) error {
	if t.lnTaken.Swap(true) {
		return errors.New("admin server already served or shut down")
	}
	if t.ln == nil {
		<-ctx.Done()
		return nil
	}
	srv := &http.Server{Handler: t.mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(t.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("admin server shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown flushes spans and stops the providers; it also releases the
// admin address when Serve never ran. Stop Serve first. Later calls return
// the first one's result.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdown.Do(func() {
		var lnErr error
		if t.ln != nil && !t.lnTaken.Swap(true) {
			if lnErr = t.ln.Close(); lnErr != nil {
				lnErr = fmt.Errorf("admin listener: %w", lnErr)
			}
		}
		t.shutdownErr = errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx), lnErr)
	})
	return t.shutdownErr
}
