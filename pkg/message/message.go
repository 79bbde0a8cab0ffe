// Package message holds the public record types of sluice's Kafka topics
// (sms.requests and sms.status, JSON) and the helpers every service shares to
// build them.
package message

import (
	"encoding/json"
	"time"
)

// Request is one record of the public sms.requests topic (schemas/json/sms.requests.v1.json).
type Request struct {
	Tenant     string            `json:"tenant"`
	ClientRef  string            `json:"client_ref,omitempty"`
	CampaignID string            `json:"campaign_id,omitempty"`
	From       string            `json:"from"`
	To         string            `json:"to"`
	Text       string            `json:"text"`
	Priority   string            `json:"priority,omitempty"`
	SendAt     string            `json:"send_at,omitempty"`  // RFC 3339
	Validity   string            `json:"validity,omitempty"` // Go duration, e.g. "24h"
	Metadata   map[string]string `json:"metadata,omitempty"`
}

// Status names of sms.status events.
const (
	StatusAccepted    = "accepted"
	StatusRejected    = "rejected"
	StatusScheduled   = "scheduled"
	StatusSubmitted   = "submitted"
	StatusDelivered   = "delivered"
	StatusUndelivered = "undelivered"
	StatusExpired     = "expired"
	StatusFailed      = "failed"
	StatusUnknown     = "unknown"
)

// IsFinal reports whether a status ends a message's life.
func IsFinal(status string) bool {
	switch status {
	case StatusDelivered, StatusUndelivered, StatusExpired, StatusFailed, StatusUnknown, StatusRejected:
		return true
	}
	return false
}

// Priorities of a request.
const (
	PriorityOTP           = "otp"
	PriorityTransactional = "transactional"
	PriorityMarketing     = "marketing"
)

// Encodings of a message's text on the SMPP wire.
const (
	EncodingGSM7 = "gsm7"
	EncodingUCS2 = "ucs2"
)

// Status is one record of the public sms.status topic (schemas/json/sms.status.v1.json),
// keyed by message id. EventID is deterministic for a (message, status) pair so that a
// replayed event is recognisably the same event.
type Status struct {
	EventID     string            `json:"event_id"`
	MessageID   string            `json:"message_id"`
	ClientRef   string            `json:"client_ref,omitempty"`
	Tenant      string            `json:"tenant"`
	CampaignID  string            `json:"campaign_id,omitempty"`
	To          string            `json:"to,omitempty"`
	Carrier     string            `json:"carrier,omitempty"`
	RouteReason string            `json:"route_reason,omitempty"`
	Country     string            `json:"country,omitempty"`
	Status      string            `json:"status"`
	Reason      string            `json:"reason,omitempty"`
	ErrorCode   string            `json:"error_code,omitempty"`
	Segments    int               `json:"segments,omitempty"`
	Encoding    string            `json:"encoding,omitempty"`
	Priority    string            `json:"priority,omitempty"`
	EventTime   time.Time         `json:"event_time"`
	AcceptedAt  *time.Time        `json:"accepted_at,omitempty"`
	SubmittedAt *time.Time        `json:"submitted_at,omitempty"`
	DoneAt      *time.Time        `json:"done_at,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// DLRCallback is the Kannel-style delivery callback the message was sent
	// with (the Kannel front door's dlr-url and dlr-mask), on every event of
	// such a message so that the dlr can fire it.
	DLRCallback *DLRCallback `json:"dlr_callback,omitempty"`
}

// DLRCallback is a Kannel dlr-url with its dlr-mask, and the sender the
// URL's %P escape stands for.
type DLRCallback struct {
	URL  string `json:"url"`
	Mask uint32 `json:"mask"`
	From string `json:"from,omitempty"`
}

// Marshal encodes a status event as the JSON value of an sms.status record.
func (s Status) Marshal() ([]byte, error) { return json.Marshal(s) }
