package pitrtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

// CPU is the CPU time the server's process has used, from /proc (Linux; in clock ticks
// of 10 ms): what a benchmark's writes cost the server, apart from the client's.
func (s *Server) CPU() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	var utime, stime int64
	fmt.Sscan(fields[11], &utime) // fields 14 and 15 of stat, counted after the command
	fmt.Sscan(fields[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// OwnCPU is the CPU time this process has used.
func OwnCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
