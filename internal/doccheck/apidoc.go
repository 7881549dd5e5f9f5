package doccheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Undocumented parses the Go package in dir (its non-test files) and returns
// "file:line: name" for every exported name without a doc comment: top-level
// functions, types, constants and variables (a comment on their group
// counts), methods of exported types, exported fields of exported structs
// and methods of exported interfaces (a comment before the field or at the
// end of its line counts).
func Undocumented(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("doccheck: %w", err)
	}
	fset := token.NewFileSet()
	var missing []string
	report := func(pos token.Pos, name string) {
		p := fset.Position(pos)
		missing = append(missing, fmt.Sprintf("%s:%d: %s", filepath.ToSlash(filepath.Join(dir, filepath.Base(p.Filename))), p.Line, name))
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("doccheck: %w", err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				label := d.Name.Name
				if d.Recv != nil {
					recv := receiverName(d.Recv)
					if !ast.IsExported(recv) {
						continue
					}
					label = recv + "." + label
				}
				if d.Doc == nil {
					report(d.Pos(), label)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						if s.Doc == nil && d.Doc == nil {
							report(s.Pos(), s.Name.Name)
						}
						checkMembers(s.Name.Name, s.Type, report)
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() && s.Doc == nil && s.Comment == nil && d.Doc == nil {
								report(n.Pos(), n.Name)
							}
						}
					}
				}
			}
		}
	}
	sort.Strings(missing)
	return missing, nil
}

// checkMembers reports the undocumented exported fields of a struct type and
// methods of an interface type.
func checkMembers(typeName string, t ast.Expr, report func(token.Pos, string)) {
	var fields *ast.FieldList
	switch tt := t.(type) {
	case *ast.StructType:
		fields = tt.Fields
	case *ast.InterfaceType:
		fields = tt.Methods
	default:
		return
	}
	for _, f := range fields.List {
		documented := f.Doc != nil || f.Comment != nil
		if len(f.Names) == 0 { // embedded
			if id := embeddedName(f.Type); id != "" && ast.IsExported(id) && !documented {
				report(f.Pos(), typeName+"."+id)
			}
			continue
		}
		for _, n := range f.Names {
			if n.IsExported() && !documented {
				report(n.Pos(), typeName+"."+n.Name)
			}
		}
		if st, ok := f.Type.(*ast.StructType); ok {
			for _, n := range f.Names {
				if n.IsExported() {
					checkMembers(typeName+"."+n.Name, st, report)
				}
			}
		}
	}
}

func embeddedName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.StarExpr:
		return embeddedName(t.X)
	case *ast.SelectorExpr:
		return t.Sel.Name
	}
	return ""
}

func receiverName(l *ast.FieldList) string {
	if len(l.List) == 0 {
		return ""
	}
	t := l.List[0].Type
	for {
		switch tt := t.(type) {
		case *ast.StarExpr:
			t = tt.X
		case *ast.IndexExpr:
			t = tt.X
		case *ast.IndexListExpr:
			t = tt.X
		case *ast.Ident:
			return tt.Name
		default:
			return ""
		}
	}
}

// TestOnlyNamesInAPIDocs parses the Go package in dir and returns
// "file:line: name: word" for every doc comment of an exported name (and of
// the exported fields of exported structs) that names an exported identifier
// only the package's own test files declare (export_test.go: methods that
// drive internals step by step). A reader of go doc cannot call it, so the
// documentation must not send them to it. A test-only method M of type T is
// refused in the docs of T and of T's methods; anywhere else only when the
// package proper declares nothing exported named M (Claim, say, is also a
// type of its own).
func TestOnlyNamesInAPIDocs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("doccheck: %w", err)
	}
	fset := token.NewFileSet()
	var proper []*ast.File
	testOnly := map[string]string{} // name -> receiver type ("" for a top-level name)
	declared := map[string]bool{}   // exported names the package proper declares
	methodsOf := map[string]map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("doccheck: %w", err)
		}
		isTest := strings.HasSuffix(name, "_test.go")
		if isTest && strings.HasSuffix(f.Name.Name, "_test") {
			continue // an external test package declares nothing in this one
		}
		for _, decl := range f.Decls {
			for _, n := range exportedNames(decl) {
				if isTest {
					if n.recv == "" && isTestFunc(n.name) {
						continue // go test's own: TestMain, TestX, ExampleX, ...
					}
					testOnly[n.name] = n.recv
				} else {
					declared[n.name] = true
					if n.recv != "" {
						if methodsOf[n.recv] == nil {
							methodsOf[n.recv] = map[string]bool{}
						}
						methodsOf[n.recv][n.name] = true
					}
				}
			}
		}
		if !isTest {
			proper = append(proper, f)
		}
	}
	var found []string
	check := func(owner string, cg *ast.CommentGroup, label string) {
		if cg == nil {
			return
		}
		text := cg.Text()
		for name, recv := range testOnly {
			if recv != "" && methodsOf[recv][name] {
				continue
			}
			if declared[name] && (recv == "" || recv != owner) {
				continue
			}
			if containsWord(text, name) {
				p := fset.Position(cg.Pos())
				found = append(found, fmt.Sprintf("%s:%d: %s: %s", filepath.ToSlash(filepath.Join(dir, filepath.Base(p.Filename))), p.Line, label, name))
			}
		}
	}
	for _, f := range proper {
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				owner, label := "", d.Name.Name
				if d.Recv != nil {
					owner = receiverName(d.Recv)
					if !ast.IsExported(owner) {
						continue
					}
					label = owner + "." + label
				}
				check(owner, d.Doc, label)
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						check(s.Name.Name, d.Doc, s.Name.Name)
						check(s.Name.Name, s.Doc, s.Name.Name)
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, fl := range st.Fields.List {
								for _, n := range fl.Names {
									if n.IsExported() {
										check(s.Name.Name, fl.Doc, s.Name.Name+"."+n.Name)
										check(s.Name.Name, fl.Comment, s.Name.Name+"."+n.Name)
									}
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								check("", d.Doc, n.Name)
								check("", s.Doc, n.Name)
								check("", s.Comment, n.Name)
							}
						}
					}
				}
			}
		}
	}
	sort.Strings(found)
	return found, nil
}

// declName is an exported name a declaration introduces, with the receiver
// type for a method.
type declName struct{ name, recv string }

func exportedNames(decl ast.Decl) []declName {
	var out []declName
	switch d := decl.(type) {
	case *ast.FuncDecl:
		if !d.Name.IsExported() {
			return nil
		}
		recv := ""
		if d.Recv != nil {
			recv = receiverName(d.Recv)
		}
		out = append(out, declName{d.Name.Name, recv})
	case *ast.GenDecl:
		for _, spec := range d.Specs {
			switch s := spec.(type) {
			case *ast.TypeSpec:
				if s.Name.IsExported() {
					out = append(out, declName{s.Name.Name, ""})
				}
			case *ast.ValueSpec:
				for _, n := range s.Names {
					if n.IsExported() {
						out = append(out, declName{n.Name, ""})
					}
				}
			}
		}
	}
	return out
}

// containsWord reports whether text holds word as a whole word.
func containsWord(text, word string) bool {
	isIdent := func(r byte) bool {
		return r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
	}
	for i := 0; ; {
		j := strings.Index(text[i:], word)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(word)
		if (start == 0 || !isIdent(text[start-1])) && (end == len(text) || !isIdent(text[end])) {
			return true
		}
		i = end
	}
}

// isTestFunc reports whether a top-level name in a test file is one go test
// runs itself.
func isTestFunc(name string) bool {
	for _, p := range []string{"Test", "Benchmark", "Example", "Fuzz"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
