package dlr_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// TestCorrelationCases runs every correlation case through the service on
// real Kafka and checks each message's one final status, the unmatched
// receipts kept, and the ClickHouse rows.
func TestCorrelationCases(t *testing.T) {
	cfg := testConfig(t)
	f := newFeed(t, cfg)
	now := time.Now()
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
	sub := func(m *sluicepb.Message, seg uint32, smscID string) *sluicepb.SubmitResult {
		return &sluicepb.SubmitResult{Message: m, Segment: seg, SmscMessageId: smscID, SubmittedAtMs: ago(30 * time.Second)}
	}
	rcpt := func(carrier, smscID, stat, errCode string) *sluicepb.RawDLR {
		return &sluicepb.RawDLR{Carrier: carrier, SmscMessageId: smscID, Stat: stat, Err: errCode, ReceivedAtMs: ago(10 * time.Second)}
	}

	type want struct{ status, code string }
	wants := map[string]want{}

	// Phase 1: what must happen first.
	// A receipt before its submit.
	early := msg("m-early", "sim-a", 1)
	wants["m-early"] = want{message.StatusDelivered, "000"}
	// A message past its validity with no receipt: expired; its receipt comes late (phase 2).
	expired := msg("m-expired", "sim-a", 1)
	expired.ExpiresAtMs = ago(time.Hour)
	wants["m-expired"] = want{message.StatusExpired, "no_dlr"}
	// No validity, no receipt for longer than retention: unknown.
	silent := msg("m-silent", "sim-a", 1)
	silentSub := sub(silent, 0, "silent")
	silentSub.SubmittedAtMs = ago(cfg.DLR.Retention + time.Hour)
	wants["m-silent"] = want{message.StatusUnknown, "no_dlr"}
	// A message the carrier took twice (a replay upstream resent it): the
	// first copy's receipt ends it; the second copy's, which disagrees
	// (phase 2), changes nothing.
	resent := msg("m-resent", "sim-a", 1)
	wants["m-resent"] = want{message.StatusUndelivered, "001"}
	// A receipt nobody submitted, older than unmatched_after.
	stray := rcpt("sim-a", "stray", "DELIVRD", "000")
	stray.ReceivedAtMs = ago(cfg.DLR.UnmatchedAfter + time.Hour)

	// Receipts whose TLV and text ids disagree: correlated on the one that
	// matches a submit, found after it came (alt-early), and kept under both
	// when neither does.
	altRcpt := func(tlvID, textID, stat string) *sluicepb.RawDLR {
		d := rcpt("sim-a", tlvID, stat, "000")
		d.AltSmscMessageId = textID
		return d
	}
	altEarly := msg("m-alt-early", "sim-a", 1)
	wants["m-alt-early"] = want{message.StatusDelivered, "000"}
	strayAlt := altRcpt("stray-tlv", "stray-text", "DELIVRD")
	strayAlt.ReceivedAtMs = ago(cfg.DLR.UnmatchedAfter + time.Hour)

	runDLR(t, cfg)
	f.send(f.dlr(altRcpt("alt3-tlv", "alt3-text", "DELIVRD")), f.dlr(strayAlt))
	f.send(f.dlr(rcpt("sim-a", "early", "DELIVRD", "000")), f.submit(sub(expired, 0, "expired")), f.submit(silentSub), f.dlr(stray),
		f.submit(sub(resent, 0, "resent-1")), f.dlr(rcpt("sim-a", "resent-1", "UNDELIV", "001")))
	waitDrained(t, cfg)
	eventually(t, "timers fired, the first copy ended", func() (bool, error) {
		got := statuses(t.Context(), t, cfg)
		return len(got["m-expired"]) > 0 && len(got["m-silent"]) > 0 && len(got["m-resent"]) > 0, nil
	})
	f.send(f.submit(sub(resent, 0, "resent-2")), f.dlr(rcpt("sim-a", "resent-2", "DELIVRD", "000")))

	// Phase 2.
	f.send(f.submit(sub(early, 0, "early")))
	// Plain, with duplicates of both halves; the duplicate receipt disagrees and loses.
	plain := msg("m-dup", "sim-a", 1)
	f.send(f.submit(sub(plain, 0, "0A1F")), f.dlr(rcpt("sim-a", "0a1f", "DELIVRD", "000")),
		f.submit(sub(plain, 0, "0A1F")), f.dlr(rcpt("sim-a", "0a1f", "UNDELIV", "001")))
	wants["m-dup"] = want{message.StatusDelivered, "000"}
	// TLV and text disagree: the text's id is the submitted one, then the TLV's.
	altText, altTLV := msg("m-alt-text", "sim-a", 1), msg("m-alt-tlv", "sim-a", 1)
	f.send(f.submit(sub(altText, 0, "alt1-text")), f.submit(sub(altTLV, 0, "alt2-tlv")), f.submit(sub(altEarly, 0, "alt3-text")),
		f.dlr(altRcpt("alt1-tlv", "alt1-text", "UNDELIV")), f.dlr(altRcpt("alt2-tlv", "alt2-text", "DELIVRD")))
	wants["m-alt-text"] = want{message.StatusUndelivered, "000"}
	wants["m-alt-tlv"] = want{message.StatusDelivered, "000"}
	// Intermediate receipt first.
	enroute := msg("m-enroute", "sim-a", 1)
	f.send(f.submit(sub(enroute, 0, "enr")), f.dlr(rcpt("sim-a", "enr", "ENROUTE", "000")), f.dlr(rcpt("sim-a", "enr", "DELIVRD", "000")))
	wants["m-enroute"] = want{message.StatusDelivered, "000"}
	// Three segments: the worst one decides.
	long := msg("m-long", "sim-a", 3)
	f.send(f.submit(sub(long, 0, "l0")), f.submit(sub(long, 1, "l1")), f.submit(sub(long, 2, "l2")),
		f.dlr(rcpt("sim-a", "l2", "DELIVRD", "000")), f.dlr(rcpt("sim-a", "l1", "UNDELIV", "011")), f.dlr(rcpt("sim-a", "l0", "DELIVRD", "000")))
	wants["m-long"] = want{message.StatusUndelivered, "011"}
	// TLV-only receipt: message_state 5 (undeliverable), network_error_code.
	tlv := msg("m-tlv", "sim-a", 1)
	tlvDLR := &sluicepb.RawDLR{Carrier: "sim-a", SmscMessageId: "tlv", MessageState: 5, NetworkErrorCode: "3:11", ReceivedAtMs: ago(time.Second)}
	f.send(f.submit(sub(tlv, 0, "tlv")), f.dlr(tlvDLR))
	wants["m-tlv"] = want{message.StatusUndelivered, "3:11"}
	// Text form and message_state TLV disagree: the TLV wins.
	both := msg("m-both", "sim-a", 1)
	bothDLR := rcpt("sim-a", "both", "DELIVRD", "000")
	bothDLR.MessageState = 3
	f.send(f.submit(sub(both, 0, "both")), f.dlr(bothDLR))
	wants["m-both"] = want{message.StatusExpired, "000"}
	// The late receipt of the expired message, and one without any id.
	f.send(f.dlr(rcpt("sim-a", "expired", "DELIVRD", "000")), f.dlr(rcpt("sim-a", "", "DELIVRD", "000")))
	waitDrained(t, cfg)

	got := statuses(t.Context(), t, cfg)
	for id, w := range wants {
		var finals []message.Status
		for _, st := range got[id] {
			if message.IsFinal(st.Status) {
				finals = append(finals, st)
			}
		}
		if len(finals) == 0 {
			t.Errorf("%s: no final status", id)
			continue
		}
		for _, st := range finals {
			if st.Status != w.status || st.ErrorCode != w.code || st.EventID != finals[0].EventID {
				t.Errorf("%s: final status %s/%s (event %s), want %s/%s once", id, st.Status, st.ErrorCode, st.EventID, w.status, w.code)
			}
		}
	}
	if len(got) != len(wants) {
		t.Errorf("statuses for %d messages, want %d", len(got), len(wants))
	}

	// Unmatched: the stray receipt, the late one, the one without id.
	var unmatched []string
	for _, rec := range readAll(t.Context(), t, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+schemas.TopicDLRUnmatched) {
		var d sluicepb.RawDLR
		if err := proto.Unmarshal(rec.Value, &d); err != nil {
			t.Fatal(err)
		}
		unmatched = append(unmatched, d.SmscMessageId)
	}
	if fmt.Sprint(slices.Sorted(slices.Values(unmatched))) != fmt.Sprint([]string{"", "expired", "stray", "stray-text", "stray-tlv"}) {
		t.Errorf("unmatched receipts %q, want the empty id, expired, stray and stray-alt under both its ids", unmatched)
	}

	// ClickHouse: one row per message in messages, with its final status.
	conn, err := testenv.OpenClickHouse(cfg.ClickHouse.Addr, cfg.ClickHouse.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	eventually(t, "rows in ClickHouse", func() (bool, error) {
		var n uint64
		err := conn.QueryRow(t.Context(), "SELECT count() FROM messages FINAL").Scan(&n)
		return n == uint64(len(wants)), err
	})
	rows, err := conn.Query(t.Context(), "SELECT message_id, status, error_code FROM messages FINAL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, status, code string
		if err := rows.Scan(&id, &status, &code); err != nil {
			t.Fatal(err)
		}
		if w := wants[id]; w.status != status || w.code != code {
			t.Errorf("ClickHouse %s: %s/%s, want %s/%s", id, status, code, w.status, w.code)
		}
	}
}
