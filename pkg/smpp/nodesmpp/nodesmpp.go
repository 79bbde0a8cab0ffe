// Package nodesmpp runs node-smpp (npm "smpp", pinned in
// testdata/package-lock.json), an independent SMPP implementation, as the
// peer of sluice's interop tests: an SMSC for our client, an ESME for our
// servers. It is for tests only.
package nodesmpp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// SMSC starts testdata/smsc.js: it accepts one bind, prints each submit_sm it
// decodes ({"submit": id, ...}), answers it and sends a delivery receipt
// ({"deliver_sm_resp": status} once ours comes back). Its first line is
// {"listening": port}.
func SMSC(ctx context.Context, t testing.TB) *Lines {
	t.Helper()
	return start(ctx, t, "smsc.js")
}

// Submit is one submit_sm for the ESME, in node-smpp's field names; UDH (hex)
// and Message make its short message.
type Submit struct {
	SourceAddr         string `json:"source_addr,omitempty"`
	DestAddr           string `json:"destination_addr"`
	DestAddrTON        uint8  `json:"dest_addr_ton,omitempty"`
	UDH                string `json:"udh,omitempty"`
	Message            string `json:"message"`
	DataCoding         uint8  `json:"data_coding"`
	RegisteredDelivery uint8  `json:"registered_delivery"`
}

// ESMEConfig says where the ESME binds, what it submits and how many
// deliver_sm it waits for before it unbinds.
type ESMEConfig struct {
	Addr, SystemID, Password string
	Submits                  []Submit
	Delivers                 int
}

// ESME starts testdata/esme.js: it binds as a transceiver and prints
// {"bind": status}, submits everything at once and prints each
// submit_sm_resp ({"submit_resp": index, "id", "status"}) and each
// deliver_sm ({"deliver": receipted_message_id, "esm_class",
// "message_state", "message"}), which it acknowledges.
func ESME(ctx context.Context, t testing.TB, cfg ESMEConfig) *Lines {
	t.Helper()
	submits, err := json.Marshal(cfg.Submits)
	if err != nil {
		t.Fatal(err)
	}
	return start(ctx, t, "esme.js", cfg.Addr, cfg.SystemID, cfg.Password, string(submits), fmt.Sprint(cfg.Delivers))
}

// start installs node-smpp from its lock file when it is missing and runs
// script with args until ctx or the test ends.
func start(ctx context.Context, t testing.TB, script string, args ...string) *Lines {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is required for the interop tests: %v", err)
	}
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("nodesmpp: cannot locate its own source")
	}
	dir := filepath.Join(filepath.Dir(self), "testdata")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "smpp")); err != nil {
		out, err := exec.Command("npm", "ci", "--prefix", dir, "--no-audit", "--no-fund").CombinedOutput()
		if err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join(dir, script)}, args...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan map[string]any, 64)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("node said %q: %v", sc.Text(), err)
				continue
			}
			lines <- m
		}
	})
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // the script may still be serving; its exit status is not under test
		_, _ = io.Copy(io.Discard, stdout)
		wg.Wait()
		_ = cmd.Wait()
	})
	return &Lines{lines: lines}
}

// Lines reads the script's JSON lines by kind, keeping those of other kinds
// for later.
type Lines struct {
	lines   <-chan map[string]any
	pending []map[string]any
}

// Next returns the first line, in order, that has key. It fails the test when
// the script exits first (the end of the context it was started with kills
// it).
func (l *Lines) Next(t testing.TB, key string) map[string]any {
	t.Helper()
	for i, m := range l.pending {
		if _, ok := m[key]; ok {
			l.pending = append(l.pending[:i], l.pending[i+1:]...)
			return m
		}
	}
	for m := range l.lines {
		if _, ok := m[key]; ok {
			return m
		}
		l.pending = append(l.pending, m)
	}
	t.Fatalf("node exited before printing %q; it printed %v", key, l.pending)
	return nil
}

// Matrix starts testdata/matrix.js: one SMSC for each case named, each
// listening on a port of its own ({"case", "listening": port}) and printing
// what it does ({"case", "submit"|"refused"|"nack"|"receipt"|"bind": ...}).
// The cases and what each SMSC does are described in the script.
func Matrix(ctx context.Context, t testing.TB, cases []string) *Lines {
	t.Helper()
	names, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	return start(ctx, t, "matrix.js", string(names))
}

// Each hands fn every line the script prints from now on, those Next kept
// first, until it exits. It is the only reader of the lines then.
func (l *Lines) Each(fn func(map[string]any)) {
	for _, m := range l.pending {
		fn(m)
	}
	l.pending = nil
	for m := range l.lines {
		fn(m)
	}
}
