package schemas

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestAsyncAPIDocument validates asyncapi.yaml, with the JSON Schemas it
// takes from json/, with the AsyncAPI project's own parser
// (@asyncapi/parser, installed from testdata/asyncapi/package-lock.json on
// first use, like node-smpp for the SMPP interop tests): no error and no
// warning, and its channels are exactly the catalogue's public topics.
func TestAsyncAPIDocument(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is required to validate %s: %v", AsyncAPIPath, err)
	}
	dir := filepath.Join("testdata", "asyncapi")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@asyncapi", "parser")); err != nil {
		out, err := exec.Command("npm", "ci", "--prefix", dir, "--no-audit", "--no-fund").CombinedOutput()
		if err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	out, err := exec.Command("node", filepath.Join(dir, "validate.js"), AsyncAPIPath).Output()
	if err != nil {
		t.Fatalf("validate.js: %v", err)
	}
	var res struct {
		Version     string   `json:"version"`
		Channels    []string `json:"channels"`
		Diagnostics []struct {
			Severity            int
			Code, Message, Path string
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	for _, d := range res.Diagnostics {
		if d.Severity <= 1 { // 0 error, 1 warning; information and hints pass
			t.Errorf("%s: %s at %s: %s", AsyncAPIPath, d.Code, d.Path, d.Message)
		}
	}
	if res.Version != "3.0.0" {
		t.Errorf("asyncapi %q, want 3.0.0", res.Version)
	}
	topics, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	var public []string
	for _, tp := range topics {
		if tp.Public {
			public = append(public, tp.Name)
		}
	}
	slices.Sort(public)
	if got := slices.Sorted(slices.Values(res.Channels)); !slices.Equal(got, public) {
		t.Errorf("channels %v, want the public topics %v", got, public)
	}
}
