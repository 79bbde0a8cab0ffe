// Package telemetry sets up what every sluice service reports: OpenTelemetry
// traces (exported over OTLP/HTTP when the standard OTEL_* variables say so),
// metrics served to Prometheus at /metrics, health at /healthz and /readyz,
// JSON logs carrying the trace id, and trace context in Kafka headers.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
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
	log   *slog.Logger
	tp    *sdktrace.TracerProvider
	mp    *sdkmetric.MeterProvider
	ready atomic.Bool
	mux   *http.ServeMux
	ln    net.Listener
}

// Setup builds the providers and binds the admin address (so a busy port is
// an error at start, and AdminAddr ":0" gets a real port: see Addr).
func Setup(ctx context.Context, cfg Config, log *slog.Logger) (*Telemetry, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(cfg.Service)))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if otlpConfigured() {
		exp, err := otlptracehttp.New(ctx) // reads the standard OTEL_EXPORTER_OTLP_* variables
		if err != nil {
			return nil, fmt.Errorf("otlp exporter: %w", err)
		}
		topts = append(topts, sdktrace.WithBatcher(exp))
	}
	t := &Telemetry{cfg: cfg, log: log, tp: sdktrace.NewTracerProvider(topts...), mux: http.NewServeMux()}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := promexporter.New(promexporter.WithRegisterer(reg), promexporter.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))

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
	if cfg.AdminAddr != "" {
		if t.ln, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			return nil, fmt.Errorf("admin listener: %w", err)
		}
	}
	return t, nil
}

func otlpConfigured() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
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

// Serve runs the admin server until ctx ends.
func (t *Telemetry) Serve(ctx context.Context) error {
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

// Shutdown flushes spans and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
}
