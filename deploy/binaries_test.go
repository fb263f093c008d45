package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mongomigrate/observability/internal/testsupport"
)

// binDir holds mongosync_exporter and oplog_collector built for this machine, once for
// all the tests of the package that run them; TestMain removes it.
var binDir struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir.path != "" {
		_ = os.RemoveAll(binDir.path)
	}
	os.Exit(code)
}

// binary returns the path of one of the project's binaries built from this checkout.
func binary(t *testing.T, name string) string {
	t.Helper()
	binDir.once.Do(func() {
		dir, err := os.MkdirTemp("", "deploy-test-bin-")
		if err != nil {
			binDir.err = err
			return
		}
		binDir.path = dir
		cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/mongosync_exporter", "./cmd/oplog_collector")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binDir.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binDir.err != nil {
		t.Fatalf("building the binaries: %v", binDir.err)
	}
	return filepath.Join(binDir.path, name)
}

// helpText returns what the binary prints for --help, for a subcommand when given.
func helpText(t *testing.T, bin string, subcommand ...string) string {
	t.Helper()
	out, err := exec.Command(bin, append(subcommand, "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s --help: %v\n%s", bin, strings.Join(subcommand, " "), err, out)
	}
	return string(out)
}

// startBinary runs one of the project's binaries until the test ends and returns the
// address it listens on.
func startBinary(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t, name), args...)
	logs := &testsupport.LogBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s:\n%s", name, logs)
		}
	})
	return listeningAddress(t, logs)
}
