package repocheck

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// layoutHeading is the README section whose table maps the repository for a newcomer.
const layoutHeading = "## Layout"

// backticked matches the `path`s of a table cell.
var backticked = regexp.MustCompile("`([^`]+)`")

// README.md's layout table is the map of the repository: every Go package's directory and
// every top-level directory has its row, and every path the table names exists.
func TestReadmeLayoutMatchesTheTree(t *testing.T) {
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	listed, err := layoutPaths(readme)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range listed {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
			t.Errorf("README.md's layout table names %s, which does not exist", p)
		}
	}
	for _, dir := range goList(t, "-f", "{{.Dir}}", "./...") {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		if rel = filepath.ToSlash(rel); !slices.Contains(listed, rel) {
			t.Errorf("README.md's layout table has no row for the package in %s/: add one that says what it does", rel)
		}
	}
	// A top-level directory is on the map with its own row or with rows of what it holds
	// (cmd/ by cmd/mongosync_exporter and cmd/oplog_collector).
	for _, dir := range topLevelDirectories(t, root) {
		if !slices.ContainsFunc(listed, func(p string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }) {
			t.Errorf("README.md's layout table has no row for the top-level directory %s/: add one that says what it holds", dir)
		}
	}
}

// layoutPaths returns the paths in the first column of the layout table, without a
// trailing slash.
func layoutPaths(readme []byte) ([]string, error) {
	var paths []string
	inSection, rows := false, 0
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			if inSection {
				break
			}
			inSection = line == layoutHeading
			continue
		}
		if !inSection || !strings.HasPrefix(line, "|") {
			continue
		}
		rows++
		cells := strings.Split(line, "|")
		if rows <= 2 || len(cells) < 3 { // the header and its separator
			continue
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			paths = append(paths, strings.TrimSuffix(m[1], "/"))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, errNoLayout
	}
	return paths, nil
}

var errNoLayout = errors.New("README.md has no " + layoutHeading + " section with a table whose first column names paths in backticks")

// topLevelDirectories returns the top-level directories git tracks files in (so that a
// build's output or a scratch directory does not count).
func topLevelDirectories(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	for _, f := range gitLsFiles(t, root) {
		if dir, _, ok := strings.Cut(f, "/"); ok {
			dirs = append(dirs, dir)
		}
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}
