package router

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// A reload moves traffic to a new carrier between two batches while
// messages keep coming: every message is routed once, none lost.
func TestReloadKeepsInFlightMessages(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.Carriers = append(c.Carriers, config.Carrier{ID: "d", Host: "127.0.0.1", Port: 2775, SystemID: "x", Binds: 1, TPS: 100, Window: 10})
	})
	aBulk, dBulk := h.outbound("a", schemas.LaneBulk), h.outbound("d", schemas.LaneBulk)
	w := h.watch(aBulk, dBulk)
	reload := make(chan config.Config)
	h.startWith(reload)

	const n = 3000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i += 100 {
			var msgs []*sluicepb.Message
			for j := i; j < i+100; j++ {
				msgs = append(msgs, msg(fmt.Sprintf("m-%d", j), "acme", sluicepb.Priority_PRIORITY_TRANSACTIONAL))
			}
			h.accept(msgs...)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	until(t, "traffic on a", func() bool { return len(w.of(aBulk)) > 0 })
	next := h.cfg
	next.Routes = []config.Route{{Prefix: "+44", Carriers: []config.RouteCarrier{{ID: "d", Weight: 1}}}}
	reload <- next
	wg.Wait()
	probes := 0
	until(t, "traffic on the new route", func() bool {
		probes++
		h.accept(msg(fmt.Sprintf("probe-%d", probes), "acme", sluicepb.Priority_PRIORITY_TRANSACTIONAL))
		time.Sleep(20 * time.Millisecond)
		return len(w.of(dBulk)) > 0
	})
	until(t, "every message routed", func() bool { return len(w.of(aBulk))+len(w.of(dBulk)) >= n+probes })
	seen := ids(t, append(w.of(aBulk), w.of(dBulk)...))
	for i := range n {
		if c := seen[fmt.Sprintf("m-%d", i)]; c != 1 {
			t.Errorf("m-%d routed %d times", i, c)
		}
	}
	t.Logf("%d on the old route, %d on the new", len(w.of(aBulk)), len(w.of(dBulk)))
}

// SIGHUP reads the file again; a file that does not load is skipped and the
// next good one is taken.
func TestReloadOnSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	write := func(body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const carriers = "carriers:\n  - {id: a, host: h, port: 1, system_id: s, binds: 1, tps: 1, window: 1}\n"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := ReloadOnSIGHUP(ctx, path, testLogger(t))
	hup := func() {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	receive := func() (config.Config, bool) {
		select {
		case c := <-got:
			return c, true
		case <-time.After(2 * time.Second): // how long to wait for a reload that must not come
			return config.Config{}, false
		}
	}

	write(carriers + "routes: [{prefix: '+44', carriers: [{id: a, weight: 1}]}]\n")
	hup()
	c, ok := receive()
	if !ok || len(c.Routes) != 1 || c.Routes[0].Prefix != "+44" {
		t.Fatalf("first reload: %v %+v", ok, c.Routes)
	}
	write(carriers + "routes: [{prefix: '+44', carriers: [{id: nope, weight: 1}]}]\n") // unknown carrier
	hup()
	if c, ok := receive(); ok {
		t.Fatalf("an invalid file was reloaded: %+v", c.Routes)
	}
	write(carriers + "routes: [{prefix: '+33', carriers: [{id: a, weight: 1}]}]\n")
	hup()
	if c, ok := receive(); !ok || c.Routes[0].Prefix != "+33" {
		t.Fatalf("reload after a bad file: %v %+v", ok, c.Routes)
	}
}
