// Command sluice-loadgen publishes a campaign of requests to sms.requests (or
// through ingest's HTTP API) at a target rate (or as fast as the broker takes them), follows sms.status until
// every message has a final status and prints what it saw as a table:
// accepted, final statuses, throughput per stage, latencies, the simulator's
// duplicates and the messages missing. It exits 1 when any message is missing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-sms/sluice/tools/loadgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-loadgen:", err)
		os.Exit(1)
	}
}

func run() error {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma separated")
	prefix := flag.String("topic-prefix", "", "prefix of every topic name (kafka.topic_prefix)")
	c := loadgen.Campaign{}
	flag.IntVar(&c.Count, "n", 10000, "messages to send")
	flag.StringVar(&c.Tenant, "tenant", "demo", "tenant of the messages")
	flag.StringVar(&c.ID, "campaign", fmt.Sprintf("load-%d", time.Now().Unix()), "campaign id (also the client_ref prefix)")
	flag.Uint64Var(&c.Seed, "seed", uint64(time.Now().UnixNano()), "random seed of the campaign's numbers and texts")
	flag.Float64Var(&c.Long, "long", 0.1, "share of long (multi-part) texts")
	flag.Float64Var(&c.Unicode, "unicode", 0.1, "share of UCS-2 texts")
	flag.Float64Var(&c.OTP, "otp", 0.2, "share of otp messages")
	flag.Float64Var(&c.Marketing, "marketing", 0.5, "share of marketing messages")
	rate := flag.Float64("rate", 0, "messages a second to publish; 0: as fast as the broker takes them")
	simStats := flag.String("sim-stats", "", "smsc-sim stats URL (e.g. http://127.0.0.1:8095/stats) for the duplicates it saw")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up after this long and report what is missing")
	httpURL := flag.String("http", "", "send through ingest's HTTP API at this base URL (e.g. http://127.0.0.1:8080) instead of sms.requests; the tenant's API key in $SLUICE_API_KEY")
	batch := flag.Int("batch", 100, "with -http: messages per POST /v1/messages (1: one message a request; at most 1000)")
	concurrency := flag.Int("concurrency", 4, "with -http: requests in flight at once")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	o := loadgen.RunOptions{
		Brokers:     strings.Split(*brokers, ","),
		TopicPrefix: *prefix,
		Requests:    c.Requests(),
		Rate:        *rate,
		Progress:    os.Stderr,
	}
	if *httpURL != "" {
		// From the environment, not a flag: a flag shows in the process list.
		key := os.Getenv("SLUICE_API_KEY")
		if key == "" {
			return errors.New("-http needs the tenant's API key in $SLUICE_API_KEY")
		}
		if *batch < 1 || *batch > 1000 {
			return fmt.Errorf("-batch %d: want 1 to 1000", *batch)
		}
		o.HTTP = &loadgen.HTTPTarget{URL: strings.TrimSuffix(*httpURL, "/"), APIKey: key, Batch: *batch, Concurrency: *concurrency}
	}
	if *simStats != "" {
		o.SimStats = func(ctx context.Context) (loadgen.SimStats, error) { return loadgen.FetchSimStats(ctx, *simStats) }
	}
	r, err := loadgen.Run(ctx, o)
	fmt.Printf("campaign %s\n", c.ID)
	if perr := r.Print(os.Stdout); perr != nil {
		return errors.Join(err, perr)
	}
	if err != nil {
		return err
	}
	if r.Missing > 0 {
		return fmt.Errorf("%d messages without a final status", r.Missing)
	}
	return nil
}
