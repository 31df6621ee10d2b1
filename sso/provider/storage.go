package provider

import (
	"context"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"gatehouse/admin"
	"gatehouse/store"
)

// storage is the zitadel op.Storage over gatehouse's store: every
// request, code, grant and token lives in the database, so any instance
// serves any step of a flow.
type storage struct{ p *Provider }

var (
	errUnknownClient = errors.New("provider: unknown or disabled client")
	errNotSignedIn   = errors.New("provider: the authorization request has no sign-in")
)

// request is an authorization request's parameters, kept as JSON in the
// store (store.OIDCAuthRequest.Params).
type request struct {
	RedirectURI   string   `json:"redirect_uri"`
	Scopes        []string `json:"scopes"`
	State         string   `json:"state"`
	Nonce         string   `json:"nonce"`
	ResponseType  string   `json:"response_type"`
	ResponseMode  string   `json:"response_mode,omitempty"`
	CodeChallenge string   `json:"code_challenge,omitempty"`
	Prompt        []string `json:"prompt,omitempty"`
	MaxAge        *uint    `json:"max_age,omitempty"`
	// Browser is the hash of the cookie that binds the request to the
	// browser that started it (see Provider.authorize).
	Browser string `json:"browser"`
}

// authRequest is an authorization request as op sees it.
type authRequest struct {
	store.OIDCAuthRequest
	req request
}

func newAuthRequest(r store.OIDCAuthRequest) (*authRequest, error) {
	a := &authRequest{OIDCAuthRequest: r}
	if err := json.Unmarshal([]byte(r.Params), &a.req); err != nil {
		return nil, fmt.Errorf("provider: authorization request %s: %w", r.ID, err)
	}
	return a, nil
}

func (a *authRequest) GetID() string         { return a.ID }
func (a *authRequest) GetACR() string        { return "" }
func (a *authRequest) GetAMR() []string      { return a.AMR }
func (a *authRequest) GetAudience() []string { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time {
	if a.AuthTime == nil {
		return time.Time{}
	}
	return *a.AuthTime
}
func (a *authRequest) GetClientID() string { return a.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.req.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.req.CodeChallenge, Method: oidc.CodeChallengeMethodS256}
}
func (a *authRequest) GetNonce() string       { return a.req.Nonce }
func (a *authRequest) GetRedirectURI() string { return a.req.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseType(a.req.ResponseType)
}
func (a *authRequest) GetResponseMode() oidc.ResponseMode {
	return oidc.ResponseMode(a.req.ResponseMode)
}
func (a *authRequest) GetScopes() []string { return a.req.Scopes }
func (a *authRequest) GetState() string    { return a.req.State }
func (a *authRequest) GetSubject() string  { return a.AdministratorID }
func (a *authRequest) Done() bool          { return a.AdministratorID != "" }

// grantRequest is a grant as op sees a refresh: the tokens it asks for
// belong to the grant, on behalf of its administrator.
type grantRequest struct {
	g       store.OIDCGrant
	tokenID string // the refresh token exchanged
	scopes  []string
}

func (r *grantRequest) GetAMR() []string            { return r.g.AMR }
func (r *grantRequest) GetAudience() []string       { return []string{r.g.ClientID} }
func (r *grantRequest) GetAuthTime() time.Time      { return r.g.AuthTime }
func (r *grantRequest) GetClientID() string         { return r.g.ClientID }
func (r *grantRequest) GetScopes() []string         { return r.scopes }
func (r *grantRequest) GetSubject() string          { return r.g.AdministratorID }
func (r *grantRequest) SetCurrentScopes(s []string) { r.scopes = s }

// client is a registered application as op sees it.
type client struct{ store.OIDCClient }

func (c client) GetID() string                    { return c.ID }
func (c client) RedirectURIs() []string           { return c.OIDCClient.RedirectURIs }
func (c client) PostLogoutRedirectURIs() []string { return c.OIDCClient.PostLogoutRedirectURIs }
func (c client) ApplicationType() op.ApplicationType {
	if c.Public {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}
func (c client) AuthMethod() oidc.AuthMethod {
	if c.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (c client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c client) LoginURL(id string) string            { return continuePath + "?id=" + id }
func (c client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c client) IDTokenLifetime() time.Duration       { return TokenLifetime }
func (c client) ClockSkew() time.Duration             { return 0 }
func (c client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c client) IsScopeAllowed(scope string) bool     { return false } // only the standard ones below
func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// DevMode lets op accept the http redirect URIs of a public client;
// registration allows http only on loopback hosts (admin.CheckClientURI),
// and matching stays exact.
func (c client) DevMode() bool { return true }

// CreateAuthRequest stores a validated authorization request. PKCE with
// S256 is required of a public client, and plain is refused for every
// client (OAuth 2.0 Security BCP §2.1.1).
func (s storage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, err := s.p.Store.OIDCClient(ctx, r.ClientID)
	if err != nil {
		return nil, err
	}
	if r.CodeChallenge != "" && r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	if c.Public && r.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("a public client must use PKCE (code_challenge with S256)")
	}
	browser, _ := ctx.Value(browserKey{}).(string)
	if browser == "" {
		return nil, errors.New("provider: authorization request without a browser binding")
	}
	params, err := json.Marshal(request{RedirectURI: r.RedirectURI, Scopes: r.Scopes, State: r.State, Nonce: r.Nonce,
		ResponseType: string(r.ResponseType), ResponseMode: string(r.ResponseMode), CodeChallenge: r.CodeChallenge,
		Prompt: r.Prompt, MaxAge: r.MaxAge, Browser: browser})
	if err != nil {
		return nil, err
	}
	row := store.OIDCAuthRequest{ID: uuid.NewString(), ClientID: c.ID, Params: string(params), ExpiresAt: s.p.now().Add(RequestLifetime)}
	if err := s.p.Store.CreateOIDCAuthRequest(ctx, row); err != nil {
		return nil, err
	}
	return newAuthRequest(row)
}

func (s storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.p.Store.OIDCAuthRequest(ctx, id, s.p.now())
	if err != nil {
		return nil, err
	}
	return newAuthRequest(r)
}

// AuthRequestByCode uses the code: it works once. Presented again, it
// revokes the tokens it gave (store.ErrReused).
func (s storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	r, err := s.p.Store.UseOIDCAuthCode(ctx, admin.HashSecret(code), s.p.now())
	if err != nil {
		return nil, err
	}
	return newAuthRequest(r)
}

func (s storage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.p.Store.SetOIDCAuthCode(ctx, id, admin.HashSecret(code), s.p.now())
}

// DeleteAuthRequest keeps the request: its used code must stay known until
// it expires, so that a replay revokes the grant.
func (s storage) DeleteAuthRequest(context.Context, string) error { return nil }

// grantOf is the grant a token request asks tokens of: a new one for a
// code just used, the refreshed one otherwise.
func (s storage) grantOf(ctx context.Context, tr op.TokenRequest) (store.OIDCGrant, string, error) {
	switch r := tr.(type) {
	case *authRequest:
		if !r.Done() || r.AuthTime == nil {
			return store.OIDCGrant{}, "", errNotSignedIn
		}
		return store.OIDCGrant{ID: r.ID, ClientID: r.ClientID, OrgID: r.OrgID, AdministratorID: r.AdministratorID, SID: r.SID,
			Scopes: r.req.Scopes, AuthTime: *r.AuthTime, AMR: r.AMR, ExpiresAt: r.AuthTime.Add(s.p.SignIn.SessionAbsolute())}, "", nil
	case *grantRequest:
		return r.g, r.tokenID, nil
	}
	return store.OIDCGrant{}, "", fmt.Errorf("provider: no tokens for a %T", tr)
}

func (s storage) CreateAccessToken(ctx context.Context, tr op.TokenRequest) (string, time.Time, error) {
	id, _, exp, err := s.issue(ctx, tr, false)
	return id, exp, err
}

func (s storage) CreateAccessAndRefreshTokens(ctx context.Context, tr op.TokenRequest, _ string) (string, string, time.Time, error) {
	return s.issue(ctx, tr, true)
}

// issue stores an access token (and a refresh token when refresh) of the
// grant tr asks for, in one transaction with using the refresh token it
// exchanges.
func (s storage) issue(ctx context.Context, tr op.TokenRequest, refresh bool) (string, string, time.Time, error) {
	g, exchanged, err := s.grantOf(ctx, tr)
	if err != nil {
		return "", "", time.Time{}, err
	}
	now := s.p.now()
	access := store.OIDCToken{ID: strings.ReplaceAll(uuid.NewString(), "-", ""), Kind: store.OIDCAccessToken, ExpiresAt: now.Add(TokenLifetime)}
	tokens := []store.OIDCToken{access}
	var refreshToken string
	if refresh {
		refreshToken = RefreshTokenPrefix + newSecret()
		tokens = append(tokens, store.OIDCToken{ID: refreshID(refreshToken), Kind: store.OIDCRefreshToken, ExpiresAt: g.ExpiresAt})
	}
	if err := s.p.Store.IssueOIDCTokens(ctx, g, exchanged, s.p.reuseGrace(), tokens, now); err != nil {
		if errors.Is(err, store.ErrReused) {
			s.p.logger().WarnContext(ctx, "OIDC refresh token used twice: grant revoked", "grant", g.ID, "client", g.ClientID)
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
		}
		if errors.Is(err, store.ErrNotFound) {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("the grant has ended")
		}
		return "", "", time.Time{}, err
	}
	return access.ID, refreshToken, access.ExpiresAt, nil
}

// refreshID is the stored id of a refresh token: its hash.
func refreshID(token string) string { return hex.EncodeToString(admin.HashSecret(token)) }

// live checks that token t of grant g may be used now: not expired, the
// grant live and its administrator active (a deactivation shows at once,
// on every instance).
func (s storage) live(ctx context.Context, t store.OIDCToken, g store.OIDCGrant) error {
	if err := s.unexpired(t, g); err != nil {
		return err
	}
	a, err := s.p.Store.Administrator(ctx, g.OrgID, g.AdministratorID)
	if err != nil {
		return err
	}
	if a.Status != store.StatusActive {
		return store.ErrNotFound
	}
	return nil
}

// unexpired checks that token t of grant g is not expired and the grant
// live; live also checks the administrator.
func (s storage) unexpired(t store.OIDCToken, g store.OIDCGrant) error {
	now := s.p.now()
	if !now.Before(t.ExpiresAt) || !g.Live(now) {
		return store.ErrNotFound
	}
	return nil
}

// unexpiredToken returns the unexpired token of id and kind, and its
// grant. Its administrator is not read: the caller answers with
// Provider.claims, which reads them once and refuses one no longer active
// (introspection is the product's hot path: one read fewer of each
// request).
func (s storage) unexpiredToken(ctx context.Context, id, kind string) (store.OIDCToken, store.OIDCGrant, error) {
	t, g, err := s.p.Store.OIDCToken(ctx, id)
	if err == nil && t.Kind != kind {
		err = store.ErrNotFound
	}
	if err == nil {
		err = s.unexpired(t, g)
	}
	return t, g, err
}

// TokenRequestByRefreshToken finds the grant of a refresh token. One
// exchanged more than the reuse grace ago revokes its grant: the
// refresh token was stolen, or its client is broken (OAuth 2.0 Security
// BCP §4.14.2).
func (s storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	if !strings.HasPrefix(token, RefreshTokenPrefix) || len(token) > 128 {
		return nil, op.ErrInvalidRefreshToken
	}
	t, g, err := s.p.Store.OIDCToken(ctx, refreshID(token))
	if err != nil {
		return nil, err
	}
	if t.Kind != store.OIDCRefreshToken {
		return nil, op.ErrInvalidRefreshToken
	}
	if t.UsedAt != nil && (s.p.reuseGrace() == 0 || s.p.now().After(t.UsedAt.Add(s.p.reuseGrace()))) {
		if err := s.p.Store.RevokeOIDCGrant(ctx, g.ID, s.p.now()); err != nil {
			return nil, err
		}
		s.p.logger().WarnContext(ctx, "OIDC refresh token used twice: grant revoked", "grant", g.ID, "client", g.ClientID)
		return nil, store.ErrReused
	}
	if err := s.live(ctx, t, g); err != nil {
		return nil, err
	}
	return &grantRequest{g: g, tokenID: t.ID, scopes: slices.Clone(g.Scopes)}, nil
}

// TerminateSession is not used: TerminateSessionFromRequest ends the
// browser's session.
func (s storage) TerminateSession(context.Context, string, string) error { return nil }

// TerminateSessionFromRequest ends the console session of the browser
// asking to log out (RP-initiated logout), and with it every
// application's sign-in of that session (their grants revoked, their
// back-channel logout tokens queued).
func (s storage) TerminateSessionFromRequest(ctx context.Context, r *op.EndSessionRequest) (string, error) {
	if token, _ := ctx.Value(sessionKey{}).(string); token != "" {
		if err := s.p.SignIn.Logout(ctx, token); err != nil {
			return "", err
		}
	}
	return r.RedirectURI, nil
}

// RevokeToken revokes a token its client presents (RFC 7009): an access
// token alone, a refresh token with its whole grant. A token of another
// client is refused; an unknown one is not an error.
func (s storage) RevokeToken(ctx context.Context, id, _ string, clientID string) *oidc.Error {
	t, g, err := s.p.Store.OIDCToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	if g.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
	}
	if t.Kind == store.OIDCRefreshToken {
		err = s.p.Store.RevokeOIDCGrant(ctx, g.ID, s.p.now())
	} else {
		err = s.p.Store.DeleteOIDCToken(ctx, t.ID)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

func (s storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	if !strings.HasPrefix(token, RefreshTokenPrefix) || len(token) > 128 {
		return "", "", op.ErrInvalidRefreshToken
	}
	_, g, err := s.p.Store.OIDCToken(ctx, refreshID(token))
	if errors.Is(err, store.ErrNotFound) {
		return "", "", op.ErrInvalidRefreshToken
	}
	if err != nil {
		return "", "", err
	}
	return g.AdministratorID, refreshID(token), nil
}

// signingKey is the key that signs now, as op signs with it.
type signingKey struct{ admin.ActiveSigningKey }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(k.Algorithm)
}
func (k signingKey) Key() any   { return k.ActiveSigningKey.Key }
func (k signingKey) ID() string { return k.ActiveSigningKey.ID }

func (s storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	k, err := s.p.Keys.Active(ctx)
	if err != nil {
		return nil, err
	}
	return signingKey{k}, nil
}

func (s storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// publicKey is a published key.
type publicKey struct {
	id, alg string
	key     *rsa.PublicKey
}

func (k publicKey) ID() string                         { return k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(k.alg) }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.key }

func (s storage) KeySet(ctx context.Context) ([]op.Key, error) {
	set, err := s.p.Keys.PublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]op.Key, len(set.Keys))
	for i, k := range set.Keys {
		keys[i] = publicKey{id: k.KeyID, alg: k.Algorithm, key: k.Public}
	}
	return keys, nil
}

// GetClientByClientID returns an enabled client.
func (s storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.p.Store.OIDCClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && c.Disabled {
		return nil, errUnknownClient
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return client{c}, nil
}

func (s storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	err := s.p.Clients.Authenticate(ctx, id, secret)
	if errors.Is(err, admin.ErrBadClient) {
		return errUnknownClient
	}
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// SetUserinfoFromScopes is empty, as op asks: SetUserinfoFromRequest
// fills the ID token's claims.
func (s storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills an ID token's claims from the
// administrator as they are now: a role or status change shows at the
// next refresh.
func (s storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	var org, sid string
	switch r := r.(type) {
	case *authRequest:
		org, sid = r.OrgID, r.SID
	case *grantRequest:
		org, sid = r.g.OrgID, r.g.SID
	default:
		return fmt.Errorf("provider: no claims for a %T", r)
	}
	if err := s.p.claims(ctx, info, org, r.GetSubject(), scopes); err != nil {
		return err
	}
	info.AppendClaims("sid", sid) // the session back-channel logout names
	return nil
}

// SetUserinfoFromToken answers userinfo for a live access token (claims
// refuses an administrator no longer active).
func (s storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	_, g, err := s.unexpiredToken(ctx, tokenID, store.OIDCAccessToken)
	if err != nil {
		return err
	}
	if g.AdministratorID != subject {
		return store.ErrNotFound
	}
	return s.p.claims(ctx, info, g.OrgID, g.AdministratorID, g.Scopes)
}

// SetIntrospectionFromToken is not used: Provider.introspect serves the
// introspection endpoint.
func (s storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("provider: introspection is served by Provider.introspect")
}

func (s storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID: clients authenticate with a secret, not a key
// (private_key_jwt is not offered).
func (s storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("provider: private_key_jwt is not supported")
}

func (s storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("provider: the JWT profile grant is not supported")
}

func (s storage) Health(ctx context.Context) error {
	_, err := s.p.Store.SigningKeys(ctx)
	return err
}
