package service

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/telemetry"
)

// RunFunc is a service's entry point.
type RunFunc func(ctx context.Context, cfg config.Config, log *slog.Logger) error

// Main is the whole of a service binary's main: it reads -config (default
// sluice.yaml, or $SLUICE_CONFIG), logs JSON to stderr, runs the service and
// stops it cleanly on SIGINT or SIGTERM.
func Main(name string, run RunFunc) {
	if err := mainErr(name, run); err != nil {
		fmt.Fprintf(os.Stderr, "sluice-%s: %v\n", name, err)
		os.Exit(1)
	}
}

func mainErr(name string, run RunFunc) error {
	def := "sluice.yaml"
	if p := os.Getenv("SLUICE_CONFIG"); p != "" {
		def = p
	}
	path := flag.String("config", def, "path of sluice.yaml (env SLUICE_CONFIG)")
	flag.Parse()

	log := telemetry.NewLogger(os.Stderr, slog.LevelInfo, "sluice-"+name)
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, cfg, log)
}
