package sso

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"gatehouse/admin"
	"gatehouse/admin/web"
	"gatehouse/sso/protocol"
	"gatehouse/store"
)

// FlowStore is what a Flow reads and writes itself (the connectors keep
// their requests through their own RequestStore; the sign-in is
// admin.SignIn's): where a sign-in goes (organizations, connections), the
// requests it completes, the shared rate windows of Limits, the matching
// of a username, and the audit entry of a refused answer. A store.Store is
// one.
type FlowStore interface {
	Org(ctx context.Context, id string) (store.Org, error)
	OrgBySlug(ctx context.Context, slug string) (store.Org, error)
	OrgsByDomain(ctx context.Context, domain string) ([]string, error)
	SSOConnectionByID(ctx context.Context, id string) (store.SSOConnection, error)
	SSOConnections(ctx context.Context, org string) ([]store.SSOConnection, error)
	RequestStore
	RateWindows
	Administrators
	RecordAudit(ctx context.Context, e store.AuditEntry) error
}

var _ FlowStore = store.Store(nil)

// RequestStore is what a Flow does with a connector's sign-in request
// once the connector has used it: read it back (a connection test's
// page) and record what the test found.
type RequestStore interface {
	SSORequest(ctx context.Context, org, id string) (store.SSORequest, error)
	SetSSORequestResult(ctx context.Context, id string, result store.RawJSON) error
}

// Flow is the browser side of sign-in: the /login page, the start of an
// SP-initiated sign-in, the SAML ACS and OIDC callback, the SP metadata,
// and the test of a connection. Connections are turned into Connectors by
// New (NewConnector in production, fakes in tests), cached per version.
type Flow struct {
	Store   FlowStore
	SignIn  *admin.SignIn
	BaseURL string
	New     func(ctx context.Context, conn store.SSOConnection) (protocol.Connector, error)
	// Metadata renders a SAML connection's SP metadata.
	Metadata func(conn store.SSOConnection) ([]byte, error)
	// TrustForwardedFor: see web.ClientIP.
	TrustForwardedFor bool
	// Limits bound what browsers not signed in can make it write.
	Limits Limits
	Logger func(*http.Request) *slog.Logger
	Now    func() time.Time
	// TestResultURL, when set, is the page (the console's) that shows a
	// connection's kept test result: a test ends with a redirect there,
	// where the tester's session is known again (the ACS is a cross-site
	// POST, which the SameSite=Lax session cookie does not come with).
	// Nil shows the result on a bare page of this package.
	TestResultURL func(connectionID, resultID string) string
	// Pages draws the sign-in pages; nil: the package's plain ones.
	Pages Pages

	mu    sync.Mutex
	cache map[string]cachedConnector // by connection id
}

type cachedConnector struct {
	version int64
	c       protocol.Connector
}

// BrowserCookie binds a sign-in to the browser that started it.
const BrowserCookie = "gatehouse_sso"

// Register mounts the flow's routes.
func (f *Flow) Register(mux *http.ServeMux) {
	// The sign-in forms refuse cross-origin posts (login CSRF: a page
	// signing the browser in to an account of the attacker's choosing).
	// The ACS cannot: the IdP's POST is cross-site by design, and the
	// browser binding and signed InResponseTo protect it instead.
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.message(w, r, http.StatusForbidden, pageData{Message: "This sign-in form was posted from another site."})
	}))
	mux.HandleFunc("GET /login", f.loginPage)
	mux.Handle("POST /login", csrf.Handler(http.HandlerFunc(f.login)))
	mux.HandleFunc("GET /login/password", f.passwordPage)
	mux.Handle("POST /login/password", csrf.Handler(http.HandlerFunc(f.passwordLogin)))
	mux.HandleFunc("GET /sso/start/{connection}", f.start)
	mux.HandleFunc("POST /sso/saml/{connection}/acs", f.finish)
	mux.HandleFunc("GET /sso/oidc/{connection}/callback", f.finish)
	mux.HandleFunc("GET /sso/saml/{connection}/metadata", f.spMetadata)
}

func (f *Flow) now() time.Time {
	if f.Now == nil {
		return time.Now()
	}
	return f.Now()
}

func (f *Flow) logger(r *http.Request) *slog.Logger {
	if f.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Logger(r)
}

// connector returns the protocol.Connector of conn, built once per version.
func (f *Flow) connector(ctx context.Context, conn store.SSOConnection) (protocol.Connector, error) {
	f.mu.Lock()
	if c, ok := f.cache[conn.ID]; ok && c.version == conn.Version {
		f.mu.Unlock()
		return c.c, nil
	}
	f.mu.Unlock()
	c, err := f.New(ctx, conn)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cache == nil {
		f.cache = map[string]cachedConnector{}
	}
	f.cache[conn.ID] = cachedConnector{version: conn.Version, c: c}
	return c, nil
}

// bindBrowser sets a fresh browser-binding cookie and returns the hash a
// request is bound to. The cookie goes back on the IdP's cross-site POST
// to the ACS: SameSite=None with Secure under https; over plain http (a
// local install) without a SameSite attribute, which browsers send on a
// top-level POST for a short while.
func (f *Flow) bindBrowser(w http.ResponseWriter) []byte {
	secret := randomToken(32)
	ck := &http.Cookie{Name: BrowserCookie, Value: secret, Path: "/sso/", HttpOnly: true, MaxAge: int(protocol.RequestTTL / time.Second)}
	if strings.HasPrefix(f.BaseURL, "https://") {
		ck.Secure, ck.SameSite = true, http.SameSiteNoneMode
	}
	http.SetCookie(w, ck)
	return admin.HashSecret(secret)
}

// browser is the binding hash of the request's cookie, nil without one.
func browser(r *http.Request) []byte {
	ck, err := r.Cookie(BrowserCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 128 {
		return nil
	}
	return admin.HashSecret(ck.Value)
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.TrimRight(base32.StdEncoding.EncodeToString(b), "=")
}

// loginPage asks for "username@organization" or a work email address.
// ?org=slug is an organization's own sign-in link: the organization is
// sent along, unchecked (the page is the same for any slug).
func (f *Flow) loginPage(w http.ResponseWriter, r *http.Request) {
	f.page(w, r, http.StatusOK, web.SignInLogin, pageData{Next: web.SafeRedirect(r.URL.Query().Get("next")), Org: orgParam(r.URL.Query().Get("org"))}, "")
}

// passwordPage is the password form, reached from the sign-in page's
// "Sign in with a password" link: how a break-glass Super Administrator
// of an organization that signs in through SSO gets to a password. With
// ?org=slug the organization is fixed, unchecked.
func (f *Flow) passwordPage(w http.ResponseWriter, r *http.Request) {
	org := orgParam(r.URL.Query().Get("org"))
	f.page(w, r, http.StatusOK, web.SignInPassword, pageData{Next: web.SafeRedirect(r.URL.Query().Get("next")), Org: org, OrgFixed: org != ""}, "")
}

// orgParam is an organization slug from a link or a form, cut to a sane
// length; it is only ever compared with stored slugs.
func orgParam(s string) string {
	if len(s) > 128 {
		return ""
	}
	return s
}

// login finds the organization of what was typed, from public facts only
// (see findOrg), and sends the browser to the organization's identity
// provider when it has an enabled connection — the same answer for every
// username — or else shows the password form with the organization
// fixed. When no organization is found it shows the same password form,
// asking for the organization. No username is ever looked up, so the page
// does not tell which usernames exist.
func (f *Flow) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	name := r.PostFormValue("username")
	next := web.SafeRedirect(r.PostFormValue("next"))
	slug := orgParam(r.PostFormValue("organization"))
	if name == "" {
		f.page(w, r, http.StatusBadRequest, web.SignInLogin, pageData{Next: next, Org: slug,
			Message: "Enter username@organization or your work email address."}, "")
		return
	}
	org, username, err := f.findOrg(r.Context(), slug, name)
	if err != nil {
		f.serverError(w, r, "login: finding the organization", err)
		return
	}
	if org.ID == "" {
		f.page(w, r, http.StatusOK, web.SignInPassword, pageData{Next: next, Username: name, Org: slug}, "")
		return
	}
	conns, err := f.Store.SSOConnections(r.Context(), org.ID)
	if err != nil {
		f.serverError(w, r, "login: connections", err)
		return
	}
	for _, c := range conns {
		if c.Enabled {
			f.begin(w, r, c, protocol.StartRequest{RedirectTo: next, LoginHint: username})
			return
		}
	}
	f.page(w, r, http.StatusOK, web.SignInPassword, pageData{Next: next, Username: username, Org: org.Slug, OrgFixed: true}, "")
}

// findOrg returns the organization a sign-in entry names, and the
// username to sign in with, from what is public only: the slug given
// (the page's ?org=), else "username@slug" where slug is an
// organization's, else an email address whose domain exactly one
// organization registered (the whole address is then the username). The
// zero Org when none.
func (f *Flow) findOrg(ctx context.Context, slug, entry string) (store.Org, string, error) {
	if slug != "" {
		org, err := f.Store.OrgBySlug(ctx, admin.SlugOf(slug))
		if errors.Is(err, store.ErrNotFound) {
			return store.Org{}, entry, nil
		}
		return org, entry, err
	}
	at := strings.LastIndexByte(entry, '@')
	if at < 0 {
		return store.Org{}, entry, nil
	}
	org, err := f.Store.OrgBySlug(ctx, admin.SlugOf(entry[at+1:]))
	if err == nil {
		return org, entry[:at], nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.Org{}, "", err
	}
	ids, err := f.Store.OrgsByDomain(ctx, entry[at+1:])
	if err != nil || len(ids) != 1 {
		return store.Org{}, entry, err
	}
	org, err = f.Store.Org(ctx, ids[0])
	return org, entry, err
}

// passwordLogin is the password form's sign-in. A refusal shows the form
// again as it was posted, so it tells nothing the refusal does not.
func (f *Flow) passwordLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	next := web.SafeRedirect(r.PostFormValue("next"))
	username, slug := r.PostFormValue("username"), orgParam(r.PostFormValue("organization"))
	res, err := f.SignIn.Login(r.Context(), admin.LoginRequest{OrgSlug: slug, Username: username,
		Password: r.PostFormValue("password"), TOTPCode: r.PostFormValue("totp"), IP: web.ClientIP(r, f.TrustForwardedFor),
		UserAgent: r.UserAgent()})
	var refused *admin.Error
	if errors.As(err, &refused) {
		f.page(w, r, http.StatusUnauthorized, web.SignInPassword, pageData{Next: next, Username: username, Org: slug,
			OrgFixed: slug != "" && r.PostFormValue("org_fixed") == "1", Message: refused.Message,
			AskTOTP: refused.Code == admin.CodeTOTPRequired || refused.Code == admin.CodeInvalidTOTP}, refused.Code)
		return
	}
	if err != nil {
		f.serverError(w, r, "password sign-in", err)
		return
	}
	http.SetCookie(w, web.SessionCookieFor(res.Token, f.SignIn.SessionAbsolute(), f.BaseURL))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// start begins an SP-initiated sign-in with one connection. With test=1
// it is a Super Administrator's test of the connection: it needs their
// session, and ends on a page showing what the IdP sent, without a
// session.
func (f *Flow) start(w http.ResponseWriter, r *http.Request) {
	conn, err := f.Store.SSOConnectionByID(r.Context(), r.PathValue("connection"))
	if f.unavailable(w, r, err) {
		return
	}
	if err != nil || (!conn.Enabled && r.URL.Query().Get("test") == "") {
		f.message(w, r, http.StatusNotFound, pageData{Message: "This sign-in link is not valid."})
		return
	}
	req := protocol.StartRequest{RedirectTo: web.SafeRedirect(r.URL.Query().Get("next"))}
	if r.URL.Query().Get("test") != "" {
		super, err := f.superOf(r, conn.OrgID)
		if f.unavailable(w, r, err) {
			return
		}
		if !super {
			f.message(w, r, http.StatusForbidden, pageData{Message: "Testing a connection needs a Super Administrator of its organization signed in."})
			return
		}
		req.Test = true
	}
	f.begin(w, r, conn, req)
}

// superOf reports whether the request's session is a Super
// Administrator's of org; the error is the store's when it could not
// tell (an outage is not a refusal).
func (f *Flow) superOf(r *http.Request, org string) (bool, error) {
	ck, err := r.Cookie(web.SessionCookie)
	if err != nil {
		return false, nil
	}
	_, a, err := f.SignIn.Authenticate(r.Context(), ck.Value)
	if errors.Is(err, store.ErrUnavailable) {
		return false, err
	}
	return err == nil && a.OrgID == org && a.Role == store.RoleSuperAdministrator, nil
}

func (f *Flow) begin(w http.ResponseWriter, r *http.Request, conn store.SSOConnection, req protocol.StartRequest) {
	if !f.allowAddress(w, r, "start", f.Limits.starts()) {
		return
	}
	c, err := f.connector(r.Context(), conn)
	if err == nil {
		req.Browser = f.bindBrowser(w)
		err = c.Start(r.Context(), w, r, req)
	}
	if errors.Is(err, store.ErrLimit) {
		f.fail(r, conn, protocol.Refuse(nil, fmt.Sprintf("more than %d sign-ins were in progress on the connection; this one was not started", store.MaxSSORequestsInFlight)))
		w.Header().Del("Set-Cookie")
		f.tooMany(w, r, time.Minute, "Too many sign-ins are in progress for this organization. Try again in a few minutes.")
		return
	}
	if err != nil {
		if f.unavailable(w, r, err) {
			return
		}
		ref := f.fail(r, conn, err)
		f.message(w, r, http.StatusBadGateway, pageData{Message: "Sign-in could not start.", Reference: ref})
	}
}

// finish is the SAML ACS and the OIDC callback.
func (f *Flow) finish(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, protocol.MaxAnswerBody)
	if !f.allowAddress(w, r, "answer", f.Limits.answers()) {
		return
	}
	conn, err := f.Store.SSOConnectionByID(r.Context(), r.PathValue("connection"))
	if err != nil {
		if f.unavailable(w, r, err) {
			return
		}
		f.message(w, r, http.StatusNotFound, pageData{Message: "This sign-in address is not valid."})
		return
	}
	c, err := f.connector(r.Context(), conn)
	if err != nil {
		if f.unavailable(w, r, err) {
			return
		}
		ref := f.fail(r, conn, err)
		f.message(w, r, http.StatusBadGateway, pageData{Message: "Sign-in failed.", Reference: ref})
		return
	}
	id, req, err := c.Finish(r.Context(), r, browser(r))
	if err != nil && req.ID == "" {
		req = f.answeredTest(r, conn)
	}
	var a store.Administrator
	if err == nil {
		a, err = Match(r.Context(), f.Store, conn.OrgID, id.Username)
	}
	if f.unavailable(w, r, err) {
		return
	}
	if req.Test {
		f.testResult(w, r, conn, req, id, a, err)
		return
	}
	if err == nil && !conn.Enabled {
		err = protocol.Refuse(nil, "the connection is disabled")
	}
	if err != nil {
		ref := f.fail(r, conn, err)
		f.message(w, r, http.StatusForbidden, pageData{Message: "Sign-in failed.", Reference: ref})
		return
	}
	method := store.SignInSAML
	if conn.Kind == store.SSOOIDC {
		method = store.SignInOIDC
	}
	res, err := f.SignIn.SSO(r.Context(), a, method, web.ClientIP(r, f.TrustForwardedFor), r.UserAgent())
	if err != nil {
		if f.unavailable(w, r, err) {
			return
		}
		var refused *admin.Error
		if errors.As(err, &refused) {
			err = protocol.Refuse(err, fmt.Sprintf("administrator %q matched but cannot sign in: %s", a.UserName, refused.Message))
		}
		ref := f.fail(r, conn, err)
		f.message(w, r, http.StatusForbidden, pageData{Message: "Sign-in failed.", Reference: ref})
		return
	}
	http.SetCookie(w, web.SessionCookieFor(res.Token, f.SignIn.SessionAbsolute(), f.BaseURL))
	http.Redirect(w, r, web.SafeRedirect(req.RedirectTo), http.StatusSeeOther)
}

// answeredTest returns the test sign-in a refused answer names by its
// RelayState (SAML; gatehouse makes it the AuthnRequest's ID) or state
// (OIDC), when the connector refused before it knew the request (a body
// that does not parse, an expired request, ...): the zero SSORequest
// unless it is a test of this connection started in this browser and not
// used. It only decides where the refusal is shown — on the tester's
// result page instead of as a reference — and never accepts anything.
func (f *Flow) answeredTest(r *http.Request, conn store.SSOConnection) store.SSORequest {
	key := r.URL.Query().Get("state")
	if conn.Kind == store.SSOSAML {
		key = r.PostFormValue("RelayState")
	}
	b := browser(r)
	if key == "" || len(key) > 128 || b == nil {
		return store.SSORequest{}
	}
	req, err := f.Store.SSORequest(r.Context(), conn.OrgID, key)
	if err != nil || !req.Test || req.ConnectionID != conn.ID || req.UsedAt != nil || !bytes.Equal(req.Browser, b) {
		return store.SSORequest{}
	}
	return req
}

// fail records a refused or failed sign-in for the organization's
// administrators — the audit log holds the full reason under a reference
// — and returns the reference, which is all the browser sees.
func (f *Flow) fail(r *http.Request, conn store.SSOConnection, err error) string {
	ref := randomToken(5)
	reason := err.Error()
	var refused *protocol.Error
	if errors.As(err, &refused) {
		reason = refused.Reason
		if refused.Err != nil {
			reason += ": " + refused.Err.Error()
		}
	} else {
		f.logger(r).Error("sso sign-in failed", "reference", ref, "connection", conn.ID, "err", err)
	}
	// Personal data (the username the IdP sent) stays out of the log
	// below debug level; the audit log has the whole story.
	f.logger(r).Info("sso sign-in refused", "reference", ref, "connection", conn.ID)
	f.logger(r).Debug("sso sign-in refused", "reference", ref, "reason", reason)
	// Anyone can post a refused answer: the entries are limited per
	// address and per connection (Limits), the first one over a limit
	// says so, and the rest go to the log above only.
	record, last := f.auditRefusal(r, conn)
	if !record {
		return ref
	}
	entry := map[string]string{"reference": ref, "reason": reason, "method": conn.Kind, "ip": web.ClientIP(r, f.TrustForwardedFor)}
	if last {
		entry["note"] = fmt.Sprintf("too many refused sign-ins: further ones on this connection are not recorded here for up to %s", f.Limits.window())
	}
	after, _ := json.Marshal(entry)
	ctx := store.WithActor(r.Context(), store.Actor{Kind: store.ActorSystem, Name: "sso"})
	if aerr := f.Store.RecordAudit(ctx, store.AuditEntry{OrgID: conn.OrgID, Action: store.AuditSignInFailure, TargetKind: "sso_connection",
		TargetID: conn.ID, TargetName: conn.Name, After: after}); aerr != nil {
		f.logger(r).Error("recording a refused sign-in", "reference", ref, "err", aerr)
	}
	return ref
}

// TestResult is what a connection's test shows (admin.SSOTestResult).
type TestResult = admin.SSOTestResult

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (f *Flow) testResult(w http.ResponseWriter, r *http.Request, conn store.SSOConnection, req store.SSORequest, id protocol.Identity, a store.Administrator, err error) {
	res := TestResult{ID: randomToken(10), Connection: conn.Name, Succeeded: err == nil, Username: id.Username, Subject: id.Subject, Issuer: id.Issuer,
		Certificate: id.Certificate, IssuedAt: timePtr(id.IssuedAt), NotBefore: timePtr(id.NotBefore), NotOnOrAfter: timePtr(id.NotOnOrAfter),
		Attributes: id.Attributes, At: f.now().UTC()}
	if err != nil {
		var refused *protocol.Error
		if errors.As(err, &refused) {
			res.Reason = refused.Reason
			if refused.Err != nil {
				res.Reason += ": " + refused.Err.Error()
			}
		} else {
			res.Reason = "internal error: " + err.Error()
		}
		var near *NearMiss
		if errors.As(err, &near) {
			res.NearMiss = near.Existing
		}
	} else {
		res.Administrator, res.Status = a.UserName, string(a.Status)
		if a.Status != store.StatusActive {
			res.Succeeded, res.Reason = false, fmt.Sprintf("administrator %q matched, but a %s administrator cannot sign in", a.UserName, a.Status)
		}
	}
	b, _ := json.Marshal(res)
	serr := f.Store.SetSSORequestResult(r.Context(), req.ID, b)
	if serr != nil {
		f.logger(r).Error("keeping a test result", "err", serr)
	}
	if f.TestResultURL != nil && serr == nil {
		http.Redirect(w, r, f.TestResultURL(conn.ID, res.ID), http.StatusSeeOther)
		return
	}
	render(w, http.StatusOK, testTemplate, pageData{Test: &res})
}

// spMetadata serves a SAML connection's SP metadata for the admin to
// upload to the IdP.
func (f *Flow) spMetadata(w http.ResponseWriter, r *http.Request) {
	conn, err := f.Store.SSOConnectionByID(r.Context(), r.PathValue("connection"))
	if f.unavailable(w, r, err) {
		return
	}
	if err != nil || conn.Kind != store.SSOSAML {
		http.NotFound(w, r)
		return
	}
	b, err := f.Metadata(conn)
	if err != nil {
		f.logger(r).Error("SP metadata", "connection", conn.ID, "err", err)
		http.Error(w, "metadata unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Write(b)
}
