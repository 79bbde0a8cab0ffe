// Command sluice-sender runs sluice's sender service.
package main

import (
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/services/sender"
)

func main() { service.Main("sender", sender.Run) }
