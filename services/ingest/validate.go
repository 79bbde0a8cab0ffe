package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/text"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// FieldError is a machine-readable reason a request was refused. Both front
// doors report it as is: the HTTP API in its error body, the topic in the
// dead letter's headers.
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

// Error codes of FieldError, shared by both front doors.
const (
	CodeMalformedJSON   = "malformed_json"
	CodeInvalidType     = "invalid_type"
	CodeUnknownField    = "unknown_field"
	CodeDuplicateField  = "duplicate_field"
	CodeRequired        = "required"
	CodeUnknownTenant   = "unknown_tenant"
	CodeInvalidNumber   = "invalid_number"
	CodeNotMobile       = "not_mobile"
	CodeInvalidSender   = "invalid_sender"
	CodeInvalidText     = "invalid_text"
	CodeTextTooLong     = "text_too_long"
	CodeInvalidPriority = "invalid_priority"
	CodeInvalidSendAt   = "invalid_send_at"
	CodeInvalidValidity = "invalid_validity"
	CodeTooLong         = "too_long"
	CodeInvalidMetadata = "invalid_metadata"
)

// Limits bound what a request may ask for.
type Limits struct {
	MaxSegments int
	MaxValidity time.Duration // 0: none
	MaxSchedule time.Duration // how far ahead send_at may be; 0: none
}

// Bounds of the free-form fields, in bytes.
const (
	maxRefLen         = 128 // client_ref, campaign_id
	maxMetadataKeys   = 32
	maxMetadataKeyLen = 64
	maxMetadataValLen = 512
)

const defaultValidity = 48 * time.Hour

// DecodeRequest parses one sms.requests JSON value strictly: unknown fields
// and trailing data are errors.
func DecodeRequest(data []byte) (message.Request, *FieldError) {
	var req message.Request
	return req, decodeStrict(data, &req)
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// trailing data, and what checkJSON refuses at every level.
func decodeStrict(data []byte, v any) *FieldError { return decodeChecked(data, v, true) }

// decodeChecked is decodeStrict with checkJSON's deep.
func decodeChecked(data []byte, v any, deep bool) *FieldError {
	// Invalid JSON is left to the decoder, which says what is wrong with it.
	if json.Valid(data) {
		if ferr := checkJSON(data, deep); ferr != nil {
			return ferr
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fieldErr(CodeMalformedJSON, "", "unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error) *FieldError {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return fieldErr(CodeInvalidType, "", "must be a JSON object")
		}
		return fieldErr(CodeInvalidType, typeErr.Field, "must be %s", jsonKind(typeErr.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldErr(CodeUnknownField, name, "unknown field")
	case errors.Is(err, io.EOF):
		return fieldErr(CodeMalformedJSON, "", "empty body")
	default:
		return fieldErr(CodeMalformedJSON, "", "%v", err)
	}
}

// jsonKind names a Go type as JSON calls it.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Map:
		return "an object of " + strings.TrimPrefix(jsonKind(t.Elem()), "a ") + "s"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct:
		return "an object"
	default:
		return "a " + t.String()
	}
}

// Accept validates a request of tenant and turns it into an accepted message.
// It is the one validation of every front door: the caller has already
// established the tenant (from the record, or from the API key), and the
// request's own Tenant field is ignored.
func Accept(tenant string, req message.Request, now time.Time, lim Limits) (*sluicepb.Message, *FieldError) {
	for _, f := range []struct{ name, value string }{{"from", req.From}, {"to", req.To}, {"text", req.Text}} {
		if strings.TrimSpace(f.value) == "" {
			return nil, fieldErr(CodeRequired, f.name, "is required")
		}
	}
	if ferr := checkRefs(req); ferr != nil {
		return nil, ferr
	}
	if ferr := CheckSender(req.From); ferr != nil {
		return nil, ferr
	}
	to, country, ferr := NormaliseNumber(req.To)
	if ferr != nil {
		return nil, ferr
	}
	prio, ok := message.ParsePriority(req.Priority)
	if !ok {
		return nil, fieldErr(CodeInvalidPriority, "priority", "must be otp, transactional or marketing")
	}
	if ferr := CheckText("text", req.Text); ferr != nil {
		return nil, ferr
	}
	enc, segments, err := text.Count(req.Text)
	if err != nil {
		return nil, fieldErr(CodeInvalidText, "text", "%v", err)
	}
	if segments > lim.MaxSegments {
		return nil, fieldErr(CodeTextTooLong, "text", "needs %d segments, at most %d allowed", segments, lim.MaxSegments)
	}
	m := &sluicepb.Message{
		Tenant:       tenant,
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
	m.Id = messageID(tenant, req.ClientRef)
	start := now
	if req.SendAt != "" {
		at, err := time.Parse(time.RFC3339, req.SendAt)
		if err != nil {
			return nil, fieldErr(CodeInvalidSendAt, "send_at", "must be an RFC 3339 time, e.g. 2026-11-27T09:00:00Z")
		}
		if lim.MaxSchedule > 0 && at.Sub(now) > lim.MaxSchedule {
			return nil, fieldErr(CodeInvalidSendAt, "send_at", "must be at most %s ahead", lim.MaxSchedule)
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
			return nil, fieldErr(CodeInvalidValidity, "validity", "must be a positive duration, e.g. 24h")
		}
		if lim.MaxValidity > 0 && d > lim.MaxValidity {
			return nil, fieldErr(CodeInvalidValidity, "validity", "must be at most %s", lim.MaxValidity)
		}
		validity = d
	}
	m.ExpiresAtMs = start.Add(validity).UnixMilli()
	return m, nil
}

// checkRefs bounds the caller's free-form fields: they travel in every record
// and status event of the message.
func checkRefs(req message.Request) *FieldError {
	for _, f := range []struct{ name, value string }{{"client_ref", req.ClientRef}, {"campaign_id", req.CampaignID}} {
		if len(f.value) > maxRefLen {
			return fieldErr(CodeTooLong, f.name, "must be at most %d bytes", maxRefLen)
		}
		if strings.ContainsFunc(f.value, isControl) {
			return fieldErr(CodeInvalidText, f.name, "must not contain control characters")
		}
	}
	if len(req.Metadata) > maxMetadataKeys {
		return fieldErr(CodeInvalidMetadata, "metadata", "at most %d keys", maxMetadataKeys)
	}
	for k, v := range req.Metadata {
		switch {
		case k == "" || len(k) > maxMetadataKeyLen:
			return fieldErr(CodeInvalidMetadata, "metadata", "keys must be 1 to %d bytes", maxMetadataKeyLen)
		case len(v) > maxMetadataValLen:
			return fieldErr(CodeInvalidMetadata, "metadata."+k, "must be at most %d bytes", maxMetadataValLen)
		}
	}
	return nil
}

// CheckText refuses a text that could not reach the handset as sent:
// invalid UTF-8 (a lone surrogate cannot be valid UTF-8 either) would arrive
// as replacement characters, and NUL ends the text on many SMSCs. JSON's
// escapes are checked before decoding (checkJSON), since encoding/json
// replaces what it cannot decode; this catches the other front doors.
func CheckText(field, s string) *FieldError {
	if !utf8.ValidString(s) {
		return fieldErr(CodeInvalidText, field, "is not valid UTF-8")
	}
	if strings.ContainsRune(s, 0) {
		return fieldErr(CodeInvalidText, field, "must not contain NUL (U+0000)")
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// messageID is deterministic for a (tenant, client_ref) so that a retried
// request keeps its id and is recognised as a copy.
func messageID(tenant, clientRef string) string {
	if clientRef == "" {
		return message.NewID()
	}
	return message.IDForClientRef(tenant, clientRef)
}

// CheckSender applies the sender-ID rules to from: an alphanumeric name of up
// to 11 characters with at least one letter, a short code of 3 to 8 digits,
// or a long code (an international number, with or without '+').
func CheckSender(from string) *FieldError {
	digits := strings.TrimPrefix(from, "+")
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		switch {
		case digits == from && len(digits) >= 3 && len(digits) <= 8:
			return nil // short code
		case len(digits) < 9 || len(digits) > 15:
			return fieldErr(CodeInvalidSender, "from", "a numeric sender must be a short code of 3 to 8 digits or an international number of 9 to 15 digits")
		}
		if _, _, err := parseE164("+" + digits); err != nil {
			return fieldErr(CodeInvalidSender, "from", "a long code must be a possible international number")
		}
		return nil
	}
	switch {
	case !utf8.ValidString(from) || utf8.RuneCountInString(from) > 11:
		return fieldErr(CodeInvalidSender, "from", "an alphanumeric sender ID is at most 11 characters")
	case strings.TrimSpace(from) != from:
		return fieldErr(CodeInvalidSender, "from", "must not start or end with a space")
	case strings.ContainsFunc(from, func(r rune) bool { return !isSenderRune(r) }):
		return fieldErr(CodeInvalidSender, "from", "an alphanumeric sender ID may hold only A-Z, a-z, 0-9, space and - _ . &")
	case !strings.ContainsFunc(from, isLetter):
		return fieldErr(CodeInvalidSender, "from", "an alphanumeric sender ID needs at least one letter")
	}
	return nil
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

func isSenderRune(r rune) bool {
	return isLetter(r) || r >= '0' && r <= '9' || strings.ContainsRune(" -_.&", r)
}
