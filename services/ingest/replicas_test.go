package ingest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/message"
)

// TestDuplicateAcrossReplicas runs two ingest replicas on one set of
// topics: each answers duplicate: true for a request the other accepted,
// asked right after the other's answer, and both still do after both
// restart. Every message is published once.
func TestDuplicateAcrossReplicas(t *testing.T) {
	cfg := testConfig(t)
	// A keeps its status index on a disk of its own across the restart
	// (it restores from its checkpoint); B's is temporary (read back from
	// sms.status).
	cfgA := cfg
	cfgA.Ingest.StateDir = t.TempDir()
	duplicatesAcrossReplicas(t, cfgA, cfg, nil)
}

// TestDividedIndexAcrossReplicas is TestDuplicateAcrossReplicas with the
// index divided between the two replicas (each with a disk of its own):
// every message is held by one of them, which answers the other's
// duplicate checks and GETs, before and after both restart.
func TestDividedIndexAcrossReplicas(t *testing.T) {
	cfg := testConfig(t)
	cfg.Ingest.PeerAddr, cfg.Ingest.PeerSecret = "127.0.0.1:0", "peer-secret"
	cfgA, cfgB := cfg, cfg
	cfgA.Ingest.StateDir, cfgB.Ingest.StateDir = t.TempDir(), t.TempDir()
	duplicatesAcrossReplicas(t, cfgA, cfgB, func(t *testing.T, admins [2]string, ids []string) {
		// Each holds a share, and together every message once.
		var held [2]int64
		waitFor(t, "the index divided between both replicas", func() bool {
			for i, a := range admins {
				held[i] = indexMessages(t, a)
			}
			return held[0] > 0 && held[1] > 0 && held[0]+held[1] == int64(len(ids))
		})
	})
}

// indexMessages is sluice_ingest_index_messages on the admin endpoint.
func indexMessages(t *testing.T, admin string) int64 {
	t.Helper()
	a := call(t, http.MethodGet, "http://"+admin+"/metrics", "", "", nil)
	for l := range strings.Lines(string(a.body)) {
		if name, value, ok := strings.Cut(strings.TrimSpace(l), " "); ok && strings.HasPrefix(name, "sluice_ingest_index_messages") {
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return n
		}
	}
	t.Fatalf("no sluice_ingest_index_messages on %s", admin)
	return 0
}

// duplicatesAcrossReplicas runs replicas A (cfgA) and B (cfgB): each answers
// duplicate: true for a request the other accepted, asked right after the
// other's answer, and GET of it for its tenant only, and both still do
// after both restart. Every message is published once. held, when set,
// checks what the replicas hold, given their admin addresses, before and
// after the restart.
func duplicatesAcrossReplicas(t *testing.T, cfgA, cfgB config.Config, held func(t *testing.T, admins [2]string, ids []string)) {
	const n = 20
	var ids []string
	for i := range n {
		ids = append(ids, message.IDForClientRef("acme", fmt.Sprintf("cross-%d", i)))
	}
	start := func() (a, b string, stopA, stopB func(), admins [2]string) {
		adminA, adminB := make(chan string, 1), make(chan string, 1)
		a, stopA = startIngestStoppable(t, cfgA, hooks{adminReady: func(s string) { adminA <- s }})
		b, stopB = startIngestStoppable(t, cfgB, hooks{adminReady: func(s string) { adminB <- s }})
		return a, b, stopA, stopB, [2]string{<-adminA, <-adminB}
	}
	getBoth := func(a, b string) {
		t.Helper()
		for _, base := range []string{a, b} {
			for _, id := range ids {
				if r := call(t, http.MethodGet, base+"/v1/messages/"+id, "acme-key", "", nil); r.status != http.StatusOK {
					t.Errorf("GET %s on %s: %d %s", id, base, r.status, r.body)
				}
				if r := call(t, http.MethodGet, base+"/v1/messages/"+id, "globex-key", "", nil); r.status != http.StatusNotFound {
					t.Errorf("GET %s as globex on %s: %d, want 404", id, base, r.status)
				}
			}
		}
	}
	cfg := cfgA
	a, b, stopA, stopB, admins := start()
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

	getBoth(a, b)
	if held != nil {
		held(t, admins, ids)
	}

	stopA()
	stopB()
	a, b, _, _, admins = start()
	for i := range n {
		ref := fmt.Sprintf("cross-%d", i)
		ask(a, ref, true)
		ask(b, ref, true)
	}

	getBoth(a, b)
	if held != nil {
		held(t, admins, ids)
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
