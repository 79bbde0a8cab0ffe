package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/testenv/freeport"
	"github.com/sluice-sms/sluice/pkg/testenv/kannel"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

// TestKannelSendSMSEndToEnd: an application written against Kannel sends
// one sendsms request (the user guide's form, two receivers, dlr-mask 31)
// to ingest and gets its dlr-url called back by the dlr, escapes filled in:
// for each receiver the SMSC's ack (8) and the receipt: delivered (1) on
// the carrier that delivers, failed (2) on the one that rejects. All four
// services, the simulated carriers and the broker are real.
func TestKannelSendSMSEndToEnd(t *testing.T) {
	calls, app := dlrURLApp(t)
	httpAddr := startKannelStack(t)

	q := url.Values{
		"username": {"tester"}, "password": {"foobar"},
		"to": {"447700900123 0033612345678"}, "from": {"ACME"}, "text": {"Hello world"},
		"dlr-mask": {"31"},
		"dlr-url":  {app.URL + "/dlr?id=%I&type=%d&to=%p&from=%P&smsc=%i&ts=%T&reply=%A"},
	}
	resp, body := getWhenListening(t, "http://"+httpAddr+"/cgi-bin/sendsms?"+q.Encode())
	if resp.StatusCode != http.StatusAccepted || string(body) != "0: Accepted for delivery" {
		t.Fatalf("sendsms answered %d %q", resp.StatusCode, body)
	}
	ids := strings.Split(resp.Header.Get("X-Sluice-Message-Id"), ",")
	if len(ids) != 2 {
		t.Fatalf("message ids %v, want 2", ids)
	}
	want := map[string]struct{ to, smsc, last string }{
		ids[0]: {"+447700900123", "sim-gb", "1"},
		ids[1]: {"+33612345678", "sim-fr", "2"},
	}
	seen := map[string][]string{} // message id -> types, in order
	timeout := time.After(2 * time.Minute)
	for n := 0; n < 4; n++ {
		select {
		case c := <-calls:
			w, ok := want[c.Get("id")]
			if !ok || c.Get("to") != w.to || c.Get("from") != "ACME" || c.Get("smsc") != w.smsc || c.Get("ts") == "" {
				t.Fatalf("dlr-url call %v, want one of %v", c, want)
			}
			typ := c.Get("type")
			switch {
			case typ == "8" && c.Get("reply") != "ACK/":
				t.Errorf("ack with reply %q", c.Get("reply"))
			case typ == "1" && !strings.Contains(c.Get("reply"), "stat:DELIVRD"):
				t.Errorf("delivered with reply %q", c.Get("reply"))
			case typ == "2" && !strings.Contains(c.Get("reply"), "stat:"):
				t.Errorf("failed with reply %q", c.Get("reply"))
			}
			seen[c.Get("id")] = append(seen[c.Get("id")], typ)
		case <-timeout:
			t.Fatalf("dlr-url calls so far: %v, want 8 then the receipt for each of %v", seen, want)
		}
	}
	// Calls of one message may come in either order: the webhook stage
	// makes the calls of a batch in parallel.
	for id, w := range want {
		got := seen[id]
		slices.Sort(got)
		if want := []string{w.last, "8"}; !slices.Equal(got, want) {
			t.Errorf("%s (%s): calls of types %v, want %v", id, w.to, got, want)
		}
	}
}

// startKannelStack runs the four services with tenant demo as a Kannel
// sendsms-user (tester, foobar) and two simulated carriers: sim-gb (+44)
// delivers everything, sim-fr (+33) rejects everything. It returns ingest's
// HTTP address.
func startKannelStack(t *testing.T) string {
	t.Helper()
	httpAddr := freeport.Addr(t)
	sum := sha256.Sum256([]byte("foobar"))
	startStackWith(t, func(o *Options) {
		o.Carriers = []smscsim.CarrierConfig{
			{ID: "sim-gb", SystemID: "sluice", Password: "gb-pass", Addr: "127.0.0.1:0", DLRDelay: 50 * time.Millisecond, Outcomes: map[string]int{"DELIVRD": 1}},
			{ID: "sim-fr", SystemID: "sluice", Password: "fr-pass", Addr: "127.0.0.1:0", DLRDelay: 50 * time.Millisecond, Outcomes: map[string]int{"REJECTD": 1}},
		}
		o.Configure = func(c *config.Config) {
			c.Ingest.HTTPAddr = httpAddr
			c.Tenants = []config.Tenant{{ID: "demo", KannelUsername: "tester", KannelPasswordSHA256: hex.EncodeToString(sum[:])}}
			c.Routes = []config.Route{
				{Prefix: "+44", Carriers: []config.RouteCarrier{{ID: "sim-gb", Weight: 1}}},
				{Prefix: "+33", Carriers: []config.RouteCarrier{{ID: "sim-fr", Weight: 1}}},
			}
		}
	})
	return httpAddr
}

// getWhenListening GETs u, retrying while the connection is refused: ingest
// (or smsbox) listens only once it has started.
func getWhenListening(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(u)
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			return resp, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered: %v", u, err)
		}
		time.Sleep(100 * time.Millisecond) // polling a port that is not open yet
	}
}

// TestKannelClient: Kannel itself is the client. An application sends
// through Kannel's smsbox; Kannel's bearerbox, whose SMSC link is an HTTP
// link of type kannel to sluice (Kannel's own client of another Kannel's
// sendsms), passes each message to sluice's /cgi-bin/sendsms, and takes
// sluice's dlr-url callbacks on its link's port; Kannel then calls the
// application's dlr-url: delivered (1) for the receiver whose carrier
// delivers, failed (2) for the one whose carrier rejects.
func TestKannelClient(t *testing.T) {
	calls, app := dlrURLApp(t)
	httpAddr := startKannelStack(t)
	// Kannel fails a message its link could not hand over: start it once
	// sluice answers.
	if resp, _ := getWhenListening(t, "http://"+httpAddr+"/cgi-bin/sendsms"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sendsms without credentials answered %d, want 403", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k := kannel.Start(ctx, t, kannel.Config{SMSBox: true, LogLevel: 1, HTTP: &kannel.HTTPSMSC{
		SendURL: "http://" + httpAddr + "/cgi-bin/sendsms", Username: "tester", Password: "foobar",
	}})
	for _, to := range []string{"447700900123", "0033612345678"} {
		resp, body := getWhenListening(t, k.SendSMSURL(url.Values{
			"from": {"ACME"}, "to": {to}, "text": {"Hello from Kannel"},
			"dlr-mask": {"3"}, "dlr-url": {app.URL + "/dlr?to=" + to + "&type=%d"},
		}))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("Kannel's sendsms answered %d %q", resp.StatusCode, body)
		}
	}
	want := map[string]string{"447700900123": "1", "0033612345678": "2"}
	got := map[string]string{}
	timeout := time.After(2 * time.Minute)
	for len(got) < len(want) {
		select {
		case c := <-calls:
			if _, dup := got[c.Get("to")]; dup {
				t.Fatalf("a second callback for %s: %v", c.Get("to"), c)
			}
			got[c.Get("to")] = c.Get("type")
		case <-timeout:
			t.Fatalf("Kannel's dlr-url calls so far %v, want %v", got, want)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("Kannel's dlr-url calls %v, want %v", got, want)
	}
}

// dlrURLApp is an application's dlr-url receiver: the query of every call
// goes to calls.
func dlrURLApp(t *testing.T) (chan url.Values, *httptest.Server) {
	t.Helper()
	calls := make(chan url.Values, 16)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- r.URL.Query()
	}))
	t.Cleanup(app.Close)
	return calls, app
}
