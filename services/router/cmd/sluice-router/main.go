// Command sluice-router runs sluice's router service.
package main

import (
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/services/router"
)

func main() { service.Main("router", router.Run) }
