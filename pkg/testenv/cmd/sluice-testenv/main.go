// Command sluice-testenv is the Go half of tools/testenv/up.sh: it writes the
// ClickHouse test configuration and waits until the servers really answer, so
// the script, pkg/testenv and pkg/chlocal share one configuration and one
// readiness check.
//
//	sluice-testenv clickhouse-config -dir DIR -tcp-port N -http-port N
//	sluice-testenv wait [-kafka host:port,...] [-clickhouse host:port] [-timeout 2m]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sluice-sms/sluice/pkg/chlocal"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-testenv:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: sluice-testenv clickhouse-config|wait [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	switch args[0] {
	case "clickhouse-config":
		dir := fs.String("dir", "", "directory for config.xml, users.xml and the server's data")
		tcp := fs.Int("tcp-port", 19000, "native protocol port")
		http := fs.Int("http-port", 18123, "HTTP port")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dir == "" {
			return errors.New("clickhouse-config: -dir is required")
		}
		return chlocal.WriteConfig(*dir, *tcp, *http)
	case "wait":
		kafka := fs.String("kafka", "", "Kafka bootstrap brokers, comma-separated")
		ch := fs.String("clickhouse", "", "ClickHouse native address")
		timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait in all")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		if *kafka != "" {
			if err := testenv.WaitKafka(ctx, strings.Split(*kafka, ",")); err != nil {
				return fmt.Errorf("kafka %s: %w", *kafka, err)
			}
		}
		if *ch != "" {
			if err := chlocal.Wait(ctx, *ch); err != nil {
				return fmt.Errorf("clickhouse %s: %w", *ch, err)
			}
		}
		return nil
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
}
