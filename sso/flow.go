package sso

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
)

// Flow is the browser side of sign-in: the /login page, the start of an
// SP-initiated sign-in, the SAML ACS and OIDC callback, the SP metadata,
// and the test of a connection. Connections are turned into Connectors by
// New (NewConnector in production, fakes in tests), cached per version.
type Flow struct {
	Store   store.Store
	SignIn  *admin.SignIn
	BaseURL string
	New     func(ctx context.Context, conn store.SSOConnection) (Connector, error)
	// Metadata renders a SAML connection's SP metadata.
	Metadata func(conn store.SSOConnection) ([]byte, error)
	// TrustForwardedFor: see admin.ClientIP.
	TrustForwardedFor bool
	Logger            func(*http.Request) *slog.Logger
	Now               func() time.Time

	mu    sync.Mutex
	cache map[string]cachedConnector // by connection id
}

type cachedConnector struct {
	version int64
	c       Connector
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
		render(w, http.StatusForbidden, messageTemplate, pageData{Message: "This sign-in form was posted from another site."})
	}))
	mux.HandleFunc("GET /login", f.loginPage)
	mux.Handle("POST /login", csrf.Handler(http.HandlerFunc(f.login)))
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

// connector returns the Connector of conn, built once per version.
func (f *Flow) connector(ctx context.Context, conn store.SSOConnection) (Connector, error) {
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

// SafeRedirect returns next if it is a path on this server ("/x", not
// "//host", "/\host", "https://..." or "javascript:..."), else "/".
func SafeRedirect(next string) string {
	if next == "" || next[0] != '/' || len(next) > 2048 {
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

// bindBrowser sets a fresh browser-binding cookie and returns the hash a
// request is bound to. The cookie goes back on the IdP's cross-site POST
// to the ACS: SameSite=None with Secure under https; over plain http (a
// local install) without a SameSite attribute, which browsers send on a
// top-level POST for a short while.
func (f *Flow) bindBrowser(w http.ResponseWriter) []byte {
	secret := randomToken(32)
	ck := &http.Cookie{Name: BrowserCookie, Value: secret, Path: "/sso/", HttpOnly: true, MaxAge: int(RequestTTL / time.Second)}
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

// loginPage asks for a username or email.
func (f *Flow) loginPage(w http.ResponseWriter, r *http.Request) {
	render(w, http.StatusOK, loginTemplate, pageData{Next: SafeRedirect(r.URL.Query().Get("next"))})
}

// login finds the organization of what was typed — the registered email
// domain of an address, or the organization of a username — and sends
// the browser to its identity provider, or shows the password form when
// it has no SSO. It shows the password form too when nothing matches, so
// the page does not tell which usernames exist.
func (f *Flow) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	name := r.PostFormValue("username")
	next := SafeRedirect(r.PostFormValue("next"))
	if name == "" {
		render(w, http.StatusBadRequest, loginTemplate, pageData{Next: next, Message: "Enter your username or email address."})
		return
	}
	org, err := f.findOrg(r.Context(), name)
	if err != nil {
		if f.unavailable(w, r, err) {
			return
		}
		f.logger(r).Error("login: finding the organization", "err", err)
		render(w, http.StatusInternalServerError, messageTemplate, pageData{Message: "Sign-in is unavailable. Try again later."})
		return
	}
	if org != "" {
		conns, err := f.Store.SSOConnections(r.Context(), org)
		if err != nil {
			if f.unavailable(w, r, err) {
				return
			}
			f.logger(r).Error("login: connections", "err", err)
			render(w, http.StatusInternalServerError, messageTemplate, pageData{Message: "Sign-in is unavailable. Try again later."})
			return
		}
		for _, c := range conns {
			if c.Enabled {
				f.begin(w, r, c, StartRequest{RedirectTo: next, LoginHint: name})
				return
			}
		}
	}
	render(w, http.StatusOK, passwordTemplate, pageData{Next: next, Username: name})
}

// findOrg returns the organization an entry names: the one whose
// registered domain an address is in, else the one organization with that
// exact username; "" when none or several.
func (f *Flow) findOrg(ctx context.Context, name string) (string, error) {
	if at := strings.LastIndexByte(name, '@'); at > 0 {
		orgs, err := f.Store.OrgsByDomain(ctx, name[at+1:])
		if err != nil {
			return "", err
		}
		if len(orgs) == 1 {
			return orgs[0], nil
		}
	}
	as, err := f.Store.AdministratorsByUsername(ctx, name)
	if err != nil || len(as) != 1 {
		return "", err
	}
	return as[0].OrgID, nil
}

// passwordLogin is the password form's sign-in.
func (f *Flow) passwordLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	next := SafeRedirect(r.PostFormValue("next"))
	username := r.PostFormValue("username")
	res, err := f.SignIn.Login(r.Context(), admin.LoginRequest{OrgSlug: r.PostFormValue("organization"), Username: username,
		Password: r.PostFormValue("password"), TOTPCode: r.PostFormValue("totp"), IP: admin.ClientIP(r, f.TrustForwardedFor),
		UserAgent: r.UserAgent()})
	if f.unavailable(w, r, err) {
		return
	}
	var refused *admin.Error
	if errors.As(err, &refused) {
		render(w, http.StatusUnauthorized, passwordTemplate, pageData{Next: next, Username: username, Message: refused.Message,
			AskTOTP: refused.Code == admin.CodeTOTPRequired || refused.Code == admin.CodeInvalidTOTP})
		return
	}
	if err != nil {
		f.logger(r).Error("password sign-in", "err", err)
		render(w, http.StatusInternalServerError, messageTemplate, pageData{Message: "Sign-in is unavailable. Try again later."})
		return
	}
	http.SetCookie(w, admin.SessionCookieFor(res.Token, f.SignIn.SessionAbsolute(), f.BaseURL))
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
		render(w, http.StatusNotFound, messageTemplate, pageData{Message: "This sign-in link is not valid."})
		return
	}
	req := StartRequest{RedirectTo: SafeRedirect(r.URL.Query().Get("next"))}
	if r.URL.Query().Get("test") != "" {
		if !f.superOf(r, conn.OrgID) {
			render(w, http.StatusForbidden, messageTemplate, pageData{Message: "Testing a connection needs a Super Administrator of its organization signed in."})
			return
		}
		req.Test = true
	}
	f.begin(w, r, conn, req)
}

// superOf reports whether the request's session is a Super
// Administrator's of org.
func (f *Flow) superOf(r *http.Request, org string) bool {
	ck, err := r.Cookie(admin.SessionCookie)
	if err != nil {
		return false
	}
	_, a, err := f.SignIn.Authenticate(r.Context(), ck.Value)
	return err == nil && a.OrgID == org && a.Role == store.RoleSuperAdministrator
}

func (f *Flow) begin(w http.ResponseWriter, r *http.Request, conn store.SSOConnection, req StartRequest) {
	c, err := f.connector(r.Context(), conn)
	if err == nil {
		req.Browser = f.bindBrowser(w)
		err = c.Start(r.Context(), w, r, req)
	}
	if err != nil {
		if f.unavailable(w, r, err) {
			return
		}
		ref := f.fail(r, conn, err)
		render(w, http.StatusBadGateway, messageTemplate, pageData{Message: "Sign-in could not start.", Reference: ref})
	}
}

// finish is the SAML ACS and the OIDC callback.
func (f *Flow) finish(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxACSBody)
	conn, err := f.Store.SSOConnectionByID(r.Context(), r.PathValue("connection"))
	if err != nil {
		if f.unavailable(w, r, err) {
			return
		}
		render(w, http.StatusNotFound, messageTemplate, pageData{Message: "This sign-in address is not valid."})
		return
	}
	c, err := f.connector(r.Context(), conn)
	if err != nil {
		if f.unavailable(w, r, err) {
			return
		}
		ref := f.fail(r, conn, err)
		render(w, http.StatusBadGateway, messageTemplate, pageData{Message: "Sign-in failed.", Reference: ref})
		return
	}
	id, req, err := c.Finish(r.Context(), r, browser(r))
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
		err = refuse(nil, "the connection is disabled")
	}
	if err != nil {
		ref := f.fail(r, conn, err)
		render(w, http.StatusForbidden, messageTemplate, pageData{Message: "Sign-in failed.", Reference: ref})
		return
	}
	method := store.SignInSAML
	if conn.Kind == store.SSOOIDC {
		method = store.SignInOIDC
	}
	res, err := f.SignIn.SSO(r.Context(), a, method, admin.ClientIP(r, f.TrustForwardedFor), r.UserAgent())
	if err != nil {
		if f.unavailable(w, r, err) {
			return
		}
		var refused *admin.Error
		if errors.As(err, &refused) {
			err = refuse(err, fmt.Sprintf("administrator %q matched but cannot sign in: %s", a.UserName, refused.Message))
		}
		ref := f.fail(r, conn, err)
		render(w, http.StatusForbidden, messageTemplate, pageData{Message: "Sign-in failed.", Reference: ref})
		return
	}
	http.SetCookie(w, admin.SessionCookieFor(res.Token, f.SignIn.SessionAbsolute(), f.BaseURL))
	http.Redirect(w, r, SafeRedirect(req.RedirectTo), http.StatusSeeOther)
}

// fail records a refused or failed sign-in for the organization's
// administrators — the audit log holds the full reason under a reference
// — and returns the reference, which is all the browser sees.
func (f *Flow) fail(r *http.Request, conn store.SSOConnection, err error) string {
	ref := randomToken(5)
	reason := err.Error()
	var refused *Error
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
	after, _ := json.Marshal(map[string]string{"reference": ref, "reason": reason, "method": conn.Kind, "ip": admin.ClientIP(r, f.TrustForwardedFor)})
	ctx := store.WithActor(r.Context(), store.Actor{Kind: store.ActorSystem, Name: "sso"})
	if aerr := f.Store.RecordAudit(ctx, store.AuditEntry{OrgID: conn.OrgID, Action: store.AuditSignInFailure, TargetKind: "sso_connection",
		TargetID: conn.ID, TargetName: conn.Name, After: after}); aerr != nil {
		f.logger(r).Error("recording a refused sign-in", "reference", ref, "err", aerr)
	}
	return ref
}

// TestResult is what a connection's test shows: what the IdP sent, and
// which administrator it matched or exactly why not.
type TestResult struct {
	Connection    string              `json:"connection"`
	Succeeded     bool                `json:"succeeded"`
	Reason        string              `json:"reason,omitempty"`
	Username      string              `json:"username,omitempty"`
	Subject       string              `json:"subject,omitempty"`
	Issuer        string              `json:"issuer,omitempty"`
	Certificate   string              `json:"certificate,omitempty"`
	IssuedAt      *time.Time          `json:"issuedAt,omitempty"`
	NotBefore     *time.Time          `json:"notBefore,omitempty"`
	NotOnOrAfter  *time.Time          `json:"notOnOrAfter,omitempty"`
	Attributes    map[string][]string `json:"attributes,omitempty"`
	Administrator string              `json:"administrator,omitempty"` // the matched username
	Status        string              `json:"status,omitempty"`        // the matched administrator's status
	At            time.Time           `json:"at"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (f *Flow) testResult(w http.ResponseWriter, r *http.Request, conn store.SSOConnection, req store.SSORequest, id Identity, a store.Administrator, err error) {
	res := TestResult{Connection: conn.Name, Succeeded: err == nil, Username: id.Username, Subject: id.Subject, Issuer: id.Issuer,
		Certificate: id.Certificate, IssuedAt: timePtr(id.IssuedAt), NotBefore: timePtr(id.NotBefore), NotOnOrAfter: timePtr(id.NotOnOrAfter),
		Attributes: id.Attributes, At: f.now().UTC()}
	if err != nil {
		var refused *Error
		if errors.As(err, &refused) {
			res.Reason = refused.Reason
			if refused.Err != nil {
				res.Reason += ": " + refused.Err.Error()
			}
		} else {
			res.Reason = "internal error: " + err.Error()
		}
	} else {
		res.Administrator, res.Status = a.UserName, string(a.Status)
		if a.Status != store.StatusActive {
			res.Succeeded, res.Reason = false, fmt.Sprintf("administrator %q matched, but a %s administrator cannot sign in", a.UserName, a.Status)
		}
	}
	b, _ := json.Marshal(res)
	if serr := f.Store.SetSSORequestResult(r.Context(), req.ID, b); serr != nil {
		f.logger(r).Error("keeping a test result", "err", serr)
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
