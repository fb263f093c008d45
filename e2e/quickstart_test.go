package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mongomigrate/observability/internal/testsupport"
)

// readme is the README whose quick start the test follows: the working tree's, so that
// an edit to its commands is tested before it is committed.
const readme = "../README.md"

// collectorPort is where `make run-collector` serves the collector's metrics: the
// default of its --web.listen-address (README.md, "What is here today";
// docs/configuration.md, "Flags").
const collectorPort = "9783"

// serverCommand matches the quick-start commands that start a daemon (make run,
// make run-collector): they are started and left running while the next commands,
// which talk to them, are retried until the daemon answers.
var serverCommand = regexp.MustCompile(`^make\s+run(-[\w-]+)?(\s|$)`)

// TestQuickStart does on a clean clone of the repository's HEAD what README.md tells a
// new user to do: `make build` leaves mongosync_exporter and oplog_collector in the
// clone's top directory, each prints its version (with the commit it was built from);
// every command of the README's "Quick start" block runs as written and succeeds (the
// exporter started by `make run` answers the README's curl on its documented port, and
// its build_info names the clone's commit, so no other process answered for it); and
// `make run-collector` starts the collector, which captures a source on the test MongoDB
// server and serves its metrics on its default port. Uncommitted changes are not in the
// clone: commit before relying on this test.
func TestQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a full run (-short was given): it clones the repository and builds the binaries with make; run go test without -short")
	}
	for _, tool := range []string{"git", "make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the quick start needs %s on PATH: %v", tool, err)
		}
	}
	commands := quickStartCommands(t)
	clone, head := cloneHead(t)

	// make build: both binaries in the clone's top directory, each with its version.
	run(t, clone, "make", "build")
	for _, bin := range []string{"mongosync_exporter", "oplog_collector"} {
		path := filepath.Join(clone, bin)
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("make build left no %s in the project directory (README.md's quick start runs ./%s): %v", bin, bin, err)
		}
		out := run(t, clone, path, "--version")
		if !strings.Contains(out, bin+", version ") || !strings.Contains(out, "revision: "+head) {
			t.Errorf("./%s --version does not name the program and the commit %s it was built from:\n%s", bin, head, out)
		}
	}

	t.Run("README quick start", func(t *testing.T) {
		if len(commands) == 0 {
			t.Fatal("no commands in README.md's quick start")
		}
		for _, port := range localPorts(commands) {
			requireFreePort(t, port, "README.md's quick start")
		}
		var server *process
		var last string
		for _, line := range commands {
			if serverCommand.MatchString(line) {
				server = startGroup(t, clone, line)
				continue
			}
			last = runUntilServing(t, clone, line, server)
		}
		if server != nil && !strings.Contains(last, `revision="`+head+`"`) {
			t.Errorf("the quick start's last command did not show the build_info of the exporter built from %s; another process may have answered:\n%s", head, tail(last))
		}
		if server != nil {
			stopGroup(t, server)
		}
	})

	t.Run("make run-collector", func(t *testing.T) {
		requireFreePort(t, collectorPort, "make run-collector")
		uri := startMongotestd(t, clone)
		config := filepath.Join(t.TempDir(), "config.yml")
		if err := os.WriteFile(config, fmt.Appendf(nil, "collector:\n  store: {uri: %[1]q}\n  sources:\n    - {name: quickstart, uri: %[1]q}\n", uri), 0o600); err != nil {
			t.Fatal(err)
		}
		collector := startGroup(t, clone, "make run-collector CONFIG="+config)
		series := `oplog_capture_state{source_cluster="quickstart",state="running"} 1`
		eventually(t, 2*time.Minute, "make run-collector to serve "+series+" on :"+collectorPort, func() (bool, string) {
			if collector.exited() {
				skipIfPortTaken(t, collector)
				t.Fatalf("make run-collector exited: %v\n%s", collector.waitErr, tail(collector.stderr.String()))
			}
			text, err := scrape(t.Context(), "127.0.0.1:"+collectorPort, nil)
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(text, series), "not in its /metrics yet"
		})
		stopGroup(t, collector)
	})
}

// quickStartCommands returns the command lines of the first sh block of README.md's
// "Quick start" section after the demo's, without blank and comment-only lines.
func quickStartCommands(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(readme)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var commands []string
	inSection, inBlock := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			if inSection {
				return commands
			}
			inSection = line == "## Quick start"
		case !inSection:
		case strings.HasPrefix(line, "```"):
			if inBlock {
				// The demo's block is TestDemoLocal's (make demo-local runs until
				// stopped): the commands to follow here are in the next one.
				if !slices.Equal(commands, []string{demoLocalCommand}) {
					return commands
				}
				commands = nil
			}
			inBlock = strings.TrimPrefix(line, "```") == "sh"
		case inBlock:
			if trimmed := strings.TrimSpace(line); trimmed != "" && !strings.HasPrefix(trimmed, "#") {
				commands = append(commands, trimmed)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("%s has no \"## Quick start\" section with a ```sh block", readme)
	return nil
}

var localPort = regexp.MustCompile(`\blocalhost:(\d+)`)

// localPorts returns the ports on localhost the commands talk to.
func localPorts(commands []string) []string {
	var ports []string
	for _, c := range commands {
		for _, m := range localPort.FindAllStringSubmatch(c, -1) {
			ports = append(ports, m[1])
		}
	}
	return ports
}

// requireFreePort skips the test when another process listens on port: the README's
// commands use the daemons' fixed default ports, which the test cannot move.
func requireFreePort(t *testing.T, port, what string) {
	t.Helper()
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		t.Skipf("%s needs port %s, which another process holds here (%v): free it to run this test", what, port, err)
	}
	_ = l.Close()
}

// skipIfPortTaken skips the test when a daemon exited because another process took its
// port between requireFreePort's check and the daemon's start.
func skipIfPortTaken(t *testing.T, daemon *process) {
	t.Helper()
	if strings.Contains(daemon.stderr.String(), "address already in use") {
		t.Skipf("%s could not listen: another process took its port meanwhile:\n%s", daemon.name, tail(daemon.stderr.String()))
	}
}

// cloneHead clones the repository holding this test into a temporary directory and
// checks out its HEAD there; it returns the clone and the commit.
func cloneHead(t *testing.T) (dir, head string) {
	t.Helper()
	top, err := exec.Command("git", "-C", "..", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("the quick-start test clones the project's git repository, and %s is not in one (%v): run it from a git checkout", "..", err)
	}
	head = strings.TrimSpace(run(t, "..", "git", "rev-parse", "HEAD"))
	if status := run(t, "..", "git", "status", "--porcelain", "--untracked-files=no"); status != "" {
		t.Logf("uncommitted changes are not part of the clone, which tests HEAD %s:\n%s", head, status)
	}
	dir = filepath.Join(t.TempDir(), "clone")
	run(t, "..", "git", "clone", "--quiet", "--shared", "--no-checkout", strings.TrimSpace(string(top)), dir)
	run(t, dir, "git", "checkout", "--quiet", "--detach", head)
	return dir, head
}

// run runs a command to completion in dir and returns its standard output; a failure
// fails the test with the command's output.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s%s", name, strings.Join(args, " "), dir, err, out, tail(stderr.String()))
	}
	return string(out)
}

// runUntilServing runs a README command line with sh in dir until it succeeds. While a
// daemon started by an earlier line (server) runs, a failure is retried: the daemon may
// still be building or starting. It returns the command's output.
func runUntilServing(t *testing.T, dir, line string, server *process) string {
	t.Helper()
	// The commands besides make (curl) come from the Debian package of the same name.
	if program := strings.Fields(line)[0]; program != "make" {
		testsupport.Tool(t, program, program, "README.md's quick start")
	}
	var out []byte
	eventually(t, 2*time.Minute, "`"+line+"` to succeed", func() (bool, string) {
		if server != nil && server.exited() {
			skipIfPortTaken(t, server)
			t.Fatalf("%s exited (%v) before `%s` succeeded:\n%s", server.name, server.waitErr, line, tail(server.stderr.String()))
		}
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir = dir
		var err error
		out, err = cmd.CombinedOutput()
		if err != nil && server == nil {
			t.Fatalf("`%s`: %v\n%s", line, err, out)
		}
		return err == nil, fmt.Sprintf("%v: %s", err, tail(string(out)))
	})
	return string(out)
}

// startGroup starts a README command line that runs a daemon (through make) with sh in
// dir, in a process group of its own, so that stopping it reaches make and the daemon.
func startGroup(t *testing.T, dir, line string) *process {
	t.Helper()
	p := &process{name: "`" + line + "`", stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	// exec: make replaces sh and leads the group; GNU make passes a SIGTERM on to the
	// recipe it runs and waits for it before exiting.
	p.cmd = exec.Command("sh", "-c", "exec "+line)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s (%v)\nstdout:\n%s\nstderr:\n%s", p.name, p.waitErr, tail(p.stdout.String()), tail(p.stderr.String()))
		}
	})
	return p
}

// stopGroup sends SIGTERM to the group of a daemon started by startGroup, as Ctrl-C in
// the user's terminal would reach make and the daemon, and waits for make to exit.
func stopGroup(t *testing.T, p *process) {
	t.Helper()
	if p.exited() {
		t.Fatalf("%s had exited: %v\n%s", p.name, p.waitErr, tail(p.stderr.String()))
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("%s did not stop within a minute of SIGTERM", p.name)
	}
}

// startMongotestd builds the test MongoDB server from the clone and starts it on a free
// port; it returns its URI.
func startMongotestd(t *testing.T, clone string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mongotestd")
	run(t, clone, "go", "build", "-o", bin, "./internal/mongotest/cmd/mongotestd")
	p, err := startProcess(t, "mongotestd", bin, "--port", "0")
	if err != nil {
		t.Fatal(err)
	}
	var uri string
	eventually(t, time.Minute, "mongotestd to print its URI", func() (bool, string) {
		if line, _, ok := strings.Cut(p.stdout.String(), "\n"); ok {
			uri = strings.TrimSpace(line)
			return true, ""
		}
		if p.exited() {
			t.Fatalf("mongotestd exited: %v\n%s", p.waitErr, p.stderr)
		}
		return false, "nothing printed yet"
	})
	return uri
}
