package schemas

import (
	"encoding/json"
	"io/fs"
	"slices"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi/datamodel"
)

// TestOpenAPIDocument validates openapi.yaml, with every schema it takes
// from json/ resolved, against the OpenAPI 3.1 specification's schema
// (pb33f/libopenapi-validator). ingest's HTTP tests check its answers
// against the same document.
func TestOpenAPIDocument(t *testing.T) {
	spec, err := fs.ReadFile(FS(), OpenAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocumentWithConfiguration(spec, &datamodel.DocumentConfiguration{
		BasePath: ".", AllowFileReferences: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("openapi %s, want 3.1.0", v)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if errs != nil {
		t.Fatal(errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("%s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  %s at %s (line %d)", se.Reason, se.KeywordLocation, se.Line)
			}
		}
	}

	// The HTTP message is the sms.requests record without tenant: the
	// same fields, each by reference.
	raw, err := fs.ReadFile(FS(), RequestSchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var record struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(raw, &record); err != nil {
		t.Fatal(err)
	}
	var want []string
	for name := range record.Properties {
		if name != "tenant" {
			want = append(want, name)
		}
	}
	msg := model.Model.Components.Schemas.GetOrZero("Message").Schema()
	var got []string
	for name, p := range msg.Properties.FromOldest() {
		got = append(got, name)
		if !p.IsReference() {
			t.Errorf("Message.%s is not a $ref to %s", name, RequestSchemaPath)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Message properties %v, want those of %s but tenant: %v", got, RequestSchemaPath, want)
	}
}
