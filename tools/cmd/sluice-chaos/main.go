// Command sluice-chaos runs the whole-pipeline fault suite (package chaos)
// against a Kafka broker and a ClickHouse server you give it: it builds the
// four services, runs them as processes, drives a campaign per fault
// (kill -9 of a service mid-stream, a simulated carrier that disconnects,
// stalls or throttles, or none), and prints a table of what was
// lost, duplicated and how long recovery took. It exits 1 when a fault broke
// a promise. Run it from inside the repository (it calls go build).
//
//	go run ./cmd/sluice-chaos -brokers 127.0.0.1:19092 -clickhouse 127.0.0.1:19000 -n 10000 -rate 2000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-sms/sluice/pkg/analytics"
	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/tools/chaos"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-chaos:", err)
		os.Exit(1)
	}
}

func run() error {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma separated")
	chAddr := flag.String("clickhouse", "127.0.0.1:9000", "ClickHouse native address")
	stamp := time.Now().Unix()
	db := flag.String("db", fmt.Sprintf("chaos_%d", stamp), "ClickHouse database to create and use")
	prefix := flag.String("topic-prefix", fmt.Sprintf("chaos-%d.", stamp), "topic prefix of the run")
	n := flag.Int("n", 10000, "messages per fault")
	rate := flag.Float64("rate", 2000, "messages a second to publish; 0: as fast as possible")
	faults := flag.String("faults", "none,ingest,router,sender,dlr", "faults in order: none, a service to kill -9, or what -carrier does: disconnects, stalls, throttles")
	down := flag.Duration("down", time.Second, "how long a killed service stays down")
	carrier := flag.String("carrier", "sim-c", "the simulated carrier that misbehaves")
	carrierDown := flag.Duration("carrier-down", 10*time.Second, "how long the carrier disconnects or throttles (it stalls for ¾ of -resp-timeout)")
	respTimeout := flag.Duration("resp-timeout", 0, "the carriers' resp_timeout; 0: the sender's default")
	timeout := flag.Duration("timeout", 10*time.Minute, "per fault")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "sluice-chaos-")
	if err != nil {
		return err
	}
	var errs []error
	defer func() {
		if len(errs) == 0 {
			os.RemoveAll(dir) // kept for its logs when a fault broke a promise
		}
	}()
	fmt.Fprintln(os.Stderr, "building the services…")
	if err := chaos.Build(ctx, dir+"/bin"); err != nil {
		return err
	}
	if err := createDatabase(ctx, *chAddr, *db); err != nil {
		return err
	}
	s, err := chaos.Start(ctx, chaos.Options{
		BinDir: dir + "/bin", Dir: dir, Brokers: strings.Split(*brokers, ","), TopicPrefix: *prefix,
		ClickHouseAddr: *chAddr, ClickHouseDB: *db, RespTimeout: *respTimeout,
	})
	if err != nil {
		return err
	}
	var results []chaos.Result
	for i, name := range strings.Split(*faults, ",") {
		f := chaos.Fault{Name: "none"}
		switch {
		case slices.Contains(chaos.CarrierFaultKinds, name):
			if f, err = s.CarrierFault(*carrier, name, *carrierDown); err != nil {
				errs = append(errs, err)
				continue
			}
		case name != "none":
			f = chaos.Fault{Name: "kill -9 " + name, Service: name, Down: *down}
		}
		fmt.Fprintf(os.Stderr, "== %s\n", f.Name)
		fctx, cancel := context.WithTimeout(ctx, *timeout)
		c := chaos.Campaign(fmt.Sprintf("chaos-%d-%d", stamp, i), *n, uint64(i+1))
		res, err := s.Run(fctx, f, c, *rate, os.Stderr)
		cancel()
		results = append(results, res)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Name, err))
		} else if !res.OK() {
			errs = append(errs, fmt.Errorf("%s: lost %d, conflicts %d, rows %d of %d, duplicates %d > window %d, crashes %q",
				f.Name, res.Lost, res.Report.Conflicts, res.DistinctRows, res.Messages, res.Duplicated, res.Window, res.Crashes))
		}
	}
	fmt.Printf("fault suite: %d messages per fault at %.0f msg/s, services' logs in %s (kept on failure)\n", *n, *rate, dir)
	if err := chaos.PrintResults(os.Stdout, results); err != nil {
		errs = append(errs, err)
	}
	if err := s.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func createDatabase(ctx context.Context, addr, db string) error {
	cfg := config.Default().ClickHouse
	cfg.Addr, cfg.Database = addr, "default"
	conn, err := analytics.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	return nil
}
