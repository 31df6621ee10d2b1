// Package console is gatehouse's web console: the pages a person uses in
// a browser (home, activation, password reset, the first-run steps of a
// session that must change its password or enrol TOTP, sign-out), their
// html/template templates and their stylesheet and script, all embedded,
// so `gatehouse serve` serves them with no build step and no CDN.
//
// The console holds no rule: every decision is a call to package admin's
// services (admin.SignIn), and a refusal (*admin.Error) is shown at the
// field it concerns. The session is the management API's cookie
// (admin/web). Every POST is refused when it comes from another site
// (http.CrossOriginProtection, as the sign-in forms of package sso), and
// every page is served under a Content-Security-Policy that allows no
// inline script or style.
package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"

	"gatehouse/admin"
	"gatehouse/admin/web"
	"gatehouse/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Console serves the console's pages. Its services are the management
// API's (cmd/gatehouse builds both from the same store): the console
// holds no rule of its own.
type Console struct {
	Store          store.Store
	Orgs           *admin.Orgs
	Administrators *admin.Administrators
	APIKeys        *admin.APIKeys
	SCIMTokens     *admin.SCIMTokens
	// OIDCClients manages the OpenID Provider's applications; nil hides
	// the Applications tab's pages.
	OIDCClients *admin.OIDCClients
	// S3Exports is the S3 export preference; nil hides it.
	S3Exports *admin.S3Exports
	SCIMLog   *admin.ProvisioningLog
	// SSO manages SSO connections (package sso); nil hides those pages.
	SSO admin.SSOConnections
	// LDAP manages the LDAP connection and users; nil hides its section.
	LDAP    *admin.LDAP
	SignIn  *admin.SignIn
	BaseURL string
	// TrustForwardedFor: see web.ClientIP.
	TrustForwardedFor bool
	Logger            func(*http.Request) *slog.Logger

	// pages are the templates by language, then by page name.
	pages    map[string]map[string]*template.Template
	messages catalogue
}

// contentSecurityPolicy allows the console's own files and nothing
// inline: no inline script, no inline style, no style attribute. QR codes
// are data: images. Forms post to this server only.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// signInPolicy is the policy of the sign-in page whose form starts SSO:
// its POST is answered by a redirect to the organization's identity
// provider, another origin, and browsers hold a form's redirects to
// form-action too (Chromium then stays on the page). The form still
// posts to this server; only the redirect leaves it.
const signInPolicy = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// Paths of the console.
const (
	PathHome           = "/"
	PathActivate       = "/activate"
	PathResetPassword  = "/reset-password"
	PathForgotPassword = "/forgot-password"
	PathSignOut        = "/logout"
	PathChangePassword = "/account/password"
	PathTwoFactor      = "/account/two-factor"
	PathSignIn         = "/login" // package sso's page
)

// Register mounts the console's routes.
func (c *Console) Register(mux *http.ServeMux) {
	c.parse()
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusForbidden, "error", &page{Title: msg("Form refused"),
			Message: msg("This form was sent from another site, so it was not used. Open the page on this site and send it again.")})
	}))
	get := func(pattern string, h http.HandlerFunc) { mux.Handle("GET "+pattern, c.guard(h)) }
	post := func(pattern string, h http.HandlerFunc) { mux.Handle("POST "+pattern, csrf.Handler(c.guard(h))) }

	assets, _ := fs.Sub(assetFS, "assets")
	files := http.StripPrefix("/assets/", http.FileServerFS(assets))
	mux.Handle("GET /assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))

	get(PathHome+"{$}", c.home)
	get(PathActivate, c.activatePage)
	post(PathActivate, c.activate)
	get(PathResetPassword, c.resetPage)
	post(PathResetPassword, c.reset)
	get(PathForgotPassword, c.forgotPage)
	post(PathForgotPassword, c.forgot)
	post(PathSignOut, c.signOut)
	get(PathChangePassword, c.changePasswordPage)
	post(PathChangePassword, c.changePassword)
	get(PathTwoFactor, c.twoFactorPage)
	post(PathTwoFactor, c.twoFactor)

	// sso: Preferences → Single sign-on (sso.go). The SAML form may carry
	// an IdP's metadata file: its body is bounded by maxMetadataUpload.
	get(PathSSO, c.ssoPageGET)
	get(pathSSONewSAML, c.ssoNew(store.SSOSAML))
	get(pathSSONewOIDC, c.ssoNew(store.SSOOIDC))
	mux.Handle("POST "+pathSSONewSAML, csrf.Handler(c.guardBody(maxMetadataUpload, c.ssoCreate(store.SSOSAML))))
	post(pathSSONewOIDC, c.ssoCreate(store.SSOOIDC))
	post(pathSSORequire, c.ssoRequire)
	post(pathSSOBreakGlass, c.ssoBreakGlass)
	get(PathSSO+"/{id}", c.ssoConnection(false))
	post(PathSSO+"/{id}", c.ssoUpdate)
	get(PathSSO+"/{id}/delete", c.ssoConnection(true))
	post(PathSSO+"/{id}/delete", c.ssoDelete)
	get(PathSSO+"/{id}/tests/{result}", c.ssoTestResult)

	// ldap: Preferences → LDAP (ldap.go).
	if c.LDAP != nil {
		get(PathLDAP, c.ldapPageGET)
		post(PathLDAP, c.ldapSave)
		post(pathLDAPTest, c.ldapTest)
		post(pathLDAPDelete, c.ldapDelete)
		post(pathLDAPUsers, c.ldapUsers)
	}

	// organization, api, audit: Preferences → Organization (domains,
	// two-factor, SCIM), Preferences → API (keys, the API reference) and
	// the audit log.
	get(PathOrganization, c.organization)
	post(pathOrgTwoFactor, c.orgTwoFactor)
	post(pathOrgSCIM, c.orgSCIM)
	post(pathOrgSCIMTokens, c.createSCIMToken)
	post(pathOrgSCIMTokens+"/{id}/revoke", c.revokeSCIMToken)
	post(pathOrgSuperAdminGroup, c.orgSuperAdminGroup)
	post(pathOrgS3Export, c.orgS3Export)
	get(PathAPI, c.apiKeys)
	post(pathAPIKeys, c.createAPIKey)
	post(pathAPIKeys+"/{id}/revoke", c.revokeAPIKey)
	get(PathAPIReference, c.apiReference)
	get(PathAudit, c.audit)
	// scimlog: Preferences → Provisioning log.
	get(PathSCIMLog, c.scimLog)
	get(PathSCIMLog+"/{seq}", c.scimLogEntry)

	// applications: Preferences → Applications, the OpenID Provider's
	// clients (applications.go).
	if c.OIDCClients != nil {
		get(PathApplications, c.applications)
		post(PathApplications, c.createApplication)
		get(PathApplications+"/{id}", c.application(false))
		post(PathApplications+"/{id}", c.updateApplication)
		post(PathApplications+"/{id}/secret", c.rotateApplicationSecret)
		post(PathApplications+"/{id}/disable", c.switchApplication(true))
		post(PathApplications+"/{id}/enable", c.switchApplication(false))
		get(PathApplications+"/{id}/delete", c.application(true))
		post(PathApplications+"/{id}/delete", c.deleteApplication)
	}

	// signin, user (issue #13): Preferences → User, the language switch
	// of the signed-out pages.
	get(PathUserPreferences, c.userPreferences)
	post(PathUserLanguage, c.setUserLanguage)
	get(PathLanguage, c.language)

	// administrators: the Administration page (seed 001) and its drawers.
	get(PathAdministrators, c.administrators)
	get(PathAdministrators+"/new", c.inviteDrawer)
	post(PathAdministrators+"/new", c.invite)
	get(PathAdministrators+"/{id}", c.administratorDrawer)
	post(PathAdministrators+"/{id}", c.editAdministrator)
	get(PathAdministrators+"/{id}/delete", c.deleteDrawer)
	post(PathAdministrators+"/{id}/delete", c.deleteAdministrator)
	post(PathAdministrators+"/{id}/deactivate", c.deactivateAdministrator)
	post(PathAdministrators+"/{id}/reactivate", c.reactivateAdministrator)
	post(PathAdministrators+"/{id}/resend", c.resendInvitation)
	post(PathAdministrators+"/{id}/password", c.setAdministratorPassword)
}

func (c *Console) parse() {
	if c.pages != nil {
		return
	}
	cat, err := loadCatalogue()
	if err != nil {
		panic(err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	c.messages, c.pages = cat, map[string]map[string]*template.Template{}
	for _, lang := range Languages {
		funcs := template.FuncMap{
			"t": func(text string, args ...any) string {
				text = cat.translate(lang, text)
				if len(args) > 0 {
					text = fmt.Sprintf(text, args...)
				}
				return text
			},
			"lang":    func() string { return lang },
			"appForm": appForm,
		}
		c.pages[lang] = map[string]*template.Template{}
		for _, n := range names {
			base := n[len("templates/") : len(n)-len(".html")]
			if base == "layout" || base == "fields" {
				continue
			}
			c.pages[lang][base] = template.Must(template.New("layout.html").Funcs(funcs).
				ParseFS(templateFS, "templates/layout.html", "templates/fields.html", n))
		}
	}
}

func (c *Console) logger(r *http.Request) *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger(r)
}

// guard bounds a request's body (64 KB) and turns a panic into the
// console's 500 page (with the request ID to quote), instead of a bare
// text answer.
func (c *Console) guard(h http.HandlerFunc) http.Handler { return c.guardBody(64<<10, h) }

// guardBody is guard with another bound on the body, for a form that
// uploads a file.
func (c *Console) guardBody(limit int64, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		tw := &trackingWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler || tw.wrote {
				panic(p)
			}
			c.logger(r).Error("console: panic", "panic", p, "path", r.URL.Path)
			c.failure(tw, r, errors.New("panic"))
		}()
		h(tw, r)
	})
}

type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) { t.wrote = true; t.ResponseWriter.WriteHeader(code) }
func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

// page is what every template receives. Every value is escaped by
// html/template.
type page struct {
	Title     string
	RequestID string
	// Me and Org are the signed-in administrator and their organization
	// (the header's), nil on the signed-out pages.
	Me  *store.Administrator
	Org *store.Org
	// Message is a notice for the whole page; Error a refusal not tied
	// to one field; Fields the refusals tied to a field, by its name.
	Message string
	Note    string
	Error   string
	Fields  map[string]string
	// Status is the HTTP status of an error page.
	Status int

	// Nav names the navigation entry the page belongs to (see
	// layout.html): "administrators", "preferences", "audit".
	Nav string
	// Tab names the Preferences tab ("user", "organization",
	// "scim-log", "sso", "api"; see "prefs-tabs" in fields.html).
	Tab string
	// Lang is the page's language (set by render).
	Lang string
	// leavesSite: the page's form may be answered by a redirect to
	// another site (signInPolicy).
	leavesSite bool
	// Data is a page's own values (each area of the console its type).
	Data any
	// Here is the signed-out GET page's own address, where the language
	// switch (layout.html) returns to; "" hides the switch.
	Here string

	// The forms' values.
	Token, Username, OrgName, OrgSlug, Login string
	TOTPRequired                             bool
	// LDAPUser: the activation takes the directory's password, once.
	LDAPUser bool
	TOTP     *totpView
	Done     bool
	// Next is where a sign-in step's page (a password change, a TOTP
	// enrolment) goes once done: the page that sent the session there.
	Next string
	// MinPassword is the password policy's minimum length, for the hint.
	MinPassword int
}

// totpView is a TOTP enrolment on a page: the QR code, the secret typed
// by hand, the sealed ticket that comes back with the first code.
type totpView struct {
	QR     template.URL
	Secret string
	URL    string
	Ticket string
	// Replace: the administrator has TOTP already and moves it to this
	// new secret, proving the app in use with one of its codes.
	Replace bool
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	if p.RequestID == "" {
		p.RequestID = w.Header().Get("X-Request-ID")
	}
	p.MinPassword = admin.MinPasswordLen
	if p.Status == 0 {
		p.Status = status
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if p.leavesSite {
		h.Set("Content-Security-Policy", signInPolicy)
	} else {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
	}
	h.Set("X-Frame-Options", "DENY")
	// The activation and reset pages carry a token in their URL: no
	// Referer may take it elsewhere.
	h.Set("Referrer-Policy", "no-referrer")
	pref := ""
	if p.Me != nil {
		pref = p.Me.Language
	}
	p.Lang = langOf(r, pref)
	if p.Me == nil && r.Method == http.MethodGet {
		p.Here = r.URL.RequestURI()
	}
	c.translate(p)
	h.Set("Content-Language", p.Lang)
	w.WriteHeader(status)
	if err := c.pages[p.Lang][name].Execute(w, p); err != nil {
		c.logger(r).Error("console: rendering", "page", name, "err", err)
	}
}

// translate puts the texts a handler set in Go (marked msg) into the
// page's language.
func (c *Console) translate(p *page) {
	tr := func(s string) string { return c.messages.translateRefusal(p.Lang, s) }
	p.Title, p.Message, p.Note, p.Error = tr(p.Title), tr(p.Message), tr(p.Note), tr(p.Error)
	for k, v := range p.Fields {
		p.Fields[k] = tr(v)
	}
}

// failure answers an error that is not the visitor's: 503 with
// Retry-After while the database is unavailable, else 500; the cause goes
// to the log with the request ID, which the page shows.
func (c *Console) failure(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrUnavailable) {
		c.logger(r).Warn("console: database unavailable", "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(admin.RetryAfterUnavailable))
		c.render(w, r, http.StatusServiceUnavailable, "error", &page{Title: msg("Unavailable for a moment"),
			Message: msg("gatehouse cannot reach its database for a moment. Try again in a few seconds.")})
		return
	}
	c.logger(r).Error("console: request failed", "err", err)
	c.render(w, r, http.StatusInternalServerError, "error", &page{Title: msg("Something went wrong"),
		Message: msg("The page could not be shown because of an error on our side. Try again; if it keeps happening, give the request ID below to support.")})
}

// NotFound renders the console's 404 page.
func (c *Console) NotFound(w http.ResponseWriter, r *http.Request) {
	c.parse()
	c.render(w, r, http.StatusNotFound, "error", &page{Title: msg("Page not found"),
		Message: msg("There is no page at this address. Check the link, or go back to the console.")})
}

// Fallback wraps the server's mux: a GET or HEAD that no route matched
// (the mux's plain 404) gets the console's 404 page instead. The routes
// with their own catch-all (the management API's problem+json, SCIM's
// error schema) match their requests, so they keep their formats; and a
// wrong method stays the mux's 405.
func (c *Console) Fallback(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		fw := &fallbackWriter{ResponseWriter: w, r: r, c: c}
		next.ServeHTTP(fw, r)
	})
}

// fallbackWriter replaces the mux's own 404 (no pattern matched, r.Pattern
// is empty) by the console's page, and drops the mux's text.
type fallbackWriter struct {
	http.ResponseWriter
	r        *http.Request
	c        *Console
	replaced bool
	decided  bool
}

func (f *fallbackWriter) WriteHeader(code int) {
	if f.decided {
		return
	}
	f.decided = true
	if code == http.StatusNotFound && f.r.Pattern == "" {
		f.replaced = true
		f.ResponseWriter.Header().Del("Content-Type")
		f.c.NotFound(f.ResponseWriter, f.r)
		return
	}
	f.ResponseWriter.WriteHeader(code)
}

func (f *fallbackWriter) Write(b []byte) (int, error) {
	if !f.decided {
		f.WriteHeader(http.StatusOK)
	}
	if f.replaced {
		return len(b), nil
	}
	return f.ResponseWriter.Write(b)
}

func (f *fallbackWriter) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// sessionToken is the request's session cookie, "" without one.
func sessionToken(r *http.Request) string {
	if ck, err := r.Cookie(web.SessionCookie); err == nil {
		return ck.Value
	}
	return ""
}

func (c *Console) setSession(w http.ResponseWriter, token string) {
	http.SetCookie(w, web.SessionCookieFor(token, c.SignIn.SessionAbsolute(), c.BaseURL))
}

// refusal is err as a refusal to show, nil when it is not one.
func refusal(err error) *admin.Error {
	var e *admin.Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
