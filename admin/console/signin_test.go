package console

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// literals returns the string literals of the Go files matching glob
// that pick chooses (a call's or a composite's argument).
func literals(t *testing.T, glob string, pick func(n ast.Node) []ast.Expr) map[string]string {
	t.Helper()
	files, _ := filepath.Glob(glob)
	if len(files) == 0 {
		t.Fatalf("no files %s", glob)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			for _, e := range pick(n) {
				if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					out[s] = fset.Position(lit.Pos()).String()
				}
			}
			return true
		})
	}
	return out
}

// TestRefusalsAreTranslated: every fixed message of package admin's
// sign-in rules (a refuse(code, "text") without values) has its Russian,
// so a refusal shown at a field of a Russian page is Russian. A message
// with values must be one of refusalFormats or stays English.
func TestRefusalsAreTranslated(t *testing.T) {
	cat, err := loadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	formats := map[string]bool{}
	for _, f := range refusalFormats {
		formats[f.english] = true
	}
	files, err := filepath.Glob(filepath.Join("..", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	signIn := map[string]bool{"activation.go": true, "credentials.go": true, "password.go": true, "sessions.go": true}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		strict := signIn[filepath.Base(file)]
		found := literals(t, file, func(n ast.Node) []ast.Expr {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return nil
			}
			if id, isID := c.Fun.(*ast.Ident); !isID || id.Name != "refuse" || len(c.Args) < 2 {
				return nil
			}
			if len(c.Args) > 2 {
				if lit, ok := c.Args[1].(*ast.BasicLit); ok {
					s, _ := strconv.Unquote(lit.Value)
					// Sign-in's refusals with a number of the policy are
					// translated with it; the others carrying a value
					// (a name, an id) stay English.
					if strict && !formats[s] && !strings.Contains(s, "%q") {
						t.Errorf("refusal %q carries a value: add it to refusalFormats", s)
					}
				}
				return nil
			}
			return c.Args[1:2]
		})
		for text, where := range found {
			if _, ok := cat["ru"][sentence(text)]; !ok {
				t.Errorf("%s: no Russian for the refusal %q (add msg(%q) in signin.go)", where, text, sentence(text))
			}
		}
	}
}

// TestSignInTextsAreTranslated: every message package sso puts on a
// sign-in page has its Russian.
func TestSignInTextsAreTranslated(t *testing.T) {
	cat, err := loadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	// The files of the sign-in pages (manage.go's Messages are refusals
	// of the SSO settings, not of these pages).
	found := map[string]string{}
	pick := func(n ast.Node) []ast.Expr {
		switch n := n.(type) {
		case *ast.KeyValueExpr:
			if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Message" {
				return []ast.Expr{n.Value}
			}
		case *ast.CallExpr:
			if s, ok := n.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "tooMany" && len(n.Args) == 4 {
				return n.Args[3:]
			}
		}
		return nil
	}
	for _, f := range []string{"flow.go", "limits.go", "pages.go", "signinpages.go", "provider/provider.go"} {
		for k, v := range literals(t, filepath.Join("..", "..", "sso", f), pick) {
			found[k] = v
		}
	}
	if len(found) < 8 {
		t.Fatalf("found %d messages in package sso: the scan is broken", len(found))
	}
	for text, where := range found {
		if _, ok := cat["ru"][text]; !ok {
			t.Errorf("%s: no Russian for the sign-in message %q", where, text)
		}
	}
}

// TestLocalPath: the language switch returns to a path of this site
// only.
func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/login?org=acme":              "/login?org=acme",
		"/reset-password?token=abc":    "/reset-password?token=abc",
		"":                             "/",
		"https://evil.example/":        "/",
		"//evil.example/x":             "/",
		"/\\evil.example":              "/",
		"javascript:alert(1)":          "/",
		"/%0d%0aSet-Cookie:x=1":        "/%0d%0aSet-Cookie:x=1",
		"/ok\r\nLocation: //evil":      "/",
		"evil.example":                 "/",
		"/\t/evil.example":             "/",
		"https:/evil.example":          "/",
		"/path?next=https://evil.test": "/path?next=https://evil.test",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}
