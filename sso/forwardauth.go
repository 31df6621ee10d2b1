package sso

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"gatehouse/admin"
	"gatehouse/admin/web"
	"gatehouse/store"
)

// PathVerify is the forward-auth endpoint (DESIGN.md: <base-url>/auth/verify).
const PathVerify = "/auth/verify"

// The headers naming the signed-in administrator on a 200 of /auth/verify.
// A reverse proxy copies them onto the request it passes to the product
// (nginx: auth_request_set, then proxy_set_header, which also drops any
// header of the same name the client sent). Each value is UTF-8,
// percent-encoded by EncodeHeaderValue: decode with any percent-decoder
// that leaves '+' alone (decodeURIComponent, urllib.parse.unquote,
// url.PathUnescape).
const (
	HeaderUser     = "X-Gatehouse-User"     // the administrator's id: stable, never reused; key on it
	HeaderUsername = "X-Gatehouse-Username" // the exact username (case-sensitive)
	HeaderEmail    = "X-Gatehouse-Email"    // the primary email address; may be empty
	HeaderName     = "X-Gatehouse-Name"     // first and last name, one space between
	HeaderOrg      = "X-Gatehouse-Org"      // the organization's slug
	HeaderOrgID    = "X-Gatehouse-Org-Id"   // the organization's id
	HeaderRole     = "X-Gatehouse-Role"     // "Administrator" or "Super Administrator"
)

// ForwardAuth is the forward-auth endpoint of a reverse proxy in front of
// the product's applications (nginx auth_request, Traefik ForwardAuth,
// Caddy forward_auth): for each request the proxy asks whether the
// browser's gatehouse session (the console's cookie, so the product must
// be served on gatehouse's own origin, where that host-only cookie goes)
// is valid, and learns whose it is.
//
// Every answer is checked against the store, on any instance: an ended or
// expired session, a deactivated or deleted administrator is refused at the
// next request. Using the product counts as using the session: its idle
// expiry slides (admin.SignIn.Authenticate; written at most once a
// minute); its absolute expiry stands.
//
// Answers, none of them cacheable (Cache-Control: no-store):
//   - 200 with the headers above, for an active session;
//   - 401 otherwise; for a browser's page (Accept: text/html) with a
//     Location the proxy sends the browser to: the sign-in page, with
//     next= the page asked for when the proxy names it (X-Original-URL, or
//     X-Forwarded-Proto/-Host/-Uri, or X-Original-URI) and it is on the
//     base URL's origin, or the step the session must take first (a
//     password change, a TOTP enrolment: Steps);
//   - 503 with Retry-After while the database is unavailable, so that the
//     proxy does not send everyone to sign in during an outage (nginx turns
//     any status but 2xx, 401 and 403 into a 500).
//
// There is no rate limit: the proxy asks once per request of the product,
// assets included, and a request without a session cookie (or with one
// over 128 bytes) costs no database read. The body is never read; the
// proxy's headers are bounded by the server's (64 KB).
type ForwardAuth struct {
	SignIn *admin.SignIn
	Orgs   interface {
		Org(ctx context.Context, id string) (store.Org, error)
	}
	// BaseURL is gatehouse's public URL: sign-in links point under it, and
	// only pages on its origin are returned to.
	BaseURL string
	// Steps maps the refusal code of a session that must first take a
	// step (admin.CodePasswordChangeRequired, CodeTOTPEnrolmentRequired)
	// to the local path of the page of that step, which takes next= too.
	// Without one, such a session is sent to the sign-in page.
	Steps  map[string]string
	Logger func(*http.Request) *slog.Logger
}

// Register mounts GET (and so HEAD) /auth/verify. Other methods are the
// mux's 405: nginx's auth_request subrequest is a GET (set proxy_method
// GET to be sure), as are Traefik's and Caddy's.
func (fa *ForwardAuth) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathVerify, fa.verify)
}

func (fa *ForwardAuth) logger(r *http.Request) *slog.Logger {
	if fa.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return fa.Logger(r)
}

func (fa *ForwardAuth) verify(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	token := ""
	if ck, err := r.Cookie(web.SessionCookie); err == nil {
		token = ck.Value
	}
	_, a, err := fa.SignIn.Authenticate(r.Context(), token)
	var org store.Org
	if err == nil {
		org, err = fa.Orgs.Org(r.Context(), a.OrgID)
		if errors.Is(err, store.ErrNotFound) { // deleted meanwhile
			err = &admin.Error{Code: admin.CodeInvalidSession}
		}
	}
	var refused *admin.Error
	switch {
	case errors.As(err, &refused):
		if wantsPage(r) {
			h.Set("Location", fa.signInURL(r, fa.Steps[refused.Code]))
		}
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "not signed in\n")
		return
	case errors.Is(err, store.ErrUnavailable):
		fa.logger(r).Warn("forward auth: database unavailable", "err", err)
		h.Set("Retry-After", strconv.Itoa(admin.RetryAfterUnavailable))
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "unavailable: try again in a few seconds\n")
		return
	case err != nil:
		fa.logger(r).Error("forward auth", "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "internal error\n")
		return
	}
	name := strings.TrimSpace(a.GivenName + " " + a.FamilyName)
	for k, v := range map[string]string{HeaderUser: a.ID, HeaderUsername: a.UserName, HeaderEmail: a.Email, HeaderName: name,
		HeaderOrg: org.Slug, HeaderOrgID: org.ID, HeaderRole: string(a.Role)} {
		h.Set(k, EncodeHeaderValue(v))
	}
	io.WriteString(w, "ok\n")
}

// wantsPage reports whether the request the proxy checks is a browser's
// page load (Accept names text/html), which gets a sign-in redirect; a
// script's or an API client's request gets a bare 401.
func wantsPage(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/html") {
			return true
		}
	}
	return false
}

// signInURL is where a browser refused by the proxy goes: step (a local
// path) or the sign-in page, under the base URL, with next= the page it
// asked for when ReturnPath finds one.
func (fa *ForwardAuth) signInURL(r *http.Request, step string) string {
	u := strings.TrimSuffix(fa.BaseURL, "/")
	if step != "" {
		u += step
	} else {
		u += "/login"
	}
	if next := ReturnPath(fa.BaseURL, r.Header); next != "" {
		u += "?next=" + url.QueryEscape(next)
	}
	return u
}

// ReturnPath is the local path (with its query) of the page a proxy asks
// about, from the headers a proxy sets: X-Original-URL (an absolute URL;
// nginx: $scheme://$http_host$request_uri), else X-Forwarded-Proto,
// X-Forwarded-Host and X-Forwarded-Uri (Traefik, Caddy), else
// X-Original-URI (a path). "" when none is given, when an absolute one is
// on another origin than baseURL's (scheme, host and port; the host
// compared without case), or when the path is not one web.SafeRedirect keeps.
// So a sign-in never returns the browser to another site: the Host a
// client sends the proxy is the client's to choose.
func ReturnPath(baseURL string, h http.Header) string {
	raw := h.Get("X-Original-URL")
	if raw == "" {
		if uri := h.Get("X-Forwarded-Uri"); uri != "" {
			raw = uri
			if proto, host := h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"); proto != "" || host != "" {
				raw = proto + "://" + host + uri
			}
		}
	}
	if raw == "" {
		raw = h.Get("X-Original-URI")
	}
	// A backslash or a control character is refused as it comes, before
	// any parser can read it one way or another.
	if raw == "" || len(raw) > store.MaxSSORedirect+256 ||
		strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Fragment != "" {
		return ""
	}
	if u.Scheme != "" || u.Host != "" || strings.HasPrefix(raw, "//") {
		base, err := url.Parse(baseURL)
		if err != nil || u.Scheme != base.Scheme || !strings.EqualFold(hostPort(u), hostPort(base)) {
			return ""
		}
	} else if !strings.HasPrefix(raw, "/") {
		return ""
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" || u.ForceQuery {
		path += "?" + u.RawQuery
	}
	if web.SafeRedirect(path) != path {
		return ""
	}
	return path
}

// hostPort is u's host and port, the scheme's default port written out.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return u.Hostname() + ":" + port
}

// EncodeHeaderValue makes s safe as an HTTP header value and exactly
// recoverable: every byte that is not printable ASCII (controls, CR and
// LF among them, DEL, and each byte of a non-ASCII UTF-8 character), '%'
// itself, and a space at either end (which HTTP parsers trim) become %XX
// with upper-case hex. Printable ASCII values other than '%' are sent as
// they are, so "jane@example.com" reads as itself; "Jürgen" is
// "J%C3%BCrgen".
func EncodeHeaderValue(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '%' || c == ' ' && (i == 0 || i == len(s)-1) {
			b.Grow(len(s) + 2)
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
