// Command sluice-ingest runs sluice's ingest service.
package main

import (
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/services/ingest"
)

func main() { service.Main("ingest", ingest.Run) }
