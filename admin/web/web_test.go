package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestClientIP(t *testing.T) {
	for _, tc := range []struct {
		name  string
		xff   []string
		trust bool
		want  string
	}{
		{"peer", nil, false, "192.0.2.7"},
		{"forwarded-for ignored unless trusted", []string{"198.51.100.1"}, false, "192.0.2.7"},
		{"last hop is the balancer's", []string{"203.0.113.9, 198.51.100.1"}, true, "198.51.100.1"},
		// A client that sends its own X-Forwarded-For cannot choose its
		// address: the balancer appends the real one last.
		{"spoofed first header", []string{"10.0.0.1", "198.51.100.2"}, true, "198.51.100.2"},
		{"garbage falls back to the peer", []string{"not-an-ip"}, true, "192.0.2.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = "192.0.2.7:5555"
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, tc.trust); got != tc.want {
				t.Errorf("ClientIP = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSessionCookieFor(t *testing.T) {
	ck := SessionCookieFor("tok", time.Hour, "https://gatehouse.example")
	if ck.Name != SessionCookie || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge != 3600 {
		t.Errorf("set cookie = %+v", ck)
	}
	if ck := SessionCookieFor("", time.Hour, "http://127.0.0.1:8080"); ck.MaxAge != -1 || ck.Secure {
		t.Errorf("clearing cookie = %+v", ck)
	}
}

func TestSafeRedirect(t *testing.T) {
	for in, want := range map[string]string{"/a/b?c#d": "/a/b?c#d", "": "/", "a": "/", "//x": "/", "/\\x": "/", "https://x": "/",
		"/ok\r\nSet-Cookie: x": "/", "/%2F%2Fx": "/%2F%2Fx", "javascript:x": "/", "/x\\y": "/"} {
		if got := SafeRedirect(in); got != want {
			t.Errorf("SafeRedirect(%q) = %q, want %q", in, got, want)
		}
	}
}
