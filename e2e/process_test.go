package e2e

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mongomigrate/observability/internal/testsupport"
)

// syncBuffer collects a process's output; it is read while the process writes.
type syncBuffer = testsupport.LogBuffer

// process is one run of a program started by the test.
type process struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed once the process has exited and been reaped
	waitErr        error         // valid after done
}

// startProcess starts bin with args. The process is killed (SIGKILL, by its own pid) at
// owner's cleanup if it still runs then, and its output is logged when owner failed.
func startProcess(owner *testing.T, name, bin string, args ...string) (*process, error) {
	p := &process{name: name, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	owner.Cleanup(func() {
		p.kill()
		if owner.Failed() {
			owner.Logf("--- %s %s (%v)\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), p.waitErr, tail(p.stdout.String()), tail(p.stderr.String()))
		}
	})
	return p, nil
}

func tail(s string) string {
	const max = 6000
	if len(s) > max {
		return "[...]" + s[len(s)-max:]
	}
	return s
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL unless the process has exited, and waits until it is reaped.
func (p *process) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
	}
}

// stop sends sig and waits for the process to exit, killing it after timeout.
func (p *process) stop(sig syscall.Signal, timeout time.Duration) error {
	if p.exited() {
		return fmt.Errorf("%s had already exited: %v", p.name, p.waitErr)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not exit within %s of %v; killed", p.name, timeout, sig)
	}
}

var listeningOn = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

// address waits for the process to log the address it listens on, as the exporter
// toolkit does ("Listening on" address=127.0.0.1:NNNN).
func (p *process) address(t *testing.T) string {
	t.Helper()
	var addr string
	eventually(t, time.Minute, p.name+" to log its listening address", func() (bool, string) {
		if m := listeningOn.FindStringSubmatch(p.stderr.String()); m != nil {
			addr = m[1]
			return true, ""
		}
		if p.exited() {
			t.Fatalf("%s exited (%v) before listening:\n%s", p.name, p.waitErr, tail(p.stderr.String()))
		}
		return false, "no address logged yet"
	})
	return addr
}

// eventually polls cond until it holds, failing the test after timeout. The timeout
// only stops a hang; nothing depends on how fast the condition is met.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %s", timeout, what, detail)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
