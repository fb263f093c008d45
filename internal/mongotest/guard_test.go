package mongotest_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoProductPackageImportsMongotest keeps the test server out of the
// binaries: no package outside internal/mongotest may depend on it, except
// through test files (go list without -test reads no test files) and the local
// demo (internal/demo), which runs it as its MongoDB.
func TestNoProductPackageImportsMongotest(t *testing.T) {
	const self = "github.com/mongomigrate/observability/internal/mongotest"
	const demo = "github.com/mongomigrate/observability/internal/demo"
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		if pkg == self || strings.HasPrefix(pkg, self+"/") || pkg == demo || strings.HasPrefix(pkg, demo+"/") {
			continue
		}
		checked++
		for _, d := range deps {
			if d == self || strings.HasPrefix(d, self+"/") {
				t.Errorf("%s depends on %s: mongotest is for tests only", pkg, d)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d packages listed: go list ran in the wrong place?\n%s", checked, out)
	}
}
