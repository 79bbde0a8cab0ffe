package router

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluice-sms/sluice/pkg/config"
)

// ReloadOnSIGHUP reads the configuration file at path again on every SIGHUP
// until ctx ends, and sends each one that loads and validates; a bad file is
// logged and skipped, and the running configuration stays.
func ReloadOnSIGHUP(ctx context.Context, path string, log *slog.Logger) <-chan config.Config {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	out := make(chan config.Config)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			cfg, err := config.Load(path)
			if err != nil {
				log.Error("SIGHUP: configuration not reloaded", "path", path, "err", err)
				continue
			}
			select {
			case out <- cfg:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
