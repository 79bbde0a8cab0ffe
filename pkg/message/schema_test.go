package message_test

import (
	"encoding/json"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/pkg/text"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

func validate(s *jsonschema.Schema, record string) error {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(record))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

// The example of the SPEC, verbatim.
const specRequest = `{
  "tenant": "acme",
  "client_ref": "order-8812-otp",
  "campaign_id": "black-friday",
  "from": "ACME",
  "to": "+447700900123",
  "text": "Your code is 123456",
  "priority": "otp",
  "send_at": "2026-11-27T09:00:00Z",
  "validity": "24h",
  "metadata": {"order": "8812"}
}`

// The SPEC's status example with its elided values filled in.
const specStatus = `{
  "event_id": "0b8e6a4e-3c55-5f0e-9d41-6a2f7e0c1d22", "message_id": "019a6b7c-1d2e-7f30-8a41-b52c63d74e85",
  "client_ref": "order-8812-otp", "tenant": "acme",
  "campaign_id": "black-friday", "to": "+447700900123", "carrier": "sim-a", "country": "GB",
  "status": "delivered", "error_code": "000", "segments": 1, "encoding": "gsm7",
  "event_time": "2026-11-27T09:00:03.5Z",
  "accepted_at": "2026-11-27T09:00:00.120Z", "submitted_at": "2026-11-27T09:00:00.480Z",
  "done_at": "2026-11-27T09:00:03.5Z", "metadata": {"order": "8812"}
}`

func TestRequestSchema(t *testing.T) {
	s := testenv.JSONSchema(t, schemas.RequestSchemaPath)
	minimal := `{"tenant":"acme","from":"ACME","to":"+447700900123","text":"hi"}`
	tests := []struct {
		name   string
		record string
		valid  bool
	}{
		{"spec example", specRequest, true},
		{"minimal", minimal, true},
		{"marketing, 90m", `{"tenant":"a","from":"A","to":"1","text":"x","priority":"marketing","validity":"1h30m"}`, true},
		{"no tenant", `{"from":"ACME","to":"+44","text":"hi"}`, false},
		{"no text", `{"tenant":"a","from":"ACME","to":"+44"}`, false},
		{"empty to", `{"tenant":"a","from":"ACME","to":"","text":"hi"}`, false},
		{"bad priority", `{"tenant":"a","from":"A","to":"1","text":"x","priority":"urgent"}`, false},
		{"send_at not a time", `{"tenant":"a","from":"A","to":"1","text":"x","send_at":"tomorrow"}`, false},
		{"validity in days", `{"tenant":"a","from":"A","to":"1","text":"x","validity":"1d"}`, false},
		{"misspelt field", `{"tenant":"a","from":"A","to":"1","text":"x","prority":"otp"}`, false},
		{"metadata not strings", `{"tenant":"a","from":"A","to":"1","text":"x","metadata":{"n":1}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validate(s, tt.record); (err == nil) != tt.valid {
				t.Errorf("valid = %v, want %v: %v", err == nil, tt.valid, err)
			}
		})
	}

	// What the Go type writes is valid too.
	var req message.Request
	if err := json.Unmarshal([]byte(specRequest), &req); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(s, string(out)); err != nil {
		t.Errorf("marshalled Request: %v", err)
	}
}

func TestStatusSchema(t *testing.T) {
	s := testenv.JSONSchema(t, schemas.StatusSchemaPath)
	tests := []struct {
		name   string
		record string
		valid  bool
	}{
		{"spec example", specStatus, true},
		{"unknown field tolerated", strings.Replace(specStatus, `"tenant"`, `"new_field": 1, "tenant"`, 1), true},
		{"bad status", strings.Replace(specStatus, `"delivered"`, `"sent"`, 1), false},
		{"bad encoding", strings.Replace(specStatus, `"gsm7"`, `"latin1"`, 1), false},
		{"no event_time", strings.Replace(specStatus, `"event_time": "2026-11-27T09:00:03.5Z",`, ``, 1), false},
		{"lower-case country", strings.Replace(specStatus, `"GB"`, `"gb"`, 1), false},
		{"zero segments", strings.Replace(specStatus, `"segments": 1`, `"segments": 0`, 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validate(s, tt.record); (err == nil) != tt.valid {
				t.Errorf("valid = %v, want %v: %v", err == nil, tt.valid, err)
			}
		})
	}

	at := time.Date(2026, 11, 27, 9, 0, 0, 123456789, time.UTC)
	m := &sluicepb.Message{
		Id: message.NewID(), Tenant: "acme", ClientRef: "r", CampaignId: "c", To: "+447700900123",
		Carrier: "sim-a", Country: "GB", Segments: 2, Encoding: sluicepb.Encoding_ENCODING_UCS2,
		Priority: sluicepb.Priority_PRIORITY_OTP, AcceptedAtMs: at.UnixMilli(), Metadata: map[string]string{"k": "v"},
	}
	for _, status := range []string{message.StatusAccepted, message.StatusRejected, message.StatusScheduled,
		message.StatusSubmitted, message.StatusDelivered, message.StatusUndelivered, message.StatusExpired,
		message.StatusFailed, message.StatusUnknown} {
		st := message.StatusOf(m, status, at.Add(time.Second))
		st.SubmittedAt = message.MillisTime(at.Add(500 * time.Millisecond).UnixMilli())
		out, err := st.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(s, string(out)); err != nil {
			t.Errorf("marshalled %s event: %v", status, err)
		}
	}
}

// Every MO the dlr can write is valid: each encoding a data_coding can
// name, owned or not, joined or incomplete.
func TestMOSchema(t *testing.T) {
	s := testenv.JSONSchema(t, schemas.MOSchemaPath)
	at := time.Date(2026, 11, 27, 9, 0, 0, 123456789, time.UTC)
	for dc := range 256 {
		mo := message.MO{
			MOID: message.MOID(3, int64(dc)), Tenant: "acme", From: "+447700900123", To: "ACME", Text: "STOP",
			Encoding: text.EncodingName(uint8(dc)), Carrier: "sim-a", ReceivedAt: at, InReplyTo: message.NewID(), Parts: 1,
		}
		if dc%2 == 1 {
			mo.Tenant, mo.InReplyTo, mo.Parts, mo.Incomplete = "", "", 2, true // unowned, incomplete
		}
		out, err := json.Marshal(mo)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(s, string(out)); err != nil {
			t.Errorf("data_coding 0x%02x: %s: %v", dc, out, err)
		}
	}
	for _, bad := range []string{
		`{"mo_id":"x","from":"+44","to":"1","text":"t","encoding":"utf8","carrier":"c","received_at":"2026-11-27T09:00:00Z"}`,
		`{"mo_id":"x","from":"+44","to":"1","text":"t","encoding":"gsm7","received_at":"2026-11-27T09:00:00Z"}`,
		`{"mo_id":"x","from":"+44","to":"1","text":"t","encoding":"gsm7","carrier":"c","received_at":"2026-11-27T09:00:00Z","parts":0}`,
	} {
		if validate(s, bad) == nil {
			t.Errorf("valid: %s", bad)
		}
	}
	if message.MOID(1, 2) != message.MOID(1, 2) || message.MOID(1, 2) == message.MOID(2, 1) {
		t.Error("MOID is not a function of partition and offset alone")
	}
}

// TestSchemasMatchTypes keeps the JSON Schemas and the Go types from
// drifting: the same field names, and "required" is exactly the fields the
// Go type always writes (no omitempty).
func TestSchemasMatchTypes(t *testing.T) {
	tests := []struct {
		path string
		typ  reflect.Type
	}{
		{schemas.RequestSchemaPath, reflect.TypeFor[message.Request]()},
		{schemas.StatusSchemaPath, reflect.TypeFor[message.Status]()},
		{schemas.MOSchemaPath, reflect.TypeFor[message.MO]()},
	}
	for _, tt := range tests {
		t.Run(tt.typ.Name(), func(t *testing.T) {
			data, err := fs.ReadFile(schemas.FS(), tt.path)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
			}
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			var fields, always []string
			for f := range tt.typ.Fields() {
				name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
				if name == "" || name == "-" {
					t.Fatalf("field %s has no JSON name", f.Name)
				}
				fields = append(fields, name)
				if !strings.Contains(opts, "omitempty") {
					always = append(always, name)
				}
			}
			var props []string
			for name := range doc.Properties {
				props = append(props, name)
			}
			slices.Sort(fields)
			slices.Sort(props)
			if !slices.Equal(fields, props) {
				t.Errorf("Go fields %v\nschema properties %v", fields, props)
			}
			slices.Sort(always)
			required := slices.Sorted(slices.Values(doc.Required))
			if !slices.Equal(always, required) {
				t.Errorf("fields without omitempty %v\nschema required %v", always, required)
			}
		})
	}
}

// The enums of the schemas list exactly the constants of this package.
func TestSchemaEnums(t *testing.T) {
	statuses := []string{message.StatusAccepted, message.StatusRejected, message.StatusScheduled,
		message.StatusSubmitted, message.StatusDelivered, message.StatusUndelivered, message.StatusExpired,
		message.StatusFailed, message.StatusUnknown}
	priorities := []string{message.PriorityOTP, message.PriorityTransactional, message.PriorityMarketing}
	tests := []struct {
		path, property string
		want           []string
	}{
		{schemas.StatusSchemaPath, "status", statuses},
		{schemas.StatusSchemaPath, "priority", priorities},
		{schemas.StatusSchemaPath, "encoding", []string{message.EncodingGSM7, message.EncodingUCS2}},
		{schemas.RequestSchemaPath, "priority", priorities},
	}
	for _, tt := range tests {
		data, err := fs.ReadFile(schemas.FS(), tt.path)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Properties map[string]struct {
				Enum []string `json:"enum"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		got := slices.Sorted(slices.Values(doc.Properties[tt.property].Enum))
		want := slices.Sorted(slices.Values(tt.want))
		if !slices.Equal(got, want) {
			t.Errorf("%s %s enum = %v, want %v", tt.path, tt.property, got, want)
		}
	}
}
