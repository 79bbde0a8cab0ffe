package dlr_test

import (
	"encoding/json"
	"maps"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/services/dlr"
)

// mo is an MO record as the sender writes it, keyed by the subscriber.
func (f *feed) mo(m *sluicepb.MO) kafka.Message {
	f.t.Helper()
	v, err := proto.Marshal(m)
	if err != nil {
		f.t.Fatal(err)
	}
	return kafka.Message{Topic: f.cfg.Kafka.TopicPrefix + schemas.TopicMO, Key: []byte(message.NormalizeNumber(m.SourceAddr)), Value: v}
}

// conversation is a record as the router writes it when it routes id.
func (f *feed) conversation(tenant, id, to string, sentAt time.Time) kafka.Message {
	f.t.Helper()
	v, err := proto.Marshal(&sluicepb.Conversation{Tenant: tenant, MessageId: id, SentAtMs: sentAt.UnixMilli()})
	if err != nil {
		f.t.Fatal(err)
	}
	return kafka.Message{Topic: f.cfg.Kafka.TopicPrefix + schemas.TopicConversations, Key: []byte(to), Value: v}
}

// readMO reads topic (sms.mo or sluice.mo.unowned) by mo_id, failing on
// a record that does not decode.
func readMO(t *testing.T, cfg config.Config, topic string) map[string]message.MO {
	t.Helper()
	out := map[string]message.MO{}
	for _, rec := range readAll(t.Context(), t, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+topic) {
		var m message.MO
		if err := json.Unmarshal(rec.Value, &m); err != nil {
			t.Fatalf("%s: %v: %s", topic, err, rec.Value)
		}
		if string(rec.Key) != m.From {
			t.Errorf("%s record keyed %q, from %q", topic, rec.Key, m.From)
		}
		out[m.MOID] = m
	}
	return out
}

// byText indexes MOs by their text, which the test makes unique.
func byText(t *testing.T, mos map[string]message.MO) map[string]message.MO {
	t.Helper()
	out := map[string]message.MO{}
	for _, m := range mos {
		if _, dup := out[m.Text]; dup {
			t.Errorf("two mo_ids for %q", m.Text)
		}
		out[m.Text] = m
	}
	return out
}

// TestMOToTenants runs the MO stage on the real broker: an MO goes to the
// owner of the number it was sent to, else to the tenant that last
// messaged its sender within the reply window (in_reply_to), else to
// sluice.mo.unowned; concatenated parts are joined whatever their order,
// and what is still missing at the timeout is published incomplete. A
// restart with the same disk keeps both.
func TestMOToTenants(t *testing.T) {
	cfg := testConfig(t)
	cfg.Router.ReplyWindow = time.Hour
	cfg.Router.OptOut.Addresses = []config.OptOutAddress{{Address: "ACME", Tenant: "acme"}}
	// Long enough for a restart between the parts of a message, short
	// enough to wait for once.
	cfg.DLR.MOPartsTimeout = 15 * time.Second
	// globex takes its replies by webhook too, which refuses twice at first.
	cfg.DLR.WebhookBackoff = 20 * time.Millisecond
	hook := &endpoint{secret: "s3cret-mo", got: map[string]int{}, fail: 2}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	cfg.Tenants = []config.Tenant{{ID: "globex", MOWebhook: srv.URL + "/mo", WebhookSecret: hook.secret}, {ID: "acme"}}
	f := newFeed(t, cfg)
	now := time.Now()
	mo := func(from, to, text string, ref, total, seq uint32) kafka.Message {
		return f.mo(&sluicepb.MO{Carrier: "sim-a", SourceAddr: from, DestAddr: to, Text: text, Encoding: "gsm7",
			ReceivedAtMs: time.Now().UnixMilli(), ConcatRef: ref, ConcatTotal: total, ConcatSeq: seq})
	}
	// Before the stage runs: conversations, one of them too old.
	f.send(
		f.conversation("acme", "a-old", "+447700900005", now.Add(-2*time.Hour)),
		f.conversation("acme", "a-4", "+447700900004", now.Add(-time.Minute)),
	)
	stop := runDLR(t, cfg)
	// While it runs, each conversation is acknowledged just before the
	// reply: the stage must read it first.
	f.send(f.conversation("globex", "g-1", "+447700900001", now))
	f.send(mo("447700900001", "70000", "reply to globex", 0, 0, 0))
	f.send(
		mo("+447700900003", "ACME", "to acme's short code", 0, 0, 0),
		mo("00447700900004", "ACME", "acme's reply", 0, 0, 0),
		mo("447700900005", "70000", "too late", 0, 0, 0),
		// Its other part never comes.
		mo("447700900004", "ACME", "lost part, ", 7, 2, 1),
	)
	waitMO(t, cfg, 4, 1)
	// Three parts out of order, the first one twice; the same reference as
	// the lost part's, from another subscriber.
	f.send(
		mo("447700900001", "70000", "three.", 7, 3, 3),
		mo("447700900001", "70000", "one, ", 7, 3, 1),
		mo("447700900001", "70000", "one, ", 7, 3, 1),
	)
	waitMO(t, cfg, 4, 1)
	stop()

	// After a restart on the same disk: the waiting parts and the
	// conversations are still there.
	stop = runDLR(t, cfg)
	defer stop()
	f.send(mo("447700900001", "70000", "two, ", 7, 3, 2))
	f.send(f.conversation("acme", "a-6", "+447700900006", time.Now()))
	f.send(mo("447700900006", "70000", "after restart", 0, 0, 0))
	waitMO(t, cfg, 6, 1)

	got := byText(t, readMO(t, cfg, schemas.TopicPublicMO))
	want := map[string]message.MO{
		"reply to globex":      {Tenant: "globex", InReplyTo: "g-1", From: "+447700900001", To: "70000", Parts: 1},
		"to acme's short code": {Tenant: "acme", From: "+447700900003", To: "ACME", Parts: 1},
		"acme's reply":         {Tenant: "acme", InReplyTo: "a-4", From: "+447700900004", To: "ACME", Parts: 1},
		"one, two, three.":     {Tenant: "globex", InReplyTo: "g-1", From: "+447700900001", To: "70000", Parts: 3},
		"lost part, ":          {Tenant: "acme", InReplyTo: "a-4", From: "+447700900004", To: "ACME", Parts: 1, Incomplete: true},
		"after restart":        {Tenant: "acme", InReplyTo: "a-6", From: "+447700900006", To: "70000", Parts: 1},
	}
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		t.Fatalf("sms.mo texts %q, want %q", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for text, w := range want {
		g := got[text]
		if g.Tenant != w.Tenant || g.InReplyTo != w.InReplyTo || g.From != w.From || g.To != w.To || g.Parts != w.Parts ||
			g.Incomplete != w.Incomplete || g.Carrier != "sim-a" || g.Encoding != "gsm7" || g.ReceivedAt.IsZero() {
			t.Errorf("%q: got %+v, want %+v", text, g, w)
		}
	}
	// globex's webhook got each of its MOs, signed, and nothing else.
	var globex []string
	for _, m := range got {
		if m.Tenant == "globex" {
			globex = append(globex, m.MOID)
		}
	}
	eventually(t, "MO webhooks delivered", func() (bool, error) {
		d, _ := hook.delivered()
		return len(d) >= len(globex), nil
	})
	if d, bad := hook.delivered(); !slices.Equal(slices.Sorted(maps.Keys(d)), slices.Sorted(slices.Values(globex))) || bad > 0 {
		t.Errorf("mo_webhook got %v (%d badly signed), want globex's %v", d, bad, globex)
	}
	unowned := byText(t, readMO(t, cfg, schemas.TopicMOUnowned))
	if u, ok := unowned["too late"]; len(unowned) != 1 || !ok || u.Tenant != "" || u.InReplyTo != "" {
		t.Errorf("sluice.mo.unowned = %+v, want only the late reply, without a tenant", unowned)
	}
}

// waitMO waits until the MO stage has taken everything fed so far and
// published owned and unowned records.
func waitMO(t *testing.T, cfg config.Config, owned, unowned int) {
	t.Helper()
	p := cfg.Kafka.TopicPrefix
	eventually(t, "MO stage drained", func() (bool, error) {
		ok, err := drained(t.Context(), cfg.Kafka.Brokers, p+dlr.GroupMO, p+schemas.TopicMO)
		if err != nil || !ok {
			return false, err
		}
		got, err := kafka.ReadAll(t.Context(), cfg.Kafka.Brokers, p+schemas.TopicPublicMO)
		if err != nil || len(got) < owned {
			return false, err
		}
		got, err = kafka.ReadAll(t.Context(), cfg.Kafka.Brokers, p+schemas.TopicMOUnowned)
		return len(got) >= unowned, err
	})
}
