package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var tcpTarget = regexp.MustCompile(`/dev/tcp/127\.0\.0\.1/(\d+)\b`)

// The demo stack's health checks of both binaries ask /-/ready on the port each service
// listens on, and work: run as written (bash's /dev/tcp, as in the image, which has no
// curl) against the real binary, the exporter's passes, and the collector's fails while
// its one source cannot be reached: ready means capturing, not merely up.
func TestComposeHealthChecksAskReadiness(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skipf("the health checks run bash, which is not on PATH here: %v", err)
	}
	project := loadCompose(t)
	check := func(service, port string) string {
		t.Helper()
		svc, ok := project.Services[service]
		if !ok {
			t.Fatalf("%s has no service %s", composeFile, service)
		}
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) != 4 || svc.HealthCheck.Test[0] != "CMD" || svc.HealthCheck.Test[1] != "bash" {
			t.Fatalf("service %s: health check %v is not [CMD bash -c <script>]", service, svc.HealthCheck)
		}
		script := svc.HealthCheck.Test[3]
		if m := tcpTarget.FindStringSubmatch(script); m == nil || m[1] != port || !strings.Contains(script, "GET /-/ready ") {
			t.Fatalf("service %s: the health check does not GET /-/ready on port %s: %s", service, port, script)
		}
		if !slices.Contains(svc.Command, "--web.listen-address=:"+port) {
			t.Fatalf("service %s listens elsewhere than :%s: %v", service, port, svc.Command)
		}
		return script
	}
	run := func(script, addr string) error {
		_, port, _ := strings.Cut(addr, ":")
		return exec.Command("bash", "-c", tcpTarget.ReplaceAllString(script, "/dev/tcp/127.0.0.1/"+port)).Run()
	}

	exporterCheck := check("exporter", "9782")
	collectorCheck := check("collector", "9783")

	dir := t.TempDir()
	config := filepath.Join(dir, "exporter.yml")
	if err := os.WriteFile(config, []byte("exporter: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	exporter := startBinary(t, "mongosync_exporter", "--config.file="+config, "--web.listen-address=127.0.0.1:0")
	if err := run(exporterCheck, exporter); err != nil {
		t.Errorf("the exporter's health check fails against a running exporter: %v", err)
	}

	config = filepath.Join(dir, "collector.yml")
	unreachable := "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
	if err := os.WriteFile(config, []byte("collector:\n  store: {uri: '"+unreachable+"'}\n  sources:\n    - {name: s, uri: '"+unreachable+"'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	collector := startBinary(t, "oplog_collector", "run", "--config.file="+config, "--web.listen-address=127.0.0.1:0")
	if err := run(collectorCheck, collector); err == nil {
		t.Error("the collector's health check passes while its only source cannot be reached")
	}
}
