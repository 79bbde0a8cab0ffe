package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/text"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// FieldError is a machine-readable reason a request was refused.
type FieldError struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Code + ": " + e.Message
	}
	return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
}

func fieldErr(code, field, format string, args ...any) *FieldError {
	return &FieldError{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Limits bound what a request may ask for.
type Limits struct {
	MaxSegments int
	MaxValidity time.Duration
}

const defaultValidity = 48 * time.Hour

// DecodeRequest parses one sms.requests JSON value strictly: unknown fields
// and trailing data are errors.
func DecodeRequest(data []byte) (message.Request, *FieldError) {
	var req message.Request
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return req, fieldErr("invalid_type", typeErr.Field, "must be a %s", typeErr.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return req, fieldErr("unknown_field", name, "unknown field")
		default:
			return req, fieldErr("malformed_json", "", "%v", err)
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, fieldErr("malformed_json", "", "unexpected data after the JSON object")
	}
	return req, nil
}

// Accept validates a request and turns it into an accepted message.
func Accept(req message.Request, now time.Time, lim Limits) (*sluicepb.Message, *FieldError) {
	for _, f := range []struct{ name, value string }{{"tenant", req.Tenant}, {"from", req.From}, {"to", req.To}, {"text", req.Text}} {
		if strings.TrimSpace(f.value) == "" {
			return nil, fieldErr("required", f.name, "is required")
		}
	}
	prio, ok := message.ParsePriority(req.Priority)
	if !ok {
		return nil, fieldErr("invalid_priority", "priority", "must be otp, transactional or marketing")
	}
	to, country, ferr := normaliseNumber(req.To)
	if ferr != nil {
		return nil, ferr
	}
	enc, segments, err := text.Count(req.Text)
	if err != nil {
		return nil, fieldErr("invalid_text", "text", "%v", err)
	}
	if segments > lim.MaxSegments {
		return nil, fieldErr("text_too_long", "text", "needs %d segments, at most %d allowed", segments, lim.MaxSegments)
	}
	m := &sluicepb.Message{
		Tenant:       req.Tenant,
		ClientRef:    req.ClientRef,
		CampaignId:   req.CampaignID,
		From:         req.From,
		To:           to,
		Text:         req.Text,
		Priority:     prio,
		Metadata:     req.Metadata,
		AcceptedAtMs: now.UnixMilli(),
		Country:      country,
		Segments:     uint32(segments),
		Encoding:     sluicepb.Encoding_ENCODING_GSM7,
	}
	if enc == text.UCS2 {
		m.Encoding = sluicepb.Encoding_ENCODING_UCS2
	}
	m.Id = messageID(req.Tenant, req.ClientRef)
	start := now
	if req.SendAt != "" {
		at, err := time.Parse(time.RFC3339, req.SendAt)
		if err != nil {
			return nil, fieldErr("invalid_send_at", "send_at", "must be an RFC 3339 time, e.g. 2026-11-27T09:00:00Z")
		}
		if at.After(now) {
			m.SendAtMs = at.UnixMilli()
			start = at
		}
	}
	validity := defaultValidity
	if req.Validity != "" {
		d, err := time.ParseDuration(req.Validity)
		if err != nil || d <= 0 {
			return nil, fieldErr("invalid_validity", "validity", "must be a positive duration, e.g. 24h")
		}
		if lim.MaxValidity > 0 && d > lim.MaxValidity {
			return nil, fieldErr("invalid_validity", "validity", "must be at most %s", lim.MaxValidity)
		}
		validity = d
	}
	m.ExpiresAtMs = start.Add(validity).UnixMilli()
	return m, nil
}

// messageID is deterministic for a (tenant, client_ref) so that a retried
// request keeps its id and downstream stages recognise the copy.
func messageID(tenant, clientRef string) string {
	if clientRef == "" {
		return message.NewID()
	}
	return message.IDForClientRef(tenant, clientRef)
}

func normaliseNumber(raw string) (e164, country string, _ *FieldError) {
	if !strings.HasPrefix(raw, "+") {
		return "", "", fieldErr("invalid_number", "to", "must be in E.164 form with a leading '+'")
	}
	num, err := phonenumbers.Parse(raw, "")
	if err != nil || !phonenumbers.IsPossibleNumber(num) {
		return "", "", fieldErr("invalid_number", "to", "is not a possible phone number")
	}
	country = phonenumbers.GetRegionCodeForNumber(num)
	if country == "" {
		// Reserved ranges (e.g. the UK's +44 7700 900xxx) have no region of
		// their own; the country code still names the country.
		country = phonenumbers.GetRegionCodeForCountryCode(int(num.GetCountryCode()))
	}
	return phonenumbers.Format(num, phonenumbers.E164), country, nil
}
