package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a program the demo runs: one of the project's daemons, Prometheus or
// Alertmanager. Its output goes to a log file in the demo's directory.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once it has exited and been reaped
	waitErr error         // valid after done

	mu      sync.Mutex
	address string // where it listens, once it has said so
	tail    []byte // the end of its output, for errors
}

// addr is where the child listens ("" until it has said so).
func (c *child) addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.address
}

// listeningOn is the line the exporter toolkit logs (the project's daemons, Prometheus,
// Alertmanager) once it listens.
var listeningOn = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

func startChild(name, logPath, bin string, args ...string) (*child, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	c := &child{name: name, logPath: logPath, done: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	out := io.MultiWriter(logFile, c)
	c.cmd.Stdout, c.cmd.Stderr = out, out
	c.cmd.SysProcAttr = childAttributes()
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	return c, nil
}

// Write keeps the end of the output and notes the address the child listens on.
func (c *child) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tail = append(c.tail, p...)
	if c.address == "" {
		if m := listeningOn.FindSubmatch(c.tail); m != nil {
			c.address = string(m[1])
		}
	}
	if len(c.tail) > 8192 {
		c.tail = c.tail[len(c.tail)-8192:]
	}
	return len(p), nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// lastLines is the end of the child's output.
func (c *child) lastLines(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := strings.Split(strings.TrimRight(string(c.tail), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// failure describes a child that exited when it should not have.
func (c *child) failure() error {
	return fmt.Errorf("%s exited (%v); the end of its log (%s):\n%s", c.name, c.waitErr, c.logPath, indent(c.lastLines(15)))
}

// listenAddress waits until the child says where it listens.
func (c *child) listenAddress(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		addr := c.addr()
		switch {
		case addr != "":
			return addr, nil
		case c.exited():
			return "", c.failure()
		case time.Now().After(deadline):
			return "", fmt.Errorf("%s did not start listening within %s; the end of its log (%s):\n%s", c.name, timeout, c.logPath, indent(c.lastLines(15)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the child to exit, killing it after grace.
func (c *child) stop(grace time.Duration) error {
	if c.exited() {
		return nil
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within %s of SIGTERM: killed", c.name, grace)
	}
}

func indent(text string) string {
	var b bytes.Buffer
	for _, line := range strings.Split(text, "\n") {
		b.WriteString("    " + line + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// awaitReady waits until the child's /-/ready answers 200.
func (d *demo) awaitReady(ctx context.Context, c *child) error {
	url := "http://" + c.addr() + "/-/ready"
	deadline := time.Now().Add(2 * time.Minute)
	for {
		status, body := get(ctx, url)
		switch {
		case status == http.StatusOK:
			return nil
		case c.exited():
			return c.failure()
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("%s is not ready after two minutes: %s %s; the end of its log (%s):\n%s", c.name, url, body, c.logPath, indent(c.lastLines(15)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get returns a GET's status and body (0 and the error when it fails).
func get(ctx context.Context, url string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, strings.TrimSpace(string(body))
}
