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
