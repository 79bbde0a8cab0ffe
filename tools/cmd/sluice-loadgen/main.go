// Command sluice-loadgen publishes a campaign of requests to sms.requests,
// follows sms.status until every message has a final status and prints what
// it saw as a table.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/schemas"
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
	timeout := flag.Duration("timeout", 30*time.Minute, "give up after this long")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	addrs := strings.Split(*brokers, ",")
	reqs := c.Requests()
	tally := loadgen.NewTally(reqs)
	start := time.Now()
	var published atomic.Int64
	followErr := make(chan error, 1)
	go func() {
		followErr <- loadgen.Follow(ctx, addrs, *prefix+schemas.TopicStatus, tally, func(final int) {
			fmt.Fprintf(os.Stderr, "\rpublished %d/%d  final %d/%d  %.0f msg/s   ",
				published.Load(), len(reqs), final, len(reqs), float64(final)/time.Since(start).Seconds())
		})
	}()
	p := kafka.NewProducer(addrs, 5*time.Millisecond)
	err := loadgen.Publish(ctx, p, *prefix+schemas.TopicRequests, reqs, func(done int) { published.Store(int64(done)) })
	publishedIn := time.Since(start)
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := <-followErr; err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr)
	elapsed := time.Since(start)

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "campaign\t%s\t\n", c.ID)
	fmt.Fprintf(tw, "published\t%d in %s (%.0f msg/s)\t\n", len(reqs), publishedIn.Round(time.Millisecond), float64(len(reqs))/publishedIn.Seconds())
	fmt.Fprintf(tw, "final\t%d in %s (%.0f msg/s)\t\n", tally.Final(), elapsed.Round(time.Millisecond), float64(tally.Final())/elapsed.Seconds())
	names := make([]string, 0, len(tally.Statuses))
	for s := range tally.Statuses {
		names = append(names, s)
	}
	slices.Sort(names)
	for _, s := range names {
		fmt.Fprintf(tw, "  %s\t%d\t\n", s, tally.Statuses[s])
	}
	fmt.Fprintf(tw, "conflicting finals\t%d\t\n", tally.Conflicts)
	return tw.Flush()
}
