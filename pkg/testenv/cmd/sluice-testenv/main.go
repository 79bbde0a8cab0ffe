// Command sluice-testenv is the Go half of tools/testenv/up.sh: it writes the
// Kafka and ClickHouse test configurations and waits until the servers really
// answer, so the script, pkg/testenv, pkg/chlocal and the fault suite share
// one configuration and one readiness check.
//
//	sluice-testenv kafka-config -dir DIR -port N -controller-port N   (prints a new cluster id)
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
		return errors.New("usage: sluice-testenv kafka-config|clickhouse-config|wait [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	switch args[0] {
	case "kafka-config":
		dir := fs.String("dir", "", "directory for server.properties, log4j2.yaml and the broker's data")
		port := fs.Int("port", 19092, "client port")
		cport := fs.Int("controller-port", 19093, "KRaft controller port")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dir == "" {
			return errors.New("kafka-config: -dir is required")
		}
		if err := testenv.WriteKRaftConfig(*dir, *port, *cport); err != nil {
			return err
		}
		fmt.Println(testenv.KRaftClusterID())
		return nil
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
