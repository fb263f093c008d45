package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDocker is a docker command for the tests of `make demo`'s checks (this machine has
// no Docker engine): it records its arguments, and fails as docker does for what it
// lacks: a compose plugin, a running daemon.
const fakeDocker = `#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
case "$1" in
compose)
	[ -n "$NO_COMPOSE" ] && { echo "docker: 'compose' is not a docker command."; echo "Usage:  docker [OPTIONS] COMMAND"; exit 1; } ;;
info)
	[ -n "$NO_DAEMON" ] && { echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1; } ;;
esac
exit 0
`

// make demo says exactly what is missing (the Docker CLI, the compose plugin, a running
// daemon), with the command that checks it, points at make demo-local, and never lets
// docker print its usage text; with everything there it runs docker compose up.
func TestMakeDemoSaysWhatIsMissing(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skipf("needs make: %v", err)
	}
	// The commands the Makefile and the fake run, alone in a directory of their own, so
	// that PATH can leave out a docker this machine may have.
	tools := t.TempDir()
	for _, name := range []string{"sh", "git", "id", "hostname", "date", "dirname"} {
		path, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("needs %s: %v", name, err)
		}
		if err := os.Symlink(path, filepath.Join(tools, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name        string
		docker      bool
		env         []string
		want        []string
		wantExit    int
		wantCompose bool
	}{
		{name: "no docker CLI", want: []string{"the Docker CLI (docker) is not on PATH", "check with: command -v docker"}, wantExit: 2},
		{name: "no compose plugin", docker: true, env: []string{"NO_COMPOSE=1"}, want: []string{"the compose plugin is missing", "check with: docker compose version"}, wantExit: 2},
		{name: "no daemon", docker: true, env: []string{"NO_DAEMON=1"}, want: []string{"no Docker daemon answers", "check with: docker info"}, wantExit: 2},
		{name: "all there", docker: true, wantCompose: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			if tc.docker {
				if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(fakeDocker), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(makeBin, "--no-print-directory", "demo", "MONGOSYNC_ACCEPT_LICENSE=yes")
			cmd.Dir = root
			cmd.Env = append([]string{"PATH=" + bin + ":" + tools, "HOME=" + t.TempDir()}, tc.env...)
			out, err := cmd.CombinedOutput()
			exit := 0
			if e, ok := err.(*exec.ExitError); ok {
				exit = e.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			text := string(out)
			if exit != tc.wantExit {
				t.Errorf("make demo exited %d, want %d:\n%s", exit, tc.wantExit, text)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("make demo does not say %q:\n%s", w, text)
				}
			}
			if tc.wantExit != 0 && !strings.Contains(text, "make demo-local") {
				t.Errorf("make demo does not point at make demo-local:\n%s", text)
			}
			if strings.Contains(text, "Usage:") || strings.Contains(text, "unknown flag") {
				t.Errorf("make demo let docker print its usage text:\n%s", text)
			}
			calls, _ := os.ReadFile(filepath.Join(bin, "calls"))
			if ran := strings.Contains(string(calls), "compose up --detach --build"); ran != tc.wantCompose {
				t.Errorf("docker compose up ran: %v, want %v (calls:\n%s)", ran, tc.wantCompose, calls)
			}
		})
	}
}
