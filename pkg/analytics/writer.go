package analytics

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/sluice-sms/sluice/pkg/message"
)

// Writer writes status events to message_events and messages. It is safe
// for concurrent use.
type Writer struct {
	conn           driver.Conn
	insertEvents   string
	insertMessages string
}

// NewWriter returns a Writer for the tables of database.
func NewWriter(conn driver.Conn, database string) *Writer {
	// The database name is checked by Migrate; quoting keeps a bad one
	// from being anything but a failing insert.
	db := "`" + database + "`"
	return &Writer{
		conn: conn,
		// Old servers need the column list, or the batch sees no columns.
		insertEvents: "INSERT INTO " + db + ".message_events (event_id, event_time, message_id, tenant, " +
			"campaign_id, client_ref, carrier, country, status, reason, error_code, segments, encoding, priority, " +
			"accepted_at, submitted_at, done_at, submit_latency_ms, delivery_latency_ms, route_reason)",
		insertMessages: "INSERT INTO " + db + ".messages (tenant, message_id, client_ref, campaign_id, carrier, " +
			"country, status, reason, error_code, segments, encoding, priority, event_time, accepted_at, " +
			"submitted_at, done_at, submit_latency_ms, delivery_latency_ms, version, route_reason)",
	}
}

// Write stores a batch of status events: one INSERT into message_events
// (events repeated in the batch once) and one into messages (each message's
// winning event of the batch). Replays of events already stored are folded
// by the tables' engines. On error nothing is known to be stored: write the
// whole batch again.
func (w *Writer) Write(ctx context.Context, events []message.Status) error {
	if len(events) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(events))
	latest := make(map[string]int, len(events)) // message id -> index of its winning event
	var order []string                          // message ids in first-seen order
	events = append([]message.Status(nil), events...)
	kept := events[:0]
	for _, e := range events {
		if seen[e.EventID] {
			continue
		}
		seen[e.EventID] = true
		kept = append(kept, e)
		i, ok := latest[e.MessageID]
		if !ok {
			order = append(order, e.MessageID)
		}
		if !ok || Version(e) > Version(kept[i]) {
			latest[e.MessageID] = len(kept) - 1
		}
	}

	batch, err := w.conn.PrepareBatch(ctx, w.insertEvents)
	if err != nil {
		return fmt.Errorf("prepare message_events insert: %w", err)
	}
	for _, e := range kept {
		r := rowOf(e)
		err := batch.Append(e.EventID, r.eventTime, e.MessageID, e.Tenant, e.CampaignID, e.ClientRef, e.Carrier,
			e.Country, e.Status, e.Reason, e.ErrorCode, r.segments, e.Encoding, e.Priority,
			r.acceptedAt, r.submittedAt, r.doneAt, r.submitLatency, r.deliveryLatency, e.RouteReason)
		if err != nil {
			_ = batch.Abort() // the append error is the one worth reporting
			return fmt.Errorf("append to message_events: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert into message_events: %w", err)
	}

	batch, err = w.conn.PrepareBatch(ctx, w.insertMessages)
	if err != nil {
		return fmt.Errorf("prepare messages insert: %w", err)
	}
	for _, id := range order {
		e := kept[latest[id]]
		r := rowOf(e)
		err := batch.Append(e.Tenant, e.MessageID, e.ClientRef, e.CampaignID, e.Carrier, e.Country, e.Status,
			e.Reason, e.ErrorCode, r.segments, e.Encoding, e.Priority, r.eventTime, r.acceptedAt, r.submittedAt,
			r.doneAt, r.submitLatency, r.deliveryLatency, Version(e), e.RouteReason)
		if err != nil {
			_ = batch.Abort()
			return fmt.Errorf("append to messages: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert into messages: %w", err)
	}
	return nil
}

// row holds the columns of an event that need converting.
type row struct {
	eventTime, acceptedAt, submittedAt, doneAt time.Time
	segments                                   uint16
	submitLatency, deliveryLatency             uint32
}

func rowOf(e message.Status) row {
	return row{
		eventTime:       dateTime(&e.EventTime),
		acceptedAt:      dateTime(e.AcceptedAt),
		submittedAt:     dateTime(e.SubmittedAt),
		doneAt:          dateTime(e.DoneAt),
		segments:        uint16(min(max(e.Segments, 0), math.MaxUint16)),
		submitLatency:   latencyMs(e.AcceptedAt, e.SubmittedAt),
		deliveryLatency: latencyMs(e.SubmittedAt, e.DoneAt),
	}
}

// Bounds of ClickHouse's DateTime. 0 stands for unknown.
var (
	epoch       = time.Unix(0, 0).UTC()
	maxDateTime = time.Unix(math.MaxUint32, 0).UTC()
)

// dateTime is t as a DateTime column value: the epoch when unknown, clamped
// to the type's range.
func dateTime(t *time.Time) time.Time {
	switch {
	case t == nil || !t.After(epoch):
		return epoch
	case t.After(maxDateTime):
		return maxDateTime
	}
	return t.UTC()
}

// latencyMs is to - from in milliseconds, 0 when either is unknown, clamped
// to UInt32 (a receipt time from a clock behind ours gives 0, not a
// wrapped-around figure).
func latencyMs(from, to *time.Time) uint32 {
	if from == nil || to == nil || from.IsZero() || to.IsZero() {
		return 0
	}
	return uint32(min(max(to.Sub(*from).Milliseconds(), 0), math.MaxUint32))
}

// Status ranks in the messages table's version: a final status outranks
// every earlier one whatever the order events arrive in.
const (
	rankAccepted  = 1
	rankScheduled = 2
	rankSubmitted = 3
	rankFinal     = 4
)

// Version is the messages table's version of an event:
// rank << 48 | event time in Unix milliseconds. ReplacingMergeTree keeps the
// highest, so a message shows its final status even when an earlier event is
// written after it, and of two events of one rank (a receipt after an
// "unknown", say) the later one.
func Version(e message.Status) uint64 {
	var rank uint64
	switch {
	case message.IsFinal(e.Status):
		rank = rankFinal
	case e.Status == message.StatusSubmitted:
		rank = rankSubmitted
	case e.Status == message.StatusScheduled:
		rank = rankScheduled
	case e.Status == message.StatusAccepted:
		rank = rankAccepted
	}
	ms := uint64(max(e.EventTime.UnixMilli(), 0)) & (1<<48 - 1)
	return rank<<48 | ms
}
