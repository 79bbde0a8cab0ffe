package testenv

import (
	"bytes"
	"io/fs"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sluice-sms/sluice/schemas"
)

// JSONSchema compiles one of the public JSON Schemas of schemas/ (path as in
// schemas.FS, e.g. schemas.StatusSchemaPath), formats asserted.
func JSONSchema(t testing.TB, path string) *jsonschema.Schema {
	t.Helper()
	data, err := fs.ReadFile(schemas.FS(), path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(path, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(path)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	return s
}
