package testsupport

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Tool returns the path of a command that a Debian package provides (promtool and
// prometheus come with "prometheus", amtool and prometheus-alertmanager with
// "prometheus-alertmanager"). Without it the test fails in CI, whose .ci/run installs
// the package, and is skipped elsewhere, naming what to install and what it was for.
func Tool(t testing.TB, command, debianPackage, purpose string) string {
	t.Helper()
	path, err := exec.LookPath(command)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing in CI: .ci/run must install the Debian package %s", command, debianPackage)
	}
	t.Skipf("%s needs %s, which is not on PATH here (Debian package %s: apt-get install %s; .ci/run installs it)", purpose, command, debianPackage, debianPackage)
	return ""
}

// Promtool returns the path of promtool; see Tool.
func Promtool(t testing.TB, purpose string) string {
	t.Helper()
	return Tool(t, "promtool", "prometheus", purpose)
}

// CheckMetrics runs the real `promtool check metrics` on an exposition.
func CheckMetrics(t testing.TB, exposition string) {
	t.Helper()
	cmd := exec.Command(Promtool(t, "promtool check metrics"), "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// LogBuffer is an io.Writer safe for concurrent use, for tests that read logs while the
// code under test writes them.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TableRow splits a markdown table row into its cells, on the pipes outside `code`
// spans (a PromQL `a | b` is one cell), trimming each.
func TableRow(line string) []string {
	var cells []string
	var cell strings.Builder
	inCode := false
	for _, r := range strings.Trim(line, "|") {
		switch {
		case r == '`':
			inCode = !inCode
			cell.WriteRune(r)
		case r == '|' && !inCode:
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteRune(r)
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}
