package store

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
)

// The OpenID Provider's records (issue #14): its signing keys and its
// clients, the product's applications. Both are the server's, not an
// organization's: their changes go to the server's own audit log, read
// with AuditLog(ctx, ServerAudit, ...).

// ServerAudit is the organization id under which the audit log keeps the
// changes of server-wide records (signing keys, OIDC clients). The change
// of a client restricted to one organization is also in that
// organization's log.
const ServerAudit = ""

// Audit actions of the OpenID Provider's records.
const (
	AuditSigningKeyCreate = "oidc_signing_key.create"
	AuditOIDCClientCreate = "oidc_client.create"
	AuditOIDCClientUpdate = "oidc_client.update"
	AuditOIDCClientDelete = "oidc_client.delete"
)

// SigningKey is a key of the OpenID Provider that signs tokens. The store
// never sees the private key in clear: PrivateKey is sealed by the caller
// (package admin) with the server key.
type SigningKey struct {
	ID string `db:"id"` // the JWS "kid"
	// Generation numbers the keys 1, 2, ... in the order they were made;
	// AddSigningKey refuses a generation already taken, which is how two
	// instances rotating at once make exactly one key.
	Generation int64     `db:"generation"`
	Algorithm  string    `db:"algorithm"`   // the JWS "alg": "RS256"
	PrivateKey string    `db:"private_key"` // sealed
	PublicKey  []byte    `db:"public_key"`  // PKIX DER
	CreatedAt  time.Time `db:"created_at"`
	// ActiveFrom is when the key starts signing; it signs until the next
	// generation's ActiveFrom.
	ActiveFrom time.Time `db:"active_from"`
	// RetireAfter is when the last token the key signed has expired: it
	// is published until then. Nil while the key is the newest.
	RetireAfter *time.Time `db:"retire_after"`
}

const signingKeyColumns = `id, generation, algorithm, private_key, public_key, created_at, active_from, retire_after`

// AddSigningKey stores k, whose Generation must be one more than the
// newest key's (1 for the first), and in the same transaction sets the
// RetireAfter of the keys before it that have none to retirePrevious. A
// generation already taken (another instance made that key first) is
// ErrAlreadyExists and writes nothing.
func (s *SQL) AddSigningKey(ctx context.Context, k SigningKey, retirePrevious time.Time) (SigningKey, error) {
	switch {
	case k.ID == "" || k.Generation < 1 || k.Algorithm == "" || k.PrivateKey == "" || len(k.PublicKey) == 0 || k.ActiveFrom.IsZero():
		return SigningKey{}, errors.New("store: a signing key needs an id, a generation, an algorithm, both keys and a start")
	case !storable(k.ID) || !storable(k.PrivateKey):
		return SigningKey{}, errors.New("store: signing key fields must be UTF-8 text")
	}
	k.CreatedAt = s.timestamp()
	k.ActiveFrom = k.ActiveFrom.UTC().Truncate(time.Microsecond)
	k.RetireAfter = nil
	retire := retirePrevious.UTC().Truncate(time.Microsecond)
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO oidc_signing_keys (`+signingKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.Generation, k.Algorithm, k.PrivateKey, k.PublicKey, k.CreatedAt, k.ActiveFrom, nil); err != nil {
			return err
		}
		if k.Generation > 1 {
			if _, err := s.exec(ctx, tx, `UPDATE oidc_signing_keys SET retire_after = ? WHERE generation < ? AND retire_after IS NULL`,
				retire, k.Generation); err != nil {
				return err
			}
		}
		after := map[string]any{"algorithm": k.Algorithm, "generation": k.Generation, "activeFrom": k.ActiveFrom.Format(time.RFC3339Nano)}
		if k.Generation > 1 {
			after["previousRetireAfter"] = retire.Format(time.RFC3339Nano)
		}
		return s.audit(ctx, tx, ServerAudit, change{action: AuditSigningKeyCreate, targetKind: "oidc_signing_key", targetID: k.ID,
			targetName: k.ID, after: after})
	})
	if err := s.createError(err, &ExistsError{Kind: "signing key", Field: "generation", Existing: strconv.FormatInt(k.Generation, 10)}, "signing key"); err != nil {
		return SigningKey{}, err
	}
	return k, nil
}

// SigningKeys returns every signing key, retired ones included, newest
// (highest generation) first.
func (s *SQL) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	ks := []SigningKey{}
	if err := s.selectAll(ctx, s.reader, &ks, `SELECT `+signingKeyColumns+` FROM oidc_signing_keys ORDER BY generation DESC`); err != nil {
		return nil, fmt.Errorf("store: list signing keys: %w", err)
	}
	return ks, nil
}

// Strings is a list of strings stored as one JSON array (never NULL).
type Strings []string

// Scan implements sql.Scanner for the JSON text column.
func (l *Strings) Scan(src any) error {
	*l = nil
	return scanJSON(src, (*[]string)(l))
}

// scanJSON decodes a JSON text column into v, which the caller has set to
// its zero value: NULL and empty text leave it so.
func scanJSON(src, v any) error {
	var text []byte
	switch s := src.(type) {
	case nil:
	case string:
		text = []byte(s)
	case []byte:
		text = s
	default:
		return fmt.Errorf("store: cannot scan %T into %T", src, v)
	}
	if len(text) == 0 {
		return nil
	}
	return json.Unmarshal(text, v)
}

// Value implements driver.Valuer.
func (l Strings) Value() (driver.Value, error) {
	if l == nil {
		l = Strings{}
	}
	b, err := json.Marshal([]string(l))
	return string(b), err
}

// OIDCClient is an application that signs administrators in through the
// OpenID Provider (a relying party). Package admin validates it.
type OIDCClient struct {
	Seq  int64  `db:"seq"`
	ID   string `db:"id"` // the OAuth client_id
	Name string `db:"name"`
	// Public: a client that cannot keep a secret (a single-page or native
	// app); it has no secret and must use PKCE. Otherwise confidential.
	Public bool `db:"public"`
	// SecretHash is the SHA-256 of a confidential client's secret (the
	// secret itself is shown once at creation); empty for a public one.
	SecretHash []byte `db:"secret_hash"`
	// RedirectURIs are compared exactly with an authorization request's.
	RedirectURIs Strings `db:"redirect_uris"`
	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// browser back to, compared exactly with the logout request's
	// post_logout_redirect_uri; empty: never redirected.
	PostLogoutRedirectURIs Strings `db:"post_logout_redirect_uris"`
	// BackchannelLogoutURI receives OIDC Back-Channel Logout tokens; ""
	// for none.
	BackchannelLogoutURI string `db:"backchannel_logout_uri"`
	// AllOrgs: administrators of every organization may sign in to the
	// client; otherwise only those of OrgIDs.
	AllOrgs    bool      `db:"all_orgs"`
	OrgIDs     Strings   `db:"org_ids"`
	FirstParty bool      `db:"first_party"` // consent is skipped
	CreatedAt  time.Time `db:"created_at"`
	Disabled   bool      `db:"disabled"`
}

// Allows reports whether administrators of org may sign in to the client.
func (c OIDCClient) Allows(org string) bool {
	if c.Disabled {
		return false
	}
	if c.AllOrgs {
		return true
	}
	for _, id := range c.OrgIDs {
		if id == org {
			return true
		}
	}
	return false
}

const oidcClientColumns = `id, name, public, secret_hash, redirect_uris, post_logout_redirect_uris, backchannel_logout_uri, all_orgs, org_ids, first_party, created_at, disabled`

// oidcClientView is what the audit log shows of a client: never its
// secret's hash.
func oidcClientView(c *OIDCClient) map[string]any {
	return map[string]any{"name": c.Name, "public": c.Public, "redirectUris": []string(c.RedirectURIs),
		"postLogoutRedirectUris": []string(c.PostLogoutRedirectURIs), "backchannelLogoutUri": c.BackchannelLogoutURI, "allOrgs": c.AllOrgs, "orgIds": []string(c.OrgIDs),
		"firstParty": c.FirstParty, "disabled": c.Disabled}
}

// auditOIDCClient writes a client's change to the server's audit log and
// to the log of the organization that owns the client before or after it
// (a client restricted to exactly that organization: what its Super
// Administrators manage). The organization's copy says whether the client
// serves other organizations instead of listing their ids, which would
// name other customers.
func (s *SQL) auditOIDCClient(ctx context.Context, tx *sqlx.Tx, c change, before, after *OIDCClient) error {
	actor, err := actorOf(ctx)
	if err != nil {
		return err
	}
	entries := []pendingAudit{{actor: actor, org: ServerAudit, change: c}}
	var owners []string
	for _, x := range []*OIDCClient{before, after} {
		if x != nil && !x.AllOrgs && len(x.OrgIDs) == 1 && !slices.Contains(owners, x.OrgIDs[0]) {
			owners = append(owners, x.OrgIDs[0])
		}
	}
	for _, org := range owners {
		own := c
		own.before, own.after = withoutOrgIDs(c.before), withoutOrgIDs(c.after)
		entries = append(entries, pendingAudit{actor: actor, org: org, change: own})
	}
	return s.auditAll(ctx, tx, entries)
}

func withoutOrgIDs(view map[string]any) map[string]any {
	if view == nil {
		return nil
	}
	out := make(map[string]any, len(view))
	for k, v := range view {
		if ids, ok := v.([]string); ok && k == "orgIds" {
			out["otherOrganizations"] = len(ids) > 1
			continue
		}
		out[k] = v
	}
	return out
}

// validOIDCClient is the store's part of a client's rules (package admin
// checks the URIs).
func validOIDCClient(c *OIDCClient) error {
	if c.ID == "" || c.Name == "" || len(c.RedirectURIs) == 0 || c.Public != (len(c.SecretHash) == 0) || c.AllOrgs != (len(c.OrgIDs) == 0) {
		return errors.New("store: an OIDC client needs an id, a name, redirect URIs, a secret hash unless public, and organizations unless for all")
	}
	for _, v := range slices.Concat([]string{c.ID, c.Name, c.BackchannelLogoutURI}, c.RedirectURIs, c.PostLogoutRedirectURIs) {
		if !storable(v) {
			return errors.New("store: OIDC client fields must be UTF-8 text")
		}
	}
	if c.SecretHash == nil {
		c.SecretHash = []byte{}
	}
	if c.OrgIDs == nil {
		c.OrgIDs = Strings{}
	}
	if c.PostLogoutRedirectURIs == nil {
		c.PostLogoutRedirectURIs = Strings{}
	}
	return nil
}

// MaxOIDCClientsPerOrg bounds the clients restricted to one organization
// (clients of every organization are not counted): Super Administrators
// register their organization's own applications, and these rows are the
// server's, so one organization must not be able to fill the table.
const MaxOIDCClientsPerOrg = 50

// orgsExist fails with ErrNotFound unless every id is an organization's,
// and with ErrLimit when an organization of added (ids the client did not
// have) already has MaxOIDCClientsPerOrg clients other than self. On
// PostgreSQL it locks the organizations' rows, in a fixed order, so that
// concurrent registrations for one organization take turns and the count
// holds (on SQLite the single writer already does).
func (s *SQL) orgsExist(ctx context.Context, tx *sqlx.Tx, self string, ids, added []string) error {
	sorted := slices.Sorted(slices.Values(ids))
	for _, org := range sorted {
		var found string
		if err := s.get(ctx, tx, &found, `SELECT id FROM orgs WHERE id = ?`+s.d.forUpdate, org); err != nil {
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("store: organization %q: %w", org, ErrNotFound)
			}
			return err
		}
		if !slices.Contains(added, org) {
			continue
		}
		// org_ids is a JSON array of ids (UUIDs: no LIKE wildcards).
		var n int
		if err := s.get(ctx, tx, &n, `SELECT count(*) FROM oidc_clients WHERE NOT all_orgs AND id <> ? AND org_ids LIKE ?`,
			self, `%"`+org+`"%`); err != nil {
			return err
		}
		if n >= MaxOIDCClientsPerOrg {
			return fmt.Errorf("store: organization %q has %d OIDC clients: %w", org, n, ErrLimit)
		}
	}
	return nil
}

// CreateOIDCClient stores a client. Its organizations must exist
// (ErrNotFound otherwise) and have room (ErrLimit, MaxOIDCClientsPerOrg);
// a taken id is ErrAlreadyExists.
func (s *SQL) CreateOIDCClient(ctx context.Context, c OIDCClient) (OIDCClient, error) {
	if err := validOIDCClient(&c); err != nil {
		return OIDCClient{}, err
	}
	c.CreatedAt = s.timestamp()
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.orgsExist(ctx, tx, c.ID, c.OrgIDs, c.OrgIDs); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO oidc_clients (`+oidcClientColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Name, c.Public, c.SecretHash, c.RedirectURIs, c.PostLogoutRedirectURIs, c.BackchannelLogoutURI, c.AllOrgs, c.OrgIDs, c.FirstParty,
			c.CreatedAt, c.Disabled); err != nil {
			return err
		}
		return s.auditOIDCClient(ctx, tx, change{action: AuditOIDCClientCreate, targetKind: "oidc_client", targetID: c.ID,
			targetName: c.Name, after: oidcClientView(&c)}, nil, &c)
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrLimit) {
		return OIDCClient{}, err
	}
	if err := s.createError(err, &ExistsError{Kind: "OIDC client", Field: "id", Existing: c.ID}, "OIDC client"); err != nil {
		return OIDCClient{}, err
	}
	return c, nil
}

// OIDCClient returns a client by its id.
func (s *SQL) OIDCClient(ctx context.Context, id string) (OIDCClient, error) {
	var c OIDCClient
	err := s.get(ctx, s.reader, &c, `SELECT seq, `+oidcClientColumns+` FROM oidc_clients WHERE id = ?`, id)
	return c, err
}

// OIDCClientCredentials is what authenticating a client reads: its
// secret's hash and whether it may authenticate at all.
type OIDCClientCredentials struct {
	SecretHash []byte `db:"secret_hash"`
	Public     bool   `db:"public"`
	Disabled   bool   `db:"disabled"`
}

// OIDCClientCredentials returns a client's credentials alone: every token
// request and introspection authenticates its client, and the whole row
// (three JSON lists) costs more to read than the check.
func (s *SQL) OIDCClientCredentials(ctx context.Context, id string) (OIDCClientCredentials, error) {
	var c OIDCClientCredentials
	err := s.get(ctx, s.reader, &c, `SELECT secret_hash, public, disabled FROM oidc_clients WHERE id = ?`, id)
	return c, err
}

// OIDCClients lists the clients in creation order.
func (s *SQL) OIDCClients(ctx context.Context) ([]OIDCClient, error) {
	cs := []OIDCClient{}
	if err := s.selectAll(ctx, s.reader, &cs, `SELECT seq, `+oidcClientColumns+` FROM oidc_clients ORDER BY seq`); err != nil {
		return nil, fmt.Errorf("store: list OIDC clients: %w", err)
	}
	return cs, nil
}

// UpdateOIDCClient applies fn to a client in one transaction holding its
// row; its id and creation time do not change. Its organizations must
// exist (ErrNotFound otherwise), and those it gains have room (ErrLimit).
func (s *SQL) UpdateOIDCClient(ctx context.Context, id string, fn func(*OIDCClient) error) (OIDCClient, error) {
	var out OIDCClient
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var c OIDCClient
		if err := s.get(ctx, tx, &c, `SELECT seq, `+oidcClientColumns+` FROM oidc_clients WHERE id = ?`+s.d.forUpdate, id); err != nil {
			return err
		}
		before := oidcClientView(&c)
		next := c
		next.RedirectURIs = slices.Clone(c.RedirectURIs)
		next.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
		next.OrgIDs = slices.Clone(c.OrgIDs)
		next.SecretHash = slices.Clone(c.SecretHash)
		if err := fn(&next); err != nil {
			return err
		}
		next.Seq, next.ID, next.CreatedAt = c.Seq, c.ID, c.CreatedAt
		if err := validOIDCClient(&next); err != nil {
			return err
		}
		var added []string
		for _, org := range next.OrgIDs {
			if c.AllOrgs || !slices.Contains(c.OrgIDs, org) {
				added = append(added, org)
			}
		}
		if err := s.orgsExist(ctx, tx, id, next.OrgIDs, added); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE oidc_clients SET name = ?, public = ?, secret_hash = ?, redirect_uris = ?,
			post_logout_redirect_uris = ?, backchannel_logout_uri = ?, all_orgs = ?, org_ids = ?, first_party = ?, disabled = ?
			WHERE id = ?`,
			next.Name, next.Public, next.SecretHash, next.RedirectURIs, next.PostLogoutRedirectURIs, next.BackchannelLogoutURI, next.AllOrgs, next.OrgIDs,
			next.FirstParty, next.Disabled, id); err != nil {
			return fmt.Errorf("store: update OIDC client: %w", err)
		}
		after := oidcClientView(&next)
		if !bytes.Equal(c.SecretHash, next.SecretHash) {
			before["secret"], after["secret"] = "old", "new" // that it changed, never the hash
		}
		out = next
		return s.auditOIDCClient(ctx, tx, change{action: AuditOIDCClientUpdate, targetKind: "oidc_client", targetID: id,
			targetName: next.Name, before: before, after: after}, &c, &next)
	})
	if err != nil {
		return OIDCClient{}, err
	}
	return out, nil
}

// DeleteOIDCClient removes a client. check, when not nil, is called with
// the client in the transaction holding its row: its error refuses the
// deletion (the caller's permission, decided on the row it removes).
func (s *SQL) DeleteOIDCClient(ctx context.Context, id string, check func(OIDCClient) error) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var c OIDCClient
		if err := s.get(ctx, tx, &c, `SELECT seq, `+oidcClientColumns+` FROM oidc_clients WHERE id = ?`+s.d.forUpdate, id); err != nil {
			return err
		}
		if check != nil {
			if err := check(c); err != nil {
				return err
			}
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM oidc_clients WHERE id = ?`, id); err != nil {
			return fmt.Errorf("store: delete OIDC client: %w", err)
		}
		return s.auditOIDCClient(ctx, tx, change{action: AuditOIDCClientDelete, targetKind: "oidc_client", targetID: c.ID,
			targetName: c.Name, before: oidcClientView(&c)}, &c, nil)
	})
}
