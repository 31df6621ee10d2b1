package console

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestRussianCatalogueIsComplete: every text of the console, in a
// template ({{t "..."}}) or in Go (msg("...")), has a Russian
// translation, so no Russian page shows an English sentence.
func TestRussianCatalogueIsComplete(t *testing.T) {
	cat, err := loadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{} // text → where
	call := regexp.MustCompile(`\{\{-?\s*t\s+("(?:[^"\\]|\\.)*")`)
	names, _ := templateFS.ReadDir("templates")
	for _, n := range names {
		b, err := templateFS.ReadFile("templates/" + n.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllStringSubmatch(string(b), -1) {
			s, err := strconv.Unquote(m[1])
			if err != nil {
				t.Fatalf("%s: %s: %v", n.Name(), m[1], err)
			}
			texts[s] = n.Name()
		}
	}
	files, _ := filepath.Glob("*.go")
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
			c, ok := n.(*ast.CallExpr)
			if !ok || len(c.Args) != 1 {
				return true
			}
			if id, ok := c.Fun.(*ast.Ident); !ok || id.Name != "msg" {
				return true
			}
			lit, ok := c.Args[0].(*ast.BasicLit)
			if !ok {
				t.Errorf("%s: msg takes a string literal", fset.Position(c.Pos()))
				return true
			}
			s, _ := strconv.Unquote(lit.Value)
			texts[s] = fset.Position(c.Pos()).String()
			return true
		})
	}
	if len(texts) < 5 {
		t.Fatalf("found only %d texts: the scan is broken", len(texts))
	}
	for text, where := range texts {
		tr, ok := cat["ru"][text]
		if !ok || strings.TrimSpace(tr) == "" {
			t.Errorf("%s: no Russian for %q", where, text)
			continue
		}
		if strings.Count(tr, "%") != strings.Count(text, "%") {
			t.Errorf("%s: %q and %q differ in their %% verbs", where, text, tr)
		}
	}
}

// TestLanguageOfARequest: the administrator's choice, then the cookie,
// then Accept-Language, then English; an unknown value is ignored.
func TestLanguageOfARequest(t *testing.T) {
	for _, tc := range []struct {
		pref, cookie, accept, want string
	}{
		{"", "", "", "en"},
		{"", "", "ru-RU,ru;q=0.9,en;q=0.8", "ru"},
		{"", "", "de-DE, ru;q=0.5", "ru"},
		{"", "", "fr", "en"},
		{"", "ru", "en", "ru"},
		{"", "xx", "ru", "ru"},
		{"en", "ru", "ru", "en"},
		{"ru", "", "en", "ru"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.cookie != "" {
			r.Header.Set("Cookie", LangCookie+"="+tc.cookie)
		}
		if tc.accept != "" {
			r.Header.Set("Accept-Language", tc.accept)
		}
		if got := langOf(r, tc.pref); got != tc.want {
			t.Errorf("pref %q cookie %q accept %q: %s, want %s", tc.pref, tc.cookie, tc.accept, got, tc.want)
		}
	}
}

// TestPagesRenderInRussian: a page asked for in Russian is in Russian,
// both its template's texts and those set in Go.
func TestPagesRenderInRussian(t *testing.T) {
	c := &Console{}
	c.parse()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/nowhere", nil)
	r.Header.Set("Accept-Language", "ru")
	c.NotFound(w, r)
	body := w.Body.String()
	if w.Code != 404 || !strings.Contains(body, `<html lang="ru">`) || !strings.Contains(body, "Перейти к содержимому") ||
		w.Header().Get("Content-Language") != "ru" {
		t.Fatalf("%d %s", w.Code, body)
	}
}
