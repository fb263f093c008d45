package pitrtest

import (
	"bufio"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Mongotestd runs bin, a built mongotestd (the test MongoDB server), as a process of its
// own, and returns its URI and a func that stops it (called at cleanup too): a fresh,
// empty cluster per replay target, whose memory goes with it.
func Mongotestd(tb testing.TB, bin string) (uri string, stop func()) {
	tb.Helper()
	cmd := exec.Command(bin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	tb.Cleanup(stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("mongotestd printed no URI: %v", err)
	}
	return strings.TrimSpace(line), stop
}
