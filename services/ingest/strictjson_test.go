package ingest

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCheckJSON holds checkJSON to an independent reading of the same
// document: a duplicate name is one encoding/json's own tokenizer finds
// too (and every one it finds is refused), an invalid_text refusal points at
// something really there, and an accepted document is valid UTF-8 whose
// strings hold no NUL.
func FuzzCheckJSON(f *testing.F) {
	for _, c := range topicCases() {
		f.Add([]byte(c.body))
	}
	for _, s := range []string{`{"a":{"b":1,"b":2}}`, `{"a":[{"b":1},{"b":1}]}`, `{"K":1,"\u212a":2}`, `{"a":"\ud83d\ude00"}`,
		`{"a":"\\ud800"}`, `[{"a":1,"a":1}]`, `{"a":"\ud800\ud800"}`, `{"":1,"":2}`, `"\u0000"`, `{"a":{"b":{"c":"\udc00"}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return // left to the decoder
		}
		ferr := checkJSON(data, true)
		dup := duplicateName(data)
		switch {
		case ferr == nil && dup:
			t.Fatalf("%q: a name repeats, accepted", data)
		case ferr == nil:
			if !utf8.Valid(data) {
				t.Fatalf("%q: invalid UTF-8 accepted", data)
			}
			var v any
			if err := json.Unmarshal(data, &v); err != nil {
				t.Fatal(err)
			}
			if strings.ContainsRune(string(mustMarshal(t, v)), 0) || bytes.Contains(mustMarshal(t, v), []byte(`\u0000`)) {
				t.Fatalf("%q: NUL accepted", data)
			}
		case ferr.Code == CodeDuplicateField && !dup:
			t.Fatalf("%q: %v, but no name repeats", data, ferr)
		case ferr.Code == CodeInvalidText && utf8.Valid(data) && !suspectEscape.Match(data):
			t.Fatalf("%q: %v, but it is valid UTF-8 without a NUL or surrogate escape", data, ferr)
		case ferr.Code != CodeDuplicateField && ferr.Code != CodeInvalidText || ferr.Message == "":
			t.Fatalf("%q: %+v", data, ferr)
		}
		// Checking only the top level refuses nothing the full check accepts.
		if shallow := checkJSON(data, false); shallow != nil && ferr == nil {
			t.Fatalf("%q: shallow %v, deep %v", data, shallow, ferr)
		}
	})
}

// suspectEscape over-approximates the escapes checkJSON refuses.
var suspectEscape = regexp.MustCompile(`(?i)\\u(0000|d[89a-f][0-9a-f]{2})`)

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// duplicateName walks data with encoding/json's tokenizer: does a name
// repeat in one object (regardless of case at the top level, exactly below,
// as checkJSON compares them)?
func duplicateName(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		names  map[string]bool
		object bool
		key    bool // the next token of this object is a name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			name := tok.(string)
			if len(stack) == 1 {
				name = foldName(name)
			}
			if top.names[name] {
				return true
			}
			top.names[name] = true
			top.key = false
			continue
		}
		if top != nil && top.object {
			top.key = true // this token is the value
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{names: map[string]bool{}, object: true, key: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}
