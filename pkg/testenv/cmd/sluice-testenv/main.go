// Command sluice-testenv is the Go half of tools/testenv/up.sh: it writes the
// Kafka and ClickHouse test configurations and waits until the servers really
// answer, so the script, pkg/testenv, pkg/chlocal and the fault suite share
// one configuration and one readiness check.
//
//	sluice-testenv kafka-config -dir DIR -ports N,... -controller-ports N,...   (DIR/node-<id> per node; prints a new cluster id)
//	sluice-testenv clickhouse-config -dir DIR -tcp-port N -http-port N
//	sluice-testenv wait [-kafka host:port,...] [-clickhouse host:port] [-timeout 2m]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
		dir := fs.String("dir", "", "directory for the nodes' directories (node-1, node-2, ...): config and data")
		ports := fs.String("ports", "19092", "client ports, one per node, comma-separated")
		cports := fs.String("controller-ports", "19093", "KRaft controller ports, one per node, comma-separated")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dir == "" {
			return errors.New("kafka-config: -dir is required")
		}
		nodes, err := kraftNodes(*ports, *cports)
		if err != nil {
			return err
		}
		for i, n := range nodes {
			if err := testenv.WriteKRaftNodeConfig(filepath.Join(*dir, fmt.Sprintf("node-%d", n.ID)), nodes, i); err != nil {
				return err
			}
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

// kraftNodes pairs the i-th client port with the i-th controller port as
// node i+1.
func kraftNodes(ports, cports string) ([]testenv.KRaftNode, error) {
	ps, cs := strings.Split(ports, ","), strings.Split(cports, ",")
	if len(ps) != len(cs) {
		return nil, fmt.Errorf("kafka-config: %d client ports but %d controller ports", len(ps), len(cs))
	}
	nodes := make([]testenv.KRaftNode, len(ps))
	for i := range ps {
		p, err := strconv.Atoi(ps[i])
		if err != nil {
			return nil, fmt.Errorf("kafka-config: port %q: %w", ps[i], err)
		}
		c, err := strconv.Atoi(cs[i])
		if err != nil {
			return nil, fmt.Errorf("kafka-config: controller port %q: %w", cs[i], err)
		}
		nodes[i] = testenv.KRaftNode{ID: i + 1, Port: p, ControllerPort: c}
	}
	return nodes, nil
}
