package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/sluice-sms/sluice/tools/kannelbench"
	"github.com/sluice-sms/sluice/tools/loadgen"
)

// BenchmarkPipeline drives campaigns of SLUICE_BENCH_N messages (default
// 20,000), published as fast as the broker takes them, through the four
// services running as separate processes, and reports the end-to-end
// figures beside Kannel's bare submit rate, measured first in the same run
// on the same simulator with as many binds and the same window as the
// pipeline's carriers have together.
func BenchmarkPipeline(b *testing.B) {
	n := envInt("SLUICE_BENCH_N", 20000)
	s := startStack(b)
	binds, window := 0, 0
	for _, c := range s.Cfg.Carriers {
		binds += c.Binds
		window = max(window, c.Window)
	}
	b.StopTimer()
	kannelRate := kannelbench.SubmitRate(context.Background(), b, binds, window, n)
	b.StartTimer()
	i := 0
	for b.Loop() {
		i++
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		profiled := profileDuringRun(ctx, b, s)
		c := Campaign(fmt.Sprintf("bench-%d", i), n, uint64(i))
		cpu0, machine0, err := cpuNow(s)
		if err != nil {
			b.Fatal(err)
		}
		traffic0, err := s.Traffic(ctx)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		res, err := s.Run(ctx, Fault{}, c, 0, nil)
		elapsed := time.Since(start)
		cpu1, machine1, cerr := cpuNow(s)
		traffic1, terr := s.Traffic(ctx)
		err = errors.Join(err, cerr, terr, <-profiled)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		r := res.Report
		submitted, final := rate(r, "submitted"), rate(r, "final")
		b.ReportMetric(final, "final-msg/s")
		b.ReportMetric(final/kannelRate, "x-kannel")
		b.ReportMetric(float64(r.ToSubmitted.P50.Milliseconds()), "p50-submit-ms")
		b.ReportMetric(float64(r.ToFinal.P50.Milliseconds()), "p50-final-ms")
		b.ReportMetric(float64(r.ToFinal.P99.Milliseconds()), "p99-final-ms")
		// Stdout, not b.Log: the testing package cuts a benchmark's log at ten lines.
		fmt.Printf("BenchmarkPipeline: campaign of %d messages through the whole pipeline (separate processes)\n", n)
		if err := r.Print(os.Stdout); err != nil {
			b.Fatal(err)
		}
		fmt.Printf("\nCPU time over the run (%s; the machine has %d cores: %s available):\n", elapsed.Round(time.Millisecond), runtime.NumCPU(),
			(elapsed * time.Duration(runtime.NumCPU())).Round(time.Millisecond))
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "process\tCPU\tµs/message")
		perMsg := func(d time.Duration) int64 { return d.Microseconds() / int64(n) }
		for _, name := range Services {
			d := cpu1[name] - cpu0[name]
			fmt.Fprintf(tw, "%s\t%s\t%d\n", name, d.Round(10*time.Millisecond), perMsg(d))
		}
		whole := machine1 - machine0
		fmt.Fprintf(tw, "the whole machine (Kafka, ClickHouse, simulator, loadgen too)\t%s\t%d\n", whole.Round(10*time.Millisecond), perMsg(whole))
		if err := tw.Flush(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(perMsg(whole)), "machine-cpu-µs/msg")
		total := printTraffic(b, traffic0, traffic1, n)
		b.ReportMetric(float64(total.Produced)/float64(n), "records/msg")
		b.ReportMetric(float64(total.FetchRequests)/float64(n), "fetch-req/msg")
		b.ReportMetric(float64(total.ProduceRequests)/float64(n), "produce-req/msg")
		fmt.Printf("\nBeside Kannel (same machine, same run, %d messages):\n", n)
		tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "what\tmsg/s\t× Kannel")
		fmt.Fprintf(tw, "Kannel bearerbox, bare submits (%d binds, window %d, store-file)\t%.0f\t1\n", binds, window, kannelRate)
		fmt.Fprintf(tw, "sluice, publish → submitted (4 services, Kafka acks=all)\t%.0f\t%.2f\n", submitted, submitted/kannelRate)
		fmt.Fprintf(tw, "sluice, publish → final status (+ receipts, ClickHouse)\t%.0f\t%.2f\n", final, final/kannelRate)
		if err := tw.Flush(); err != nil {
			b.Fatal(err)
		}
		if !res.OK() {
			b.Errorf("the run lost or duplicated messages: %+v", res)
		}
	}
}

// printTraffic prints each service's Kafka records and requests per message
// over the run, from its own counters, and returns their sum.
func printTraffic(b *testing.B, before, after map[string]Traffic, n int) Traffic {
	fmt.Printf("\nKafka traffic over the run, per message (the services' sluice_kafka_requests/records):\n")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "process\trecords produced\trecords fetched\tproduce requests\tfetch requests")
	per := func(v int64) string { return strconv.FormatFloat(float64(v)/float64(n), 'f', 2, 64) }
	var total Traffic
	for _, name := range Services {
		d := after[name].Sub(before[name])
		total = total.Add(d)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, per(d.Produced), per(d.Fetched), per(d.ProduceRequests), per(d.FetchRequests))
	}
	fmt.Fprintf(tw, "all four\t%s\t%s\t%s\t%s\n", per(total.Produced), per(total.Fetched), per(total.ProduceRequests), per(total.FetchRequests))
	if err := tw.Flush(); err != nil {
		b.Fatal(err)
	}
	return total
}

// cpuNow returns the CPU time of each service process and of the machine.
func cpuNow(s *Stack) (map[string]time.Duration, time.Duration, error) {
	services, err := s.CPU()
	if err != nil {
		return nil, 0, err
	}
	machine, err := MachineCPU()
	return services, machine, err
}

// rate is the messages per second from the first publish until the last
// message reached stage.
func rate(r loadgen.Report, stage string) float64 {
	for _, st := range r.Stages {
		if st.Name == stage {
			return float64(st.Count) / st.Last.Sub(r.Stages[0].First).Seconds()
		}
	}
	return 0
}

// profileDuringRun takes CPU profiles of every service for the first
// SLUICE_BENCH_PROFILE_SECONDS (default 8) of the campaign when
// SLUICE_BENCH_PROFILE names a directory (`make bench PROFILE=dir`).
func profileDuringRun(ctx context.Context, b *testing.B, s *Stack) <-chan error {
	done := make(chan error, 1)
	dir := os.Getenv("SLUICE_BENCH_PROFILE")
	if dir == "" {
		done <- nil
		return done
	}
	d := time.Duration(envInt("SLUICE_BENCH_PROFILE_SECONDS", 8)) * time.Second
	go func() { done <- s.Profile(ctx, dir, d) }()
	b.Logf("CPU profiles of the services in %s", dir)
	return done
}
