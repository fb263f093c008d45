package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/mongomigrate/observability/internal/testsupport"
)

// Where README.md's install instructions put things; the units name the same paths.
const (
	installBinDir = "/usr/local/bin/"
	installEtc    = "/etc/mongo-migration-observability/"
)

// systemdUnits are the units shipped in deploy/systemd and what each must say.
var systemdUnits = []struct {
	file, binary string
	subcommand   string // "" or the command before the flags
	optsVar      string // the environment variable that carries extra flags
	// shutdown is the longest the daemon takes to stop on SIGTERM: oplog_collector flushes
	// what it read and saves positions (about 10 s), then both let requests in flight
	// finish (at most 10 s). TimeoutStopSec must leave it that long before SIGKILL.
	shutdown time.Duration
}{
	{"systemd/mongosync_exporter.service", "mongosync_exporter", "", "MONGOSYNC_EXPORTER_OPTS", 10 * time.Second},
	{"systemd/oplog_collector.service", "oplog_collector", "run", "OPLOG_COLLECTOR_OPTS", 20 * time.Second},
}

// unitHardening are the [Service] settings every unit must have, with their values: an
// unprivileged user that exists only while the service runs, a read-only system, no way to
// gain privileges, restart on failure, reload by SIGHUP.
var unitHardening = map[string]string{
	"Type":                    "simple",
	"DynamicUser":             "yes",
	"NoNewPrivileges":         "yes",
	"CapabilityBoundingSet":   "",
	"AmbientCapabilities":     "",
	"ProtectSystem":           "strict",
	"ProtectHome":             "yes",
	"PrivateTmp":              "yes",
	"PrivateDevices":          "yes",
	"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	"RestrictSUIDSGID":        "yes",
	"MemoryDenyWriteExecute":  "yes",
	"SystemCallArchitectures": "native",
	"UMask":                   "0077",
	"Restart":                 "on-failure",
	"ExecReload":              "/bin/kill -HUP $MAINPID",
}

// unitOptions reads a unit file into section -> key -> values, with systemd's own parser
// rules (go-systemd's unit package).
func unitOptions(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sections, err := unit.DeserializeSections(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]map[string][]string{}
	for _, s := range sections {
		if out[s.Section] == nil {
			out[s.Section] = map[string][]string{}
		}
		for _, e := range s.Entries {
			out[s.Section][e.Name] = append(out[s.Section][e.Name], e.Value)
		}
	}
	return out
}

var execFlag = regexp.MustCompile(`^--([a-z][a-z0-9._-]*)(?:=(.*))?$`)

// The units run the binary from the install directory on the shared config.yml, with
// flags the binary has, hardened, restarted on failure, reloaded by SIGHUP, given the time
// their shutdown takes, and secrets from a root-only environment file.
func TestSystemdUnits(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range systemdUnits {
		t.Run(u.binary, func(t *testing.T) {
			opts := unitOptions(t, u.file)
			service := opts["Service"]
			one := func(key string) string {
				t.Helper()
				if len(service[key]) != 1 {
					t.Errorf("[Service] %s is given %d times, want once", key, len(service[key]))
					return ""
				}
				return service[key][0]
			}
			for key, want := range unitHardening {
				if got := one(key); got != want {
					t.Errorf("[Service] %s=%q, want %q", key, got, want)
				}
			}
			if got := strings.Join(service["SystemCallFilter"], " | "); got != "@system-service | ~@privileged" {
				t.Errorf("SystemCallFilter %q: allow @system-service, then deny @privileged", got)
			}

			// ExecStart: binary, subcommand, flags the binary knows, then $<OPTS>.
			args := strings.Fields(one("ExecStart"))
			if len(args) == 0 || args[0] != installBinDir+u.binary {
				t.Fatalf("ExecStart %q does not run %s%s", args, installBinDir, u.binary)
			}
			args = args[1:]
			var sub []string
			if u.subcommand != "" {
				if len(args) == 0 || args[0] != u.subcommand {
					t.Fatalf("ExecStart does not run the %q command: %q", u.subcommand, args)
				}
				sub, args = []string{u.subcommand}, args[1:]
			}
			if len(args) == 0 || args[len(args)-1] != "$"+u.optsVar {
				t.Errorf("ExecStart should end with $%s, for flags from the environment file: %q", u.optsVar, args)
			} else {
				args = args[:len(args)-1]
			}
			help := helpText(t, binary(t, u.binary), sub...)
			flags := map[string]string{}
			for _, a := range args {
				m := execFlag.FindStringSubmatch(a)
				if m == nil {
					t.Errorf("ExecStart argument %q is not a --flag=value", a)
					continue
				}
				flags[m[1]] = m[2]
				if !strings.Contains(help, "--"+m[1]+"=") && !strings.Contains(help, "--[no-]"+m[1]) {
					t.Errorf("ExecStart passes --%s, which `%s --help` does not list", m[1], u.binary)
				}
			}
			if got := flags["config.file"]; got != installEtc+"config.yml" {
				t.Errorf("--config.file=%q, want %sconfig.yml", got, installEtc)
			}

			envFile := installEtc + u.binary + ".env"
			if got := one("EnvironmentFile"); got != "-"+envFile {
				t.Errorf("EnvironmentFile=%q, want -%s (optional, root-only)", got, envFile)
			}
			stop, err := time.ParseDuration(one("TimeoutStopSec"))
			if err != nil || stop <= u.shutdown {
				t.Errorf("TimeoutStopSec=%q (%v): must exceed the %s its shutdown takes", one("TimeoutStopSec"), err, u.shutdown)
			}
			if got := opts["Install"]["WantedBy"]; len(got) != 1 || got[0] != "multi-user.target" {
				t.Errorf("[Install] WantedBy=%q, want multi-user.target", got)
			}
			for _, key := range []string{"Wants", "After"} {
				if got := opts["Unit"][key]; len(got) != 1 || got[0] != "network-online.target" {
					t.Errorf("[Unit] %s=%q, want network-online.target", key, got)
				}
			}
			for _, want := range []string{installEtc + "config.yml", envFile, "systemctl enable --now " + u.binary} {
				if !strings.Contains(string(readme), want) {
					t.Errorf("README.md's install instructions do not mention %q", want)
				}
			}
		})
	}
}

// systemd's own checker accepts the units: known keys, valid values, an executable
// ExecStart (pointed at a binary built from this checkout).
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze := testsupport.Tool(t, "systemd-analyze", "systemd", "checking the systemd units with systemd-analyze verify")
	dir := t.TempDir()
	for _, u := range systemdUnits {
		data, err := os.ReadFile(u.file)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(string(data), "ExecStart="+installBinDir+u.binary, "ExecStart="+binary(t, u.binary), 1)
		copyPath := filepath.Join(dir, filepath.Base(u.file))
		if err := os.WriteFile(copyPath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u.file, err, out)
		}
	}
}
