package smscsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/smpp"
)

const safety = 30 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), safety)
	t.Cleanup(cancel)
	return ctx
}

func startSim(t *testing.T, carriers ...CarrierConfig) *Sim {
	t.Helper()
	s, err := StartWithLogger(testCtx(t), carriers, "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("sim close: %v", err)
		}
	})
	return s
}

// waitFor polls the simulator's counters until cond holds (counters settle just after
// the events the test observes); it fails the test after the safety bound.
func waitFor(t *testing.T, s *Sim, carrier string, cond func(CarrierStats) bool) CarrierStats {
	t.Helper()
	ctx := testCtx(t)
	for {
		st := s.Stats()[carrier]
		if cond(st) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stats never settled: %+v", st)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

type receipts struct {
	mu     sync.Mutex
	got    []*smpp.Deliver
	notify chan struct{}
	refuse map[string]bool // receipted ids to refuse once
}

func newReceipts() *receipts {
	return &receipts{notify: make(chan struct{}, 1<<12), refuse: map[string]bool{}}
}

func (r *receipts) onDeliver(_ context.Context, d *smpp.Deliver) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := string(d.TLVs[smpp.TagReceiptedMessageID])
	if r.refuse[id] {
		delete(r.refuse, id)
		return errors.New("refused once")
	}
	r.got = append(r.got, d)
	r.notify <- struct{}{}
	return nil
}

func (r *receipts) wait(t *testing.T, n int) []*smpp.Deliver {
	t.Helper()
	ctx := testCtx(t)
	for range n {
		select {
		case <-r.notify:
		case <-ctx.Done():
			t.Fatalf("received %d receipts, want %d", len(r.got), n)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*smpp.Deliver(nil), r.got...)
}

func dial(t *testing.T, cfg smpp.ClientConfig) *smpp.Session {
	t.Helper()
	s, err := smpp.Dial(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestSubmitsGetReceiptsWithOutcomeMix(t *testing.T) {
	const n = 200
	sim := startSim(t,
		CarrierConfig{ID: "sim-a", SystemID: "sluice", Password: "pw", Addr: "127.0.0.1:0", DLRDelay: 5 * time.Millisecond,
			Outcomes: map[string]int{smpp.StatDelivered: 3, smpp.StatUndeliverable: 1}},
		CarrierConfig{ID: "sim-b", SystemID: "sluice", Password: "pw", Addr: "127.0.0.1:0"},
	)
	rc := newReceipts()
	s := dial(t, smpp.ClientConfig{Addr: sim.Addr("sim-a"), SystemID: "sluice", Password: "pw", Window: 20, OnDeliver: rc.onDeliver})

	ids := make(map[string]bool, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := s.Submit(testCtx(t), &smpp.SubmitSM{SourceAddr: "ACME", DestAddr: fmt.Sprintf("4477009%05d", i),
				ShortMessage: []byte("hello"), RegisteredDelivery: smpp.RegisteredDeliveryFinal})
			if err != nil || resp.Status != smpp.StatusOK || resp.MessageID == "" {
				t.Errorf("submit %d: %+v %v", i, resp, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ids[resp.MessageID] {
				t.Errorf("message id %s given twice", resp.MessageID)
			}
			ids[resp.MessageID] = true
		})
	}
	wg.Wait()

	got := rc.wait(t, n)
	stats := map[string]int64{}
	for _, d := range got {
		r, err := smpp.ParseReceipt(d.ShortMessage)
		if err != nil {
			t.Fatalf("receipt %q: %v", d.ShortMessage, err)
		}
		tlvID := string(d.TLVs[smpp.TagReceiptedMessageID])
		state, _ := smpp.MessageStateOf(r.Stat)
		if !ids[r.ID] || tlvID != r.ID+"\x00" || !d.IsReceipt() || len(d.TLVs[smpp.TagMessageState]) != 1 || d.TLVs[smpp.TagMessageState][0] != state {
			t.Errorf("receipt %q with TLVs %v does not match a submitted id", d.ShortMessage, d.TLVs)
		}
		if r.Text != "hello" || d.DestAddr != "ACME" {
			t.Errorf("receipt text %q to %q, want hello to ACME", r.Text, d.DestAddr)
		}
		delete(ids, r.ID) // each id once
		stats[r.Stat]++
	}
	if stats[smpp.StatDelivered] == 0 || stats[smpp.StatUndeliverable] == 0 || len(stats) != 2 {
		t.Errorf("outcome mix %v, want DELIVRD and UNDELIV only", stats)
	}
	st := waitFor(t, sim, "sim-a", func(st CarrierStats) bool { return st.DLRsAcked == n })
	if st.PeakTPS < 1 || st.PeakTPS > n {
		t.Errorf("peak parts per second %d, want 1..%d", st.PeakTPS, n)
	}
	want := CarrierStats{Binds: 1, BindsOpen: 1, PeakBinds: 1, Submits: n, UniqueSubmits: n, DLRsRequested: n, DLRsSent: n, DLRsAcked: n, Outcomes: stats,
		Received: n, PeakTPS: st.PeakTPS}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("stats\n got %+v\nwant %+v", st, want)
	}
	if b := sim.Stats()["sim-b"]; b.Submits != 0 || b.Binds != 0 {
		t.Errorf("sim-b saw traffic: %+v", b)
	}

	// GET /stats serves the same counters.
	resp, err := http.Get("http://" + sim.HTTPAddr() + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var served map[string]CarrierStats
	if err := json.NewDecoder(resp.Body).Decode(&served); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(served["sim-a"], want) || len(served) != 2 {
		t.Errorf("GET /stats = %+v", served)
	}
}

func TestReceiptRetriedUntilAcknowledged(t *testing.T) {
	sim := startSim(t, CarrierConfig{ID: "c", SystemID: "sys", Password: "pw", Addr: "127.0.0.1:0",
		DLRDelay: time.Millisecond, RetryDelay: 10 * time.Millisecond})
	addr := sim.Addr("c")

	// A transmitter cannot take receipts: they wait for a receiver.
	tx := dial(t, smpp.ClientConfig{Addr: addr, SystemID: "sys", Password: "pw", Mode: smpp.BindTransmitter})
	var ids []string
	for _, text := range []string{"one", "two", "one"} { // the third repeats the first
		resp, err := tx.Submit(testCtx(t), &smpp.SubmitSM{DestAddr: "447700900123", ShortMessage: []byte(text), RegisteredDelivery: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.MessageID)
	}
	waitFor(t, sim, "c", func(st CarrierStats) bool { return st.DLRsRequested == 3 })

	rc := newReceipts()
	rc.refuse[ids[0]+"\x00"] = true // the ESME refuses the first receipt once
	dial(t, smpp.ClientConfig{Addr: addr, SystemID: "sys", Password: "pw", Mode: smpp.BindReceiver, OnDeliver: rc.onDeliver})
	got := rc.wait(t, 3)
	seen := map[string]bool{}
	for _, d := range got {
		seen[string(d.TLVs[smpp.TagReceiptedMessageID])] = true
	}
	for _, id := range ids {
		if !seen[id+"\x00"] {
			t.Errorf("no receipt for %s", id)
		}
	}
	st := waitFor(t, sim, "c", func(st CarrierStats) bool { return st.DLRsAcked == 3 })
	if st.DLRsSent != 4 || st.DLRsRefused != 1 || st.UniqueSubmits != 2 || st.DuplicateSubmits != 1 || st.BindsOpen != 2 || st.DLRsPending != 0 {
		t.Errorf("stats %+v, want 4 sent (one refused), 2 unique, 1 duplicate, 2 binds open", st)
	}
}

func TestWrongCredentialsRefused(t *testing.T) {
	sim := startSim(t, CarrierConfig{ID: "c", SystemID: "sys", Password: "pw", Addr: "127.0.0.1:0"})
	tests := []struct {
		systemID, password string
		want               uint32
	}{
		{"sys", "nope", smpp.StatusInvPassword},
		{"other", "pw", smpp.StatusInvSystemID},
	}
	for _, tt := range tests {
		_, err := smpp.Dial(testCtx(t), smpp.ClientConfig{Addr: sim.Addr("c"), SystemID: tt.systemID, Password: tt.password})
		var se *smpp.StatusError
		if !errors.As(err, &se) || se.Status != tt.want {
			t.Errorf("%s/%s: %v, want %s", tt.systemID, tt.password, err, smpp.StatusName(tt.want))
		}
	}
	if st := waitFor(t, sim, "c", func(st CarrierStats) bool { return st.BindFailures == 2 }); st.Binds != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestOutcomeConfigValidated(t *testing.T) {
	for _, outcomes := range []map[string]int{{"LOST": 1}, {smpp.StatDelivered: 0}, {smpp.StatDelivered: -1}} {
		if _, err := Start(testCtx(t), []CarrierConfig{{ID: "c", Addr: "127.0.0.1:0", Outcomes: outcomes}}, ""); err == nil {
			t.Errorf("outcomes %v accepted", outcomes)
		}
	}
}

func TestBindAndRateLimits(t *testing.T) {
	sim := startSim(t, CarrierConfig{ID: "c", SystemID: "sys", Password: "pw", Addr: "127.0.0.1:0", MaxBinds: 2, TPS: 5})
	cfg := smpp.ClientConfig{Addr: sim.Addr("c"), SystemID: "sys", Password: "pw"}
	first := dial(t, cfg)
	second, err := smpp.Dial(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var se *smpp.StatusError
	if _, err := smpp.Dial(testCtx(t), cfg); !errors.As(err, &se) || se.Status != smpp.StatusBindFailed {
		t.Fatalf("third bind: %v, want ESME_RBINDFAIL", err)
	}
	if err := second.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sim, "c", func(st CarrierStats) bool { return st.BindsOpen == 1 })
	dial(t, cfg) // a slot is free again

	// 50 submits in well under the 10 s it would take to stay within 5 per second.
	accepted, throttled := 0, 0
	for range 50 {
		resp, err := first.Submit(testCtx(t), &smpp.SubmitSM{DestAddr: "447700900123", ShortMessage: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		switch resp.Status {
		case smpp.StatusOK:
			accepted++
		case smpp.StatusThrottled:
			throttled++
		default:
			t.Fatalf("status %s", smpp.StatusName(resp.Status))
		}
	}
	st := sim.Stats()["c"]
	if throttled == 0 || accepted < 5 || st.Throttled != int64(throttled) || st.Submits != int64(accepted) ||
		st.PeakBinds != 2 || st.Binds != 3 || st.BindFailures != 1 {
		t.Errorf("accepted %d, throttled %d, stats %+v", accepted, throttled, st)
	}
}
