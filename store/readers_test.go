package store_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The interfaces that store.Store's readers declare for the part of it
// they use list only methods their package calls (issue #12: a contract
// sized for its readers): a method listed but no longer called fails here.
// Add a reader's interfaces when it declares them.
func TestReaderInterfacesAreCalled(t *testing.T) {
	checkInterfacesCalled(t, "../sso", "FlowStore", "RequestStore", "RateWindows", "Administrators")
	checkInterfacesCalled(t, "../sso/saml", "RequestStore", "ConnectionUpdater")
	checkInterfacesCalled(t, "../sso/oidc", "RequestStore")
	checkInterfacesCalled(t, "../admin", "SignInStore", "Sessions")
}

// checkInterfacesCalled fails t unless every method of the named
// interfaces of the package in dir is called in the package's own code.
func checkInterfacesCalled(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	methods := map[string][]string{} // interface -> methods
	called := map[string]bool{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.TypeSpec:
				if it, ok := n.Type.(*ast.InterfaceType); ok {
					for _, m := range it.Methods.List {
						for _, name := range m.Names { // none for an embedded interface, checked on its own
							methods[n.Name.Name] = append(methods[n.Name.Name], name.Name)
						}
					}
				}
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
					called[sel.Sel.Name] = true
				}
			}
			return true
		})
	}
	for _, name := range names {
		ms, ok := methods[name]
		if !ok {
			t.Errorf("%s: no interface %s", dir, name)
		}
		for _, m := range ms {
			if !called[m] {
				t.Errorf("%s: %s lists %s, which the package never calls", dir, name, m)
			}
		}
	}
}
