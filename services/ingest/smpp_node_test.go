package ingest

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/text"
)

// nodeInterop is pkg/smpp's node-smpp install (npm "smpp", pinned by its lock
// file), shared with this module's interop test.
const nodeInterop = "../../pkg/smpp/testdata/interop"

// TestSMPPNodeESME: node-smpp, an independent ESME, binds to the front door,
// submits a long UCS-2 message (as UDH parts) and a short GSM-7 one, gets
// sluice's ids back, and receives both receipts.
func TestSMPPNodeESME(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is required for the interop test: %v", err)
	}
	if _, err := os.Stat(filepath.Join(nodeInterop, "node_modules", "smpp")); err != nil {
		out, err := exec.Command("npm", "ci", "--prefix", nodeInterop, "--no-audit", "--no-fund").CombinedOutput()
		if err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	cfg := smppConfig(t)
	addr := startSMPP(t, cfg)

	type submit struct {
		Source             string `json:"source"`
		Dest               string `json:"dest"`
		UDH                string `json:"udh,omitempty"`
		Message            string `json:"message"`
		DataCoding         uint8  `json:"data_coding"`
		RegisteredDelivery uint8  `json:"registered_delivery"`
	}
	long := strings.Repeat("Доставка заказа 🚚 ", 10)
	enc, parts, err := text.Split(long, 0x21, 10)
	if err != nil || enc != text.UCS2 || len(parts) < 3 {
		t.Fatalf("split: %v, %d parts, %v", enc, len(parts), err)
	}
	var submits []submit
	for _, p := range parts {
		s, err := text.Decode(text.DataCoding(enc), p.Payload)
		if err != nil {
			t.Fatal(err)
		}
		submits = append(submits, submit{Source: "ACME", Dest: "447700900125", UDH: hex.EncodeToString(p.UDH), Message: s, DataCoding: 8, RegisteredDelivery: 1})
	}
	submits = append(submits, submit{Source: "ACME", Dest: "447700900126", Message: "Hello from node {ok}", RegisteredDelivery: 1})
	arg, err := json.Marshal(submits)
	if err != nil {
		t.Fatal(err)
	}

	ctx := smppCtx(t)
	cmd := exec.CommandContext(ctx, "node", "testdata/smpp-esme.js", addr, "acme", "secret1", string(arg), "2")
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(nodeInterop, "node_modules"))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // exit status not under test
	lines := bufio.NewScanner(stdout)
	next := func() map[string]any {
		if !lines.Scan() {
			t.Fatalf("node stopped: %v", lines.Err())
		}
		var m map[string]any
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatalf("node said %q", lines.Text())
		}
		return m
	}
	if m := next(); m["bind"] != 0.0 {
		t.Fatalf("bind: %v", m)
	}
	ids := make([]string, len(submits))
	for range submits {
		m := next()
		i, ok := m["submit"].(float64)
		if !ok || m["status"] != 0.0 {
			t.Fatalf("submit_sm_resp: %v", m)
		}
		ids[int(i)], _ = m["id"].(string)
	}
	longID, shortID := ids[0], ids[len(ids)-1]
	for _, id := range ids[:len(parts)] {
		if id != longID {
			t.Fatalf("parts answered with ids %q, want one", ids)
		}
	}
	texts := map[string]string{}
	for _, m := range acceptedMessages(t, cfg) {
		texts[m.Id] = m.Text
	}
	if len(texts) != 2 || texts[longID] != long || texts[shortID] != "Hello from node {ok}" {
		t.Fatalf("accepted %q", texts)
	}

	produceWhenReady(t, cfg.Kafka.Brokers, finalStatus(t, cfg, longID, message.StatusDelivered), finalStatus(t, cfg, shortID, message.StatusExpired))
	want := map[string]float64{longID: float64(smpp.MessageStateDelivered), shortID: float64(smpp.MessageStateExpired)}
	for len(want) > 0 {
		m := next()
		id, _ := m["deliver"].(string)
		state, ok := want[id]
		if !ok {
			t.Fatalf("unexpected deliver_sm %v", m)
		}
		if m["message_state"] != state || m["esm_class"] != 4.0 || !strings.HasPrefix(m["message"].(string), "id:"+id+" ") {
			t.Fatalf("receipt %v, want message_state %v", m, state)
		}
		delete(want, id)
	}
}
