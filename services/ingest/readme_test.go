package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The README's examples name these; the test puts its own in their place,
// and nothing else.
const (
	readmeAddr = "localhost:8080" // the default ingest.http_addr
	readmeKey  = "acme-key"       // $KEY: a key of tenant acme in testConfig
)

// readmeExample is one curl command of the README's HTTP API section and
// the answer it documents under it ("# 202 {...}").
type readmeExample struct {
	line    int
	command string
	status  int
	body    any // JSON; the string "…" matches any value
}

var answerLine = regexp.MustCompile(`^# ([1-5][0-9][0-9]) (\{.*\})$`)

// readmeExamples reads the fenced sh blocks of the README's "## HTTP API"
// section: each curl command runs up to its answer line.
func readmeExamples(t *testing.T) []readmeExample {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []readmeExample
	section, fenced := false, false
	var cmd []string
	start := 0
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			section = line == "## HTTP API"
		case !section:
		case strings.HasPrefix(line, "```"):
			if fenced && cmd != nil {
				t.Fatalf("README.md:%d: curl command without its answer", start)
			}
			fenced = !fenced && line == "```sh"
		case !fenced:
		case strings.HasPrefix(line, "curl "):
			cmd, start = []string{line}, i+1
		case cmd != nil && answerLine.MatchString(line):
			m := answerLine.FindStringSubmatch(line)
			ex := readmeExample{line: start, command: strings.Join(cmd, "\n")}
			ex.status, _ = strconv.Atoi(m[1])
			if err := json.Unmarshal([]byte(m[2]), &ex.body); err != nil {
				t.Fatalf("README.md:%d: answer is not JSON: %v", i+1, err)
			}
			out = append(out, ex)
			cmd = nil
		case cmd != nil:
			cmd = append(cmd, line)
		}
	}
	return out
}

// TestREADMEExamples runs every curl example of the README's HTTP API
// section, as written, with the real curl, against a real ingest, in order,
// and checks the answer it shows.
func TestREADMEExamples(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is needed to run the README's examples as written (apt-get install curl): %v", err)
	}
	examples := readmeExamples(t)
	if len(examples) < 5 {
		t.Fatalf("found %d curl examples in the README's HTTP API section, want at least 5", len(examples))
	}
	cfg := testConfig(t)
	base := startIngest(t, cfg, hooks{})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	id := ""
	for _, ex := range examples {
		t.Run(fmt.Sprintf("README.md:%d", ex.line), func(t *testing.T) {
			if !strings.Contains(ex.command, readmeAddr) {
				t.Fatalf("%s\ndoes not call %s", ex.command, readmeAddr)
			}
			command := strings.ReplaceAll(ex.command, readmeAddr, u.Host)
			// The status code on a line of its own after the body: curl's
			// options may come in any order.
			cmd := exec.Command("bash", "-c", command+` -w '\n%{content_type}\n%{http_code}'`)
			cmd.Env = append(os.Environ(), "KEY="+readmeKey, "ID="+id, "PATH="+filepath.Dir(curl)+":"+os.Getenv("PATH"))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s\n%v: %s", command, err, stderr.Bytes())
			}
			// The body, then the two lines -w adds.
			lines := strings.Split(string(out), "\n")
			if len(lines) < 3 {
				t.Fatalf("%s\nprinted %q", command, out)
			}
			n := len(lines)
			body, contentType := strings.Join(lines[:n-2], "\n"), lines[n-2]
			status, _ := strconv.Atoi(lines[n-1])
			if status != ex.status {
				t.Fatalf("%s\nanswered %d %s, the README shows %d", ex.command, status, body, ex.status)
			}
			var got any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("answer %q: %v", body, err)
			}
			if err := matchDocumented(ex.body, got, ""); err != nil {
				t.Fatalf("%s\nanswered %s\n%v", ex.command, body, err)
			}
			checkContract(t, commandRequest(t, command, base), status, http.Header{"Content-Type": {contentType}}, []byte(body))
			if m, ok := got.(map[string]any); ok && id == "" {
				id, _ = m["message_id"].(string)
			}
		})
	}
}

// matchDocumented checks got against a documented answer: every field
// shown has the value shown ("…": any, but present and not empty); got may
// have more fields, not more array elements.
func matchDocumented(want, got any, path string) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %v, want an object", path, got)
		}
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s.%s: missing", path, k)
			}
			if err := matchDocumented(v, gv, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: %v, want %d elements", path, got, len(w))
		}
		for i := range w {
			if err := matchDocumented(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case string:
		if w == "…" {
			if got == nil || got == "" {
				return fmt.Errorf("%s: empty", path)
			}
			return nil
		}
		if got != w {
			return fmt.Errorf("%s: %v, want %q", path, got, w)
		}
	default:
		if got != w {
			return fmt.Errorf("%s: %v, want %v", path, got, w)
		}
	}
	return nil
}

// commandRequest is the method and URL of a curl command, for the contract
// check: POST when it sends data (-d), else GET.
func commandRequest(t *testing.T, command, base string) *http.Request {
	t.Helper()
	method := http.MethodGet
	if strings.Contains(command, " -d ") {
		method = http.MethodPost
	}
	m := regexp.MustCompile(`127\.0\.0\.1:[0-9]+(/\S*)`).FindStringSubmatch(command)
	if m == nil {
		t.Fatalf("no URL in %s", command)
	}
	req, err := http.NewRequest(method, base+os.Expand(m[1], func(string) string { return "x" }), nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
