package loadgen

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/tools/smscsim"
)

// TestFetchSimStats reads a running simulator's GET /stats over HTTP.
func TestFetchSimStats(t *testing.T) {
	sim, err := smscsim.StartWithLogger(t.Context(), []smscsim.CarrierConfig{
		{ID: "sim-a", SystemID: "sluice", Password: "pw", Addr: "127.0.0.1:0", DLRDelay: time.Millisecond},
		{ID: "sim-b", SystemID: "sluice", Password: "pw", Addr: "127.0.0.1:0", DLRDelay: time.Millisecond},
	}, "127.0.0.1:0", slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	got, err := FetchSimStats(t.Context(), "http://"+sim.HTTPAddr()+"/stats")
	if err != nil {
		t.Fatal(err)
	}
	if got != (SimStats{}) {
		t.Errorf("stats of an idle simulator = %+v, want zeros", got)
	}
	if _, err := FetchSimStats(t.Context(), "http://"+sim.HTTPAddr()+"/nothing"); err == nil {
		t.Error("a 404 gave no error")
	}
}
