package config

// Values as the file writes them: ${VAR} expansion, and durations in Go's and
// Prometheus' forms.

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// expand replaces ${VAR} in a scalar. It reports false when the value is unusable.
func (d *document) expand(n *yaml.Node, t reflect.Type, path string) bool {
	if !strings.Contains(n.Value, "${") {
		return true
	}
	value, err := expandEnv(n.Value)
	if err != nil {
		d.addf(path, "%v", err)
		return false
	}
	d.fromEnv[n] = n.Value
	d.envPaths[path] = n.Value
	n.Value = value
	if t.Kind() == reflect.String {
		n.Tag = "!!str" // a secret that reads "null" or "true" is still that string
	} else {
		n.Tag = "" // let the expanded text resolve to a number, bool or duration
	}
	return true
}

// shown quotes a scalar for an error message. A value that came from the environment
// is shown as written (${VAR}), never expanded: it may be a secret.
func (d *document) shown(n *yaml.Node) string {
	if written, ok := d.fromEnv[n]; ok {
		return fmt.Sprintf("%q (after environment expansion)", written)
	}
	return strconv.Quote(n.Value)
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandEnv replaces ${NAME} with the environment variable NAME, which must be set.
// Only the ${...} form is special, so passwords containing a lone $ survive;
// $${ writes a literal ${.
func expandEnv(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 2
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ (write $${ for a literal ${)")
			}
			name := s[i+2 : i+2+end]
			if !envName.MatchString(name) {
				return "", fmt.Errorf("${%s} is not a valid environment variable reference", name)
			}
			value, ok := os.LookupEnv(name)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(value)
			i += 2 + end
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// normalizeDuration accepts a duration as Go writes it (1m30s, 1.5h, 250ms) or as
// Prometheus does (30d, 1w, 1y), and rewrites it in Go's form for the decoder.
func (d *document) normalizeDuration(n *yaml.Node, path string) bool {
	if n.Kind != yaml.ScalarNode {
		return true // decodeCheck says what is wrong
	}
	duration, err := parseDuration(n.Value)
	if err != nil {
		d.addf(path, "%s is not %s", d.shown(n), describeType(durationType))
		return false
	}
	n.Value, n.Tag = duration.String(), "!!str"
	return true
}

// parseDuration reads Go's durations and Prometheus': Go's parser takes fractions and
// units down to ns, Prometheus' takes days (24h), weeks (7d) and years (365d).
func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	d, err := model.ParseDuration(s)
	return time.Duration(d), err
}
