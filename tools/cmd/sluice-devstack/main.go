// Command sluice-devstack runs the whole of sluice in one process on
// embedded defaults: an embedded Kafka broker, a simulated SMSC with three
// carriers, a local ClickHouse server and the four services. With -demo it
// sends a sample campaign through them and prints the per-carrier delivery
// report read back from ClickHouse.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sluice-sms/sluice/pkg/chlocal"
	"github.com/sluice-sms/sluice/pkg/telemetry"
	"github.com/sluice-sms/sluice/tools/devstack"
	"github.com/sluice-sms/sluice/tools/loadgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-devstack:", err)
		os.Exit(1)
	}
}

func run() error {
	demo := flag.Bool("demo", false, "send a sample campaign, print the delivery report and exit")
	messages := flag.Int("messages", 10000, "messages in the demo campaign")
	kafkaPort := flag.Int("kafka-port", 9092, "port of the embedded Kafka broker")
	dataDir := flag.String("data", ".devstack", "folder for the local ClickHouse server's data and the services' log")
	chAddr := flag.String("clickhouse", "", "use this ClickHouse server (host:port, native protocol) instead of starting one")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(*dataDir, "services.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	if *chAddr == "" {
		if _, err := exec.LookPath("clickhouse-server"); err != nil {
			fmt.Println("clickhouse-server is not installed; installing Debian's package…")
			if err := chlocal.Install(ctx, os.Stdout); err != nil {
				return err
			}
		}
	}
	absData, err := filepath.Abs(filepath.Join(*dataDir, "clickhouse"))
	if err != nil {
		return err
	}
	fmt.Printf("starting Kafka (embedded, 127.0.0.1:%d), smsc-sim, ClickHouse and the four services (logs: %s)\n", *kafkaPort, logPath)
	stack, err := devstack.Start(ctx, devstack.Options{
		KafkaPort:      *kafkaPort,
		ClickHouseAddr: *chAddr,
		DataDir:        absData,
		AdminPorts:     true,
		Log:            telemetry.NewLogger(logFile, slog.LevelInfo, "sluice-devstack"),
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("stopping…")
		if err := stack.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "a service stopped with an error:", err)
		}
	}()
	for _, c := range stack.Cfg.Carriers {
		fmt.Printf("  carrier %-6s SMPP %s:%d  binds %d  tps %d\n", c.ID, c.Host, c.Port, c.Binds, c.TPS)
	}
	fmt.Printf("  smsc-sim stats: http://%s/stats\n", stack.Sim.HTTPAddr())

	if !*demo {
		fmt.Println("running; publish JSON requests to sms.requests, Ctrl-C to stop")
		<-ctx.Done()
		return nil
	}

	campaign := loadgen.Campaign{
		Tenant: "demo", ID: fmt.Sprintf("demo-%d", time.Now().Unix()), Count: *messages, Seed: uint64(time.Now().UnixNano()),
		Long: 0.1, Unicode: 0.1, OTP: 0.2, Marketing: 0.5,
	}
	fmt.Printf("sending campaign %s: %d messages\n", campaign.ID, campaign.Count)
	res, err := stack.RunCampaign(ctx, campaign, os.Stdout)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	fmt.Printf("every message has a final status after %s; ClickHouse has all %d rows\n\n", res.Elapsed.Round(time.Millisecond), campaign.Count)
	return stack.PrintReport(ctx, os.Stdout, res.Start.Add(-time.Minute), time.Now().Add(time.Minute))
}
