package ingest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/message"
)

// TestPeerAPI: the peer API refuses a caller without the peer token,
// answers lookups of the partitions the replica owns (another tenant's
// message is not found), and answers 421 for a partition it does not own,
// which the asking replica takes as "look again".
func TestPeerAPI(t *testing.T) {
	s := testStatusStore(t, time.Hour)
	s.partitions, s.applied, s.owned = 2, make([]int64, 2), map[int]bool{}
	var mine, theirs string
	for i := 0; mine == "" || theirs == ""; i++ {
		id := message.IDForClientRef("acme", strings.Repeat("x", i))
		if s.partitionOf(id) == 0 {
			mine = id
		} else {
			theirs = id
		}
	}
	s.owned[0] = true
	if err := apply(s, statusEvent(t, "acme", mine, message.StatusDelivered, time.Now())); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.peerHandler("token"))
	defer srv.Close()
	d := newPeerDirectory(nil, "g", "t", "self", "token")
	ctx := t.Context()

	if known, err := d.known(ctx, srv.URL, []string{mine}); err != nil || len(known) != 1 || known[0] != mine {
		t.Errorf("known(mine) = %v, %v; want [%s]", known, err, mine)
	}
	if v, ok, err := d.get(ctx, srv.URL, "acme", mine); err != nil || !ok || !strings.Contains(string(v), `"delivered"`) {
		t.Errorf("get(mine) = %s, %v, %v", v, ok, err)
	}
	if _, ok, err := d.get(ctx, srv.URL, "globex", mine); err != nil || ok {
		t.Errorf("get(mine) as globex = %v, %v; want not found", ok, err)
	}
	if _, err := d.known(ctx, srv.URL, []string{mine, theirs}); err != errNotOwner {
		t.Errorf("known of a partition it does not own: %v, want errNotOwner", err)
	}
	if _, _, err := d.get(ctx, srv.URL, "acme", theirs); err != errNotOwner {
		t.Errorf("get of a partition it does not own: %v, want errNotOwner", err)
	}
	for _, token := range []string{"", "Bearer wrong", "Bearer token2"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/peer/v1/messages/"+mine+"?tenant=acme", nil)
		if token != "" {
			req.Header.Set("Authorization", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: %d, want 401", token, resp.StatusCode)
		}
	}
}
