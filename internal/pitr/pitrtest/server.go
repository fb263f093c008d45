package pitrtest

import (
	"bufio"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mongomigrate/observability/internal/testsupport"
)

// Server is a mongotestd (the test MongoDB server) running as a process of its own.
type Server struct {
	URI  string
	cmd  *exec.Cmd
	once sync.Once
}

// Mongotestd runs bin, a built mongotestd, and returns it, stopped at cleanup (or by
// Stop): a fresh, empty cluster per replay target, whose memory goes with it.
func Mongotestd(tb testing.TB, bin string) *Server {
	tb.Helper()
	cmd := exec.Command(bin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	s := &Server{cmd: cmd}
	tb.Cleanup(s.Stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("mongotestd printed no URI: %v", err)
	}
	s.URI = strings.TrimSpace(line)
	return s
}

// Stop ends the server.
func (s *Server) Stop() { s.once.Do(func() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() }) }

// CPU is the CPU time the server's process has used (testsupport.ProcessCPU).
func (s *Server) CPU() time.Duration { return testsupport.ProcessCPU(s.cmd.Process.Pid) }
