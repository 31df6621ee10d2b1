package admin_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestRulesKnowNoTransport holds package admin to its doc: the rules know
// no HTTP (cookies and client addresses are admin/web's, handlers
// admin/api's) and send no email themselves (admin/outbox does).
func TestRulesKnowNoTransport(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]string{"net/http": "admin/web or admin/api", "net/smtp": "admin/outbox"}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if home, bad := forbidden[path]; bad {
				t.Errorf("%s imports %s: that belongs in %s", name, path, home)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d files; is the test running in admin's folder?", checked)
	}
}
