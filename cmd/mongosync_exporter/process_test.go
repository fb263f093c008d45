package main

// The exporter as its tests run it: the binary built by TestMain, started as a process
// on a config file, and the stand-in mongosync it reads.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mongosyncStandIn answers /api/v1/progress with a recorded reply.
func mongosyncStandIn(t *testing.T, file string) *httptest.Server {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "..", "exporter", "testdata", "mongosync", file))
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/progress" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func writeConfig(t *testing.T, path string, urls ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("exporter:\n  mongosync:\n")
	if len(urls) == 0 {
		b.WriteString("    []\n")
	}
	for i, u := range urls {
		fmt.Fprintf(&b, "    - migration: orders\n      name: shard%d\n      url: %s\n", i, u)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// exporterProcess is a running mongosync_exporter.
type exporterProcess struct {
	cmd    *exec.Cmd
	url    string
	stderr *lineLog
}

type lineLog struct {
	ch  chan string
	all bytes.Buffer
}

var listeningOn = regexp.MustCompile(`msg="?Listening on"? .*address=(\S+)`)

func start(t *testing.T, args ...string) *exporterProcess {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--web.listen-address=127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &exporterProcess{cmd: cmd, stderr: &lineLog{ch: make(chan string, 1000)}}
	go func() {
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			p.stderr.ch <- scanner.Text()
		}
		close(p.stderr.ch)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	deadline := time.After(time.Minute) // against hanging only
	for {
		select {
		case line, ok := <-p.stderr.ch:
			if !ok {
				t.Fatalf("exporter exited before listening:\n%s", p.stderr.all.String())
			}
			p.stderr.all.WriteString(line + "\n")
			if m := listeningOn.FindStringSubmatch(line); m != nil {
				p.url = "http://" + m[1]
				return p
			}
		case <-deadline:
			t.Fatalf("exporter did not start listening:\n%s", p.stderr.all.String())
		}
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (p *exporterProcess) metrics(t *testing.T) string {
	t.Helper()
	code, body := httpGet(t, p.url+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	return body
}

// waitFor scrapes until the body contains want, for changes that a signal triggers.
func (p *exporterProcess) waitFor(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // against hanging only
	for {
		body := p.metrics(t)
		if strings.Contains(body, want) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %q:\n%s", want, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runBinary(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), out.String(), errOut.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}
