package message

import (
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// eventNamespace scopes the name-based (v5) UUIDs sluice derives.
var eventNamespace = uuid.MustParse("6f3a0d1e-5b7c-4b8e-9f21-2a1c3e4d5f60")

// NewID returns a unique, time-sortable message id (UUIDv7).
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// EventID is the id of the event that moves a message to a status. Each message
// enters each status at most once, so a replayed event keeps its id and
// consumers can drop the copy.
func EventID(messageID, status string) string {
	return uuid.NewSHA1(eventNamespace, []byte(messageID+"/"+status)).String()
}

// PriorityName maps the internal priority to its public name.
func PriorityName(p sluicepb.Priority) string {
	switch p {
	case sluicepb.Priority_PRIORITY_OTP:
		return PriorityOTP
	case sluicepb.Priority_PRIORITY_MARKETING:
		return PriorityMarketing
	default:
		return PriorityTransactional
	}
}

// ParsePriority maps a public priority name to the internal one; "" is transactional.
func ParsePriority(s string) (sluicepb.Priority, bool) {
	switch s {
	case PriorityOTP:
		return sluicepb.Priority_PRIORITY_OTP, true
	case "", PriorityTransactional:
		return sluicepb.Priority_PRIORITY_TRANSACTIONAL, true
	case PriorityMarketing:
		return sluicepb.Priority_PRIORITY_MARKETING, true
	}
	return 0, false
}

// EncodingName maps the internal encoding to its public name.
func EncodingName(e sluicepb.Encoding) string {
	if e == sluicepb.Encoding_ENCODING_UCS2 {
		return EncodingUCS2
	}
	return EncodingGSM7
}

// StatusOf builds the status event that moves m to status at the given time.
func StatusOf(m *sluicepb.Message, status string, at time.Time) Status {
	s := Status{
		EventID:     EventID(m.GetId(), status),
		MessageID:   m.GetId(),
		ClientRef:   m.GetClientRef(),
		Tenant:      m.GetTenant(),
		CampaignID:  m.GetCampaignId(),
		To:          m.GetTo(),
		Carrier:     m.GetCarrier(),
		RouteReason: m.GetRouteReason(),
		Country:     m.GetCountry(),
		Status:      status,
		Segments:    int(m.GetSegments()),
		Encoding:    EncodingName(m.GetEncoding()),
		Priority:    PriorityName(m.GetPriority()),
		EventTime:   at.UTC(),
		Metadata:    m.GetMetadata(),
	}
	if u := m.GetDlrUrl(); u != "" {
		s.DLRCallback = &DLRCallback{URL: u, Mask: m.GetDlrMask(), From: m.GetFrom()}
	}
	if ms := m.GetAcceptedAtMs(); ms > 0 {
		t := time.UnixMilli(ms).UTC()
		s.AcceptedAt = &t
	}
	return s
}

// MillisTime converts Unix milliseconds to a time, nil for zero.
func MillisTime(ms int64) *time.Time {
	if ms == 0 {
		return nil
	}
	t := time.UnixMilli(ms).UTC()
	return &t
}

// IDForClientRef is the message id of a request that carries a client_ref:
// derived from (tenant, client_ref), so a retried request keeps its id.
func IDForClientRef(tenant, clientRef string) string {
	return uuid.NewSHA1(eventNamespace, []byte("client_ref/"+tenant+"/"+clientRef)).String()
}

// SMSCKey is the correlation key of a submit and its receipts: the carrier
// and the SMSC's message id, normalised.
func SMSCKey(carrier, smscID string) string {
	return carrier + ":" + NormalizeSMSCID(smscID)
}

// NormalizeSMSCID trims padding and folds case so that "0A1f\x00" and "0a1f"
// match.
func NormalizeSMSCID(id string) string {
	return strings.ToLower(strings.TrimSpace(strings.TrimRight(id, "\x00")))
}
