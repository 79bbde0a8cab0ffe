package ingest

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/sluice-sms/sluice/pkg/message"
)

// TestDuplicateAcrossReplicas runs two ingest replicas on one set of
// topics: each answers duplicate: true for a request the other accepted,
// asked right after the other's answer, and both still do after both
// restart. Every message is published once.
func TestDuplicateAcrossReplicas(t *testing.T) {
	const n = 20
	cfg := testConfig(t)
	// A keeps its status index on a disk of its own across the restart
	// (it restores from its checkpoint); B's is temporary (read back from
	// sms.status).
	cfgA := cfg
	cfgA.Ingest.StateDir = t.TempDir()
	a, stopA := startIngestStoppable(t, cfgA, hooks{})
	b, stopB := startIngestStoppable(t, cfg, hooks{})
	ask := func(base, ref string, wantDup bool) {
		t.Helper()
		r := post(t, base, "acme-key", good(`client_ref="`+ref+`"`))
		if r.status != http.StatusAccepted {
			t.Fatalf("%s on %s: %d %s", ref, base, r.status, r.body)
		}
		if got := decode[Result](t, r); got.Duplicate != wantDup || got.MessageID != message.IDForClientRef("acme", ref) {
			t.Errorf("%s on %s: %+v, want duplicate %v", ref, base, got, wantDup)
		}
	}
	for i := range n {
		first, second := a, b
		if i%2 == 1 {
			first, second = b, a
		}
		ref := fmt.Sprintf("cross-%d", i)
		ask(first, ref, false)
		ask(second, ref, true)
	}

	stopA()
	stopB()
	a, _ = startIngestStoppable(t, cfgA, hooks{})
	b, _ = startIngestStoppable(t, cfg, hooks{})
	for i := range n {
		ref := fmt.Sprintf("cross-%d", i)
		ask(a, ref, true)
		ask(b, ref, true)
	}

	got := countIDs(acceptedMessages(t, cfg))
	for i := range n {
		if id := message.IDForClientRef("acme", fmt.Sprintf("cross-%d", i)); got[id] != 1 {
			t.Errorf("cross-%d published %d times, want 1", i, got[id])
		}
	}
	if len(got) != n {
		t.Errorf("%d distinct messages published, want %d", len(got), n)
	}
}
