package analytics

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// identifier is what sluice accepts as a database name: it is spliced into
// SQL text, so nothing that would need escaping.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkDatabase(db string) error {
	if !identifier.MatchString(db) {
		return fmt.Errorf("clickhouse database name %q: want letters, digits and '_'", db)
	}
	return nil
}

// placeholder matches ClickHouse's query-parameter syntax, {name:Type}, which
// the files under schemas/clickhouse use so that they run as they are on a
// current server (clickhouse-client --param_name=...). 18.16 has no query
// parameters, so sluice substitutes them itself.
var placeholder = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*):([A-Za-z]+)\}`)

// expand replaces every placeholder by its value from vars, keyed
// "name:Type". A placeholder without a value is an error.
func expand(sql string, vars map[string]string) (string, error) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(sql, func(p string) string {
		v, ok := vars[p[1:len(p)-1]]
		if !ok {
			missing = append(missing, p)
			return p
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for %s", strings.Join(missing, ", "))
	}
	return out, nil
}

func dbVar(db string) map[string]string { return map[string]string{"db:Identifier": "`" + db + "`"} }

// dateTimeLiteral is a time as a ClickHouse DateTime('UTC') literal, to the second.
func dateTimeLiteral(t time.Time) string {
	return "toDateTime('" + t.UTC().Format(time.DateTime) + "', 'UTC')"
}

// splitStatements cuts a file into statements at each ';' outside quotes and
// comments, dropping comments-only and empty pieces.
func splitStatements(sql string) []string {
	var (
		stmts []string
		cur   strings.Builder
		code  bool // cur holds something besides comments and blanks
	)
	flush := func() {
		if code {
			stmts = append(stmts, strings.TrimSpace(cur.String()))
		}
		cur.Reset()
		code = false
	}
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			end := strings.IndexByte(sql[i:], '\n')
			if end < 0 {
				end = len(sql) - i
			}
			cur.WriteString(sql[i : i+end])
			i += end - 1
		case c == '\'' || c == '"' || c == '`':
			end := closingQuote(sql, i)
			cur.WriteString(sql[i:end])
			code = true
			i = end - 1
		case c == ';':
			flush()
		default:
			cur.WriteByte(c)
			if c != ' ' && c != '\n' && c != '\t' && c != '\r' {
				code = true
			}
		}
	}
	flush()
	return stmts
}

// closingQuote returns the index just past the quote that closes the one at
// start, honouring backslash escapes; len(s) if it is never closed.
func closingQuote(s string, start int) int {
	q := s[start]
	for i := start + 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case q:
			return i + 1
		}
	}
	return len(s)
}
