package chaos

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
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
