// Package web holds what gatehouse's HTTP front ends (the management API,
// the console, the SSO sign-in pages and forward auth) must agree on about
// a browser's request, and that the rules in package admin must not know:
// the session cookie (its name and attributes), the client's address, and
// which return paths after a sign-in are safe.
package web

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gatehouse/store"
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

// SafeRedirect returns next, the page to go to after a sign-in or one of
// its steps, if it is a path on this server ("/x", not "//host", "/\host",
// "https://..." or "javascript:...") of at most store.MaxSSORedirect
// bytes, else "/".
func SafeRedirect(next string) string {
	if next == "" || next[0] != '/' || len(next) > store.MaxSSORedirect {
		return "/"
	}
	if len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return "/"
	}
	if strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
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

// SignInPage is one of package sso's sign-in pages as it asks the front
// end that draws it (the console) to: package sso decides what the page
// asks and says, and the status; the drawer only lays it out, in the
// visitor's language. Every text is English, as package sso wrote it.
type SignInPage struct {
	Kind SignInPageKind
	// Next is the local path to go to after signing in.
	Next string
	// Username and Org (a slug) fill the forms; OrgFixed sends Org as a
	// hidden field instead of asking for it.
	Username string
	Org      string
	OrgFixed bool
	// Message is a notice: a sentence of package sso, or the message of
	// an *admin.Error refusing the sign-in (RefusalCode is then its code).
	Message     string
	RefusalCode string
	// Reference names a failed sign-in in the log, for an administrator.
	Reference string
	// AskTOTP shows the authenticator code field.
	AskTOTP bool
	// Application is the name of the application asking (SignInConsent).
	Application string
}

// SignInPageKind names a sign-in page.
type SignInPageKind string

// The sign-in pages.
const (
	SignInLogin    SignInPageKind = "login"    // username@organization or a work email
	SignInPassword SignInPageKind = "password" // organization, username, password, code
	SignInMessage  SignInPageKind = "message"  // a message, with a reference
	// SignInConsent asks a signed-in administrator whether Application
	// (a third-party application of the OpenID Provider) may learn who
	// they are; the form posts Next (the request's continuation path)
	// with consent=allow or deny.
	SignInConsent SignInPageKind = "consent"
)
