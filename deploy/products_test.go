package deploy

import (
	"os/exec"
	"strings"
	"testing"
)

// testOnly are the packages that stand in for what users run (a MongoDB server, a
// migration, a verifier) or help the tests: none may be linked into a product binary.
var testOnly = []string{
	"github.com/mongomigrate/observability/internal/mongotest",
	"github.com/mongomigrate/observability/internal/demo",
	"github.com/mongomigrate/observability/internal/verifierfixture",
	"github.com/mongomigrate/observability/internal/testsupport",
	"github.com/mongomigrate/observability/internal/pitr/pitrtest",
	"github.com/mongomigrate/observability/internal/dashboardtest",
}

// The binaries make build and make release ship link none of the test infrastructure:
// go list -deps of each (without -test, so test files do not count).
func TestProductBinariesLinkNoTestInfrastructure(t *testing.T) {
	for _, product := range []string{"./cmd/mongosync_exporter", "./cmd/oplog_collector"} {
		cmd := exec.Command("go", "list", "-deps", product)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", product, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 20 {
			t.Fatalf("go list -deps %s listed only %v: wrong directory?", product, deps)
		}
		for _, dep := range deps {
			for _, banned := range testOnly {
				if dep == banned || strings.HasPrefix(dep, banned+"/") {
					t.Errorf("%s links %s, which is test infrastructure", product, dep)
				}
			}
		}
	}
}
