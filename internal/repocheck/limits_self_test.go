package repocheck

import (
	"slices"
	"strings"
	"testing"
)

// The checks find what they look for, and only that: each pattern of a bare error code,
// a function one line over the limit, a file one line over; and nothing in code that
// names its codes, compares HTTP statuses by name, or tests a Code against zero.
func TestFileViolationsFindEachKind(t *testing.T) {
	src := `package p

import (
	"net/http"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/mongoerr"
)

var lostCodes = []int{286, 280}

const retryableCode = 91

func compare(we mongo.WriteError, se mongo.ServerError, err error, apiErr struct{ Code int }) bool {
	switch we.Code {
	case 11000, mongoerr.DuplicateKey:
	}
	return we.Code == 85 || 48 != se.Code || se.HasErrorCode(26) || mongoerr.HasCode(err, 27, mongoerr.IndexNotFound) ||
		we.Code == mongoerr.DuplicateKey || se.Code != 0 || apiErr.Code == http.StatusUnauthorized || se.HasErrorCode(mongoerr.NamespaceExists)
}

// long is one line over the limit, atTheLimit at it.
func long() {
` + strings.Repeat("\t_ = 1\n", maxFunctionLines-1) + `}

func (r *reader) atTheLimit() {
` + strings.Repeat("\t_ = 1\n", maxFunctionLines-2) + `}
`
	vs, err := fileViolations("p/p.go", []byte(src), false)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, v := range vs {
		keys = append(keys, v.key)
	}
	slices.Sort(keys)
	want := []string{
		"code p/p.go 11000", "code p/p.go 26", "code p/p.go 27", "code p/p.go 280", "code p/p.go 286",
		"code p/p.go 48", "code p/p.go 85", "code p/p.go 91",
		"func p/p.go long",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("found %q\nwant  %q", keys, want)
	}

	vs, err = fileViolations("p/p.go", []byte(src), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].key != "func p/p.go long" {
		t.Errorf("in internal/mongoerr only the long function is a violation; found %v", vs)
	}

	lines := maxFileLines - 1 // the package clause and its newline count as one
	file := "package p\n" + strings.Repeat("\n", lines)
	if vs, _ := fileViolations("p/ok.go", []byte(file), false); len(vs) != 0 {
		t.Errorf("a file of %d lines is within the limit; found %v", maxFileLines, vs)
	}
	file += "\n"
	if vs, _ := fileViolations("p/long.go", []byte(file), false); len(vs) != 1 || vs[0].key != "file p/long.go" {
		t.Errorf("a file of %d lines is over the limit; found %v", maxFileLines+1, vs)
	}
	if _, err := fileViolations("p/bad.go", []byte("package"), false); err == nil {
		t.Error("a file that does not parse is an error")
	}
}
