// Package provider is gatehouse's OpenID Provider (issue #14): the product's
// applications sign administrators in through it and learn who they are.
// The protocol is zitadel's certified op package; this package gives it
// gatehouse's store (every request, code, grant, token and signing key in
// the database, so any instance serves any step), gatehouse's sign-in
// (the console session: password and TOTP, or the organization's SSO
// connection, with its rules), the claims, and the back-channel logouts
// that tell applications an administrator is gone.
package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"gatehouse/admin"
	"gatehouse/admin/web"
	"gatehouse/store"
)

// Lifetimes.
const (
	// TokenLifetime is how long access and ID tokens (and logout tokens)
	// are valid: short, since introspection and refresh see a
	// deactivation at once but a JWT already handed out does not.
	TokenLifetime = 10 * time.Minute
	// RequestLifetime is how long an authorization request (and its
	// code) waits: time enough to sign in, also through an IdP.
	RequestLifetime = 10 * time.Minute
	// DefaultRefreshReuseGrace is Provider.RefreshReuseGrace's default.
	DefaultRefreshReuseGrace = 10 * time.Second
)

// RefreshTokenPrefix starts every refresh token, so that secret scanners
// and people can recognise one.
const RefreshTokenPrefix = "gh_rt_"

// Paths gatehouse serves besides op's own.
const (
	continuePath  = "/authorize/continue" // where a signed-in browser completes a request
	browserCookie = "gatehouse_authorize" // binds a request to the browser that started it
)

// Provider is the OpenID Provider.
type Provider struct {
	Store   store.Store
	SignIn  *admin.SignIn
	Keys    *admin.SigningKeys
	Clients *admin.OIDCClients
	// Sealer encrypts the opaque access tokens (their id and subject).
	Sealer  *admin.Sealer
	BaseURL string // the issuer
	Now     func() time.Time
	Logger  *slog.Logger
	Pages   Pages // nil: plain pages
	// RefreshReuseGrace is how long a refresh token just exchanged may be
	// exchanged again by its client without revoking its family: a
	// client's parallel requests at the moment of a refresh (oauth2-proxy
	// with its cookie store sends them), or its retry of a refresh whose
	// answer it lost. Each such exchange gets tokens of its own; after
	// the grace a reuse revokes the family (Okta and Auth0 have the same
	// setting). Negative: none; zero: DefaultRefreshReuseGrace.
	RefreshReuseGrace time.Duration

	op       *op.Provider
	orgSlugs sync.Map // organization id → slug (orgSlug)
}

func (p *Provider) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

func (p *Provider) reuseGrace() time.Duration {
	switch {
	case p.RefreshReuseGrace < 0:
		return 0
	case p.RefreshReuseGrace == 0:
		return DefaultRefreshReuseGrace
	}
	return p.RefreshReuseGrace
}

func (p *Provider) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// Claims that gatehouse adds to the standard ones.
const (
	ClaimOrgID   = "org_id"
	ClaimOrgSlug = "org_slug"
	ClaimRole    = "role"
)

// corsOptions let a single-page application call the token, userinfo,
// introspection and revocation endpoints from its own origin, without
// credentials: cookies play no part there, and the browser endpoints
// (authorize, end_session) are navigations, not cross-origin reads.
var corsOptions = cors.Options{
	AllowOriginFunc: func(string) bool { return true },
	AllowedMethods:  []string{http.MethodGet, http.MethodPost},
	AllowedHeaders:  []string{"Authorization", "Content-Type", "Accept"},
}

// supportedClaims are the claims gatehouse's tokens carry.
var supportedClaims = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "azp", "at_hash", "c_hash", "sid",
	"preferred_username", "name", "given_name", "family_name", "locale", "email", "email_verified", ClaimOrgID, ClaimOrgSlug, ClaimRole}

// Init builds the protocol handler; call it once before Register.
func (p *Provider) Init() error {
	if p.Store == nil || p.SignIn == nil || p.Keys == nil || p.Clients == nil || p.Sealer == nil || p.BaseURL == "" {
		return errors.New("provider: a store, sign-in, signing keys, clients, a sealer and the base URL are required")
	}
	cfg := &op.Config{
		CodeMethodS256:                    true,
		AuthMethodPost:                    true,
		GrantTypeRefreshToken:             true,
		DefaultLogoutRedirectURI:          "/login?signed_out=1",
		SupportedUILocales:                []language.Tag{language.English, language.Russian},
		SupportedScopes:                   []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess},
		SupportedClaims:                   supportedClaims,
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
	}
	opts := []op.Option{op.WithCrypto(sealedTokens{p.Sealer}), op.WithLogger(p.logger()),
		op.WithCORSOptions(&corsOptions)}
	if strings.HasPrefix(p.BaseURL, "http://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	o, err := op.NewProvider(cfg, storage{p}, op.StaticIssuer(p.BaseURL), opts...)
	if err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	p.op = o
	return nil
}

// Register puts the provider's routes on mux: discovery, JWKS, authorize
// (and its continuation after sign-in), token, userinfo, introspection,
// revocation and end-session. op's own health routes and its device flow
// are not served.
func (p *Provider) Register(mux *http.ServeMux) {
	h := limitBody(p.op.HttpHandler())
	for _, path := range []string{"/keys", "/oauth/token", "/userinfo", "/revoke"} {
		mux.Handle(path, h)
	}
	mux.Handle(introspectPath, limitBody(cors.New(corsOptions).Handler(http.HandlerFunc(p.introspect))))
	mux.HandleFunc("GET "+oidc.DiscoveryEndpoint, p.discovery)
	mux.Handle("/authorize", p.asPages(p.bindBrowser(h)))
	mux.Handle("/end_session", p.asPages(p.withSession(h)))
	mux.HandleFunc("GET "+continuePath, p.continueSignIn)
	// The consent form's answer: a same-origin POST only.
	mux.Handle("POST "+continuePath, limitBody(http.NewCrossOriginProtection().Handler(http.HandlerFunc(p.continueSignIn))))
}

// discovery is op's discovery document, saying only what gatehouse
// serves: the authorization code flow (no implicit or hybrid response
// types, no device flow, no JWT bearer grant) and the claims it gives.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	ctx := op.ContextWithIssuer(r.Context(), p.BaseURL)
	d := op.CreateDiscoveryConfig(ctx, p.op, storage{p})
	d.DeviceAuthorizationEndpoint = ""
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	d.ClaimsSupported = supportedClaims
	// Provider.introspect takes both (op's default names Basic alone).
	d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	op.Discover(w, d)
}

// maxBody bounds a request body of the provider's endpoints (forms of a
// few parameters; a request object is not accepted).
const maxBody = 64 << 10

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

type browserKey struct{}
type sessionKey struct{}

// bindBrowser gives the browser starting an authorization request a
// cookie whose hash the request keeps: only that browser may complete it
// (continueSignIn), so a request started by someone else cannot be
// finished with a victim's session.
func (p *Provider) bindBrowser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := ""
		if ck, err := r.Cookie(browserCookie); err == nil && len(ck.Value) == 43 {
			secret = ck.Value
		} else {
			b := make([]byte, 32)
			rand.Read(b)
			secret = base64.RawURLEncoding.EncodeToString(b)
		}
		http.SetCookie(w, &http.Cookie{Name: browserCookie, Value: secret, Path: "/authorize", HttpOnly: true,
			SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(p.BaseURL, "https://"), MaxAge: int(RequestLifetime / time.Second)})
		ctx := context.WithValue(r.Context(), browserKey{}, hex.EncodeToString(admin.HashSecret(secret)))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// withSession hands end_session the browser's console session, and
// clears the browser's cookie when the logout went through (op answers
// it with a redirect).
func (p *Provider) withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ck, err := r.Cookie(web.SessionCookie); err == nil {
			r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, ck.Value))
			w = &clearOnRedirect{ResponseWriter: w, cookie: web.SessionCookieFor("", 0, p.BaseURL)}
		}
		next.ServeHTTP(w, r)
	})
}

type clearOnRedirect struct {
	http.ResponseWriter
	cookie *http.Cookie
}

func (w *clearOnRedirect) WriteHeader(code int) {
	if code == http.StatusFound || code == http.StatusSeeOther {
		http.SetCookie(w.ResponseWriter, w.cookie)
	}
	w.ResponseWriter.WriteHeader(code)
}

// continueSignIn completes an authorization request with the browser's
// console session: gatehouse's own sign-in (organization discovery,
// password and TOTP or the organization's SSO connection, requireSso,
// the TOTP requirement) made it. Without one, or when the request asks
// for a fresh sign-in (prompt=login, max_age), the browser signs in first
// and comes back here.
func (p *Provider) continueSignIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.URL.Query().Get("id")
	row, err := p.Store.OIDCAuthRequest(ctx, id, p.now())
	if err != nil {
		p.page(w, r, failureStatus(err), err)
		return
	}
	req, err := newAuthRequest(row)
	if err != nil {
		p.page(w, r, http.StatusInternalServerError, err)
		return
	}
	ck, cerr := r.Cookie(browserCookie)
	if cerr != nil || hex.EncodeToString(admin.HashSecret(ck.Value)) != req.req.Browser {
		p.page(w, r, http.StatusBadRequest, errors.New("provider: the request was started in another browser"))
		return
	}
	fail := func(e *oidc.Error) { op.AuthRequestError(w, r, req, e, p.op) }
	var session store.Session
	var a store.Administrator
	back := continuePath + "?id=" + url.QueryEscape(id)
	if sc, err := r.Cookie(web.SessionCookie); err == nil {
		session, a, err = p.SignIn.Authenticate(ctx, sc.Value)
		var refusal *admin.Error
		switch {
		case errors.As(err, &refusal) && refusal.Code == admin.CodePasswordChangeRequired:
			http.Redirect(w, r, "/account/password?next="+url.QueryEscape(back), http.StatusFound)
			return
		case errors.As(err, &refusal) && refusal.Code == admin.CodeTOTPEnrolmentRequired:
			http.Redirect(w, r, "/account/two-factor?next="+url.QueryEscape(back), http.StatusFound)
			return
		case refusal != nil:
			session = store.Session{}
		case err != nil:
			p.page(w, r, http.StatusServiceUnavailable, err)
			return
		}
	}
	fresh := session.AdministratorID != ""
	if fresh && containsPrompt(req.req.Prompt, oidc.PromptLogin) && session.CreatedAt.Before(row.CreatedAt) {
		fresh = false
	}
	if fresh && req.req.MaxAge != nil && p.now().Sub(session.CreatedAt) > time.Duration(*req.req.MaxAge)*time.Second {
		fresh = false
	}
	if !fresh {
		if containsPrompt(req.req.Prompt, oidc.PromptNone) {
			fail(oidc.ErrLoginRequired())
			return
		}
		http.Redirect(w, r, "/login?next="+url.QueryEscape(back), http.StatusFound)
		return
	}
	c, err := p.Store.OIDCClient(ctx, row.ClientID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.page(w, r, http.StatusServiceUnavailable, err)
		return
	}
	if err != nil || !c.Allows(a.OrgID) {
		fail(oidc.ErrAccessDenied().WithDescription("this application is not open to your organization"))
		return
	}
	// Consent is skipped for the product's own (first-party)
	// applications; another application is asked about each time.
	if !c.FirstParty {
		switch {
		case r.Method != http.MethodPost:
			p.consent(w, r, c.Name, a.UserName, back)
			return
		case r.PostFormValue("consent") != "allow":
			fail(oidc.ErrAccessDenied().WithDescription("the administrator did not allow the sign-in"))
			return
		}
	}
	amr, err := p.amr(ctx, session)
	if err != nil {
		p.page(w, r, http.StatusServiceUnavailable, err)
		return
	}
	if err := p.Store.SignInOIDCAuthRequest(ctx, id, a.OrgID, a.ID, store.SessionSID(session.Hash), session.CreatedAt, amr, p.now()); err != nil {
		p.page(w, r, failureStatus(err), err)
		return
	}
	done, err := p.Store.OIDCAuthRequest(ctx, id, p.now())
	if err != nil {
		p.page(w, r, failureStatus(err), err)
		return
	}
	if req, err = newAuthRequest(done); err != nil {
		p.page(w, r, http.StatusInternalServerError, err)
		return
	}
	op.AuthResponse(req, p.op, w, r)
}

func containsPrompt(prompts []string, p string) bool {
	for _, x := range prompts {
		if x == p {
			return true
		}
	}
	return false
}

// amr is how the session signed in (RFC 8176): a password ("pwd", with
// "otp" and "mfa" when the administrator has TOTP, which password sign-in
// then requires), or federated ("fed") through SAML or OIDC.
func (p *Provider) amr(ctx context.Context, s store.Session) ([]string, error) {
	switch s.Method {
	case store.SignInSAML:
		return []string{"fed", "saml"}, nil
	case store.SignInOIDC:
		return []string{"fed", "oidc"}, nil
	}
	c, err := p.Store.Credentials(ctx, s.OrgID, s.AdministratorID)
	if err != nil {
		return nil, err
	}
	if c.TOTPEnabled {
		return []string{"pwd", "otp", "mfa"}, nil
	}
	return []string{"pwd"}, nil
}

// claims fills info with what gatehouse says of the administrator now:
// always sub, the organization and the role; the profile and email
// scopes add their standard claims.
func (p *Provider) claims(ctx context.Context, info *oidc.UserInfo, org, id string, scopes []string) error {
	a, err := p.Store.Administrator(ctx, org, id)
	if err != nil {
		return err
	}
	if a.Status != store.StatusActive {
		return store.ErrNotFound
	}
	slug, err := p.orgSlug(ctx, org)
	if err != nil {
		return err
	}
	verified := ""
	if slices.Contains(scopes, oidc.ScopeEmail) {
		if verified, err = p.Store.VerifiedEmail(ctx, a.ID); err != nil {
			return err
		}
	}
	c := release(a, verified, scopes)
	info.Subject = a.ID
	info.PreferredUsername, info.Name, info.GivenName, info.FamilyName = c.PreferredUsername, c.Name, c.GivenName, c.FamilyName
	if c.Locale != "" {
		info.Locale = oidc.NewLocale(language.Make(c.Locale))
	}
	info.Email, info.EmailVerified = c.Email, oidc.Bool(c.EmailVerified)
	info.AppendClaims(ClaimOrgID, org)
	info.AppendClaims(ClaimOrgSlug, slug)
	info.AppendClaims(ClaimRole, string(a.Role))
	return nil
}

// released are the claims the profile and email scopes release of an
// administrator: the same in ID tokens, userinfo and introspection.
type released struct {
	PreferredUsername string `json:"preferred_username,omitempty"`
	Name              string `json:"name,omitempty"`
	GivenName         string `json:"given_name,omitempty"`
	FamilyName        string `json:"family_name,omitempty"`
	Locale            string `json:"locale,omitempty"`
	Email             string `json:"email,omitempty"`
	// EmailVerified only when gatehouse sent a link to the address and
	// it was used (store.VerifiedEmail), and the address is unchanged.
	EmailVerified bool `json:"email_verified,omitempty"`
}

// release is what scopes release of a, whose proved address is verified.
func release(a store.Administrator, verified string, scopes []string) released {
	var c released
	for _, s := range scopes {
		switch s {
		case oidc.ScopeProfile:
			c.PreferredUsername = a.UserName
			c.GivenName, c.FamilyName = a.GivenName, a.FamilyName
			c.Name = strings.TrimSpace(a.GivenName + " " + a.FamilyName)
			if a.Language != "" {
				c.Locale = language.Make(a.Language).String()
			}
		case oidc.ScopeEmail:
			c.Email = a.Email
			c.EmailVerified = a.Email != "" && strings.EqualFold(verified, a.Email)
		}
	}
	return c
}

// orgSlug is the slug of organization id. A slug never changes
// (store.UpdateOrg keeps it), so it is read once per instance: claims
// answer every introspection, and the read of an organization costs on
// SQLite as much as the rest of an introspection's reads (BENCHMARKS.md,
// "OpenID Provider").
func (p *Provider) orgSlug(ctx context.Context, id string) (string, error) {
	if v, ok := p.orgSlugs.Load(id); ok {
		return v.(string), nil
	}
	o, err := p.Store.Org(ctx, id)
	if err != nil {
		return "", err
	}
	p.orgSlugs.Store(id, o.Slug)
	return o.Slug, nil
}

// Pages draws the pages a person meets here (the console implements it):
// a refused or expired request, in the visitor's language.
type Pages interface {
	SignInPage(w http.ResponseWriter, r *http.Request, status int, p web.SignInPage)
}

// page answers a browser whose authorization or logout request cannot go
// on, when no redirect to the application is safe: a page, never raw
// JSON or text. err goes to the log only.
func (p *Provider) page(w http.ResponseWriter, r *http.Request, status int, err error) {
	p.logger().InfoContext(r.Context(), "OpenID Provider request refused", "path", r.URL.Path, "status", status, "err", err)
	sp := web.SignInPage{Kind: web.SignInMessage, Message: "This sign-in request has expired or is not valid. Go back to the application and sign in again."}
	if status >= 500 {
		sp = web.SignInPage{Kind: web.SignInMessage, Message: "gatehouse cannot complete this sign-in right now. Try again in a moment."}
	}
	w.Header().Set("Cache-Control", "no-store")
	if p.Pages != nil {
		p.Pages.SignInPage(w, r, status, sp)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><html lang=en><meta charset=utf-8><title>Sign-in</title><h1>Sign-in</h1><p>%s</p></html>",
		html.EscapeString(sp.Message))
}

// asPages turns op's own error answers on the browser's endpoints (plain
// text, or JSON) into p.page.
func (p *Provider) asPages(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pw := &pageWriter{ResponseWriter: w}
		next.ServeHTTP(pw, r)
		if pw.status >= 400 {
			w.Header().Del("Content-Type")
			w.Header().Del("Content-Length")
			p.page(w, r, pw.status, fmt.Errorf("%s", strings.TrimSpace(pw.body.String())))
		}
	})
}

// pageWriter holds back an error answer (status 400 and up) for asPages.
type pageWriter struct {
	http.ResponseWriter
	status int
	body   strings.Builder
}

func (w *pageWriter) WriteHeader(code int) {
	if code >= 400 {
		w.status = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *pageWriter) Write(b []byte) (int, error) {
	if w.status >= 400 {
		if w.body.Len() < 1000 {
			w.body.Write(b)
		}
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// failureStatus is the status of a page for err: the request unknown or
// expired (400), or gatehouse unable to read it now (503).
func failureStatus(err error) int {
	if errors.Is(err, store.ErrNotFound) {
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}

// consent asks the administrator whether application may learn who they
// are.
func (p *Provider) consent(w http.ResponseWriter, r *http.Request, application, username, action string) {
	w.Header().Set("Cache-Control", "no-store")
	sp := web.SignInPage{Kind: web.SignInConsent, Application: application, Username: username, Next: action}
	if p.Pages != nil {
		p.Pages.SignInPage(w, r, http.StatusOK, sp)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><html lang=en><meta charset=utf-8><title>Sign in</title><h1>Sign in to %s</h1>
<form method=post action="%s"><button name=consent value=allow>Allow</button><button name=consent value=deny>Cancel</button></form></html>`,
		html.EscapeString(application), html.EscapeString(action))
}

// sealedTokens encrypts access tokens (their id and subject) with the
// server key: opaque to the client, readable by every instance.
type sealedTokens struct{ s *admin.Sealer }

const accessTokenContext = "oidc-access-token"

func (t sealedTokens) Encrypt(v string) (string, error) { return t.s.Seal(v, accessTokenContext), nil }
func (t sealedTokens) Decrypt(v string) (string, error) {
	if len(v) > 512 {
		return "", errors.New("provider: token too long")
	}
	return t.s.Open(v, accessTokenContext)
}

func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
