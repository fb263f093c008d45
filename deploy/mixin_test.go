package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// mixinDir holds the monitoring mixin, the jsonnet sources of the dashboards and rules.
const mixinDir = "deploy/mongo-migration-mixin"

// renderMixin runs `make mixin` into a new directory, with the _config overrides of
// config (jsonnet) when it is not empty, and returns the directory.
func renderMixin(t *testing.T, config string) string {
	t.Helper()
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skipf("rendering the mixin needs make: %v", err)
	}
	out := t.TempDir()
	args := []string{"--no-print-directory", "-C", root, "mixin", "MIXIN_OUT=" + out}
	if config != "" {
		file := filepath.Join(t.TempDir(), "config.libsonnet")
		if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "MIXIN_CONFIG="+file)
	}
	if res, err := exec.Command(makeBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("make mixin: %v\n%s", err, res)
	}
	return out
}

// generatedFiles are the files of the repository that the mixin generates.
func generatedFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{"dashboards/*.json", "alerts/*.yml"} {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			rel, err := filepath.Rel(root, m)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, filepath.ToSlash(rel))
		}
	}
	slices.Sort(out)
	return out
}

// filesUnder returns the files under dir, as slash-separated paths relative to it.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// The committed dashboards and rule files are exactly what the mixin renders, byte for
// byte, and the mixin renders no file the repository lacks.
func TestMixinRendersTheCommittedFiles(t *testing.T) {
	out := renderMixin(t, "")
	rendered, committed := filesUnder(t, out), generatedFiles(t)
	if !slices.Equal(rendered, committed) {
		t.Fatalf("the mixin renders %v; the repository has %v: add the file to the mixin (or remove it), then run make mixin", rendered, committed)
	}
	for _, name := range rendered {
		want, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what %s renders (%s): edit the mixin, not the file, and run make mixin", name, mixinDir, firstDifference(got, want))
		}
	}
}

// firstDifference names the first line where got and want differ.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			return fmt.Sprintf("line %d is %q, the render has %q", i+1, gl, wl)
		}
	}
	return "no line differs"
}

// jsonnet runs go-jsonnet, the version the Makefile pins, on a program and returns its
// JSON output.
func jsonnet(t *testing.T, program string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^JSONNET\s*\?=\s*(\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("the Makefile sets no JSONNET ?= <module>@<version>")
	}
	file := filepath.Join(t.TempDir(), "program.jsonnet")
	if err := os.WriteFile(file, []byte(program), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("go", "run", string(m[1]), file)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run %s: %v\n%s", m[1], err, stderr.String())
	}
	return out
}

// The YAML and JSON the repository writes (lib/manifest.libsonnet) hold the same data as
// the mixin's prometheusAlerts, prometheusRules and grafanaDashboards: what a vendoring
// user renders with std.manifestYamlDoc or any other writer is what the files say.
func TestMixinFilesHoldTheMixinsData(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join(root, mixinDir))
	if err != nil {
		t.Fatal(err)
	}
	out := jsonnet(t, fmt.Sprintf(`local mixin = import %q;
{
  'alerts/alerts.yml': mixin.prometheusAlerts,
  'alerts/recording.yml': mixin.prometheusRules,
} + { ['dashboards/' + name]: mixin.grafanaDashboards[name] for name in std.objectFields(mixin.grafanaDashboards) }
`, filepath.Join(dir, "mixin.libsonnet")))
	var data map[string]any
	if err := json.Unmarshal(out, &data); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(data)), generatedFiles(t); !slices.Equal(got, want) {
		t.Fatalf("the mixin holds %v, the repository %v", got, want)
	}
	for name, want := range data {
		raw, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		var got any
		if strings.HasSuffix(name, ".json") {
			err = json.Unmarshal(raw, &got)
		} else {
			err = yaml.Unmarshal(raw, &got)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Through JSON, so that both sides hold the same Go types.
		normal, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(normal, &got); err != nil {
			t.Fatal(err)
		}
		if diff := firstDataDifference("", got, want); diff != "" {
			t.Errorf("%s does not hold the mixin's data: %s", name, diff)
		}
	}
}

// firstDataDifference returns where two decoded JSON values first differ, or "".
func firstDataDifference(path string, got, want any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: %T, want an object", path, got)
		}
		for _, k := range slices.Sorted(maps.Keys(w)) {
			if _, ok := g[k]; !ok {
				return fmt.Sprintf("%s/%s: missing", path, k)
			}
			if d := firstDataDifference(path+"/"+k, g[k], w[k]); d != "" {
				return d
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				return fmt.Sprintf("%s/%s: not in the mixin", path, k)
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: %v, want %d elements", path, got, len(w))
		}
		for i := range w {
			if d := firstDataDifference(fmt.Sprintf("%s[%d]", path, i), g[i], w[i]); d != "" {
				return d
			}
		}
	default:
		if got != want {
			return fmt.Sprintf("%s: %#v, want %#v", path, got, want)
		}
	}
	return ""
}
