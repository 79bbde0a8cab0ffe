package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/tools/loadgen"
)

// BenchmarkPipeline drives campaigns of SLUICE_BENCH_N messages (default
// 20,000), published as fast as the broker takes them, through the four
// services running as separate processes, and reports the end-to-end
// figures. Kannel's bare submit rate on the same simulator is measured by
// BenchmarkKannelBearerbox and BenchmarkSenderVsKannel in tools/sendertest,
// run by the same `make bench`.
func BenchmarkPipeline(b *testing.B) {
	n := envInt("SLUICE_BENCH_N", 20000)
	s := startStack(b)
	i := 0
	for b.Loop() {
		i++
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		profiled := profileDuringRun(ctx, b, s)
		c := loadgen.Campaign{Tenant: "demo", ID: fmt.Sprintf("bench-%d", i), Count: n, Seed: uint64(i),
			Long: 0.1, Unicode: 0.1, OTP: 0.2, Marketing: 0.4}
		res, err := s.Run(ctx, Fault{}, c, 0, nil)
		err = errors.Join(err, <-profiled)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		r := res.Report
		final := r.Stages[len(r.Stages)-1]
		b.ReportMetric(float64(n)/final.Last.Sub(r.Stages[0].First).Seconds(), "final-msg/s")
		b.ReportMetric(float64(r.ToSubmitted.P50.Milliseconds()), "p50-submit-ms")
		b.ReportMetric(float64(r.ToFinal.P50.Milliseconds()), "p50-final-ms")
		b.ReportMetric(float64(r.ToFinal.P99.Milliseconds()), "p99-final-ms")
		// Stdout, not b.Log: the testing package cuts a benchmark's log at ten lines.
		fmt.Printf("BenchmarkPipeline: campaign of %d messages through the whole pipeline (separate processes)\n", n)
		if err := r.Print(os.Stdout); err != nil {
			b.Fatal(err)
		}
		cpu, err := s.CPU()
		if err != nil {
			b.Fatal(err)
		}
		fmt.Print("\nCPU time per service (the hottest stage):")
		for _, name := range Services {
			fmt.Printf("  %s %s", name, cpu[name].Round(10*time.Millisecond))
		}
		fmt.Println()
		if !res.OK() {
			b.Errorf("the run lost or duplicated messages: %+v", res)
		}
	}
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
