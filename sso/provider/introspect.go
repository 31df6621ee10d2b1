package provider

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"gatehouse/admin"
	"gatehouse/store"
)

// introspectPath is the introspection endpoint (RFC 7662), where the
// product's APIs ask whether an access token is live and whose it is.
const introspectPath = "/oauth/introspect"

// introspection is the answer to an introspection request (RFC 7662
// §2.2): active, and for a live token its grant and the claims its scopes
// release, read at the time of the request.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	released
	OrgID   string `json:"org_id,omitempty"`
	OrgSlug string `json:"org_slug,omitempty"`
	Role    string `json:"role,omitempty"`
}

// introspect serves the introspection endpoint. It is gatehouse's own
// rather than op's: op's answers each request with four reads and
// encodes the answer through a map (json out, json in, json out again),
// which made introspection, the product's hot path, cost five times a
// bare request. Here one read (store.OIDCIntrospection) authenticates the
// client and finds the token, its grant and its administrator, and the
// answer is one struct. The token is op's own (its Crypto, sealedTokens),
// and what is active is what op's storage said: an access token of the
// asking client, unexpired, of a live grant, whose administrator is
// active. Anything else, refresh tokens included, is {"active":false}.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, string(oidc.InvalidRequest), "introspection takes a POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, string(oidc.InvalidRequest), "the request body is not a form")
		return
	}
	id, secret, basic, err := clientCredentials(r)
	if err != nil {
		unauthorized(w, basic, err.Error())
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		oauthError(w, http.StatusBadRequest, string(oidc.InvalidRequest), "the token parameter is required")
		return
	}
	tokenID, subject, sealed := p.openAccessToken(token)
	if !sealed {
		tokenID = "" // not one of gatehouse's access tokens: only the client is read
	}
	in, err := p.Store.OIDCIntrospection(r.Context(), id, tokenID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		unauthorized(w, basic, "the client is not known, or its secret is wrong")
		return
	case err != nil:
		p.logger().ErrorContext(r.Context(), "introspection: reading the token", "err", err)
		oauthError(w, http.StatusServiceUnavailable, string(oidc.ServerError), "the token cannot be checked right now")
		return
	}
	if admin.CheckClientSecret(in.Client, secret) != nil {
		unauthorized(w, basic, "the client is not known, or its secret is wrong")
		return
	}
	answer := introspection{}
	if sealed && p.live(in, subject) {
		if answer, err = p.activeIntrospection(r, in); err != nil {
			p.logger().ErrorContext(r.Context(), "introspection: reading the organization", "err", err)
			oauthError(w, http.StatusServiceUnavailable, string(oidc.ServerError), "the token cannot be checked right now")
			return
		}
	}
	writeJSON(w, http.StatusOK, answer)
}

// live reports whether in is an active answer for a token sealed for
// subject: an unexpired access token of a live grant of the asking client
// (store.OIDCIntrospection finds only those), whose administrator is
// still active.
func (p *Provider) live(in store.OIDCIntrospection, subject string) bool {
	now := p.now()
	return in.Found && in.Token.Kind == store.OIDCAccessToken && now.Before(in.Token.ExpiresAt) && in.Grant.Live(now) &&
		in.Grant.AdministratorID == subject && in.Administrator.Status == store.StatusActive // read for the grant's administrator
}

func (p *Provider) activeIntrospection(r *http.Request, in store.OIDCIntrospection) (introspection, error) {
	g, a := in.Grant, in.Administrator
	slug, err := p.orgSlug(r.Context(), g.OrgID)
	if err != nil {
		return introspection{}, err
	}
	return introspection{Active: true, Scope: strings.Join(g.Scopes, " "), ClientID: g.ClientID, TokenType: oidc.BearerToken,
		Exp: in.Token.ExpiresAt.Unix(), Iat: in.Token.CreatedAt.Unix(), AuthTime: g.AuthTime.Unix(), Sub: a.ID,
		Aud: []string{g.ClientID}, AMR: g.AMR, Iss: p.BaseURL, released: release(a, in.VerifiedEmail, g.Scopes),
		OrgID: g.OrgID, OrgSlug: slug, Role: string(a.Role)}, nil
}

// openAccessToken opens an access token op issued (sealedTokens): its id
// and subject.
func (p *Provider) openAccessToken(token string) (id, subject string, ok bool) {
	v, err := sealedTokens{p.Sealer}.Decrypt(token)
	if err != nil {
		return "", "", false
	}
	id, subject, ok = strings.Cut(v, ":")
	return id, subject, ok && id != "" && subject != "" && !strings.Contains(subject, ":")
}

// clientCredentials are the client's id and secret: HTTP Basic, whose
// parts are form-encoded (RFC 6749 §2.3.1), or client_id and
// client_secret in the body; never both (§2.3). basic says the client
// used Basic, so a refusal names the scheme.
func clientCredentials(r *http.Request) (id, secret string, basic bool, err error) {
	user, pass, basic := r.BasicAuth()
	formID, formSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	switch {
	case basic && formSecret != "":
		return "", "", true, errors.New("the client authenticated twice: use one method")
	case basic:
		if id, err = url.QueryUnescape(user); err == nil {
			secret, err = url.QueryUnescape(pass)
		}
		if err != nil {
			return "", "", true, errors.New("the Authorization header is not valid")
		}
		if formID != "" && formID != id {
			return "", "", true, errors.New("client_id does not match the authenticated client")
		}
	default:
		id, secret = formID, formSecret
	}
	if id == "" || secret == "" {
		return "", "", basic, errors.New("client authentication is required")
	}
	return id, secret, basic, nil
}

// unauthorized answers invalid_client (RFC 6749 §5.2).
func unauthorized(w http.ResponseWriter, basic bool, description string) {
	if basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse"`)
	}
	oauthError(w, http.StatusUnauthorized, string(oidc.InvalidClient), description)
}

// oauthError answers an OAuth error (RFC 6749 §5.2).
func oauthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
