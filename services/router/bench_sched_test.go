package router

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// BenchmarkRouterScheduleScale measures a router process holding a large
// schedule (SLUICE_BENCH_HELD messages, default 10,000,000), every one of
// them due: the rows are written straight into the schedule's store, as a
// router that had held them would have left it, then the router starts on
// that disk.
//
//   - disk-MiB: the store's files before the start;
//   - ready-s: from the process's start to its first release (restore, group
//     join and the first chunk);
//   - rss-MiB: its resident memory then, and rss-release-MiB at the end of
//     the measured release;
//   - release-msg/s: the rate of the first SLUICE_BENCH_RELEASE releases
//     (default 1,000,000), over the outbound records' timestamps, with all
//     of them due at once;
//   - otp-p99-ms: latency of otp messages published one every 10 ms during
//     that release.
func BenchmarkRouterScheduleScale(b *testing.B) {
	heldN := benchSize("SLUICE_BENCH_HELD", 10_000_000)
	releaseN := min(heldN, benchSize("SLUICE_BENCH_RELEASE", 1_000_000))
	for b.Loop() {
		const tenants = 24
		h := newHarnessWith(b, 12, func(c *config.Config) {
			for i := range tenants {
				c.Tenants = append(c.Tenants, config.Tenant{ID: fmt.Sprintf("t%d", i)})
			}
		})
		dir := b.TempDir()
		synthesizeSchedule(b, h, dir, heldN, tenants)
		b.ReportMetric(testenv.DirMiB(b, dir), "disk-MiB")
		cfgPath := filepath.Join(b.TempDir(), "sluice.yaml")
		writeConfig(b, h, cfgPath, dir)
		profile := profileRouter(b, cfgPath)
		bin := buildRouter(b)
		lane, otpLane := h.outbound("a", schemas.LaneBulk), h.outbound("a", schemas.LaneOTP)

		start := time.Now()
		cmd := exec.Command(bin, "-config", cfgPath)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		until(b, "the first release", func() bool { return endTotal(b, h, lane) > 0 })
		b.ReportMetric(time.Since(start).Seconds(), "ready-s")
		b.ReportMetric(testenv.RSSMiB(b, cmd.Process.Pid), "rss-MiB")
		profiled := make(chan struct{})
		go func() { defer close(profiled); profile() }()

		for i := 0; endTotal(b, h, lane) < int64(releaseN); i++ {
			m := msg(fmt.Sprintf("otp-%d", i), "t0", sluicepb.Priority_PRIORITY_OTP)
			h.accept(m)                       // stamped with its accepted_at now
			time.Sleep(10 * time.Millisecond) // the otp's pace, not a synchronisation
			if time.Since(start) > 30*time.Minute {
				b.Fatalf("only %d of %d released in 30 minutes", endTotal(b, h, lane), releaseN)
			}
		}
		b.ReportMetric(testenv.RSSMiB(b, cmd.Process.Pid), "rss-release-MiB")
		<-profiled
		first, last := timeSpan(b, h, lane)
		b.ReportMetric(float64(endTotal(b, h, lane))/last.Sub(first).Seconds(), "release-msg/s")
		lat := otpLatencies(b, h, otpLane)
		if len(lat) == 0 {
			b.Fatal("no otp routed during the release")
		}
		b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "otp-p99-ms")
		b.ReportMetric(float64(heldN), "held")
	}
}

// synthesizeSchedule writes n held rows, due a minute ago, into the
// schedule tables of dir, each on the partition its tenant's records go
// to, with checkpoints at the (empty) schedule topic's start.
func synthesizeSchedule(b *testing.B, h *harness, dir string, n, tenants int) {
	b.Helper()
	db, err := state.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const partitions = 12
	stores := make([]*state.Store, partitions)
	txns := make([]*state.Txn, partitions)
	for p := range stores {
		stores[p] = db.Store(scheduleTable, p, h.topic(schemas.TopicRouterSched), heldMeta)
		txns[p] = stores[p].Begin()
	}
	due := time.Now().Add(-time.Minute)
	t0 := time.Now()
	for i := range n {
		tenant := fmt.Sprintf("t%d", i%tenants)
		p := kafka.PartitionOf([]byte(tenant), partitions)
		m := msg(fmt.Sprintf("held-%d", i), tenant, sluicepb.Priority_PRIORITY_TRANSACTIONAL)
		e := &held{msg: m, due: due, reason: holdSendAt}
		if err := txns[p].Apply(m.Id, e.encode(), e.wake().UnixMilli(), true); err != nil {
			b.Fatal(err)
		}
		if err := txns[p].SetAux(offsetTag, offsetKey(0, m.Id), nil); err != nil {
			b.Fatal(err)
		}
		if (i+1)%10000 == 0 {
			if err := txns[p].Commit(); err != nil {
				b.Fatal(err)
			}
			txns[p] = stores[p].Begin()
		}
		if (i+1)%1_000_000 == 0 {
			fmt.Fprintf(os.Stderr, "schedule: %d of %d rows written (%.0f rows/s)\n", i+1, n, float64(i+1)/time.Since(t0).Seconds())
		}
	}
	for p, t := range txns {
		if err := t.Commit(); err != nil {
			b.Fatal(err)
		}
		if err := stores[p].SaveCheckpoint(0); err != nil {
			b.Fatal(err)
		}
	}
}

// profileRouter, when SLUICE_BENCH_PROFILE names a directory, gives the
// router an admin address and returns what saves 8 s of its CPU profile
// there (router-schedule.pprof); else a no-op.
func profileRouter(b *testing.B, cfgPath string) func() {
	dir := os.Getenv("SLUICE_BENCH_PROFILE")
	if dir == "" {
		return func() {}
	}
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	const addr = "127.0.0.1:18591"
	cfg = []byte(strings.Replace(string(cfg), `admin_addr: ""`, `admin_addr: "`+addr+`"`, 1))
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		b.Fatal(err)
	}
	return func() {
		out := filepath.Join(dir, "router-schedule.pprof")
		cmd := exec.Command("curl", "-sf", "-o", out, "http://"+addr+"/debug/pprof/profile?seconds=8")
		if err := cmd.Run(); err != nil {
			b.Errorf("profile: %v", err)
		}
	}
}
