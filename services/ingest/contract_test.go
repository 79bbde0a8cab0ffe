package ingest

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi/datamodel"

	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas"
)

// TestMain sends every HTTP request of the tests through contractTransport,
// so that each answer ingest gives in any test is checked against
// schemas/openapi.yaml.
func TestMain(m *testing.M) {
	http.DefaultClient.Transport = contractTransport{http.DefaultTransport}
	testenv.Main(m)
}

var contract = sync.OnceValues(func() (validator.Validator, error) {
	doc, err := openAPIDocument()
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc)
	if errs != nil {
		return nil, fmt.Errorf("%s: %v", schemas.OpenAPIPath, errs)
	}
	return v, nil
})

// openAPIDocument reads schemas/openapi.yaml with its references into
// schemas/json resolved.
func openAPIDocument() (libopenapi.Document, error) {
	spec, err := fs.ReadFile(schemas.FS(), schemas.OpenAPIPath)
	if err != nil {
		return nil, err
	}
	_, self, _, _ := runtime.Caller(0)
	return libopenapi.NewDocumentWithConfiguration(spec, &datamodel.DocumentConfiguration{
		BasePath: filepath.Join(filepath.Dir(self), "..", "..", "schemas"), AllowFileReferences: true,
	})
}

// ingestHosts are the addresses (host:port) of the ingest HTTP and admin
// servers the tests started: only their answers are ingest's (Kannel's
// sendsms, say, is not).
var ingestHosts sync.Map

// contractTransport fails a request whose answer the OpenAPI document does
// not describe: an undocumented status, a missing required header, a body
// not matching its schema.
type contractTransport struct{ next http.RoundTripper }

func (c contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if _, ours := ingestHosts.Load(req.URL.Host); err != nil || !ours {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := contractError(req, resp.StatusCode, resp.Header, body); err != nil {
		return nil, err
	}
	return resp, nil
}

// checkContract is the same check for an answer read another way (curl).
func checkContract(t *testing.T, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if err := contractError(req, status, header, body); err != nil {
		t.Fatal(err)
	}
}

func contractError(req *http.Request, status int, header http.Header, body []byte) error {
	v, err := contract()
	if err != nil {
		return err
	}
	// The document says every other path and method answers 404 or 405
	// with an Error body (it cannot list them): checked as an error
	// answer of the API.
	probe := req
	if !documented(req) {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed || status == http.StatusMethodNotAllowed && header.Get("Allow") == "" {
			return fmt.Errorf("%s %s (not in %s) answered %d, want 404, or 405 with Allow", req.Method, req.URL.Path, schemas.OpenAPIPath, status)
		}
		probe, _ = http.NewRequest(http.MethodPost, "http://localhost/v1/messages", nil)
		status = http.StatusBadRequest // an Error body, whatever the code
	}
	resp := &http.Response{StatusCode: status, Header: header, Body: io.NopCloser(bytes.NewReader(body)), Request: probe}
	if ok, errs := v.ValidateHttpResponse(probe, resp); !ok {
		var b strings.Builder
		for _, e := range errs {
			fmt.Fprintf(&b, "\n  %s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				fmt.Fprintf(&b, "\n    %s at %s", se.Reason, se.KeywordLocation)
			}
		}
		return fmt.Errorf("%s %s answered %d %.300s, not as %s describes:%s", req.Method, req.URL.Path, status, body, schemas.OpenAPIPath, b.String())
	}
	return nil
}

// documented says whether the document has an operation for the request:
// its own routes, as the API's mux has them.
func documented(req *http.Request) bool {
	p := req.URL.Path
	switch {
	case p == "/v1/messages":
		return req.Method == http.MethodPost
	case strings.HasPrefix(p, "/v1/messages/") && !strings.Contains(p[len("/v1/messages/"):], "/") && len(p) > len("/v1/messages/"):
		return req.Method == http.MethodGet
	case p == SendSMSPath:
		return req.Method == http.MethodGet || req.Method == http.MethodPost
	case p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasPrefix(p, "/debug/pprof/"):
		return req.Method == http.MethodGet
	}
	return false
}

// TestErrorCodesDocumented keeps the error codes of the code, of the
// OpenAPI document (ErrorCode) and of the README's error table one set.
func TestErrorCodesDocumented(t *testing.T) {
	fset := token.NewFileSet()
	inCode := map[string]bool{}
	for _, file := range []string{"validate.go", "http.go"} {
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Names) == 1 && strings.HasPrefix(vs.Names[0].Name, "Code") && len(vs.Values) == 1 {
				if lit, ok := vs.Values[0].(*ast.BasicLit); ok {
					inCode[strings.Trim(lit.Value, `"`)] = true
				}
			}
			return true
		})
	}
	delete(inCode, CodeUnknownTenant) // the topic's only: HTTP takes the tenant from the key
	doc, err := openAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	inSpec := map[string]bool{}
	for _, alt := range model.Model.Components.Schemas.GetOrZero("ErrorCode").Schema().OneOf {
		for _, e := range alt.Schema().Enum {
			inSpec[e.Value] = true
		}
	}
	_, self, _, _ := runtime.Caller(0)
	readme, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	inTable := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| [1-5][0-9][0-9] \\| (.*?) \\|")
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		for _, c := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(m[1], -1) {
			inTable[c[1]] = true
		}
	}
	delete(inTable, CodeUnknownTenant)
	if !maps.Equal(inCode, inSpec) || !maps.Equal(inCode, inTable) {
		t.Errorf("error codes differ:\ncode   %v\nspec   %v\nREADME %v", slices.Sorted(maps.Keys(inCode)), slices.Sorted(maps.Keys(inSpec)), slices.Sorted(maps.Keys(inTable)))
	}
}
