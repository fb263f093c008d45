package exporter

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongomigrate/observability/internal/config"
)

// standInProcessEnv, when set to a delay such as "100ms", turns the test binary into a
// mongosync stand-in process: benchmarks run it apart so that its allocations are not
// counted as the exporter's.
const standInProcessEnv = "MONGOSYNC_EXPORTER_STANDIN_DELAY"

func TestMain(m *testing.M) {
	if delay := os.Getenv(standInProcessEnv); delay != "" {
		if err := runStandInProcess(delay); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runStandInProcess answers every .../api/v1/progress with v1.22-full.json after delay,
// prints its address, and exits when its standard input closes.
func runStandInProcess(delay string) error {
	wait, err := time.ParseDuration(delay)
	if err != nil {
		return err
	}
	body, err := os.ReadFile(filepath.Join("testdata", "mongosync", "v1.22-full.json"))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(l.Addr().String())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	return http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(wait)
		w.Write(body)
	}))
}

func startStandInProcess(b *testing.B, delay time.Duration) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), standInProcessEnv+"="+delay.String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	return "http://" + startChild(b, cmd, func() { stdin.Close() })
}

// startChild starts cmd, returns the first line it prints (its address), and has stop
// end it when the benchmark ends.
func startChild(b *testing.B, cmd *exec.Cmd, stop func()) string {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stop()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("%s printed no address: %v", cmd.Path, err)
	}
	return strings.TrimSpace(line)
}

// BenchmarkScrape measures one whole scrape (HTTP handler to exposition text) of n
// mongosync instances that each answer after a delay. Instances are read concurrently,
// so 50 instances answering after 100 ms take about 100 ms, not 5 s.
// allocs/op counts the exporter's process only: the stand-in runs apart.
func BenchmarkScrape(b *testing.B) {
	for _, delay := range []time.Duration{0, 100 * time.Millisecond} {
		base := startStandInProcess(b, delay)
		for _, n := range []int{1, 10, 50} {
			b.Run(fmt.Sprintf("targets=%d/reply_after=%s", n, delay), func(b *testing.B) {
				var targets []config.Mongosync
				for i := range n {
					targets = append(targets, config.Mongosync{
						Migration: "bench", Name: fmt.Sprintf("shard%d", i),
						URL: fmt.Sprintf("%s/shard%d", base, i), Timeout: 10 * time.Second,
					})
				}
				e := New(map[string]bool{"mongosync": true}, 0, log.NewNopLogger())
				if err := e.ApplyConfig(&config.Config{Exporter: config.Exporter{Mongosync: targets}}); err != nil {
					b.Fatal(err)
				}
				h := e.Handler(prometheus.NewRegistry(), 0)
				scrapeOnce := func() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
					if want := fmt.Sprintf(`mongosync_up{migration="bench",mongosync="shard%d"} 1`, n-1); !strings.Contains(rec.Body.String(), want) {
						b.Fatalf("scrape lacks %s", want)
					}
				}
				scrapeOnce() // open the keep-alive connections outside the timing
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					scrapeOnce()
				}
			})
		}
	}
}

// BenchmarkParseAndEmit is the per-instance work once the reply is in: parse the JSON and
// build the const metrics.
func BenchmarkParseAndEmit(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "mongosync", "v1.22-full.json"))
	if err != nil {
		b.Fatal(err)
	}
	stats := &scraperStats{}
	b.ReportAllocs()
	for b.Loop() {
		p, _, err := parseProgress(body)
		if err != nil {
			b.Fatal(err)
		}
		emitProgress(emitter{out: newBatch(stats), labels: []string{"bench", "shard0"}}, p)
	}
}

// mongotestd is the test server run as a process of its own.
type mongotestd struct {
	uri string
	pid int
}

// startMongotestd builds and starts mongotestd; it stops with the benchmark.
func startMongotestd(b *testing.B) mongotestd {
	binary := filepath.Join(b.TempDir(), "mongotestd")
	build := exec.Command("go", "build", "-o", binary, "../internal/mongotest/cmd/mongotestd")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatalf("building mongotestd: %v", err)
	}
	cmd := exec.Command(binary)
	uri := startChild(b, cmd, func() { _ = cmd.Process.Signal(os.Interrupt) })
	return mongotestd{uri: uri, pid: cmd.Process.Pid}
}

// processCPU is the user and system CPU time a process has used so far, from
// /proc/<pid>/stat (in clock ticks of 10 ms).
func processCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
