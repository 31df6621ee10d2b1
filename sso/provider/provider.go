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
	"log/slog"
	"net/http"
	"net/url"
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

	op       *op.Provider
	orgSlugs sync.Map // organization id → slug (orgSlug)
}

func (p *Provider) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
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
		SupportedClaims:                   append(append([]string{}, op.DefaultSupportedClaims...), "sid", ClaimOrgID, ClaimOrgSlug, ClaimRole),
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
	h := p.op.HttpHandler()
	for _, path := range []string{oidc.DiscoveryEndpoint, "/keys", "/oauth/token", "/oauth/introspect", "/userinfo", "/revoke"} {
		mux.Handle(path, h)
	}
	mux.Handle("/authorize", p.bindBrowser(h))
	mux.Handle("/end_session", p.withSession(h))
	mux.HandleFunc("GET "+continuePath, p.continueSignIn)
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

// withSession hands end_session the browser's console session.
func (p *Provider) withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ck, err := r.Cookie(web.SessionCookie); err == nil {
			r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, ck.Value))
			http.SetCookie(w, web.SessionCookieFor("", 0, p.BaseURL))
		}
		next.ServeHTTP(w, r)
	})
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
		p.page(w, r, http.StatusBadRequest, err)
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
	if sc, err := r.Cookie(web.SessionCookie); err == nil {
		session, a, err = p.SignIn.Authenticate(ctx, sc.Value)
		if err != nil && !isRefusal(err) {
			p.page(w, r, http.StatusServiceUnavailable, err)
			return
		}
		if err != nil {
			session = store.Session{}
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
		http.Redirect(w, r, "/login?next="+url.QueryEscape(continuePath+"?id="+id), http.StatusFound)
		return
	}
	c, err := p.Store.OIDCClient(ctx, row.ClientID)
	if err != nil || !c.Allows(a.OrgID) {
		fail(oidc.ErrAccessDenied().WithDescription("this application is not open to your organization"))
		return
	}
	amr, err := p.amr(ctx, session)
	if err != nil {
		p.page(w, r, http.StatusServiceUnavailable, err)
		return
	}
	if err := p.Store.SignInOIDCAuthRequest(ctx, id, a.OrgID, a.ID, store.SessionSID(session.Hash), session.CreatedAt, amr, p.now()); err != nil {
		p.page(w, r, http.StatusBadRequest, err)
		return
	}
	done, err := p.Store.OIDCAuthRequest(ctx, id, p.now())
	if err != nil {
		p.page(w, r, http.StatusBadRequest, err)
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

// isRefusal: err is a rule's answer (no valid session), not a failure.
func isRefusal(err error) bool {
	var e *admin.Error
	return errors.As(err, &e)
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
	info.Subject = a.ID
	for _, s := range scopes {
		switch s {
		case oidc.ScopeProfile:
			info.PreferredUsername = a.UserName
			info.GivenName, info.FamilyName = a.GivenName, a.FamilyName
			info.Name = strings.TrimSpace(a.GivenName + " " + a.FamilyName)
			if a.Language != "" {
				info.Locale = oidc.NewLocale(language.Make(a.Language))
			}
		case oidc.ScopeEmail:
			info.Email = a.Email
			verified, err := p.Store.VerifiedEmail(ctx, a.ID)
			if err != nil {
				return err
			}
			info.EmailVerified = oidc.Bool(a.Email != "" && strings.EqualFold(verified, a.Email))
		}
	}
	info.AppendClaims(ClaimOrgID, org)
	info.AppendClaims(ClaimOrgSlug, slug)
	info.AppendClaims(ClaimRole, string(a.Role))
	return nil
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

// page answers a browser whose authorization request cannot go on (no
// client redirect is safe to use): a plain page, never raw JSON.
func (p *Provider) page(w http.ResponseWriter, r *http.Request, status int, err error) {
	p.logger().InfoContext(r.Context(), "authorization request refused", "err", err)
	msg := "This sign-in request has expired or is not valid. Go back to the application and sign in again."
	if status >= 500 {
		msg = "gatehouse cannot complete this sign-in right now. Try again in a moment."
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><html lang=en><meta charset=utf-8><title>Sign-in</title><h1>Sign-in</h1><p>%s</p></html>", msg)
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
