// Package web holds what gatehouse's HTTP front ends (the management API,
// the console and the SSO sign-in pages) must agree on about a browser's
// request, and that the rules in package admin must not know: the session
// cookie (its name and attributes) and the client's address.
package web

import (
	"net"
	"net/http"
	"strings"
	"time"
)

// SessionCookie is the name of the cookie carrying a session's token, for
// the console, the management API and the SSO sign-in alike.
const SessionCookie = "gatehouse_session"

// SessionCookieFor is the cookie that sets (token != "") or clears the
// session: HttpOnly, SameSite=Lax, for the whole site, Secure when the
// server's public URL is https.
func SessionCookieFor(token string, maxAge time.Duration, baseURL string) *http.Cookie {
	ck := &http.Cookie{Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: strings.HasPrefix(baseURL, "https://"), MaxAge: int(maxAge / time.Second)}
	if token == "" {
		ck.MaxAge = -1
	}
	return ck
}

// ClientIP is the address a request comes from: the connection's peer,
// or with trustForwardedFor the last address of X-Forwarded-For (the one
// the load balancer in front of gatehouse appended).
func ClientIP(r *http.Request, trustForwardedFor bool) string {
	if trustForwardedFor {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
