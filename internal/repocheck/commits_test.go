package repocheck

import (
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"
)

// maxSubjectRunes is the longest a commit subject may be, so that `git log --oneline`
// stays readable: the story goes in the body.
const maxSubjectRunes = 72

// subjectRuleSince is the last commit before the rule: the commits after it keep it.
const subjectRuleSince = "187af68097ab6b45d327d7667e31c669be2e3e27"

// Every commit since the rule has a subject of at most 72 characters.
func TestCommitSubjects(t *testing.T) {
	root := repoRoot(t)
	if err := exec.Command("git", "-C", root, "cat-file", "-e", subjectRuleSince+"^{commit}").Run(); err != nil {
		t.Skipf("needs the repository's history back to %s (a full clone), to know which commits the rule covers: %v", subjectRuleSince[:12], err)
	}
	out, err := exec.Command("git", "-C", root, "log", "--format=%h %s", subjectRuleSince+"..HEAD").Output()
	if err != nil {
		t.Fatalf("git log: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		hash, subject, _ := strings.Cut(line, " ")
		if n := utf8.RuneCountInString(subject); n > maxSubjectRunes {
			t.Errorf("commit %s: its subject has %d characters, over %d; reword it (git rebase -i) and put the story in the body: %q", hash, n, maxSubjectRunes, subject)
		}
	}
}
