package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error lists every problem found in a config file, one per line, each starting with
// "file:line: key:" so that an editor or a reader can jump to it.
type Error struct {
	Problems []string
}

func (e *Error) Error() string { return strings.Join(e.Problems, "\n") }

// document is a config file being checked: where each key sits, and what is wrong.
// yaml.v3 alone cannot give this: its KnownFields option is lost inside custom
// unmarshalers and its type errors name Go types rather than the user's keys.
type document struct {
	filename   string
	lines      map[string]int        // key path such as "exporter.mongosync[0].url" -> line
	fromEnv    map[*yaml.Node]string // scalars changed by ${VAR} expansion -> text as written
	envPaths   map[string]string     // the same, by key path
	syntaxOnly bool                  // walking a section of another program: key names only
	problems   []problem
}

type problem struct {
	line int
	key  string // the key the problem is about, such as exporter.mongosync[0].url
	text string
}

// decodeStrict checks data against the shape of out (unknown keys, types, environment
// variables), records what is wrong in the returned document, and decodes into out.
// The top-level section named syntaxOnly (if any) belongs to another program: only its
// key names are checked, its ${VAR}s are left alone, and it is not decoded.
func decodeStrict(data []byte, filename string, out any, syntaxOnly string) (*document, error) {
	doc := &document{filename: filename, lines: map[string]int{}, fromEnv: map[*yaml.Node]string{}, envPaths: map[string]string{}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{Problems: []string{doc.syntaxProblem(err)}}
	}
	if len(root.Content) == 0 { // an empty file configures nothing, which is valid
		return doc, nil
	}
	node := root.Content[0]
	doc.walk(node, reflect.TypeOf(out).Elem(), "", syntaxOnly)
	if node.Kind == yaml.MappingNode && syntaxOnly != "" {
		own := *node
		own.Content = nil
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Value != syntaxOnly {
				own.Content = append(own.Content, node.Content[i], node.Content[i+1])
			}
		}
		node = &own
	}
	// Decode even when walk found problems: yaml.v3 fills every field it can, so the
	// checks that follow decoding can still report the rest of the file's problems.
	if err := node.Decode(out); err != nil && len(doc.problems) == 0 {
		doc.addf("", "%v", err) // not expected after walk; reported rather than lost
	}
	return doc, nil
}

// fromEnvironment tells whether the value at path came from ${VAR} expansion.
func (d *document) fromEnvironment(path string) bool {
	_, ok := d.envPaths[path]
	return ok
}

// written is the value at path as the file writes it: ${VAR} rather than its content.
func (d *document) written(path, value string) string {
	if w, ok := d.envPaths[path]; ok {
		return w
	}
	return value
}

var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *document) syntaxProblem(err error) string {
	if m := yamlLineError.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Sprintf("%s:%s: invalid YAML: %s", d.filename, m[1], m[2])
	}
	return fmt.Sprintf("%s: invalid YAML: %s", d.filename, strings.TrimPrefix(err.Error(), "yaml: "))
}

// addf records a problem about the key at path, at the line of that key or of its
// nearest enclosing key.
func (d *document) addf(path, format string, args ...any) {
	d.record(path, path, fmt.Sprintf(format, args...))
}

// require records a missing key as a problem of the mapping at path, where it belongs.
func (d *document) require(path, key, value string) {
	if value == "" {
		d.record(path+"."+key, path, fmt.Sprintf("missing required key %q", key))
	}
}

// record keeps the first problem of each key only: a value that could not be read says
// so once, rather than again through every check that follows.
func (d *document) record(key, path, msg string) {
	if slices.ContainsFunc(d.problems, func(p problem) bool { return p.key == key }) {
		return
	}
	where := d.filename
	line := d.line(path)
	if line > 0 {
		where += ":" + strconv.Itoa(line)
	}
	if path != "" {
		where += ": " + path
	}
	d.problems = append(d.problems, problem{line: line, key: key, text: where + ": " + msg})
}

func (d *document) line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if line, ok := d.lines[p]; ok {
			return line
		}
	}
	return 0
}

func parentPath(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

func (d *document) err() error {
	if len(d.problems) == 0 {
		return nil
	}
	// In file order, whichever check found them.
	slices.SortStableFunc(d.problems, func(a, b problem) int { return a.line - b.line })
	e := &Error{}
	for _, p := range d.problems {
		e.Problems = append(e.Problems, p.text)
	}
	return e
}

var (
	yamlUnmarshaler     = reflect.TypeFor[yaml.Unmarshaler]()
	obsoleteUnmarshaler = reflect.TypeFor[interface {
		UnmarshalYAML(func(any) error) error
	}]()
)

// hasOwnUnmarshaler tells whether values of t decode themselves (and validate while
// doing so), like prometheus/common's Secret, URL and TLSConfig.
func hasOwnUnmarshaler(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(yamlUnmarshaler) || p.Implements(obsoleteUnmarshaler)
}

// walk checks node n against type t; path names n for messages. Under the top-level
// key syntaxOnly, only key names are checked (see decodeStrict).
func (d *document) walk(n *yaml.Node, t reflect.Type, path, syntaxOnly string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value keeps the default
	}
	if n.Kind == yaml.ScalarNode && !d.syntaxOnly {
		if !d.expand(n, t, path) {
			return
		}
		if t == durationType && !d.normalizeDuration(n, path) {
			return
		}
	}
	fields, isRecord := yamlFields(t)
	switch {
	case isRecord:
		before := len(d.problems)
		d.walkMapping(n, path, syntaxOnly, func(key string) (reflect.Type, bool) {
			ft, ok := fields.types[key]
			if !ok && fields.rest != nil {
				return fields.rest, true
			}
			return ft, ok
		}, fields.names)
		if len(d.problems) == before && hasOwnUnmarshaler(t) && !d.syntaxOnly {
			d.decodeCheck(n, t, path)
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		if n.Kind != yaml.SequenceNode {
			if !d.syntaxOnly {
				d.addf(path, "expected a list (lines starting with -), got %s", nodeKind(n))
			}
			return
		}
		for i, item := range n.Content {
			itemPath := fmt.Sprintf("%s[%d]", path, i)
			d.lines[itemPath] = item.Line
			d.walk(item, t.Elem(), itemPath, "")
		}
	case t.Kind() == reflect.Map && !hasOwnUnmarshaler(t):
		d.walkMapping(n, path, "", func(string) (reflect.Type, bool) { return t.Elem(), true }, nil)
	case !d.syntaxOnly:
		d.decodeCheck(n, t, path)
	}
}

// walkMapping checks the keys of a mapping: each must be known (lookup) and appear once.
// The value of the key syntaxOnly is walked for key names only.
func (d *document) walkMapping(n *yaml.Node, path, syntaxOnly string, lookup func(string) (reflect.Type, bool), known []string) {
	if n.Kind != yaml.MappingNode {
		if !d.syntaxOnly {
			d.addf(path, "expected a mapping (key: value lines), got %s", nodeKind(n))
		}
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		keyNode, valueNode := n.Content[i], n.Content[i+1]
		key := keyNode.Value
		childPath := key
		if path != "" {
			childPath = path + "." + key
		}
		if first, dup := seen[key]; dup {
			d.lines[childPath] = keyNode.Line
			d.addf(childPath, "key appears twice in the same mapping (first at line %d)", first)
			continue
		}
		seen[key] = keyNode.Line
		d.lines[childPath] = keyNode.Line
		ft, ok := lookup(key)
		if !ok {
			d.addf(childPath, "unknown key%s", suggestion(key, known))
			continue
		}
		if key == syntaxOnly && syntaxOnly != "" {
			d.syntaxOnly = true
			d.walk(valueNode, ft, childPath, "")
			d.syntaxOnly = false
			continue
		}
		d.walk(valueNode, ft, childPath, "")
	}
}

// decodeCheck decodes a single value on its own, so that a type error names its key.
func (d *document) decodeCheck(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode && !hasOwnUnmarshaler(t) {
		d.addf(path, "expected %s, got %s", describeType(t), nodeKind(n))
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		if hasOwnUnmarshaler(t) {
			d.addf(path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return
		}
		d.addf(path, "%s is not %s", d.shown(n), describeType(t))
	}
}

// recordFields describes the keys a struct accepts, with inline fields flattened the way
// yaml.v3 flattens them.
type recordFields struct {
	types map[string]reflect.Type
	names []string
	rest  reflect.Type // value type of an inline map that takes any other key, if any
}

// yamlFields returns the keys of t when t is decoded as a mapping of known keys.
// Types that decode themselves and declare no keys (Secret, URL) are not records.
func yamlFields(t reflect.Type) (recordFields, bool) {
	if t.Kind() != reflect.Struct {
		return recordFields{}, false
	}
	f := recordFields{types: map[string]reflect.Type{}}
	f.add(t)
	if len(f.types) == 0 && f.rest == nil && hasOwnUnmarshaler(t) {
		return recordFields{}, false
	}
	slices.Sort(f.names)
	return f, true
}

func (f *recordFields) add(t reflect.Type) {
	for i := range t.NumField() {
		field := t.Field(i)
		tag := field.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if !field.IsExported() || name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := field.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Map {
				f.rest = ft.Elem()
			} else {
				f.add(ft)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(field.Name)
		}
		f.types[name] = field.Type
		f.names = append(f.names, name)
	}
}

var durationType = reflect.TypeFor[time.Duration]()

func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 5s, 1m30s, 12h or 30d"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.String:
		return "a single value"
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		return "a mapping (key: value lines)"
	}
	return "a value of type " + t.String()
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// suggestion names the closest known key when the unknown one looks like a typo of it,
// and otherwise lists the keys allowed here.
func suggestion(key string, known []string) string {
	if len(known) == 0 {
		return " (this section takes no keys)"
	}
	best, bestDistance := "", 3
	for _, k := range known {
		if dist := editDistance(key, k); dist < bestDistance {
			best, bestDistance = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return "; known keys here: " + strings.Join(known, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
