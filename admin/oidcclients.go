package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"

	"gatehouse/store"
)

// OIDCClientSecretPrefix starts every OIDC client secret, so that secret
// scanners and people can recognise one.
const OIDCClientSecretPrefix = "gh_cs_"

// Limits of an OIDC client's registration.
const (
	maxRedirectURIs = 20
	maxURILen       = 2000
)

// OIDCClients registers the applications that sign administrators in
// through the OpenID Provider (issue #14). Clients are the server's, not
// an organization's: for now only the operator manages them (the command
// line, audited as the operator); who else may is for the management API
// to decide.
type OIDCClients struct {
	Store store.Store
}

// OIDCClientSpec is what registering a client takes.
type OIDCClientSpec struct {
	Name string
	// Public: a client that cannot keep a secret (single-page or native
	// app); it gets none and must use PKCE.
	Public bool
	// RedirectURIs are matched exactly: absolute https URLs (http only
	// on a loopback host), without fragment or wildcard.
	RedirectURIs []string
	// BackchannelLogoutURI, optional, follows the same rules.
	BackchannelLogoutURI string
	// Orgs are the slugs of the organizations whose administrators may
	// sign in to the client; empty: every organization.
	Orgs       []string
	FirstParty bool // consent is skipped
}

// Create validates spec completely, then registers the client and returns
// its secret (confidential clients; "" for a public one), which is stored
// only as a hash and cannot be shown again.
func (c *OIDCClients) Create(ctx context.Context, spec OIDCClientSpec) (string, store.OIDCClient, error) {
	if err := checkText(spec.Name, maxNameLen, CodeInvalidName, "client name"); err != nil {
		return "", store.OIDCClient{}, err
	}
	if len(spec.RedirectURIs) == 0 {
		return "", store.OIDCClient{}, refuse(CodeInvalidRedirectURI, "client %q needs at least one redirect URI", spec.Name)
	}
	if len(spec.RedirectURIs) > maxRedirectURIs {
		return "", store.OIDCClient{}, refuse(CodeInvalidRedirectURI, "at most %d redirect URIs, not %d", maxRedirectURIs, len(spec.RedirectURIs))
	}
	var uris store.Strings
	for _, u := range spec.RedirectURIs {
		if err := CheckClientURI("redirect URI", u); err != nil {
			return "", store.OIDCClient{}, err
		}
		if !slices.Contains(uris, u) {
			uris = append(uris, u)
		}
	}
	if spec.BackchannelLogoutURI != "" {
		if err := CheckClientURI("back-channel logout URI", spec.BackchannelLogoutURI); err != nil {
			return "", store.OIDCClient{}, err
		}
	}
	client := store.OIDCClient{
		ID:                   uuid.NewString(),
		Name:                 spec.Name,
		Public:               spec.Public,
		RedirectURIs:         uris,
		BackchannelLogoutURI: spec.BackchannelLogoutURI,
		AllOrgs:              len(spec.Orgs) == 0,
		FirstParty:           spec.FirstParty,
	}
	for _, slug := range spec.Orgs {
		org, err := c.Store.OrgBySlug(ctx, slug)
		if errors.Is(err, store.ErrNotFound) {
			return "", store.OIDCClient{}, &Error{Code: CodeOrgNotFound, Message: fmt.Sprintf("organization %q not found", slug), Err: err}
		}
		if err != nil {
			return "", store.OIDCClient{}, err
		}
		if !slices.Contains(client.OrgIDs, org.ID) {
			client.OrgIDs = append(client.OrgIDs, org.ID)
		}
	}
	var secret string
	if !spec.Public {
		secret = OIDCClientSecretPrefix + newSecret()
		client.SecretHash = HashSecret(secret)
	}
	client, err := c.Store.CreateOIDCClient(ctx, client)
	if errors.Is(err, store.ErrNotFound) { // an organization was deleted meanwhile
		return "", store.OIDCClient{}, &Error{Code: CodeOrgNotFound, Message: "an organization of the client no longer exists", Err: err}
	}
	if err != nil {
		return "", store.OIDCClient{}, fmt.Errorf("admin: create OIDC client: %w", err)
	}
	return secret, client, nil
}

// List returns the clients in creation order.
func (c *OIDCClients) List(ctx context.Context) ([]store.OIDCClient, error) {
	return c.Store.OIDCClients(ctx)
}

// Delete removes a client.
func (c *OIDCClients) Delete(ctx context.Context, id string) error {
	err := c.Store.DeleteOIDCClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Code: CodeNotFound, Message: fmt.Sprintf("OIDC client %q not found", id), Err: err}
	}
	return err
}

// SetDisabled disables a client (no administrator signs in to it, its
// secret no longer authenticates) or enables it again.
func (c *OIDCClients) SetDisabled(ctx context.Context, id string, disabled bool) (store.OIDCClient, error) {
	client, err := c.Store.UpdateOIDCClient(ctx, id, func(x *store.OIDCClient) error {
		x.Disabled = disabled
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.OIDCClient{}, &Error{Code: CodeNotFound, Message: fmt.Sprintf("OIDC client %q not found", id), Err: err}
	}
	return client, err
}

// ErrBadClient: the client id and secret do not authenticate a usable
// confidential client (unknown, disabled, public, or a wrong secret).
// Callers answer invalid_client without saying which.
var ErrBadClient = errors.New("admin: invalid OIDC client credentials")

// Authenticate checks a confidential client's secret.
func (c *OIDCClients) Authenticate(ctx context.Context, id, secret string) (store.OIDCClient, error) {
	client, err := c.Store.OIDCClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.OIDCClient{}, ErrBadClient
	}
	if err != nil {
		return store.OIDCClient{}, err
	}
	if client.Public || client.Disabled || len(client.SecretHash) == 0 ||
		subtle.ConstantTimeCompare(client.SecretHash, HashSecret(secret)) != 1 {
		return store.OIDCClient{}, ErrBadClient
	}
	return client, nil
}

// CheckClientURI refuses a redirect or back-channel logout URI that an
// authorization server must not register (RFC 6749 §3.1.2, RFC 8252 §7.3,
// OAuth 2.0 Security BCP §4.1): not absolute, not https (http is allowed
// only for the loopback hosts 127.0.0.1, [::1] and localhost, where native
// apps listen), with a fragment, credentials, or a wildcard ("*" anywhere:
// matching is exact, so a wildcard would only ever be a mistake).
func CheckClientURI(what, raw string) error {
	bad := func(why string) error {
		return refuse(CodeInvalidRedirectURI, "%s %q: %s", what, raw, why)
	}
	if len(raw) > maxURILen {
		return refuse(CodeInvalidRedirectURI, "%s is longer than %d characters", what, maxURILen)
	}
	if strings.ContainsAny(raw, "*") {
		return bad("wildcards are not allowed; give each URI exactly")
	}
	if strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return bad("contains spaces or control characters")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return bad("not an absolute URL")
	case strings.Contains(raw, "#"):
		return bad("a fragment is not allowed")
	case u.User != nil:
		return bad("credentials in the URL are not allowed")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
			return nil
		}
		return bad("http is allowed only for the loopback hosts 127.0.0.1, [::1] and localhost; use https")
	}
	return bad("the scheme must be https")
}
