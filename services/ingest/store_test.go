package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

func statusEvent(t testing.TB, tenant, id, status string, at time.Time) []byte {
	t.Helper()
	v, err := message.StatusOf(&sluicepb.Message{Id: id, Tenant: tenant}, status, at).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// apply records one sms.status record in its partition's table, as the
// follower does.
func apply(s *statusStore, value []byte) error {
	var ev struct {
		MessageID string `json:"message_id"`
	}
	_ = json.Unmarshal(value, &ev)
	_, err := s.applyBatch(s.partitionOf(ev.MessageID), []kafka.Message{{Key: []byte(ev.MessageID), Value: value}})
	return err
}

// testStatusStore is a status store on a temporary disk store.
func testStatusStore(t testing.TB, window time.Duration) *statusStore {
	t.Helper()
	db, err := state.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return newStatusStore(window, db)
}

func TestStoreLatestStatus(t *testing.T) {
	s := testStatusStore(t, time.Hour)
	tests := []struct {
		status, want string
	}{
		{message.StatusAccepted, message.StatusAccepted},
		{message.StatusSubmitted, message.StatusSubmitted},
		{message.StatusAccepted, message.StatusSubmitted}, // a replayed accepted event
		{message.StatusDelivered, message.StatusDelivered},
		{message.StatusSubmitted, message.StatusDelivered}, // a late submit event
	}
	for i, tt := range tests {
		apply(s, statusEvent(t, "acme", "m1", tt.status, now.Add(time.Duration(i)*time.Second)))
		v, ok, err := s.get(context.Background(), "acme", "m1")
		if err != nil || !ok {
			t.Fatal("acme's message not found")
		}
		var st message.Status
		if err := jsonUnmarshalStatus(v, &st); err != nil || st.Status != tt.want {
			t.Fatalf("after %s: status %q (%v), want %s", tt.status, st.Status, err, tt.want)
		}
	}
	if _, ok, _ := s.get(context.Background(), "globex", "m1"); ok {
		t.Error("globex sees acme's message")
	}
	apply(s, []byte(`not json`))
	apply(s, []byte(`{"status":"accepted"}`))
	if s.size() != 1 {
		t.Errorf("store holds %d messages, want 1 (unreadable events ignored)", s.size())
	}
	if n, err := s.prune(now.Add(time.Hour)); n != 0 || err != nil {
		t.Errorf("pruned %d within the window (%v)", n, err)
	}
	if n, err := s.prune(now.Add(2 * time.Hour)); n != 1 || err != nil || s.size() != 0 {
		t.Errorf("pruned %d past the window (%v), %d left", n, err, s.size())
	}
	if _, ok, _ := s.get(context.Background(), "acme", "m1"); ok {
		t.Error("a pruned message is still found")
	}
}

// TestStoreClaims: a copy waits for the first holder; it is a duplicate if
// the first published, and takes over if the first failed.
func TestStoreClaims(t *testing.T) {
	s := testStatusStore(t, time.Hour)
	ctx := context.Background()
	first, err := s.claim(ctx, []string{"b", "a"})
	if err != nil || first.dup("a") || first.dup("b") {
		t.Fatalf("first claim: %v %v", first, err)
	}

	outcome := make(chan *claims)
	go func() {
		c, err := s.claim(ctx, []string{"a"})
		if err != nil {
			t.Error(err)
		}
		outcome <- c
	}()
	// The copy cannot get "a" while the first holds it.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.claim(short, []string{"a"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("claim of a held id: %v, want to wait until the deadline", err)
	}
	first.done(nil) // the first failed to publish
	second := <-outcome
	if second.dup("a") {
		t.Fatal("after a failed first attempt, the copy is no duplicate")
	}
	go func() {
		c, err := s.claim(ctx, []string{"a"})
		if err != nil {
			t.Error(err)
		}
		outcome <- c
	}()
	second.done([]published{{id: "a", tenant: "acme", at: now, value: statusEvent(t, "acme", "a", message.StatusAccepted, now)}})
	third := <-outcome
	if !third.dup("a") {
		t.Fatal("after a published first attempt, the copy is a duplicate")
	}
	third.done(nil)
	if len(s.pending) != 0 {
		t.Errorf("%d ids still held", len(s.pending))
	}
}

// TestStoreReadsBackWhatIsBeingWritten: an event the follower reads while
// its writer is still producing is recorded as apply would record it, even
// when the writer then fails (the event is durable all the same); a
// different event under the same id is decoded as usual.
func TestStoreReadsBackWhatIsBeingWritten(t *testing.T) {
	for _, c := range []struct {
		name      string
		readBack  func(t *testing.T, id string) []byte // the record the follower reads
		published bool                                 // the writer's outcome
		want      string                               // status GET answers; "" for none
	}{
		{name: "own event, writer succeeds", published: true, want: message.StatusAccepted,
			readBack: func(t *testing.T, id string) []byte { return statusEvent(t, "acme", id, message.StatusAccepted, now) }},
		{name: "own event, writer fails after the write", published: false, want: message.StatusAccepted,
			readBack: func(t *testing.T, id string) []byte { return statusEvent(t, "acme", id, message.StatusAccepted, now) }},
		{name: "a later event of another service", published: true, want: message.StatusSubmitted,
			readBack: func(t *testing.T, id string) []byte { return statusEvent(t, "acme", id, message.StatusSubmitted, now) }},
		{name: "nothing read back, writer fails", published: false, want: ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := testStatusStore(t, time.Hour)
			p := published{id: "m1", tenant: "acme", at: now, value: statusEvent(t, "acme", "m1", message.StatusAccepted, now)}
			cl, err := s.claim(context.Background(), []string{p.id})
			if err != nil {
				t.Fatal(err)
			}
			cl.write([]published{p})
			if c.readBack != nil {
				if _, err := s.applyBatch(s.partitionOf(p.id), []kafka.Message{{Key: []byte(p.id), Value: c.readBack(t, p.id)}}); err != nil {
					t.Fatal(err)
				}
			}
			if c.published {
				cl.done([]published{p})
			} else {
				cl.done(nil)
			}
			got := ""
			if value, ok, _ := s.get(context.Background(), "acme", p.id); ok {
				var st message.Status
				if err := jsonUnmarshalStatus(value, &st); err != nil {
					t.Fatal(err)
				}
				got = st.Status
			}
			if got != c.want {
				t.Errorf("status %q, want %q", got, c.want)
			}
			if _, ok, _ := s.get(context.Background(), "globex", p.id); ok {
				t.Error("another tenant finds the message")
			}
			if len(s.writing) != 0 || len(s.pending) != 0 {
				t.Errorf("%d events still being written, %d ids held", len(s.writing), len(s.pending))
			}
		})
	}
}

// TestGetFollowsStatus: statuses published by the other services reach
// GET /v1/messages/{id}.
func TestGetFollowsStatus(t *testing.T) {
	cfg := testConfig(t)
	base := startIngest(t, cfg, hooks{})
	a := post(t, base, "acme-key", good(`client_ref="followed"`))
	id := decode[Result](t, a).MessageID
	topic := cfg.Kafka.TopicPrefix + schemas.TopicStatus
	ev := func(status string, at time.Time) kafka.Message {
		return kafka.Message{Topic: topic, Key: []byte(id), Value: statusEvent(t, "acme", id, status, at)}
	}
	at := time.Now()
	produceWhenReady(t, cfg.Kafka.Brokers, ev(message.StatusSubmitted, at), ev(message.StatusDelivered, at.Add(time.Second)))
	waitFor(t, "the delivered status", func() bool {
		a := call(t, http.MethodGet, base+"/v1/messages/"+id, "acme-key", "", nil)
		var st message.Status
		return a.status == http.StatusOK && jsonUnmarshalStatus(a.body, &st) == nil && st.Status == message.StatusDelivered
	})
	if a := call(t, http.MethodGet, base+"/v1/messages/"+id, "globex-key", "", nil); a.status != http.StatusNotFound {
		t.Errorf("globex GET of acme's message: %d %s", a.status, a.body)
	}
}

func jsonUnmarshalStatus(data []byte, st *message.Status) error {
	if err := json.Unmarshal(data, st); err != nil {
		return fmt.Errorf("status %q: %w", data, err)
	}
	return nil
}
