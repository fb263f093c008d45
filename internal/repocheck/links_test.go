package repocheck

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mongomigrate/observability/internal/testsupport"
)

// markdownLink matches the target of an inline Markdown link: [text](target).
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// Every relative link of the repository's Markdown files reaches a file that exists and,
// when it names an anchor in a Markdown file, a heading of that file: moving a section
// from one page to another must not leave a reader at a dead end.
func TestMarkdownLinksResolve(t *testing.T) {
	root := repoRoot(t)
	files := trackedFiles(t, root, "*.md")
	if len(files) < 5 {
		t.Fatalf("found %d Markdown files: the test is not reading the repository", len(files))
	}
	anchors := map[string]map[string]bool{} // file -> its headings' anchors
	anchorsOf := func(file string) map[string]bool {
		if a, ok := anchors[file]; ok {
			return a
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			t.Fatal(err)
		}
		anchors[file] = testsupport.HeadingAnchors(string(data))
		return anchors[file]
	}
	for _, file := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range relativeLinks(string(data)) {
			target, anchor, _ := strings.Cut(l.target, "#")
			resolved := file
			if target != "" {
				resolved = path.Join(path.Dir(file), target)
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(resolved))); err != nil {
					t.Errorf("%s:%d: link to %s: %s does not exist", file, l.line, l.target, resolved)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(resolved, ".md") && !anchorsOf(resolved)[anchor] {
				t.Errorf("%s:%d: link to %s: %s has no heading whose anchor is #%s", file, l.line, l.target, resolved, anchor)
			}
		}
	}
}

// link is a link's target and the line it is on.
type link struct {
	target string
	line   int
}

// relativeLinks returns the links of a Markdown text that point into the repository (not
// to a URL), outside code blocks and code spans.
func relativeLinks(text string) []link {
	var links []link
	inFence := false
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		for _, m := range markdownLink.FindAllStringSubmatch(withoutCodeSpans(line), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links = append(links, link{target, i + 1})
		}
	}
	return links
}

// withoutCodeSpans returns line with its `code spans` emptied.
func withoutCodeSpans(line string) string {
	parts := strings.Split(line, "`")
	for i := 1; i < len(parts); i += 2 {
		parts[i] = ""
	}
	return strings.Join(parts, "`")
}

// trackedFiles returns the files git tracks that match pattern, relative to root.
func trackedFiles(t *testing.T, root, pattern string) []string {
	t.Helper()
	var files []string
	for _, f := range gitLsFiles(t, root) {
		if ok, _ := path.Match(pattern, path.Base(f)); ok {
			files = append(files, f)
		}
	}
	return files
}
