package chaos

import (
	"testing"
	"time"
)

func TestCPUOfStat(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		err        bool
	}{
		{"plain", "4242 (sluice-sender) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 12 0 100 0 0", 3250 * time.Millisecond, false},
		{"name with spaces and parens", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0", 70 * time.Millisecond, false},
		{"truncated", "7 (x) R 1 7", 0, true},
		{"no name", "garbage", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cpuOfStat(tc.stat)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("cpuOfStat = %v, %v; want %v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestBusyOfStat(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		err        bool
	}{
		// user 100 + nice 1 + system 50 + irq 2 + softirq 3 + steal 4; idle and iowait left out
		{"plain", "cpu  100 1 50 9000 70 2 3 4 0 0\ncpu0 50 0 25 4500 35 1 1 2 0 0\n", 1600 * time.Millisecond, false},
		{"not the cpu line", "intr 1 2 3 4 5 6\n", 0, true},
		{"bad number", "cpu  1 x 3 4 5 6\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := busyOfStat(tc.stat)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("busyOfStat = %v, %v; want %v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}
