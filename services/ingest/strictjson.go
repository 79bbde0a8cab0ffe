package ingest

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// checkJSON refuses what encoding/json accepts but silently changes, in one
// syntactically valid JSON value: a name twice in one object (the decoder
// keeps the last, so "to" twice means one number is validated and another
// sent) and a string it would alter (invalid UTF-8 and lone UTF-16
// surrogate escapes become U+FFFD) or that holds NUL. Names of the
// top-level object are compared as the decoder matches them to struct
// fields, regardless of case ("to" and "TO" are one field); names below it
// (metadata keys) exactly. deep false checks only the top-level names: the
// messages of a batch are checked one by one, so that their errors carry
// their index.
func checkJSON(data []byte, deep bool) *FieldError {
	s := jsonScanner{data: data, deep: deep}
	s.value("", 0)
	return s.err
}

type jsonScanner struct {
	data []byte
	pos  int
	deep bool
	err  *FieldError
}

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value reads one value at s.pos; path names it in errors ("" for the top
// level, "metadata.k" below).
func (s *jsonScanner) value(path string, depth int) {
	s.skipSpace()
	if s.err != nil || s.pos >= len(s.data) {
		return
	}
	check := depth == 0 || s.deep
	switch s.data[s.pos] {
	case '{':
		s.object(path, depth, check)
	case '[':
		s.pos++
		for s.err == nil {
			s.skipSpace()
			if s.data[s.pos] == ']' {
				s.pos++
				return
			}
			s.value(path, depth+1)
			s.skipSpace()
			if s.data[s.pos] == ',' {
				s.pos++
			}
		}
	case '"':
		if _, problem := s.str(); problem != "" && check {
			s.err = fieldErr(CodeInvalidText, path, "%s", problem)
		}
	default: // number, true, false, null
		for s.pos < len(s.data) && !isJSONDelim(s.data[s.pos]) {
			s.pos++
		}
	}
}

func (s *jsonScanner) object(path string, depth int, check bool) {
	s.pos++ // {
	seen := map[string]string{}
	for s.err == nil {
		s.skipSpace()
		if s.data[s.pos] == '}' {
			s.pos++
			return
		}
		name, problem := s.str()
		field := joinPath(path, name)
		if check {
			key := name
			if depth == 0 {
				key = foldName(name)
			}
			switch first, dup := seen[key]; {
			case problem != "":
				s.err = fieldErr(CodeInvalidText, path, "a field name %s", problem)
			case dup && first == name:
				s.err = fieldErr(CodeDuplicateField, field, "appears more than once in the object")
			case dup:
				s.err = fieldErr(CodeDuplicateField, field, "appears more than once in the object (as %q: names are matched regardless of case)", first)
			}
			seen[key] = name
		}
		s.skipSpace()
		s.pos++ // the colon
		// Walked even when not checked, to find its end.
		s.value(field, depth+1)
		s.skipSpace()
		if s.pos < len(s.data) && s.data[s.pos] == ',' {
			s.pos++
		}
	}
}

// str reads the string at s.pos and returns it decoded, with what is wrong
// with it, if anything.
func (s *jsonScanner) str() (string, string) {
	s.pos++ // "
	var out []byte
	problem := ""
	note := func(p string) {
		if problem == "" {
			problem = p
		}
	}
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return string(out), problem
		case c == '\\':
			r, n := s.escape()
			switch {
			case r == 0:
				note("must not contain NUL (U+0000)")
			case utf16.IsSurrogate(r):
				note(fmt.Sprintf(`holds a lone UTF-16 surrogate (\u%04x)`, r))
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			s.pos += n
		case c < utf8.RuneSelf:
			out = append(out, c)
			s.pos++
		default:
			r, n := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && n == 1 {
				note(fmt.Sprintf("is not valid UTF-8 (byte 0x%02x)", c))
			}
			out = append(out, s.data[s.pos:s.pos+n]...)
			s.pos += n
		}
	}
	return string(out), problem
}

// escape decodes the escape at s.pos and its length; a surrogate pair is
// one rune, and a lone surrogate comes back as itself.
func (s *jsonScanner) escape() (rune, int) {
	d := s.data[s.pos:]
	switch d[1] {
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
	default: // \" \\ \/
		return rune(d[1]), 2
	}
	r := hex4(d[2:6])
	if utf16.IsSurrogate(r) && r < 0xdc00 && len(d) >= 12 && d[6] == '\\' && d[7] == 'u' {
		if pair := utf16.DecodeRune(r, hex4(d[8:12])); pair != utf8.RuneError {
			return pair, 12
		}
	}
	return r, 6
}

func hex4(b []byte) rune {
	n, _ := strconv.ParseUint(string(b), 16, 16) // checked by json.Valid
	return rune(n)
}

func isJSONDelim(c byte) bool {
	switch c {
	case ',', ']', '}', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// foldName maps a name to the same key as every name encoding/json would
// match to the same struct field: each rune to the smallest of its case
// folding orbit (so "K", "k" and the Kelvin sign are one).
func foldName(name string) string {
	out := make([]rune, 0, len(name))
	for _, r := range name {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		out = append(out, least)
	}
	return string(out)
}
