package dashboards

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// selector is one vector selector of a PromQL expression: a metric name and the text of
// its label matchers (without the braces).
type selector struct {
	name     string
	matchers string
}

var (
	nameMatcher  = regexp.MustCompile(`__name__\s*=~?\s*"([^"]*)"`)
	labelMatcher = regexp.MustCompile(`(\w+)\s*(?:=~|!~|!=|=)`)
)

// names returns the metric names the selector can match: its name, or the alternatives
// of a __name__ matcher.
func (s selector) names() []string {
	if s.name != "" {
		return []string{s.name}
	}
	if m := nameMatcher.FindStringSubmatch(s.matchers); m != nil {
		return strings.Split(strings.Trim(m[1], "()"), "|")
	}
	return nil
}

// labels returns the label names the selector matches on.
func (s selector) labels() []string {
	var out []string
	for _, m := range labelMatcher.FindAllStringSubmatch(s.matchers, -1) {
		out = append(out, m[1])
	}
	return out
}

// PromQL words that are not metric names. Grouping keywords are followed by a label list.
var (
	groupingKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
	otherKeywords    = []string{"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
		"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
		"count_values", "group"}
)

// scan finds the vector selectors and the range durations of a PromQL expression. It is
// a lexer, not a parser: enough to check which metrics and filters a dashboard query uses
// (promtool checks the syntax).
func scan(expr string) (sels []selector, ranges []string, err error) {
	pending := -1 // index in sels of a metric name that braces may follow
	i := 0
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
			continue
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(expr, i)
			if err != nil {
				return nil, nil, err
			}
			i = end
		case c == '{':
			end := matching(expr, i, '{', '}')
			if end < 0 {
				return nil, nil, fmt.Errorf("unbalanced { in %q", expr)
			}
			if pending >= 0 {
				sels[pending].matchers = expr[i+1 : end]
			} else {
				sels = append(sels, selector{matchers: expr[i+1 : end]})
			}
			i = end + 1
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return nil, nil, fmt.Errorf("unbalanced [ in %q", expr)
			}
			ranges = append(ranges, expr[i+1:i+end])
			i += end + 1
		case c == '$':
			// a Grafana variable outside a selector or range: skip it
			i++
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '{' || expr[i] == '}') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
			word := expr[start:i]
			next := i
			for next < len(expr) && (expr[next] == ' ' || expr[next] == '\n' || expr[next] == '\t') {
				next++
			}
			followedBy := byte(0)
			if next < len(expr) {
				followedBy = expr[next]
			}
			switch {
			case slices.Contains(groupingKeywords, word) && followedBy == '(':
				end := matching(expr, next, '(', ')')
				if end < 0 {
					return nil, nil, fmt.Errorf("unbalanced ( in %q", expr)
				}
				i = end + 1
			case slices.Contains(groupingKeywords, word), slices.Contains(otherKeywords, word), followedBy == '(':
				// a keyword or a function call
			default:
				sels = append(sels, selector{name: word})
				pending = len(sels) - 1
				continue
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		default:
			i++
		}
		pending = -1
	}
	return sels, ranges, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// skipString returns the index just past the string literal starting at i.
func skipString(s string, i int) (int, error) {
	quote := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if quote != '`' {
				j++
			}
		case quote:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string in %q", s)
}

// matching returns the index of the bracket closing the one at i, skipping strings.
func matching(s string, i int, open, closing byte) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '"', '\'', '`':
			end, err := skipString(s, j)
			if err != nil {
				return -1
			}
			j = end - 1
		case open:
			depth++
		case closing:
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

func TestScan(t *testing.T) {
	for _, c := range []struct {
		expr   string
		sels   []selector
		ranges []string
	}{
		{`up`, []selector{{name: "up"}}, nil},
		{`sum by (le) (rate(x_bucket{job=~"$job",le!="+Inf"}[$__rate_interval]))`,
			[]selector{{"x_bucket", `job=~"$job",le!="+Inf"`}}, []string{"$__rate_interval"}},
		{`count by (state) (mongosync_state{a="}"} == 1) or on (migration) vector(0)`,
			[]selector{{"mongosync_state", `a="}"`}}, nil},
		{`time() - a:b:c{x="1"} > bool 0.5e3 and ignoring(y) b offset 5m`,
			[]selector{{"a:b:c", `x="1"`}, {name: "b"}}, nil},
		{`label_replace(m, "dst", "$1", "src", "(.+)")`, []selector{{name: "m"}}, nil},
		{`{__name__=~"a|b",job=~"$job"}`, []selector{{matchers: `__name__=~"a|b",job=~"$job"`}}, nil},
		{`histogram_quantile(0.99, sum(rate(h{j="1"} [5m])) by (le))`, []selector{{"h", `j="1"`}}, []string{"5m"}},
	} {
		sels, ranges, err := scan(c.expr)
		if err != nil {
			t.Errorf("scan(%q): %v", c.expr, err)
			continue
		}
		if !slices.Equal(sels, c.sels) || !slices.Equal(ranges, c.ranges) {
			t.Errorf("scan(%q) = %q %q, want %q %q", c.expr, sels, ranges, c.sels, c.ranges)
		}
	}
	if _, _, err := scan(`x{a="b"`); err == nil {
		t.Error("scan accepted an unbalanced brace")
	}
	if got := (selector{matchers: `__name__=~"a|b",job=~"$job"`}).names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("names() = %v", got)
	}
	if got := (selector{matchers: `job=~"$job", instance!="x"`}).labels(); !slices.Equal(got, []string{"job", "instance"}) {
		t.Errorf("labels() = %v", got)
	}
}
