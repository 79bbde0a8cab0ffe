package devstack

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/tools/loadgen"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// startStack runs the four services against the test's Kafka and ClickHouse,
// logging to the file it returns.
func startStack(t *testing.T) (*Stack, string) {
	t.Helper()
	return startStackWith(t, func(*Options) {})
}

// startStackWith is startStack with options changed by with.
func startStackWith(t *testing.T, with func(*Options)) (*Stack, string) {
	t.Helper()
	brokers := testenv.Kafka(t)
	chAddr, db := testenv.ClickHouseDatabase(t)
	logFile, err := os.CreateTemp(t.TempDir(), "services-*.log")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opt := Options{
		Brokers:           brokers,
		ReplicationFactor: testenv.ReplicationFactor(),
		ClickHouseAddr:    chAddr,
		ClickHouseDB:      db,
		TopicPrefix:       testenv.TopicPrefix(t),
		Log:               slog.New(slog.NewJSONHandler(logFile, nil)),
	}
	with(&opt)
	s, err := Start(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stack stopped with: %v", err)
		}
		if t.Failed() {
			tail, _ := os.ReadFile(logFile.Name())
			if len(tail) > 20000 {
				tail = tail[len(tail)-20000:]
			}
			t.Logf("services log (tail):\n%s", tail)
		}
	})
	return s, logFile.Name()
}

// TestEndToEnd sends 10,000 requests through all four services on real Kafka
// and ClickHouse and checks that every one ends in exactly one final status,
// in sms.status and in ClickHouse, with per-carrier figures equal to what the
// simulated carriers saw.
func TestEndToEnd(t *testing.T) {
	const n = 10000
	s, logPath := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	campaign := loadgen.Campaign{Tenant: "demo", ID: "e2e", Count: n, Seed: 42, Long: 0.1, Unicode: 0.1, OTP: 0.2, Marketing: 0.4}
	res, err := s.RunCampaign(ctx, campaign, nil)
	if err != nil {
		t.Fatal(err)
	}
	tally := res.Tally
	if got := tally.Final(); got != n {
		t.Fatalf("%d messages with a final status, want %d", got, n)
	}
	if tally.Conflicts != 0 {
		t.Errorf("%d messages got two different final statuses", tally.Conflicts)
	}

	// ClickHouse: one row per message, final statuses as on the topic.
	conn, err := s.ClickHouse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	db := s.Cfg.ClickHouse.Database
	var rows, distinct uint64
	q := fmt.Sprintf("SELECT count(), uniqExact(message_id) FROM %s.messages FINAL WHERE campaign_id = 'e2e'", db)
	if err := conn.QueryRow(ctx, q).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != n || distinct != n {
		t.Errorf("messages table: %d rows, %d distinct ids; want %d of each", rows, distinct, n)
	}

	// Each row says why the router chose its carrier: a route of the
	// carrier's, weighted (every carrier is up).
	q = fmt.Sprintf("SELECT carrier, route_reason, count() FROM %s.messages FINAL WHERE campaign_id = 'e2e' GROUP BY carrier, route_reason", db)
	rr, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	for rr.Next() {
		var carrier, reason string
		var count uint64
		if err := rr.Scan(&carrier, &reason, &count); err != nil {
			t.Fatal(err)
		}
		if !routedBy(carrier, reason) {
			t.Errorf("%d messages on carrier %q with route reason %q, which no route of the carrier's gives", count, carrier, reason)
		}
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}

	// Per carrier: what ClickHouse says each carrier answered equals what the
	// simulator says it answered.
	type counts struct{ messages, parts, delivered, undelivered, expired uint64 }
	fromCH := map[string]*counts{}
	q = fmt.Sprintf(`SELECT carrier, count(), sum(segments), countIf(status = 'delivered'), countIf(status = 'undelivered'), countIf(status = 'expired')
		FROM %s.messages FINAL WHERE campaign_id = 'e2e' GROUP BY carrier`, db)
	r, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var carrier string
		c := &counts{}
		if err := r.Scan(&carrier, &c.messages, &c.parts, &c.delivered, &c.undelivered, &c.expired); err != nil {
			t.Fatal(err)
		}
		fromCH[carrier] = c
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	stats := s.Sim.Stats()
	var total uint64
	for _, c := range s.Cfg.Carriers {
		st := stats[c.ID]
		ch := fromCH[c.ID]
		if ch == nil {
			t.Errorf("carrier %s: no rows in ClickHouse", c.ID)
			continue
		}
		total += ch.messages
		if uint64(st.Submits) != ch.parts {
			t.Errorf("carrier %s: simulator accepted %d parts, ClickHouse counts %d", c.ID, st.Submits, ch.parts)
		}
		if st.DuplicateSubmits != 0 {
			t.Errorf("carrier %s: simulator saw %d duplicate parts on a run without faults", c.ID, st.DuplicateSubmits)
		}
		if st.DLRsSent != st.Submits || st.DLRsSent != st.DLRsAcked || st.DLRsPending != 0 {
			t.Errorf("carrier %s: %d parts, %d receipts sent, %d acknowledged, %d pending; want one acknowledged receipt per part", c.ID, st.Submits, st.DLRsSent, st.DLRsAcked, st.DLRsPending)
		}
		t.Logf("carrier %s: %d messages, %d parts; delivered %d, undelivered %d, expired %d (simulator outcomes %v)",
			c.ID, ch.messages, ch.parts, ch.delivered, ch.undelivered, ch.expired, st.Outcomes)
	}
	if total != n {
		t.Errorf("carriers account for %d messages, want %d", total, n)
	}

	// sim-a's receipts correlate on the TLV alone; that their text ids
	// (decimal) agree shows receipt_ids declared that form too.
	logs, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(logs, []byte("TLV and text ids disagree")) {
		t.Errorf("the sender logged receipts whose TLV and text ids disagree")
	}
}

// routedBy tells whether one of the Routes sends messages to carrier with
// reason, weighted.
func routedBy(carrier, reason string) bool {
	for _, r := range Routes() {
		for _, c := range r.Carriers {
			if c.ID == carrier && reason == "prefix "+r.Prefix+" weighted" {
				return true
			}
		}
	}
	return false
}
