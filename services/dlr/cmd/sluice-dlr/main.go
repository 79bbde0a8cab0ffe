// Command sluice-dlr runs sluice's dlr service.
package main

import (
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/services/dlr"
)

func main() { service.Main("dlr", dlr.Run) }
