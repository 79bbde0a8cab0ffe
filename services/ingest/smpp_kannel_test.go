package ingest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/services/ingest/smppd"
)

// TestSMPPKannelESME: Kannel (Debian package kannel), an independent ESME,
// binds to the front door as a transceiver, submits a message taken in
// through its sendsms HTTP interface, and fires its DLR URL with the final
// status once sluice's receipt comes back.
func TestSMPPKannelESME(t *testing.T) {
	for _, tool := range []string{"bearerbox", "smsbox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (apt-get install kannel): %v", tool, err)
		}
	}
	cfg := smppConfig(t)
	addr := startSMPP(t, cfg)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	dlrs := make(chan url.Values, 10)
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dlrs <- r.URL.Query()
	}))
	defer callback.Close()

	dir := t.TempDir()
	admin, smsboxPort, sendsms := freeTCPPort(t), freeTCPPort(t), freeTCPPort(t)
	conf := fmt.Sprintf(`group = core
admin-port = %d
admin-password = test
smsbox-port = %d
box-allow-ip = 127.0.0.1
dlr-storage = internal
log-level = 1

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = %d
log-level = 1

group = sendsms-user
username = tester
password = tester-pw

group = smsc
smsc = smpp
smsc-id = sluice
host = %s
port = %s
transceiver-mode = true
smsc-username = acme
smsc-password = secret1
system-type = ""
max-pending-submits = 10
dest-addr-ton = 1
dest-addr-npi = 1
`, admin, smsboxPort, sendsms, host, port)
	confPath := filepath.Join(dir, "kannel.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := smppCtx(t)
	startBox := func(box string) {
		cmd := exec.CommandContext(ctx, box, confPath)
		logf, err := os.Create(filepath.Join(dir, box+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill() // a test peer: its exit status is not under test
			_ = cmd.Wait()
			_ = logf.Close()
			if t.Failed() {
				out, _ := os.ReadFile(logf.Name())
				t.Logf("%s log (tail):\n%s", box, tail(out, 10000))
			}
		})
	}
	startBox("bearerbox")
	// smsbox gives up at once when bearerbox is not listening yet.
	waitFor(t, "bearerbox's smsbox port", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", smsboxPort))
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	startBox("smsbox")

	q := url.Values{
		"username": {"tester"}, "password": {"tester-pw"}, "from": {"ACME"}, "to": {"447700900123"},
		"text": {"Hello from Kannel"}, "dlr-mask": {"3"},
		"dlr-url": {callback.URL + "/dlr?type=%d&id=%F"},
	}
	waitFor(t, "Kannel's sendsms to take the message", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/sendsms?%s", sendsms, q.Encode()))
		if err != nil {
			return false
		}
		_, _ = readAll(resp)
		return resp.StatusCode == http.StatusAccepted
	})
	var id string
	waitFor(t, "Kannel's submit_sm to be accepted", func() bool {
		for _, m := range acceptedMessages(t, cfg) {
			if m.Text == "Hello from Kannel" && m.To == "+447700900123" && m.From == "ACME" && m.Metadata[smppd.MetaRegisteredDelivery] != "" {
				id = m.Id
				return true
			}
		}
		return false
	})
	produceWhenReady(t, cfg.Kafka.Brokers, finalStatus(t, cfg, id, message.StatusDelivered))
	select {
	case got := <-dlrs:
		if got.Get("type") != "1" || got.Get("id") != id {
			t.Fatalf("Kannel's DLR callback %v, want type 1 (delivered) for %s", got, id)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("Kannel's DLR URL never fired")
	}
}

func freeTCPPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
