// Command sluice-router runs sluice's router service. SIGHUP reloads routes,
// carriers, tenants and router settings from the -config file.
package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/services/router"
)

func main() {
	service.Main("router", func(ctx context.Context, cfg config.Config, log *slog.Logger) error {
		// service.Main has parsed -config by now.
		path := flag.Lookup("config").Value.String()
		return router.Serve(ctx, cfg, log, router.ReloadOnSIGHUP(ctx, path, log))
	})
}
