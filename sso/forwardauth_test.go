package sso

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"gatehouse/admin/web"
)

const faBase = "https://id.example.com"

// TestReturnPath: only a page on the base URL's origin is returned to;
// every other origin, a scheme-relative URL, a backslash, a control
// character or credentials give no next.
func TestReturnPath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   string
	}{
		{"none", nil, ""},
		{"nginx's X-Original-URL", map[string]string{"X-Original-URL": "https://id.example.com/app/a?b=c&d=%2F"}, "/app/a?b=c&d=%2F"},
		{"host without case", map[string]string{"X-Original-URL": "https://ID.Example.COM/app"}, "/app"},
		{"default port written out", map[string]string{"X-Original-URL": "https://id.example.com:443/app"}, "/app"},
		{"no path", map[string]string{"X-Original-URL": "https://id.example.com"}, "/"},
		{"escaped path kept", map[string]string{"X-Original-URL": "https://id.example.com/a%2Fb/%D0%98"}, "/a%2Fb/%D0%98"},
		{"another host", map[string]string{"X-Original-URL": "https://evil.test/app"}, ""},
		{"a host ending like ours", map[string]string{"X-Original-URL": "https://evil.id.example.com/app"}, ""},
		{"another port", map[string]string{"X-Original-URL": "https://id.example.com:8443/app"}, ""},
		{"another scheme", map[string]string{"X-Original-URL": "http://id.example.com/app"}, ""},
		{"scheme-relative", map[string]string{"X-Original-URL": "//evil.test/app"}, ""},
		{"three slashes", map[string]string{"X-Original-URL": "///evil.test/app"}, ""},
		{"credentials", map[string]string{"X-Original-URL": "https://u:p@id.example.com/app"}, ""},
		{"javascript", map[string]string{"X-Original-URL": "javascript:alert(1)"}, ""},
		{"backslash path", map[string]string{"X-Original-URI": "/\\evil.test"}, ""},
		{"CR LF", map[string]string{"X-Original-URI": "/app\r\nSet-Cookie: x=y"}, ""},
		{"relative X-Original-URI", map[string]string{"X-Original-URI": "/app/x?y"}, "/app/x?y"},
		{"not a path", map[string]string{"X-Original-URI": "app/x"}, ""},
		{"too long", map[string]string{"X-Original-URI": "/" + strings.Repeat("a", 600)}, ""},
		{"Traefik's headers", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "id.example.com", "X-Forwarded-Uri": "/app/x"}, "/app/x"},
		{"Traefik's headers, another host", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.test", "X-Forwarded-Uri": "/app/x"}, ""},
		{"a host without a scheme", map[string]string{"X-Forwarded-Host": "evil.test", "X-Forwarded-Uri": "/app/x"}, ""},
		{"X-Original-URL wins", map[string]string{"X-Original-URL": "https://evil.test/x", "X-Original-URI": "/app"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			if got := ReturnPath(faBase, h); got != tc.want {
				t.Errorf("ReturnPath = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzReturnPath: whatever a client or proxy sends, the path is "" or
// one web.SafeRedirect keeps, and a sign-in link built from it stays on
// the base URL's origin.
func FuzzReturnPath(f *testing.F) {
	for _, s := range []string{"https://id.example.com/app?x", "//evil.test", "/\\x", "/a\r\nb", "https://id.example.com@evil.test/",
		"https://evil.test\\@id.example.com/", "/%2F%2Fevil.test"} {
		f.Add(s, "")
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, original, uri string) {
		h := http.Header{}
		if original != "" {
			h["X-Original-Url"] = []string{original}
		}
		if uri != "" {
			h["X-Original-Uri"] = []string{uri}
		}
		p := ReturnPath(faBase, h)
		if p == "" {
			return
		}
		if web.SafeRedirect(p) != p {
			t.Fatalf("ReturnPath(%q, %q) = %q, which SafeRedirect refuses", original, uri, p)
		}
		u, err := url.Parse(faBase + p)
		if err != nil || u.Scheme+"://"+u.Host != faBase {
			t.Fatalf("ReturnPath(%q, %q) = %q leaves the origin: %v", original, uri, p, u)
		}
	})
}

// TestEncodeHeaderValue: no CR, LF or other control character, nothing
// outside printable ASCII, and the value comes back exactly.
func TestEncodeHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"jane@example.com":             "jane@example.com",
		"Super Administrator":          "Super Administrator",
		"Jürgen":                       "J%C3%BCrgen",
		"100%":                         "100%25",
		"a\r\nX-Gatehouse-Role: Super": "a%0D%0AX-Gatehouse-Role: Super",
		" padded ":                     "%20padded%20",
		"tab\there\x7f":                "tab%09here%7F",
		"":                             "",
		"\xff":                         "%FF",
	} {
		got := EncodeHeaderValue(in)
		if got != want {
			t.Errorf("EncodeHeaderValue(%q) = %q, want %q", in, got, want)
		}
		if back, err := url.PathUnescape(got); err != nil || back != in {
			t.Errorf("%q decodes to %q, %v", got, back, err)
		}
	}
}

func FuzzEncodeHeaderValue(f *testing.F) {
	for _, s := range []string{"Иван", "a\r\nb", "%", " x ", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := EncodeHeaderValue(s)
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] >= 0x7f {
				t.Fatalf("%q: byte %#x in %q", s, got[i], got)
			}
		}
		if strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") {
			t.Fatalf("%q: space at an end of %q", s, got)
		}
		if back, err := url.PathUnescape(got); err != nil || back != s {
			t.Fatalf("%q: %q decodes to %q, %v", s, got, back, err)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatal("not UTF-8")
		}
	})
}
