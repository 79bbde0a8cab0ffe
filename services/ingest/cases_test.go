package ingest

import (
	"fmt"
	"strings"
	"time"
)

// now is the clock of the validation tests.
var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// testLimits are the limits of the tests: the service's, with 10 segments.
var testLimits = Limits{MaxSegments: 10, MaxValidity: maxValidity, MaxSchedule: maxSchedule}

// badCase is a message both front doors must refuse, with the exact error.
type badCase struct {
	name    string
	body    string // one message without tenant (the HTTP form)
	code    string
	field   string
	message string
}

// good returns a valid message (HTTP form) with extra fields spliced in;
// a field given again replaces the default one.
func good(extra ...string) string {
	fields := map[string]string{"from": `"ACME"`, "to": `"+447400123456"`, "text": `"Your code is 123456"`}
	order := []string{"from", "to", "text"}
	for _, e := range extra {
		k, v, _ := strings.Cut(e, "=")
		if _, ok := fields[k]; !ok {
			order = append(order, k)
		}
		fields[k] = v
	}
	var parts []string
	for _, k := range order {
		if v := fields[k]; v != "-" {
			parts = append(parts, fmt.Sprintf("%q:%s", k, v))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func metadataOf(n int) string {
	kv := make([]string, n)
	for i := range kv {
		kv[i] = fmt.Sprintf(`"k%d":"v"`, i)
	}
	return "{" + strings.Join(kv, ",") + "}"
}

// messageCases are refused the same way by both front doors.
var messageCases = []badCase{
	{"malformed json", `{"from":"ACME","to":`, "malformed_json", "", "unexpected EOF"},
	{"unknown field", good(`colour="red"`), "unknown_field", "colour", "unknown field"},
	{"text is a number", good(`text=5`), "invalid_type", "text", "must be a string"},
	{"to is an array", good(`to=["+447400123456"]`), "invalid_type", "to", "must be a string"},
	{"metadata not strings", good(`metadata={"n":1}`), "invalid_type", "metadata", "must be a string"},
	{"metadata not an object", good(`metadata="x"`), "invalid_type", "metadata", "must be an object of strings"},
	{"missing from", good(`from=-`), "required", "from", "is required"},
	{"missing to", good(`to=-`), "required", "to", "is required"},
	{"missing text", good(`text=-`), "required", "text", "is required"},
	{"blank text", good(`text="   "`), "required", "text", "is required"},
	{"to without plus", good(`to="447400123456"`), "invalid_number", "to", "must be in E.164 form with a leading '+'"},
	{"to with letters", good(`to="+44abc"`), "invalid_number", "to", "is not a possible phone number"},
	{"to too short", good(`to="+44123"`), "invalid_number", "to", "is not a possible phone number"},
	{"to unknown country code", good(`to="+999123456789"`), "invalid_number", "to", "is not a possible phone number"},
	{"to not in the numbering plan", good(`to="+15555555555"`), "invalid_number", "to", "is not a valid number in its country's numbering plan"},
	{"to a landline", good(`to="+442079460000"`), "not_mobile", "to", "is a fixed-line number, not a mobile one"},
	{"to a toll-free number", good(`to="+18005550100"`), "not_mobile", "to", "is a toll-free number, not a mobile one"},
	{"to a personal number", good(`to="+447012345678"`), "not_mobile", "to", "is a personal number, not a mobile one"},
	{"to a VoIP number", good(`to="+445612345678"`), "not_mobile", "to", "is a VoIP number, not a mobile one"},
	{"sender longer than 11", good(`from="ACMECORPORATE"`), "invalid_sender", "from", "an alphanumeric sender ID is at most 11 characters"},
	{"sender with a bang", good(`from="ACME!"`), "invalid_sender", "from", "an alphanumeric sender ID may hold only A-Z, a-z, 0-9, space and - _ . &"},
	{"sender not ASCII", good(`from="Café"`), "invalid_sender", "from", "an alphanumeric sender ID may hold only A-Z, a-z, 0-9, space and - _ . &"},
	{"sender with leading space", good(`from=" ACME"`), "invalid_sender", "from", "must not start or end with a space"},
	{"sender without a letter", good(`from="12-34"`), "invalid_sender", "from", "an alphanumeric sender ID needs at least one letter"},
	{"short code too short", good(`from="12"`), "invalid_sender", "from", "a numeric sender must be a short code of 3 to 8 digits or an international number of 9 to 15 digits"},
	{"long code too long", good(`from="1234567890123456"`), "invalid_sender", "from", "a numeric sender must be a short code of 3 to 8 digits or an international number of 9 to 15 digits"},
	{"long code with plus too short", good(`from="+4412345"`), "invalid_sender", "from", "a numeric sender must be a short code of 3 to 8 digits or an international number of 9 to 15 digits"},
	{"long code not a number", good(`from="+999123456789"`), "invalid_sender", "from", "a long code must be a possible international number"},
	{"unknown priority", good(`priority="urgent"`), "invalid_priority", "priority", "must be otp, transactional or marketing"},
	{"priority in capitals", good(`priority="OTP"`), "invalid_priority", "priority", "must be otp, transactional or marketing"},
	{"send_at in words", good(`send_at="tomorrow"`), "invalid_send_at", "send_at", "must be an RFC 3339 time, e.g. 2026-11-27T09:00:00Z"},
	{"send_at without zone", good(`send_at="2026-11-27T09:00:00"`), "invalid_send_at", "send_at", "must be an RFC 3339 time, e.g. 2026-11-27T09:00:00Z"},
	{"send_at too far ahead", good(`send_at="2027-01-01T00:00:00Z"`), "invalid_send_at", "send_at", "must be at most 168h0m0s ahead"},
	{"validity in words", good(`validity="forever"`), "invalid_validity", "validity", "must be a positive duration, e.g. 24h"},
	{"validity negative", good(`validity="-1h"`), "invalid_validity", "validity", "must be a positive duration, e.g. 24h"},
	{"validity zero", good(`validity="0s"`), "invalid_validity", "validity", "must be a positive duration, e.g. 24h"},
	{"validity in days", good(`validity="1d"`), "invalid_validity", "validity", "must be a positive duration, e.g. 24h"},
	{"validity too long", good(`validity="200h"`), "invalid_validity", "validity", "must be at most 168h0m0s"},
	{"text over 10 segments", good(`text="` + strings.Repeat("x", 153*10+1) + `"`), "text_too_long", "text", "needs 11 segments, at most 10 allowed"},
	{"unicode text over 10 segments", good(`text="` + strings.Repeat("ж", 67*10+1) + `"`), "text_too_long", "text", "needs 11 segments, at most 10 allowed"},
	{"client_ref too long", good(`client_ref="` + strings.Repeat("r", 129) + `"`), "too_long", "client_ref", "must be at most 128 bytes"},
	{"campaign_id too long", good(`campaign_id="` + strings.Repeat("c", 129) + `"`), "too_long", "campaign_id", "must be at most 128 bytes"},
	{"client_ref with a newline", good(`client_ref="a\nb"`), "invalid_text", "client_ref", "must not contain control characters"},
	{"text with invalid UTF-8", good("text=\"a\xff\xfeb\""), "invalid_text", "text", "is not valid UTF-8 (byte 0xff)"},
	{"text with a lone high surrogate", good(`text="\ud800"`), "invalid_text", "text", `holds a lone UTF-16 surrogate (\ud800)`},
	{"text with a lone low surrogate", good(`text="a\uDC00b"`), "invalid_text", "text", `holds a lone UTF-16 surrogate (\udc00)`},
	{"text with a high surrogate before a letter", good(`text="\ud83d\u0041"`), "invalid_text", "text", `holds a lone UTF-16 surrogate (\ud83d)`},
	{"text with a reversed pair", good(`text="\ude00\ud83d"`), "invalid_text", "text", `holds a lone UTF-16 surrogate (\ude00)`},
	{"text with NUL", good(`text="a\u0000b"`), "invalid_text", "text", "must not contain NUL (U+0000)"},
	{"metadata value with NUL", good(`metadata={"k":"\u0000"}`), "invalid_text", "metadata.k", "must not contain NUL (U+0000)"},
	{"metadata value with a lone surrogate", good(`metadata={"k":"\udfff"}`), "invalid_text", "metadata.k", `holds a lone UTF-16 surrogate (\udfff)`},
	{"metadata key with invalid UTF-8", good("metadata={\"\xc3\":\"v\"}"), "invalid_text", "metadata", "a field name is not valid UTF-8 (byte 0xc3)"},
	{"field name with a lone surrogate", `{"from":"ACME","to":"+447400123456","text":"x","\ud800":1}`, "invalid_text", "", `a field name holds a lone UTF-16 surrogate (\ud800)`},
	{"from with invalid UTF-8", good("from=\"AC\x80ME\""), "invalid_text", "from", "is not valid UTF-8 (byte 0x80)"},
	{"to twice", `{"from":"ACME","to":"+447400123456","text":"x","to":"+447400654321"}`, "duplicate_field", "to", "appears more than once in the object"},
	{"to twice in other cases", `{"from":"ACME","to":"+447400123456","text":"x","TO":"+447400654321"}`, "duplicate_field", "TO", `appears more than once in the object (as "to": names are matched regardless of case)`},
	{"text twice, once escaped", `{"from":"ACME","to":"+447400123456","text":"x","t\u0065xt":"y"}`, "duplicate_field", "text", "appears more than once in the object"},
	{"metadata key twice", good(`metadata={"k":"a","j":"b","k":"c"}`), "duplicate_field", "metadata.k", "appears more than once in the object"},
	{"too many metadata keys", good(`metadata=` + metadataOf(33)), "invalid_metadata", "metadata", "at most 32 keys"},
	{"empty metadata key", good(`metadata={"":"v"}`), "invalid_metadata", "metadata", "keys must be 1 to 64 bytes"},
	{"metadata value too long", good(`metadata={"k":"` + strings.Repeat("v", 513) + `"}`), "invalid_metadata", "metadata.k", "must be at most 512 bytes"},
}

// withTenant turns an HTTP-form message into an sms.requests record.
func withTenant(tenant, body string) string {
	if !strings.HasPrefix(body, "{") {
		return body
	}
	rest := strings.TrimPrefix(body, "{")
	if rest != "}" && rest != "" {
		rest = "," + rest
	}
	return fmt.Sprintf(`{"tenant":%q`, tenant) + rest
}

// topicCases are the records the sms.requests front door must refuse: every
// message case with a tenant, and the record-level ones.
func topicCases() []badCase {
	cases := []badCase{
		{"empty record", ``, "malformed_json", "", "empty body"},
		{"not json", `not json at all`, "malformed_json", "", "invalid character 'o' in literal null (expecting 'u')"},
		{"array", `[1,2]`, "invalid_type", "", "must be a JSON object"},
		{"trailing data", withTenant("acme", good()) + ` {}`, "malformed_json", "", "unexpected data after the JSON object"},
		{"missing tenant", good(), "required", "tenant", "is required"},
		{"unknown tenant", withTenant("initech", good()), "unknown_tenant", "tenant", "is not a tenant of this gateway"},
		{"tenant twice", `{"tenant":"acme","from":"ACME","to":"+447400123456","text":"x","tenant":"globex"}`, "duplicate_field", "tenant", "appears more than once in the object"},
		{"tenant twice in other cases", `{"tenant":"acme","from":"ACME","to":"+447400123456","text":"x","Tenant":"globex"}`, "duplicate_field", "Tenant", `appears more than once in the object (as "tenant": names are matched regardless of case)`},
		{"tenant not UTF-8", "{\"tenant\":\"ac\xffme\",\"from\":\"ACME\",\"to\":\"+447400123456\",\"text\":\"x\"}", "invalid_text", "tenant", "is not valid UTF-8 (byte 0xff)"},
		{"tenant is a number", `{"tenant":7,"from":"ACME","to":"+447400123456","text":"x"}`, "invalid_type", "tenant", "must be a string"},
	}
	for _, c := range messageCases {
		c.body = withTenant("acme", c.body)
		cases = append(cases, c)
	}
	return cases
}
