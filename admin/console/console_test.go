package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPanicIsTheConsoles500: a handler's panic is answered with the
// console's 500 page naming the request ID, under the console's headers,
// and says nothing of the cause.
func TestPanicIsTheConsoles500(t *testing.T) {
	c := &Console{}
	c.parse()
	h := c.guard(func(w http.ResponseWriter, r *http.Request) { panic("secret detail") })
	w := httptest.NewRecorder()
	w.Header().Set("X-Request-ID", "req-1234")
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	body := w.Body.String()
	if w.Code != 500 || !strings.Contains(body, "req-1234") || !strings.Contains(body, "Something went wrong") || strings.Contains(body, "secret detail") {
		t.Fatalf("%d %s", w.Code, body)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
}

// TestTemplatesHaveNoInlineScriptOrStyle: the CSP forbids them, so a
// template with one would break in the browser; this finds it first.
func TestTemplatesHaveNoInlineScriptOrStyle(t *testing.T) {
	names, _ := templateFS.ReadDir("templates")
	for _, n := range names {
		b, err := templateFS.ReadFile("templates/" + n.Name())
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, bad := range []string{"<style", " style=", "<script>", " onclick=", " onsubmit=", "javascript:"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s contains %q", n.Name(), bad)
			}
		}
	}
}
