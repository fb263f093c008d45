package deploy

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	releaseName    = "mongo-migration-observability"
	releaseVersion = "0.0.0-releasetest"
)

// releaseArches are the architectures `make release` builds for Linux, with their ELF
// machine.
var releaseArches = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// releaseFiles are the files of a release directory besides the binaries, and where each
// comes from in the repository.
func releaseFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{
		"LICENSE": "LICENSE", "README.md": "README.md", "CHANGELOG.md": "CHANGELOG.md",
		"config.yml": "config.yml", "web-config.example.yml": "deploy/web-config.example.yml",
	}
	for dst, pattern := range map[string]string{
		"systemd": "deploy/systemd/*.service", "alerts": "alerts/*.yml",
		"dashboards": "dashboards/*.json", "docs": "docs/*.md",
	} {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil || len(matches) == 0 {
			t.Fatalf("no %s in the repository: %v", pattern, err)
		}
		for _, m := range matches {
			files[dst+"/"+filepath.Base(m)] = strings.TrimPrefix(m, root+string(filepath.Separator))
		}
	}
	return files
}

// `make release` builds one tarball per architecture, in promu's layout (one directory,
// <name>-<version>.linux-<arch>/, holding both binaries and the files to install and
// read), and sha256sums.txt over them. Every checksum verifies; every tarball extracts
// safely (relative paths, owned by root, nothing else); the binaries are static ELF
// executables for the tarball's architecture built with -trimpath and the version given;
// the other files are the repository's, byte for byte; and the binaries for this machine
// run and print that version.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a full run (-short was given): it cross-compiles both binaries for two architectures; run go test without -short")
	}
	for _, tool := range []string{"make", "tar", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("make release needs %s on PATH: %v", tool, err)
		}
	}
	dist := t.TempDir()
	start := time.Now()
	cmd := exec.Command("make", "release", "VERSION="+releaseVersion, "DIST="+dist)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	t.Logf("make release took %s", time.Since(start).Round(time.Millisecond))

	tarballs := verifyChecksums(t, dist)
	var want []string
	for arch := range releaseArches {
		want = append(want, fmt.Sprintf("%s-%s.linux-%s.tar.gz", releaseName, releaseVersion, arch))
	}
	slices.Sort(want)
	if !slices.Equal(tarballs, want) {
		t.Fatalf("sha256sums.txt lists %v, want %v", tarballs, want)
	}
	if entries, _ := os.ReadDir(dist); len(entries) != len(want)+1 {
		t.Errorf("%s holds %d entries, want the tarballs and sha256sums.txt only", dist, len(entries))
	}
	files := releaseFiles(t)
	for arch, machine := range releaseArches {
		t.Run(arch, func(t *testing.T) {
			dir := fmt.Sprintf("%s-%s.linux-%s", releaseName, releaseVersion, arch)
			contents := readTarball(t, filepath.Join(dist, dir+".tar.gz"), dir)
			for name, src := range files {
				want, err := os.ReadFile(filepath.Join(root, src))
				if err != nil {
					t.Fatal(err)
				}
				if got, ok := contents[name]; !ok {
					t.Errorf("%s is missing (from %s)", name, src)
				} else if !bytes.Equal(got.data, want) {
					t.Errorf("%s differs from the repository's %s", name, src)
				}
			}
			for _, bin := range []string{"mongosync_exporter", "oplog_collector"} {
				f, ok := contents[bin]
				if !ok {
					t.Errorf("%s is missing", bin)
					continue
				}
				if f.mode&0o111 == 0 {
					t.Errorf("%s is not executable: mode %o", bin, f.mode)
				}
				checkBinary(t, bin, f.data, arch, machine)
				if arch == runtime.GOARCH && runtime.GOOS == "linux" {
					checkVersion(t, bin, f.data)
				}
			}
			for name := range contents {
				if _, isFile := files[name]; !isFile && name != "mongosync_exporter" && name != "oplog_collector" {
					t.Errorf("unexpected file %s in the tarball", name)
				}
			}
		})
	}
}

// verifyChecksums runs `sha256sum --check --strict` on sha256sums.txt, as a user would, and
// returns the files it lists, sorted.
func verifyChecksums(t *testing.T, dist string) []string {
	t.Helper()
	cmd := exec.Command("sha256sum", "--check", "--strict", "sha256sums.txt")
	cmd.Dir = dist
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum --check: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dist, "sha256sums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if _, name, ok := strings.Cut(line, "  "); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

type tarFile struct {
	mode fs.FileMode
	data []byte
}

// tarEntry is a line of GNU tar's verbose listing: mode, owner/group, size, date, time, name.
var tarEntry = regexp.MustCompile(`^([d-])[rwx-]{9} (\d+)/(\d+) +\d+ \S+ \S+ (.+)$`)

// readTarball lists a release tarball with tar, failing on any entry that would extract
// outside dir, is not owned by root, or is neither a directory nor a regular file; then
// extracts it and returns its regular files by their path inside dir.
func readTarball(t *testing.T, file, dir string) map[string]tarFile {
	t.Helper()
	listing, err := exec.Command("tar", "--numeric-owner", "-tvzf", file).Output()
	if err != nil {
		t.Fatalf("tar -tvzf %s: %v", file, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(listing)), "\n") {
		m := tarEntry.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s: %q is neither a file nor a directory", file, line)
			continue
		}
		name := path.Clean(m[4])
		if rel, inside := strings.CutPrefix(name, dir+"/"); name != dir && (!inside || strings.HasPrefix(rel, "../")) {
			t.Errorf("%s: entry %q is outside %s/", file, m[4], dir)
		}
		if m[2] != "0" || m[3] != "0" {
			t.Errorf("%s: %s is owned by %s:%s, want 0:0", file, m[4], m[2], m[3])
		}
	}
	extracted := t.TempDir()
	if out, err := exec.Command("tar", "-C", extracted, "-xzf", file).CombinedOutput(); err != nil {
		t.Fatalf("tar -xzf %s: %v\n%s", file, err, out)
	}
	files := map[string]tarFile{}
	top := filepath.Join(extracted, dir)
	err = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(top, p)
		files[filepath.ToSlash(rel)] = tarFile{mode: info.Mode(), data: data}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return files
}

// checkBinary checks that data is a static ELF executable for arch, built with
// -trimpath, CGO off, and this project's main package.
func checkBinary(t *testing.T, name string, data []byte, arch string, machine elf.Machine) {
	t.Helper()
	e, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Errorf("%s: not an ELF file: %v", name, err)
		return
	}
	if e.Machine != machine || e.Class != elf.ELFCLASS64 || e.Type != elf.ET_EXEC {
		t.Errorf("%s: ELF %v %v %v, want %v ELFCLASS64 ET_EXEC", name, e.Machine, e.Class, e.Type, machine)
	}
	for _, p := range e.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: dynamically linked (has an interpreter); release binaries are static", name)
		}
	}
	info, err := buildinfo.Read(bytes.NewReader(data))
	if err != nil {
		t.Errorf("%s: no Go build information: %v", name, err)
		return
	}
	if want := "github.com/mongomigrate/observability/cmd/" + name; info.Path != want {
		t.Errorf("%s: main package %s, want %s", name, info.Path, want)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for key, want := range map[string]string{"GOOS": "linux", "GOARCH": arch, "CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[key] != want {
			t.Errorf("%s: build setting %s=%q, want %q", name, key, settings[key], want)
		}
	}
	// -trimpath leaves -ldflags out of the build information: look for the version itself.
	if !bytes.Contains(data, []byte(releaseVersion)) {
		t.Errorf("%s: the version %s is not in the binary (-ldflags -X ...version.Version)", name, releaseVersion)
	}
}

// checkVersion runs a binary of this machine's architecture and checks the version it
// prints.
func checkVersion(t *testing.T, name string, data []byte) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), name+", version "+releaseVersion) {
		t.Errorf("%s --version: %v\n%s", name, err, out)
	}
}
