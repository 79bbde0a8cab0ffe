package ingest

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/http"

	"path/filepath"
	"runtime"
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
	spec, err := fs.ReadFile(schemas.FS(), schemas.OpenAPIPath)
	if err != nil {
		return nil, err
	}
	_, self, _, _ := runtime.Caller(0)
	doc, err := libopenapi.NewDocumentWithConfiguration(spec, &datamodel.DocumentConfiguration{
		BasePath: filepath.Join(filepath.Dir(self), "..", "..", "schemas"), AllowFileReferences: true,
	})
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc)
	if errs != nil {
		return nil, fmt.Errorf("%s: %v", schemas.OpenAPIPath, errs)
	}
	return v, nil
})

// contractTransport fails a request whose answer the OpenAPI document does
// not describe: an undocumented status, a missing required header, a body
// not matching its schema.
type contractTransport struct{ next http.RoundTripper }

func (c contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
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
	case p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasPrefix(p, "/debug/pprof/"):
		return req.Method == http.MethodGet
	}
	return false
}
