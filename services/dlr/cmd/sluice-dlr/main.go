// Command sluice-dlr runs sluice's dlr service.
package main

import (
	"os"
	"runtime/debug"

	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/services/dlr"
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(dlr.GCPercent)
	}
	service.Main("dlr", dlr.Run)
}
