// Package oidc is gatehouse's OpenID Connect relying party, one connector
// (protocol.Connector) per SSOConnection of kind "oidc": the connection's
// settings (Config, ParseConfig), discovery of the provider (New), the
// authorization code flow with PKCE, state and nonce that starts a
// sign-in, the checks of the ID token and userinfo at the callback, and
// the path of that callback (CallbackPath). Every response read from the
// provider is bounded; the HTTP client is the caller's (sso/fetch's
// SSRF-guarded one in production).
package oidc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"gatehouse/admin"
	"gatehouse/sso/protocol"
	"gatehouse/store"
)

// Config is SSOConnection.Config for the kind "oidc" (JSON). The
// client secret is not here: it is SSOConnection.Secret, sealed with the
// server key in the context protocol.SealContext.
//
// What discovery returns is not stored: New discovers the provider
// each time it makes a connector, and a connector (see Flow's cache)
// keeps it for one version of the connection.
type Config struct {
	// Issuer is the provider's issuer identifier, compared exactly with
	// the discovery document, the ID token's "iss" and the callback's
	// "iss" (RFC 9207). https, or http on a loopback host.
	Issuer   string `json:"issuer"`
	ClientID string `json:"clientId"`
	// Scopes requested; default openid, email, profile. "openid" is
	// always requested, first.
	Scopes []string `json:"scopes,omitempty"`
	// ClockSkew is the tolerance, in seconds, for the ID token's exp,
	// iat and nbf: default 60, at most 600.
	ClockSkew int `json:"clockSkew,omitempty"`
}

const (
	defaultSkew = 60
	maxSkew     = 600
	// fetchTimeout bounds each call to the provider (discovery, token
	// exchange, userinfo) when the caller's context allows more.
	fetchTimeout = 15 * time.Second
	// maxResponse bounds every body read from the provider.
	maxResponse = 1 << 20
)

var defaultScopes = []string{oidc.ScopeOpenID, "email", "profile"}

// signingAlgs are the only ID token algorithms accepted: asymmetric
// ones. "none" and the HMAC family (HS256 with the client secret as key:
// anyone who knows the secret, such as a second relying party sharing the
// client, could mint tokens) are refused whatever discovery advertises.
var signingAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.EdDSA,
}

// ParseConfig decodes and validates an OIDC connection's Config and
// fills in the defaults. Unknown fields are errors: a misspelt setting
// must not be silently ignored.
func ParseConfig(raw []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("sso: oidc: config: %w", err)
	}
	if dec.More() {
		return Config{}, errors.New("sso: oidc: config: trailing data after the JSON object")
	}
	if err := checkURL(c.Issuer); err != nil {
		return Config{}, fmt.Errorf("sso: oidc: issuer: %w", err)
	}
	if c.ClientID == "" || strings.TrimSpace(c.ClientID) != c.ClientID || strings.ContainsFunc(c.ClientID, unicode.IsControl) {
		return Config{}, errors.New("sso: oidc: clientId is required, without surrounding spaces or control characters")
	}
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(defaultScopes)
	}
	scopes := []string{oidc.ScopeOpenID}
	for _, s := range c.Scopes {
		// RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= 0x20 || r == '"' || r == '\\' || r >= 0x7f }) {
			return Config{}, fmt.Errorf("sso: oidc: scope %q is not a valid scope token (RFC 6749 section 3.3)", s)
		}
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	c.Scopes = scopes
	switch {
	case c.ClockSkew == 0:
		c.ClockSkew = defaultSkew
	case c.ClockSkew < 0 || c.ClockSkew > maxSkew:
		return Config{}, fmt.Errorf("sso: oidc: clockSkew must be between 1 and %d seconds, not %d", maxSkew, c.ClockSkew)
	}
	return c, nil
}

// checkURL accepts an absolute https URL, or http on a loopback host
// (127.0.0.0/8, ::1, localhost: tests and a provider on the same host),
// without credentials, query or fragment.
func checkURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	switch {
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%q is not an absolute URL", s)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%q must have no credentials, query or fragment", s)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%q must use https (http only on a loopback address)", s)
}

// checkEndpoint is checkURL for endpoints from discovery, which
// may carry a query (RFC 6749 section 3.1).
func checkEndpoint(name, s string) error {
	u, err := url.Parse(s)
	if err != nil || s == "" {
		return fmt.Errorf("sso: oidc: discovery: %s %q is not a URL", name, s)
	}
	u.RawQuery, u.ForceQuery = "", false
	if err := checkURL(u.String()); err != nil {
		return fmt.Errorf("sso: oidc: discovery: %s: %w", name, err)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseUsernameClaim reads UsernameFrom: "claim:NAME".
func parseUsernameClaim(from string) (string, error) {
	name, ok := strings.CutPrefix(from, "claim:")
	if !ok || name == "" || strings.TrimSpace(name) != name {
		return "", fmt.Errorf("sso: oidc: usernameFrom must be claim:NAME, not %q", from)
	}
	return name, nil
}

// RequestStore is what an OIDC connector keeps in the database, shared by
// every instance: the authorization requests it started (state, nonce,
// PKCE verifier) and their single use bound to the browser. A store.Store
// is one.
type RequestStore interface {
	CreateSSORequest(ctx context.Context, r store.SSORequest) (store.SSORequest, error)
	UseSSORequest(ctx context.Context, id, connectionID string, browser []byte, now time.Time) (store.SSORequest, error)
}

var _ RequestStore = store.Store(nil)

// connector is one OIDC connection's relying party: authorization
// code flow with PKCE (S256), state bound to the browser and connection,
// nonce, RFC 9207 issuer check, ID token and userinfo checks.
type connector struct {
	conn          store.SSOConnection
	cfg           Config
	st            RequestStore
	sealer        *admin.Sealer
	client        *http.Client
	now           func() time.Time
	skew          time.Duration
	usernameClaim string
	provider      *oidc.Provider
	verifier      *oidc.IDTokenVerifier
	oauth         oauth2.Config
	// issParam: the provider advertises
	// authorization_response_iss_parameter_supported (RFC 9207), so every
	// authorization response must carry "iss".
	issParam bool
}

// discoveryDoc is what gatehouse reads from the discovery document
// beyond what go-oidc keeps.
type discoveryDoc struct {
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	UserinfoEndpoint      string   `json:"userinfo_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	IssParameter          bool     `json:"authorization_response_iss_parameter_supported"`
}

// New makes the connector of an OIDC connection: it validates the
// configuration, opens the client secret, and discovers the provider
// (OpenID Connect Discovery 1.0) through client, bounded in time and
// size. client may be an SSRF-guarded fetcher; nil means a plain client
// with a timeout. now is the clock (nil: time.Now). baseURL is the
// server's public URL; the redirect URI is baseURL + CallbackPath.
//
// The connector is valid for this version of the connection; a caller
// that keeps connectors must key them by ID and Version (Flow
// does).
func New(ctx context.Context, conn store.SSOConnection, st RequestStore, sealer *admin.Sealer, baseURL string,
	client *http.Client, now func() time.Time) (protocol.Connector, error) {
	if conn.Kind != store.SSOOIDC {
		return nil, fmt.Errorf("sso: oidc: connection %s is of kind %q", conn.ID, conn.Kind)
	}
	if conn.ID == "" || st == nil || sealer == nil {
		return nil, errors.New("sso: oidc: a connector needs a connection ID, a store and a sealer")
	}
	cfg, err := ParseConfig(conn.Config)
	if err != nil {
		return nil, err
	}
	claim, err := parseUsernameClaim(conn.UsernameFrom)
	if err != nil {
		return nil, err
	}
	if conn.Secret == "" {
		return nil, errors.New("sso: oidc: the connection has no client secret")
	}
	secret, err := sealer.Open(conn.Secret, protocol.SealContext(conn.ID))
	if err != nil {
		return nil, fmt.Errorf("sso: oidc: client secret: %w", err)
	}
	base, err := url.Parse(baseURL)
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("sso: oidc: base URL %q is not an absolute URL", baseURL)
	}
	if now == nil {
		now = time.Now
	}
	client = boundedClient(client)

	dctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(oidc.ClientContext(dctx, client), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("sso: oidc: discovery of %s: %w", cfg.Issuer, err)
	}
	var d discoveryDoc
	if err := provider.Claims(&d); err != nil {
		return nil, fmt.Errorf("sso: oidc: discovery of %s: %w", cfg.Issuer, err)
	}
	for _, e := range []struct{ name, url string }{
		{"authorization_endpoint", d.AuthorizationEndpoint}, {"token_endpoint", d.TokenEndpoint}, {"jwks_uri", d.JWKSURI},
	} {
		if err := checkEndpoint(e.name, e.url); err != nil {
			return nil, err
		}
	}
	if d.UserinfoEndpoint != "" {
		if err := checkEndpoint("userinfo_endpoint", d.UserinfoEndpoint); err != nil {
			return nil, err
		}
	}
	// An explicit style: x/oauth2's auto-detection retries a refused
	// exchange with the other style, sending the code twice.
	endpoint := provider.Endpoint()
	switch {
	case len(d.TokenAuthMethods) == 0 || slices.Contains(d.TokenAuthMethods, "client_secret_basic"):
		endpoint.AuthStyle = oauth2.AuthStyleInHeader // the default when none is advertised (Discovery 1.0 section 3)
	case slices.Contains(d.TokenAuthMethods, "client_secret_post"):
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	default:
		return nil, fmt.Errorf("sso: oidc: the provider takes neither client_secret_basic nor client_secret_post at its token endpoint (it offers %v)",
			d.TokenAuthMethods)
	}
	skew := time.Duration(cfg.ClockSkew) * time.Second
	c := &connector{
		conn: conn, cfg: cfg, st: st, sealer: sealer, client: client, now: now, skew: skew, usernameClaim: claim,
		provider: provider, issParam: d.IssParameter,
		oauth: oauth2.Config{
			ClientID: cfg.ClientID, ClientSecret: secret, Endpoint: endpoint, Scopes: cfg.Scopes,
			RedirectURL: strings.TrimSuffix(baseURL, "/") + CallbackPath(conn.ID),
		},
	}
	// go-oidc checks the signature against the provider's JWKS, iss, aud
	// containing the client ID, and exp (here with the skew: its clock
	// runs skew behind). nonce, azp, iat and nbf are checked in Finish.
	c.verifier = provider.Verifier(&oidc.Config{
		ClientID:             cfg.ClientID,
		SupportedSigningAlgs: signingAlgs,
		Now:                  func() time.Time { return now().Add(-skew) },
	})
	return c, nil
}

// randomValue is 256 random bits, base64url.
func randomValue() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Start records the request (state = its ID, nonce, sealed PKCE
// verifier) and redirects the browser to the authorization endpoint.
func (c *connector) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, req protocol.StartRequest) error {
	if len(req.Browser) == 0 {
		return errors.New("sso: oidc: a sign-in needs the browser binding")
	}
	id, nonce, verifier := randomValue(), randomValue(), oauth2.GenerateVerifier()
	_, err := c.st.CreateSSORequest(ctx, store.SSORequest{
		ID: id, ConnectionID: c.conn.ID, OrgID: c.conn.OrgID, Browser: req.Browser,
		Nonce: nonce, Verifier: c.sealer.Seal(verifier, "pkce:"+id),
		RedirectTo: req.RedirectTo, Test: req.Test, ExpiresAt: c.now().Add(protocol.RequestTTL),
	})
	if err != nil {
		return fmt.Errorf("sso: oidc: start: %w", err)
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	if req.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", req.LoginHint))
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, c.oauth.AuthCodeURL(id, opts...), http.StatusFound)
	return nil
}

// protocolClaims are claims about the token, not the user: only the
// ID token's count, userinfo's copies are ignored.
var protocolClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "azp", "auth_time", "at_hash", "c_hash",
	"acr", "amr", "sid", "jti"}

// Finish validates the authorization response at the callback and
// returns the identity. The order matters:
//
//  1. state names an unused, unexpired request of this connection made in
//     this browser, and is used now, before anything else: a replayed or
//     forged callback never reaches the token endpoint, and a request is
//     exchanged at most once.
//  2. RFC 9207: "iss" must equal the issuer whenever present, and be
//     present when the provider advertises it (mix-up defence).
//  3. an "error" from the provider is a refusal with its description.
//  4. the code is exchanged with the PKCE verifier and the client secret.
//  5. the ID token: asymmetric signature from the JWKS, iss, aud, exp
//     (go-oidc), then nonce, azp, iat, nbf, sub here.
//  6. userinfo, when the provider has one: its sub must equal the ID
//     token's (OIDC Core 5.3.4).
//  7. the username claim.
//
// Claims merge: the ID token's claims win on conflict (they are the
// signed, verified statement); userinfo adds the claims the ID token lacks
// (many providers, oidc-provider among them, put only sub in the ID token
// and the profile in userinfo). Token claims (iss, sub, aud, exp, iat,
// nonce, azp, ...) come only from the ID token.
//
// The username claim and, for claim:email, email_verified are read from
// the same source (the ID token if it has the claim, else userinfo), so a
// verification flag from one source never vouches for an address from the
// other. A username taken from "email" requires email_verified true: an
// unverified address is whatever the user typed at the provider, and
// matching on it would let anyone claim an administrator's address.
func (c *connector) Finish(ctx context.Context, r *http.Request, browser []byte) (protocol.Identity, store.SSORequest, error) {
	q := r.URL.Query()
	for _, p := range []string{"state", "code", "iss", "error", "error_description"} {
		if len(q[p]) > 1 {
			return protocol.Identity{}, store.SSORequest{}, protocol.Refuse(nil, fmt.Sprintf("the callback repeats the %q parameter", p))
		}
	}
	state := q.Get("state")
	if state == "" {
		return protocol.Identity{}, store.SSORequest{}, protocol.Refuse(nil, "the callback has no state: it answers no sign-in started here")
	}
	req, err := c.st.UseSSORequest(ctx, state, c.conn.ID, browser, c.now())
	if errors.Is(err, store.ErrNotFound) {
		return protocol.Identity{}, store.SSORequest{}, protocol.Refuse(nil,
			"the callback's state matches no sign-in in progress on this connection in this browser (unknown, expired, already used, or started in another browser)")
	}
	if err != nil {
		return protocol.Identity{}, store.SSORequest{}, fmt.Errorf("sso: oidc: finish: %w", err)
	}
	id, err := c.finish(ctx, q, req)
	if err != nil {
		return protocol.Identity{}, req, err
	}
	return id, req, nil
}

func (c *connector) finish(ctx context.Context, q url.Values, req store.SSORequest) (protocol.Identity, error) {
	issuer := c.cfg.Issuer
	if iss, ok := q["iss"]; ok {
		if iss[0] != issuer {
			return protocol.Identity{}, protocol.Refuse(nil, fmt.Sprintf("the callback's iss %q is not this connection's issuer %q (RFC 9207: an answer from another provider)",
				printable(iss[0]), issuer))
		}
	} else if c.issParam {
		return protocol.Identity{}, protocol.Refuse(nil, "the callback has no iss although the provider advertises authorization_response_iss_parameter_supported (RFC 9207)")
	}
	if e := q.Get("error"); e != "" {
		reason := "the OpenID provider refused the sign-in: " + printable(e)
		if d := q.Get("error_description"); d != "" {
			reason += " (" + printable(d) + ")"
		}
		return protocol.Identity{}, protocol.Refuse(nil, reason)
	}
	code := q.Get("code")
	if code == "" {
		return protocol.Identity{}, protocol.Refuse(nil, "the callback has neither a code nor an error")
	}
	verifier, err := c.sealer.Open(req.Verifier, "pkce:"+req.ID)
	if err != nil {
		return protocol.Identity{}, fmt.Errorf("sso: oidc: the PKCE verifier of request %s: %w", req.ID, err)
	}

	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	fctx = oidc.ClientContext(fctx, c.client)
	tok, err := c.oauth.Exchange(fctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			// Only the error code and description: the body is not
			// repeated into reasons that reach the audit log.
			reason := fmt.Sprintf("the OpenID provider refused the authorization code (HTTP %d", re.Response.StatusCode)
			if re.ErrorCode != "" {
				reason += ", " + printable(re.ErrorCode)
			}
			if re.ErrorDescription != "" {
				reason += ": " + printable(re.ErrorDescription)
			}
			return protocol.Identity{}, protocol.Refuse(nil, reason+")")
		}
		return protocol.Identity{}, protocol.Refuse(err, "the code exchange at the token endpoint failed")
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return protocol.Identity{}, protocol.Refuse(nil, "the token response has no id_token")
	}
	idt, err := c.verifier.Verify(fctx, rawID)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return protocol.Identity{}, protocol.Refuse(nil, fmt.Sprintf("the ID token expired at %s (clock skew allowed: %s)",
				expired.Expiry.UTC().Format(time.RFC3339), c.skew))
		}
		return protocol.Identity{}, protocol.Refuse(err, "the ID token failed verification")
	}
	idClaims, err := claimsOf(idt.Claims)
	if err != nil {
		return protocol.Identity{}, protocol.Refuse(err, "the ID token's claims are not a JSON object")
	}
	if err := c.checkIDToken(idt, idClaims, req); err != nil {
		return protocol.Identity{}, err
	}

	var uiClaims map[string]any
	if c.provider.UserInfoEndpoint() != "" {
		ui, err := c.provider.UserInfo(fctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return protocol.Identity{}, protocol.Refuse(err, "the userinfo request failed")
		}
		if ui.Subject != idt.Subject {
			return protocol.Identity{}, protocol.Refuse(nil, fmt.Sprintf("userinfo's sub %q differs from the ID token's %q (OIDC Core 5.3.4)",
				printable(ui.Subject), printable(idt.Subject)))
		}
		if uiClaims, err = claimsOf(ui.Claims); err != nil {
			return protocol.Identity{}, protocol.Refuse(err, "userinfo's claims are not a JSON object")
		}
	}

	merged := make(map[string]any, len(idClaims)+len(uiClaims))
	for k, v := range uiClaims {
		if !slices.Contains(protocolClaims, k) {
			merged[k] = v
		}
	}
	for k, v := range idClaims {
		merged[k] = v
	}
	source, where := idClaims, "the ID token"
	if _, ok := idClaims[c.usernameClaim]; !ok && !slices.Contains(protocolClaims, c.usernameClaim) {
		source, where = uiClaims, "userinfo"
	}
	v, present := source[c.usernameClaim]
	username, isString := v.(string)
	switch {
	case !present:
		return protocol.Identity{}, protocol.Refuse(nil, fmt.Sprintf("the username claim %q is in neither the ID token nor userinfo", c.usernameClaim))
	case !isString:
		return protocol.Identity{}, protocol.Refuse(nil, fmt.Sprintf("the username claim %q in %s is not a string", c.usernameClaim, where))
	case username == "":
		return protocol.Identity{}, protocol.Refuse(nil, fmt.Sprintf("the username claim %q in %s is empty", c.usernameClaim, where))
	}
	if c.usernameClaim == "email" && !isTrue(source["email_verified"]) {
		return protocol.Identity{}, protocol.Refuse(nil, fmt.Sprintf("the username comes from email, and %s does not say email_verified: true for it", where))
	}

	id := protocol.Identity{
		Username:     username,
		Subject:      idt.Subject,
		Issuer:       idt.Issuer,
		Attributes:   attributes(merged),
		IssuedAt:     idt.IssuedAt,
		NotOnOrAfter: idt.Expiry,
	}
	if nbf, ok := timeClaim(idClaims["nbf"]); ok {
		id.NotBefore = nbf
	}
	return id, nil
}

// checkIDToken makes the checks go-oidc leaves to its caller (OIDC Core
// 3.1.3.7): nonce, azp, iat, nbf with this connection's skew, sub.
func (c *connector) checkIDToken(idt *oidc.IDToken, claims map[string]any, req store.SSORequest) error {
	if idt.Subject == "" {
		return protocol.Refuse(nil, "the ID token has no sub")
	}
	nonce, _ := claims["nonce"].(string)
	if nonce == "" {
		return protocol.Refuse(nil, "the ID token has no nonce")
	}
	if req.Nonce == "" || subtle.ConstantTimeCompare([]byte(nonce), []byte(req.Nonce)) != 1 {
		return protocol.Refuse(nil, "the ID token's nonce is not the one sent with this sign-in (a token from another sign-in)")
	}
	azp, hasAzp := claims["azp"]
	if hasAzp {
		if s, _ := azp.(string); s != c.cfg.ClientID {
			return protocol.Refuse(nil, fmt.Sprintf("the ID token's azp %q is not this connection's client ID", printable(fmt.Sprint(azp))))
		}
	} else if len(idt.Audience) > 1 {
		return protocol.Refuse(nil, "the ID token has several audiences and no azp naming this client")
	}
	now := c.now()
	if idt.IssuedAt.IsZero() {
		return protocol.Refuse(nil, "the ID token has no iat")
	}
	if idt.IssuedAt.After(now.Add(c.skew)) {
		return protocol.Refuse(nil, fmt.Sprintf("the ID token was issued in the future (iat %s, clock skew allowed: %s)",
			idt.IssuedAt.UTC().Format(time.RFC3339), c.skew))
	}
	if v, ok := claims["nbf"]; ok {
		nbf, ok := timeClaim(v)
		if !ok {
			return protocol.Refuse(nil, "the ID token's nbf is not a number")
		}
		if nbf.After(now.Add(c.skew)) {
			return protocol.Refuse(nil, fmt.Sprintf("the ID token is not valid before %s (clock skew allowed: %s)", nbf.UTC().Format(time.RFC3339), c.skew))
		}
	}
	return nil
}

// claimsOf decodes a claims object keeping numbers exact.
func claimsOf(into func(any) error) (map[string]any, error) {
	var raw json.RawMessage
	if err := into(&raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null")
	}
	return m, nil
}

// isTrue: a JSON true, or the string "true" that some providers (AWS
// Cognito) send for email_verified.
func isTrue(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

func timeClaim(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// attributes renders claims as strings: strings as sent, numbers and
// booleans in their JSON text, arrays element by element, objects as JSON.
func attributes(claims map[string]any) map[string][]string {
	out := make(map[string][]string, len(claims))
	str := func(v any) string {
		switch v := v.(type) {
		case string:
			return v
		case json.Number:
			return v.String()
		}
		b, _ := json.Marshal(v) // values decoded from JSON always marshal
		return string(b)
	}
	for k, v := range claims {
		switch v := v.(type) {
		case nil:
		case []any:
			vs := make([]string, 0, len(v))
			for _, e := range v {
				vs = append(vs, str(e))
			}
			out[k] = vs
		default:
			out[k] = []string{str(v)}
		}
	}
	return out
}

// printable quotes nothing but keeps a provider's text to one short
// line without control characters, for reasons shown to administrators.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "..."
	}
	return s
}

// boundedClient is client (or a default one) with a timeout and every
// response body limited to maxResponse: go-oidc and x/oauth2 read
// bodies whole.
func boundedClient(client *http.Client) *http.Client {
	c := &http.Client{}
	if client != nil {
		*c = *client
	}
	if c.Timeout == 0 {
		c.Timeout = fetchTimeout
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = limitTransport{rt}
	return c
}

type limitTransport struct{ rt http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxResponse}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("sso: oidc: a response from the provider is over %d bytes", maxResponse)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, fmt.Errorf("sso: oidc: a response from the provider is over %d bytes", maxResponse)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// CallbackPath is an OIDC connection's redirect URI under the server's
// base URL.
func CallbackPath(connectionID string) string { return "/sso/oidc/" + connectionID + "/callback" }
