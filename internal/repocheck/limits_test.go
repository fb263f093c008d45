package repocheck

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The limits the product code keeps, so that a newcomer can read any function on one
// screen and any file in one sitting.
const (
	maxFunctionLines = 80
	maxFileLines     = 450
)

// errorCodesHome is the one package that may write a MongoDB error code as a number: it
// names them, and everything else compares through those names.
const errorCodesHome = module + "/internal/mongoerr"

// violation is one breach of the limits: key names it without numbers (what the checker's
// own test compares), detail says where and by how much.
type violation struct{ key, detail string }

// Product code (the packages the two binaries link, without their tests) keeps the limits:
// no function over 80 lines, no file over 450, and no MongoDB error code written as a
// number outside internal/mongoerr.
func TestProductCodeLimits(t *testing.T) {
	for _, pkg := range productPackages(t) {
		for _, file := range pkg.files {
			for _, v := range checkFile(t, pkg, file) {
				t.Error(v.detail)
			}
		}
	}
}

// productPackage is one package of the module that a product binary links.
type productPackage struct {
	importPath string
	dir        string // relative to the repository's top, with slashes
	files      []string
}

// productPackages returns the module's packages that cmd/mongosync_exporter and
// cmd/oplog_collector link (go list -deps, without -test: test files and test-only
// packages are not the product).
func productPackages(t *testing.T) []productPackage {
	t.Helper()
	root := repoRoot(t)
	var pkgs []productPackage
	for _, line := range goList(t, "-deps", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \" \"}} {{join .CgoFiles \" \"}}",
		"./cmd/mongosync_exporter", "./cmd/oplog_collector") {
		fields := strings.Split(line, "\t")
		if len(fields) != 3 {
			t.Fatalf("go list printed %q: want import path, directory and files", line)
		}
		if fields[0] != module && !strings.HasPrefix(fields[0], module+"/") {
			continue
		}
		rel, err := filepath.Rel(root, fields[1])
		if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, productPackage{importPath: fields[0], dir: filepath.ToSlash(rel), files: strings.Fields(fields[2])})
	}
	for _, want := range []string{module + "/cmd/mongosync_exporter", module + "/cmd/oplog_collector", module + "/collector", module + "/exporter"} {
		if !slices.ContainsFunc(pkgs, func(p productPackage) bool { return p.importPath == want }) {
			t.Fatalf("go list -deps of the binaries does not list %s: the product is not what this test takes it for", want)
		}
	}
	return pkgs
}

// checkFile returns the violations of one product file.
func checkFile(t *testing.T, pkg productPackage, name string) []violation {
	t.Helper()
	rel := pkg.dir + "/" + name
	src, err := os.ReadFile(filepath.Join(repoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := fileViolations(rel, src, pkg.importPath == errorCodesHome)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// fileViolations checks the source of one file, named rel: its length, its functions'
// lengths and, unless codesAllowed, its MongoDB error codes.
func fileViolations(rel string, src []byte, codesAllowed bool) ([]violation, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, rel, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var vs []violation
	if n := bytes.Count(src, []byte("\n")); n > maxFileLines {
		vs = append(vs, violation{"file " + rel,
			fmt.Sprintf("%s has %d lines, over the %d a product file may have: split it by what its parts do", rel, n, maxFileLines)})
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		start, end := fset.Position(fd.Pos()).Line, fset.Position(fd.End()).Line
		if n := end - start + 1; n > maxFunctionLines {
			name := funcName(fd)
			vs = append(vs, violation{"func " + rel + " " + name,
				fmt.Sprintf("%s:%d: %s has %d lines, over the %d a product function may have: split it into steps", rel, start, name, n, maxFunctionLines)})
		}
	}
	if !codesAllowed {
		for _, c := range bareErrorCodes(fset, f) {
			vs = append(vs, violation{"code " + rel + " " + c.value,
				fmt.Sprintf("%s: MongoDB error code %s written as a number (%s): name it in internal/mongoerr and use the name", c.pos, c.value, c.how)})
		}
	}
	return vs, nil
}

// funcName returns a function's name as a reader finds it: Recv.Method or Func.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	for {
		switch x := typ.(type) {
		case *ast.StarExpr:
			typ = x.X
			continue
		case *ast.IndexExpr:
			typ = x.X
			continue
		case *ast.IndexListExpr:
			typ = x.X
			continue
		case *ast.Ident:
			return x.Name + "." + fd.Name.Name
		}
		return fd.Name.Name
	}
}

// bareCode is an integer literal used as a MongoDB error code.
type bareCode struct {
	pos   token.Position
	value string
	how   string
}

// bareErrorCodes finds integer literals used as MongoDB error codes, by how code uses
// them: compared with a field named Code (`we.Code == 11000`, or a case of a switch on
// one), passed to HasErrorCode or mongoerr.HasCode, or listed in a variable or constant
// whose name says it holds codes (`resumeCodes = []int{286, 280}`). Zero is not a code (a
// Code of 0 means the error has none).
func bareErrorCodes(fset *token.FileSet, f *ast.File) []bareCode {
	var found []bareCode
	add := func(e ast.Expr, how string) {
		if lit, ok := ast.Unparen(e).(*ast.BasicLit); ok && lit.Kind == token.INT && lit.Value != "0" {
			found = append(found, bareCode{fset.Position(lit.Pos()), lit.Value, how})
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.BinaryExpr:
			if x.Op != token.EQL && x.Op != token.NEQ {
				break
			}
			if isCodeField(x.X) {
				add(x.Y, "compared with "+fieldText(x.X))
			}
			if isCodeField(x.Y) {
				add(x.X, "compared with "+fieldText(x.Y))
			}
		case *ast.SwitchStmt:
			if x.Tag == nil || !isCodeField(x.Tag) {
				break
			}
			for _, s := range x.Body.List {
				for _, e := range s.(*ast.CaseClause).List {
					add(e, "a case of a switch on "+fieldText(x.Tag))
				}
			}
		case *ast.CallExpr:
			if name := calledName(x.Fun); name == "HasErrorCode" || name == "HasCode" {
				for _, a := range x.Args {
					add(a, "passed to "+name)
				}
			}
		case *ast.ValueSpec:
			for i, id := range x.Names {
				if !strings.Contains(strings.ToLower(id.Name), "code") || i >= len(x.Values) {
					continue
				}
				ast.Inspect(x.Values[i], func(v ast.Node) bool {
					if e, ok := v.(ast.Expr); ok {
						add(e, "in "+id.Name)
					}
					return true
				})
			}
		}
		return true
	})
	return found
}

// isCodeField tells whether e reads a field named Code, as a driver error's code is read.
func isCodeField(e ast.Expr) bool {
	sel, ok := ast.Unparen(e).(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Code"
}

// fieldText returns x.Code as written, for messages.
func fieldText(e ast.Expr) string {
	sel := ast.Unparen(e).(*ast.SelectorExpr)
	if id, ok := sel.X.(*ast.Ident); ok {
		return id.Name + ".Code"
	}
	return "a .Code field"
}

// calledName returns the name of the function or method a call calls.
func calledName(fun ast.Expr) string {
	switch x := ast.Unparen(fun).(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return x.Sel.Name
	}
	return ""
}
