package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// userHZ is the unit of /proc/<pid>/stat's CPU times: USER_HZ, 100 on
// every Linux architecture Go supports.
const userHZ = 100

// CPU returns the CPU time (user + system) each running service process
// has used so far, read from /proc (Linux): which stage is hottest.
func (s *Stack) CPU() (map[string]time.Duration, error) {
	s.mu.Lock()
	pids := map[string]int{}
	for name, p := range s.procs {
		pids[name] = p.cmd.Process.Pid
	}
	s.mu.Unlock()
	out := map[string]time.Duration{}
	for name, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil, fmt.Errorf("cpu of %s: %w", name, err)
		}
		d, err := cpuOfStat(string(b))
		if err != nil {
			return nil, fmt.Errorf("cpu of %s: %w", name, err)
		}
		out[name] = d
	}
	return out, nil
}

// MachineCPU returns the CPU time every process of the machine has used
// since boot (all cores, /proc/stat without idle and iowait): the whole
// cost of a run, brokers and databases included, on a machine doing
// nothing else.
func MachineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return busyOfStat(string(b))
}

// busyOfStat returns the busy time of /proc/stat's first line, "cpu user
// nice system idle iowait irq softirq steal ...".
func busyOfStat(stat string) (time.Duration, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, fmt.Errorf("malformed /proc/stat line %q", line)
	}
	var busy int64
	for i, s := range f[1:] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc/stat line %q: %w", line, err)
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / userHZ, nil
}

// cpuOfStat returns utime + stime of a /proc/<pid>/stat line. The command
// name (field 2) may hold spaces and parentheses, so fields are counted
// from the last ')'.
func cpuOfStat(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	var ticks int64
	for _, s := range f[11:13] { // fields 14 (utime) and 15 (stime)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed stat %q: %w", stat, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// Profile saves a CPU profile of every service, taken over the next d, as
// <dir>/<service>.pprof (read with `go tool pprof`).
func (s *Stack) Profile(ctx context.Context, dir string, d time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var g errgroup.Group
	for _, name := range Services {
		g.Go(func() error { return s.profile(ctx, name, filepath.Join(dir, name+".pprof"), d) })
	}
	return g.Wait()
}

func (s *Stack) profile(ctx context.Context, name, path string, d time.Duration) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.adminAddr(name), int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", name, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("profile %s: %w", name, err)
	}
	return f.Close()
}
