// Package kannel runs Kannel (Debian package kannel), an independent SMPP
// implementation, as an ESME in tests: bearerbox bound as a transceiver to
// the SMSC under test and, where a test submits through it, smsbox with its
// sendsms HTTP interface. It is for tests only.
package kannel

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/testenv/freeport"
)

// Config says what bearerbox binds to and how.
type Config struct {
	SMSCAddr           string // host:port of the SMSC under test
	SystemID, Password string
	Binds              int // SMPP binds (smsc instances); 0 means 1
	Window             int // max-pending-submits per bind
	// DestAddrTON and DestAddrNPI, when not zero, go on every submit_sm;
	// else Kannel takes them from the number.
	DestAddrTON, DestAddrNPI int
	// StoreFile keeps bearerbox's message store in a file, as Kannel runs in
	// production (the benchmark's reference setting).
	StoreFile bool
	LogLevel  int // Kannel's log-level: 0 (debug) to 4 (panic)
	// SMSBox starts smsbox too, with a sendsms interface (SendSMSURL).
	SMSBox bool
	// HTTP, when set, makes the SMSC link Kannel's HTTP client of another
	// Kannel (smsc = http, system-type = kannel) instead of SMPP: bearerbox
	// sends each message as a sendsms request to HTTP.SendURL and takes
	// the DLRs the far end fires back on a port of its own. SMSCAddr,
	// SystemID and Password are then unused.
	HTTP *HTTPSMSC
}

// HTTPSMSC is the far end of an HTTP SMSC link of type kannel.
type HTTPSMSC struct {
	SendURL            string // e.g. http://127.0.0.1:8080/cgi-bin/sendsms
	Username, Password string // the far end's sendsms-user
}

// sendsms user that SendSMSURL authenticates as.
const sendsmsUser, sendsmsPassword = "tester", "tester-pw"

// Kannel is a running bearerbox (and smsbox); the test's cleanup stops them.
type Kannel struct {
	// BoxPort is bearerbox's port for boxes (smsbox, mtbatch).
	BoxPort     int
	sendsmsPort int
}

// Start writes the configuration and starts bearerbox, then smsbox when the
// config asks for it, once bearerbox takes boxes. Their logs are printed
// when the test fails.
func Start(ctx context.Context, t testing.TB, cfg Config) *Kannel {
	t.Helper()
	tools := []string{"bearerbox"}
	if cfg.SMSBox {
		tools = append(tools, "smsbox")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (apt-get install kannel): %v", tool, err)
		}
	}
	dir := t.TempDir()
	k := &Kannel{BoxPort: freeport.Port(t), sendsmsPort: freeport.Port(t)}
	var conf strings.Builder
	fmt.Fprintf(&conf, `group = core
admin-port = %d
admin-password = test
smsbox-port = %d
box-allow-ip = 127.0.0.1
dlr-storage = internal
log-level = %d
`, freeport.Port(t), k.BoxPort, cfg.LogLevel)
	if cfg.StoreFile {
		fmt.Fprintf(&conf, "store-type = file\nstore-location = %q\n", filepath.Join(dir, "kannel.store"))
	}
	fmt.Fprintf(&conf, `
group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = %d
log-level = %d

group = sendsms-user
username = %s
password = %s
`, k.sendsmsPort, cfg.LogLevel, sendsmsUser, sendsmsPassword)
	if cfg.HTTP != nil {
		writeHTTPSMSC(&conf, t, *cfg.HTTP)
	} else {
		writeSMPPSMSC(&conf, t, cfg)
	}
	confPath := filepath.Join(dir, "kannel.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	start(ctx, t, dir, "bearerbox", confPath)
	// A box gives up at once when bearerbox is not listening yet.
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", k.BoxPort))
		if err == nil {
			_ = c.Close()
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("bearerbox never took boxes: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if cfg.SMSBox {
		start(ctx, t, dir, "smsbox", confPath)
	}
	return k
}

// writeSMPPSMSC is the smsc group of an SMPP transceiver link.
func writeSMPPSMSC(conf *strings.Builder, t testing.TB, cfg Config) {
	host, port, err := net.SplitHostPort(cfg.SMSCAddr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conf, `
group = smsc
smsc = smpp
smsc-id = sut
host = %s
port = %s
transceiver-mode = true
smsc-username = %s
smsc-password = %s
system-type = ""
instances = %d
max-pending-submits = %d
`, host, port, cfg.SystemID, cfg.Password, max(cfg.Binds, 1), cfg.Window)
	if cfg.DestAddrTON != 0 {
		fmt.Fprintf(conf, "dest-addr-ton = %d\n", cfg.DestAddrTON)
	}
	if cfg.DestAddrNPI != 0 {
		fmt.Fprintf(conf, "dest-addr-npi = %d\n", cfg.DestAddrNPI)
	}
}

// writeHTTPSMSC is the smsc group of an HTTP link to another Kannel. Its
// dlr-url points the far end's DLRs at the link's own port, with the
// credentials bearerbox checks there.
func writeHTTPSMSC(conf *strings.Builder, t testing.TB, h HTTPSMSC) {
	port := freeport.Port(t)
	dlrURL := fmt.Sprintf("http://127.0.0.1:%d/?%s", port, url.Values{"username": {h.Username}, "password": {h.Password}}.Encode())
	fmt.Fprintf(conf, `
group = smsc
smsc = http
smsc-id = sut
system-type = kannel
send-url = %q
smsc-username = %q
smsc-password = %q
port = %d
connect-allow-ip = 127.0.0.1
dlr-url = %q
`, h.SendURL, h.Username, h.Password, port, dlrURL)
}

// SendSMSURL is smsbox's sendsms request for params (from, to, text,
// dlr-mask, dlr-url...), authenticated.
func (k *Kannel) SendSMSURL(params url.Values) string {
	q := url.Values{"username": {sendsmsUser}, "password": {sendsmsPassword}}
	for key, v := range params {
		q[key] = v
	}
	return fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/sendsms?%s", k.sendsmsPort, q.Encode())
}

// start runs box with the configuration until the test ends, its output in
// dir/box.log.
func start(ctx context.Context, t testing.TB, dir, box, confPath string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, box+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, box, confPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // a test peer: its exit status is not under test
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("%s log (tail):\n%s", box, out[max(0, len(out)-10000):])
		}
	})
}

// MTBatch has Kannel's mtbatch send text to n numbers through bearerbox,
// each asking for a delivery receipt, and returns when bearerbox has taken
// them all (not when they are submitted: watch the SMSC for that).
func (k *Kannel) MTBatch(ctx context.Context, t testing.TB, n int, text string) {
	t.Helper()
	if _, err := exec.LookPath("mtbatch"); err != nil {
		t.Fatalf("mtbatch not found (apt-get install kannel): %v", err)
	}
	dir := t.TempDir()
	content, receivers := filepath.Join(dir, "content"), filepath.Join(dir, "receivers")
	var rcpts strings.Builder
	for i := range n {
		fmt.Fprintf(&rcpts, "4477%08d\n", i)
	}
	if err := os.WriteFile(content, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(receivers, []byte(rcpts.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	mt := exec.CommandContext(ctx, "mtbatch", "-v", "4", "-b", "127.0.0.1", "-p", fmt.Sprint(k.BoxPort),
		"-f", "12345", "-D", "1", "-u", "http://127.0.0.1/dlr", content, receivers)
	if out, err := mt.CombinedOutput(); err != nil {
		t.Fatalf("mtbatch: %v\n%s", err, out[max(0, len(out)-2000):])
	}
}
