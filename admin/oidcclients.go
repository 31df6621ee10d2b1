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
// through the OpenID Provider (issue #14).
//
// Clients are the server's, not an organization's: a client may serve
// every organization, or a list of them. Who manages which (OIDCClientRights):
//   - the operator (the command line) manages every client;
//   - a Super Administrator (console session or API key) registers and
//     manages the clients of their own organization only, that is those
//     restricted to exactly that organization; they see, read-only, the
//     clients that also serve it (every organization's, or a list that
//     includes it), and nothing of the others: those are not found;
//   - an Administrator manages and sees none.
//
// A client serving several organizations or all of them is a decision for
// the product, not for one customer's Super Administrator: otherwise one
// organization could change where every other organization's
// administrators are redirected, or take a shared client's secret. Marking
// a client first-party (consent skipped) is the operator's alone too.
//
// Every write decides on the row it changes, inside the store's
// transaction, so a concurrent change of the client's organizations cannot
// slip a client out from under the rule.
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
	// PostLogoutRedirectURIs (optional) are where RP-initiated logout may
	// return the browser; the same rules, matched exactly.
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI, optional, follows the same rules.
	BackchannelLogoutURI string
	// Orgs are the slugs of the organizations whose administrators may
	// sign in to the client. Empty: every organization for the operator,
	// the principal's own organization for a Super Administrator.
	Orgs       []string
	FirstParty bool // consent is skipped
}

// OIDCClientEdit is a change of a client: nil fields stay as they are.
// Public does not change (a client's kind is its registration's).
type OIDCClientEdit struct {
	Name                   *string
	RedirectURIs           *[]string
	PostLogoutRedirectURIs *[]string
	BackchannelLogoutURI   *string // "" removes it
	Orgs                   *[]string
	FirstParty             *bool
	Disabled               *bool
}

// OIDCClientRights is what a principal may do with one client.
type OIDCClientRights struct {
	See    bool // read it (list, get)
	Manage bool // edit, rotate its secret, disable, enable, delete
}

// OIDCClientRightsOf is the rule of the type's comment.
func OIDCClientRightsOf(p Principal, c store.OIDCClient) OIDCClientRights {
	switch {
	case p.Operator:
		return OIDCClientRights{See: true, Manage: true}
	case !p.Super():
		return OIDCClientRights{}
	}
	return OIDCClientRights{
		See:    c.AllOrgs || slices.Contains(c.OrgIDs, p.OrgID),
		Manage: !c.AllOrgs && len(c.OrgIDs) == 1 && c.OrgIDs[0] == p.OrgID,
	}
}

var (
	errClientsForbidden = refuse(CodeForbidden, "only a Super Administrator may manage applications")
	errOwnOrgOnly       = refuse(CodeForbidden, "a Super Administrator's applications serve their own organization only; an application of other organizations is the operator's (gatehouse oidc client)")
	errFirstParty       = refuse(CodeForbidden, "only the operator marks an application first-party (consent skipped)")
)

func clientNotFound(id string, err error) error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf("application %q not found", id), Err: err}
}

// MayManageOIDCClient refuses p the writes on c: not found when p may not
// even see it (which tells nothing of other organizations' clients),
// forbidden when it is visible but shared. The services decide with it on
// the row they write; a page asks it before showing a confirmation.
func MayManageOIDCClient(p Principal, c store.OIDCClient) error {
	r := OIDCClientRightsOf(p, c)
	switch {
	case !p.Super():
		return errClientsForbidden
	case !r.See:
		return clientNotFound(c.ID, store.ErrNotFound)
	case !r.Manage:
		return refuse(CodeForbidden, "application %q serves other organizations too; only the operator changes it (gatehouse oidc client)", c.Name)
	}
	return nil
}

// checkURIs validates a list of client URIs: at most maxRedirectURIs,
// each by CheckClientURI, duplicates dropped, order kept.
func checkURIs(what string, in []string) (store.Strings, error) {
	if len(in) > maxRedirectURIs {
		return nil, refuse(CodeInvalidRedirectURI, "at most %d %ss, not %d", maxRedirectURIs, what, len(in))
	}
	out := store.Strings{}
	for _, u := range in {
		if err := CheckClientURI(what, u); err != nil {
			return nil, err
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// orgIDs resolves slugs to organization ids for p: the operator's empty
// list is every organization (nil); a Super Administrator's is their own
// organization, and naming any other, existing or not, is refused alike.
func (c *OIDCClients) orgIDs(ctx context.Context, p Principal, slugs []string) (store.Strings, error) {
	if !p.Operator {
		for _, slug := range slugs {
			org, err := c.Store.OrgBySlug(ctx, slug)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			if err != nil || org.ID != p.OrgID {
				return nil, errOwnOrgOnly
			}
		}
		return store.Strings{p.OrgID}, nil
	}
	var ids store.Strings
	for _, slug := range slugs {
		org, err := c.Store.OrgBySlug(ctx, slug)
		if errors.Is(err, store.ErrNotFound) {
			return nil, &Error{Code: CodeOrgNotFound, Message: fmt.Sprintf("organization %q not found", slug), Err: err}
		}
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ids, org.ID) {
			ids = append(ids, org.ID)
		}
	}
	return ids, nil
}

func clientWriteError(id string, err error) error {
	switch {
	case errors.Is(err, store.ErrLimit):
		return &Error{Code: CodeLimitReached, Message: fmt.Sprintf("an organization may have at most %d applications of its own", store.MaxOIDCClientsPerOrg), Err: err}
	case errors.Is(err, store.ErrNotFound) && id == "":
		return &Error{Code: CodeOrgNotFound, Message: "an organization of the application no longer exists", Err: err}
	case errors.Is(err, store.ErrNotFound):
		var e *Error
		if errors.As(err, &e) {
			return err
		}
		return clientNotFound(id, err)
	}
	return err
}

// Create validates spec completely, then registers the client and returns
// its secret (confidential clients; "" for a public one), which is stored
// only as a hash and cannot be shown again.
func (c *OIDCClients) Create(ctx context.Context, p Principal, spec OIDCClientSpec) (string, store.OIDCClient, error) {
	if !p.Super() {
		return "", store.OIDCClient{}, errClientsForbidden
	}
	if spec.FirstParty && !p.Operator {
		return "", store.OIDCClient{}, errFirstParty
	}
	if err := checkText(spec.Name, maxNameLen, CodeInvalidName, "client name"); err != nil {
		return "", store.OIDCClient{}, err
	}
	if len(spec.RedirectURIs) == 0 {
		return "", store.OIDCClient{}, refuse(CodeInvalidRedirectURI, "client %q needs at least one redirect URI", spec.Name)
	}
	uris, err := checkURIs("redirect URI", spec.RedirectURIs)
	if err != nil {
		return "", store.OIDCClient{}, err
	}
	logout, err := checkURIs("post-logout redirect URI", spec.PostLogoutRedirectURIs)
	if err != nil {
		return "", store.OIDCClient{}, err
	}
	if spec.BackchannelLogoutURI != "" {
		if err := CheckClientURI("back-channel logout URI", spec.BackchannelLogoutURI); err != nil {
			return "", store.OIDCClient{}, err
		}
	}
	orgs, err := c.orgIDs(ctx, p, spec.Orgs)
	if err != nil {
		return "", store.OIDCClient{}, err
	}
	client := store.OIDCClient{
		ID:                     uuid.NewString(),
		Name:                   spec.Name,
		Public:                 spec.Public,
		RedirectURIs:           uris,
		PostLogoutRedirectURIs: logout,
		BackchannelLogoutURI:   spec.BackchannelLogoutURI,
		AllOrgs:                len(orgs) == 0,
		OrgIDs:                 orgs,
		FirstParty:             spec.FirstParty,
	}
	var secret string
	if !spec.Public {
		secret = OIDCClientSecretPrefix + newSecret()
		client.SecretHash = HashSecret(secret)
	}
	client, err = c.Store.CreateOIDCClient(p.Context(ctx), client)
	if err != nil {
		return "", store.OIDCClient{}, clientWriteError("", err)
	}
	return secret, client, nil
}

// List returns the clients p may see, in creation order.
func (c *OIDCClients) List(ctx context.Context, p Principal) ([]store.OIDCClient, error) {
	if !p.Super() {
		return nil, errClientsForbidden
	}
	all, err := c.Store.OIDCClients(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(x store.OIDCClient) bool { return !OIDCClientRightsOf(p, x).See }), nil
}

// Get returns a client p may see.
func (c *OIDCClients) Get(ctx context.Context, p Principal, id string) (store.OIDCClient, error) {
	if !p.Super() {
		return store.OIDCClient{}, errClientsForbidden
	}
	client, err := c.Store.OIDCClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !OIDCClientRightsOf(p, client).See {
		return store.OIDCClient{}, clientNotFound(id, store.ErrNotFound)
	}
	return client, err
}

// Update validates edit completely, then applies it to a client p may
// manage.
func (c *OIDCClients) Update(ctx context.Context, p Principal, id string, edit OIDCClientEdit) (store.OIDCClient, error) {
	if !p.Super() {
		return store.OIDCClient{}, errClientsForbidden
	}
	if edit.Name != nil {
		if err := checkText(*edit.Name, maxNameLen, CodeInvalidName, "client name"); err != nil {
			return store.OIDCClient{}, err
		}
	}
	var uris, logout store.Strings
	var err error
	if edit.RedirectURIs != nil {
		if len(*edit.RedirectURIs) == 0 {
			return store.OIDCClient{}, refuse(CodeInvalidRedirectURI, "an application needs at least one redirect URI")
		}
		if uris, err = checkURIs("redirect URI", *edit.RedirectURIs); err != nil {
			return store.OIDCClient{}, err
		}
	}
	if edit.PostLogoutRedirectURIs != nil {
		if logout, err = checkURIs("post-logout redirect URI", *edit.PostLogoutRedirectURIs); err != nil {
			return store.OIDCClient{}, err
		}
	}
	if edit.BackchannelLogoutURI != nil && *edit.BackchannelLogoutURI != "" {
		if err := CheckClientURI("back-channel logout URI", *edit.BackchannelLogoutURI); err != nil {
			return store.OIDCClient{}, err
		}
	}
	var orgs store.Strings
	if edit.Orgs != nil {
		if len(*edit.Orgs) == 0 && !p.Operator { // every organization
			return store.OIDCClient{}, errOwnOrgOnly
		}
		if orgs, err = c.orgIDs(ctx, p, *edit.Orgs); err != nil {
			return store.OIDCClient{}, err
		}
	}
	client, err := c.Store.UpdateOIDCClient(p.Context(ctx), id, func(x *store.OIDCClient) error {
		if err := MayManageOIDCClient(p, *x); err != nil {
			return err
		}
		if edit.FirstParty != nil && *edit.FirstParty != x.FirstParty && !p.Operator {
			return errFirstParty
		}
		if edit.Name != nil {
			x.Name = *edit.Name
		}
		if edit.RedirectURIs != nil {
			x.RedirectURIs = uris
		}
		if edit.PostLogoutRedirectURIs != nil {
			x.PostLogoutRedirectURIs = logout
		}
		if edit.BackchannelLogoutURI != nil {
			x.BackchannelLogoutURI = *edit.BackchannelLogoutURI
		}
		if edit.Orgs != nil {
			x.OrgIDs, x.AllOrgs = orgs, len(orgs) == 0
		}
		if edit.FirstParty != nil {
			x.FirstParty = *edit.FirstParty
		}
		if edit.Disabled != nil {
			x.Disabled = *edit.Disabled
		}
		return nil
	})
	if err != nil {
		return store.OIDCClient{}, clientWriteError(id, err)
	}
	return client, nil
}

// RotateSecret gives a confidential client p may manage a new secret,
// returned once and stored only as a hash. The old secret stops
// authenticating at once, with no grace period: a rotation is mostly
// made because a secret leaked, and an overlap would keep the leaked one
// working. An application rotates without downtime by being given the
// new secret right after (its token requests fail in between).
func (c *OIDCClients) RotateSecret(ctx context.Context, p Principal, id string) (string, store.OIDCClient, error) {
	if !p.Super() {
		return "", store.OIDCClient{}, errClientsForbidden
	}
	secret := OIDCClientSecretPrefix + newSecret()
	client, err := c.Store.UpdateOIDCClient(p.Context(ctx), id, func(x *store.OIDCClient) error {
		if err := MayManageOIDCClient(p, *x); err != nil {
			return err
		}
		if x.Public {
			return refuse(CodePublicClient, "application %q is public: it has no secret (it proves itself with PKCE)", x.Name)
		}
		x.SecretHash = HashSecret(secret)
		return nil
	})
	if err != nil {
		return "", store.OIDCClient{}, clientWriteError(id, err)
	}
	return secret, client, nil
}

// Delete removes a client p may manage.
func (c *OIDCClients) Delete(ctx context.Context, p Principal, id string) error {
	if !p.Super() {
		return errClientsForbidden
	}
	err := c.Store.DeleteOIDCClient(p.Context(ctx), id, func(x store.OIDCClient) error { return MayManageOIDCClient(p, x) })
	return clientWriteError(id, err)
}

// SetDisabled disables a client p may manage (no administrator signs in
// to it, its secret no longer authenticates) or enables it again.
func (c *OIDCClients) SetDisabled(ctx context.Context, p Principal, id string, disabled bool) (store.OIDCClient, error) {
	return c.Update(ctx, p, id, OIDCClientEdit{Disabled: &disabled})
}

// ErrBadClient: the client id and secret do not authenticate a usable
// confidential client (unknown, disabled, public, or a wrong secret).
// Callers answer invalid_client without saying which.
var ErrBadClient = errors.New("admin: invalid OIDC client credentials")

// Authenticate checks a confidential client's secret.
func (c *OIDCClients) Authenticate(ctx context.Context, id, secret string) error {
	client, err := c.Store.OIDCClientCredentials(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return ErrBadClient
	}
	if err != nil {
		return err
	}
	return CheckClientSecret(client, secret)
}

// CheckClientSecret checks secret against a confidential client's
// credentials as read (store.OIDCIntrospection reads them with a token).
func CheckClientSecret(client store.OIDCClientCredentials, secret string) error {
	if client.Public || client.Disabled || len(client.SecretHash) == 0 ||
		subtle.ConstantTimeCompare(client.SecretHash, HashSecret(secret)) != 1 {
		return ErrBadClient
	}
	return nil
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
