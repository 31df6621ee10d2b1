package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNotFound: the record does not exist in that organization.
	ErrNotFound = errors.New("store: not found")
	// ErrUnknownMember: an id given as a group's member is not an
	// administrator of the group's organization (or was deleted while the
	// write ran). It is also ErrNotFound; nothing of the write is applied.
	ErrUnknownMember = fmt.Errorf("store: a member is not an administrator of the organization: %w", ErrNotFound)
	// ErrAlreadyExists: a uniqueness rule refused the write. The error is an
	// *ExistsError when the backend can name the record already there.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrConflict: a concurrent writer changed the record first (optimistic
	// concurrency), or an update function refused a stale version.
	ErrConflict = errors.New("store: conflict")
	// ErrInvalidQuery: a Query names a field the store does not have, or
	// compares it with a value of the wrong type. The error wraps it with
	// the detail; the protocol layer answers 400 (SCIM invalidFilter).
	ErrInvalidQuery = errors.New("store: invalid query")
	// ErrClosed: the store was closed while the call waited.
	ErrClosed = errors.New("store: closed")
	// ErrUnavailable: the database cannot serve now, through no fault of
	// the call: unreachable, shutting down or starting up, out of
	// connections, a deadline of the caller's passed waiting for it, or
	// (SQLite) locked by another process past the busy timeout. The error
	// wraps it with the driver's error. Nothing was written unless the
	// connection was lost during a commit. The protocol layers answer 503
	// with Retry-After.
	ErrUnavailable = errors.New("store: database unavailable")
	// ErrLastSuperAdministrator: the change would leave the organization
	// without a Super Administrator (Pending or Active); see SuperRule.
	ErrLastSuperAdministrator = errors.New("store: the organization's last Super Administrator")
)

// SuperRule is what a write does when it would leave its organization
// without a Super Administrator, counting Pending and Active ones. The
// check runs after the write, under a lock of the organization's row, so
// two concurrent writes cannot both see the other's Super Administrator
// still there.
type SuperRule int

const (
	// KeepSuper refuses the write: ErrLastSuperAdministrator. The manual
	// paths (management API, console, operator).
	KeepSuper SuperRule = iota
	// FlagMissingSuper lets the write through and flags the organization
	// (Org.SuperAdminMissingSince, audited): deprovisioning by the IdP is
	// never blocked, a departed employee must lose access at once.
	FlagMissingSuper
)

// ExistsError names the existing value that a write collided with.
// errors.Is(err, ErrAlreadyExists) is true for it.
type ExistsError struct {
	Kind     string // "administrator", "organization", "registered domain", ...
	Field    string // "userName", "slug", "domain", ...
	Existing string // the value already stored, exactly as stored
}

func (e *ExistsError) Error() string {
	return fmt.Sprintf("store: %s with %s %q already exists", e.Kind, e.Field, e.Existing)
}

func (e *ExistsError) Is(target error) bool { return target == ErrAlreadyExists }

// RawJSON is a JSON document kept as the text its writer gave, stored in a
// text column; empty is stored as NULL.
type RawJSON []byte

// Scan implements sql.Scanner for text and blob columns.
func (j *RawJSON) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*j = nil
	case string:
		*j = RawJSON(v)
	case []byte:
		*j = append(RawJSON(nil), v...)
	default:
		return fmt.Errorf("store: cannot scan %T into RawJSON", src)
	}
	return nil
}

// MarshalJSON writes the document itself (null when empty).
func (j RawJSON) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("null"), nil
	}
	return j, nil
}

// Value implements driver.Valuer.
func (j RawJSON) Value() (driver.Value, error) {
	if len(j) == 0 {
		return nil, nil
	}
	return string(j), nil
}

// Role is an administrator's role (seed 001).
type Role string

const (
	RoleAdministrator      Role = "Administrator"
	RoleSuperAdministrator Role = "Super Administrator"
)

// Valid reports whether r is one of the two roles.
func (r Role) Valid() bool { return r == RoleAdministrator || r == RoleSuperAdministrator }

// Status is an administrator's account status (seed 001). An active
// administrator is shown by its last-login time ("never" when it has none).
type Status string

const (
	StatusPending     Status = "Pending"
	StatusActive      Status = "Active"
	StatusDeactivated Status = "Deactivated"
)

// Valid reports whether s is one of the three statuses.
func (s Status) Valid() bool {
	return s == StatusPending || s == StatusActive || s == StatusDeactivated
}

// Org is an organization (an "account" in seed 002): the tenant that owns
// administrators, groups, registered domains, SCIM tokens and connections.
type Org struct {
	ID          string `db:"id"`
	Slug        string `db:"slug"` // URL-safe, unique, lower case
	Name        string `db:"name"`
	SCIMEnabled bool   `db:"scim_enabled"` // the IdP owns the lifecycle while true
	// SuperAdminGroup is the display name (compared exactly) of the group
	// whose members are Super Administrators when the IdP manages them; ""
	// designates none. See Administrator for the rule.
	SuperAdminGroup string `db:"super_admin_group"`
	// RequireTOTP: every administrator signs in with a second factor
	// (seed 000), enrolling at the next sign-in if they have none.
	RequireTOTP bool `db:"require_totp"`
	// RequireSSO: administrators sign in through the organization's SSO
	// connections; passwords are refused except for break-glass Super
	// Administrators (Credentials.BreakGlass).
	RequireSSO bool `db:"require_sso"`
	// SuperAdminMissingSince is when the organization lost its last
	// Super Administrator (Pending or Active) to a write under
	// FlagMissingSuper (a deprovisioning by the IdP); nil while it has one.
	// The store sets and clears it, audited, in the transaction of the
	// write that changes it; UpdateOrg leaves it alone.
	SuperAdminMissingSince *time.Time `db:"super_admin_missing_at"`
	CreatedAt              time.Time  `db:"created_at"`
	UpdatedAt              time.Time  `db:"updated_at"`
	Version                int64      `db:"version"`
}

// RegisteredDomain is an email domain an organization's administrators may
// use (seeds 000/001). Domains are stored lower case.
type RegisteredDomain struct {
	OrgID     string    `db:"org_id"`
	Domain    string    `db:"domain"`
	CreatedAt time.Time `db:"created_at"`
}

// Email is one address of an administrator, as SCIM's "emails" carries it
// (RFC 7643 §4.1.2).
type Email struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"` // "work", "home", "other" or the IdP's own
	Display string `json:"display,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// Emails is an administrator's addresses in the order the IdP sent them,
// stored as one JSON array (nil or empty is stored as NULL). A []Email
// converts to it implicitly.
type Emails []Email

// Scan implements sql.Scanner for the JSON text column.
func (e *Emails) Scan(src any) error {
	var text string
	switch v := src.(type) {
	case nil:
	case string:
		text = v
	case []byte:
		text = string(v)
	default:
		return fmt.Errorf("store: cannot scan %T into Emails", src)
	}
	*e = nil
	if text == "" {
		return nil
	}
	list, err := decodeEmails(text)
	if err != nil {
		return fmt.Errorf("store: stored emails: %w", err)
	}
	*e = list
	return nil
}

// Value implements driver.Valuer.
func (e Emails) Value() (driver.Value, error) {
	if len(e) == 0 {
		return nil, nil
	}
	b, err := json.Marshal([]Email(e))
	return string(b), err
}

// Administrator is one administrator account (seed 001 fields plus what SCIM
// needs). UserName is stored and matched exactly; uniqueness within the
// organization is case-insensitive (see FoldUsername).
//
// The role of an administrator the IdP manages (SCIMManaged) is the store's
// to keep, whatever the caller sets: Super Administrator when SCIMRole is
// Super Administrator or when it is a member of a group of its organization
// whose display name is the organization's SuperAdminGroup, Administrator
// otherwise. The store recomputes it in the transaction of every write that
// can change it (the administrator itself, a member change, rename or
// deletion of the designated group, a new designation); an administrator
// whose role changes that way gets a new Version. The role of other
// administrators is what their caller sets.
type Administrator struct {
	ID         string `db:"id"`
	OrgID      string `db:"org_id"`
	UserName   string `db:"username"`
	ExternalID string `db:"external_id"` // the IdP's identifier; not unique
	GivenName  string `db:"given_name"`
	FamilyName string `db:"family_name"`
	Email      string `db:"email"` // the primary address
	// Emails are all the addresses, indexed for filters (Query with Any
	// "emails"). When empty, the index holds Email as the one primary
	// address without a type, so that administrators created outside SCIM
	// are found by their address too.
	Emails      Emails     `db:"emails"`
	Phone       string     `db:"phone"`
	Role        Role       `db:"role"`
	Status      Status     `db:"status"`
	SCIMManaged bool       `db:"scim_managed"` // created or claimed by the IdP over SCIM
	SCIMRole    Role       `db:"scim_role"`    // what the IdP's "roles" grant; "" none
	CreatedAt   time.Time  `db:"created_at"`
	UpdatedAt   time.Time  `db:"updated_at"`
	LastLoginAt *time.Time `db:"last_login_at"` // nil: never signed in
	Version     int64      `db:"version"`       // bumped by every update; the SCIM ETag
	// Attributes holds the SCIM attributes gatehouse stores but does not
	// model as columns (addresses, phone numbers, enterprise extension,
	// ...), as one JSON object exactly as the protocol layer wrote it. Nil
	// or empty means none. It must be JSON both databases can query: no
	// \u0000 and no unpaired surrogate escapes (PostgreSQL's jsonb refuses
	// them).
	Attributes RawJSON `db:"attributes"`
	// Language is the administrator's choice of language for the console
	// and the emails gatehouse sends them (seed 002's "Language"): "en",
	// "ru", or "" when none was chosen (the console then follows the
	// browser, and emails are in English). Package admin validates it.
	Language string `db:"language"`
}

// Group is a SCIM group of administrators. Members are rows of their own so
// that adding or removing one never rewrites the group.
type Group struct {
	ID          string    `db:"id"`
	OrgID       string    `db:"org_id"`
	DisplayName string    `db:"display_name"`
	ExternalID  string    `db:"external_id"`
	CreatedAt   time.Time `db:"created_at"`
	UpdatedAt   time.Time `db:"updated_at"`
	Version     int64     `db:"version"` // bumped by member changes too
	Attributes  RawJSON   `db:"attributes"`
}

// GroupRef names a group an administrator belongs to (SCIM's read-only
// User "groups").
type GroupRef struct {
	ID          string `db:"id"`
	DisplayName string `db:"display_name"`
}

// GroupPatch is a set of changes PatchGroup applies to a group in one
// transaction, in this order: Update (the group's own fields, not its
// members; nil changes nothing), RemoveAll (every member), Remove,
// Add.
type GroupPatch struct {
	Update    func(*Group) error
	RemoveAll bool
	Remove    []string // administrator ids; absent members are ignored
	Add       []string // administrator ids of the organization; present members are left as they are
}

// GroupMember is one member of a group, with the display fields a SCIM
// members list shows.
type GroupMember struct {
	AdministratorID string `db:"administrator_id"`
	UserName        string `db:"username"`
}

// SCIMToken is a bearer token an identity provider uses for an organization's
// SCIM endpoint. Only the SHA-256 of the secret is stored; Prefix is the
// secret's first characters, shown in lists so an operator can tell tokens
// apart.
type SCIMToken struct {
	ID          string     `db:"id"`
	OrgID       string     `db:"org_id"`
	Prefix      string     `db:"prefix"`
	Hash        []byte     `db:"hash"`
	Description string     `db:"description"`
	CreatedAt   time.Time  `db:"created_at"`
	ExpiresAt   *time.Time `db:"expires_at"`
	LastUsedAt  *time.Time `db:"last_used_at"`
	RevokedAt   *time.Time `db:"revoked_at"`
}

// Usable reports whether the token may authenticate at time now.
func (t SCIMToken) Usable(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// Invitation is a single-use activation link for a Pending administrator.
// Only the SHA-256 of the link's secret is stored.
type Invitation struct {
	Hash            []byte     `db:"hash"`
	OrgID           string     `db:"org_id"`
	AdministratorID string     `db:"administrator_id"`
	Purpose         string     `db:"purpose"` // PurposeActivation ("" on create) or PurposePasswordReset
	CreatedAt       time.Time  `db:"created_at"`
	ExpiresAt       time.Time  `db:"expires_at"`
	UsedAt          *time.Time `db:"used_at"`
}

// Purposes of an Invitation.
const (
	PurposeActivation    = "activation"     // a Pending administrator finishes their account
	PurposePasswordReset = "password_reset" // an active administrator sets a new password
)

// NewOrg is everything CreateOrg writes in one transaction: the organization,
// its registered domains, its first administrator and that administrator's
// invitation.
type NewOrg struct {
	Org        Org
	Domains    []string
	Owner      Administrator
	Invitation Invitation
}

// Page selects a window of a list. Lists are ordered by creation (a
// monotonic sequence), so offsets stay stable while rows are inserted.
type Page struct {
	Offset int // rows to skip, >= 0
	Limit  int // rows to return; 0 returns none (just the total)
}

// Store is the persistence contract. Implementations must pass
// storetest.Run. Every method is scoped to one organization where the record
// belongs to one; a record of another organization is ErrNotFound.
//
// Update methods apply fn to the current record inside one transaction that
// holds the row (concurrent updates of one record take turns, so none is
// lost) and write the result with Version+1 and a new UpdatedAt. If fn
// returns an error nothing is written and that error is returned. fn must
// not have side effects beyond the record. Callers that hold a version from
// an earlier read (SCIM If-Match) compare it inside fn and return
// ErrConflict.
//
// Times are UTC instants with microsecond precision; drivers may return
// them in another location, so compare them with time.Time.Equal.
type Store interface {
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	Close() error

	// CreateOrg writes a NewOrg atomically. IDs and times left empty are
	// filled in. A taken slug is ErrAlreadyExists.
	CreateOrg(ctx context.Context, n NewOrg) (Org, Administrator, error)
	Org(ctx context.Context, id string) (Org, error)
	OrgBySlug(ctx context.Context, slug string) (Org, error)
	// UpdateOrg applies fn to the organization. A new SuperAdminGroup
	// recomputes the roles of the SCIM-managed members of the groups named
	// by the old and the new designation.
	UpdateOrg(ctx context.Context, id string, fn func(*Org) error) (Org, error)

	RegisteredDomains(ctx context.Context, org string) ([]RegisteredDomain, error)
	// OrgsByDomain returns the organizations that registered a domain.
	OrgsByDomain(ctx context.Context, domain string) ([]string, error)
	AddRegisteredDomain(ctx context.Context, org, domain string) error
	RemoveRegisteredDomain(ctx context.Context, org, domain string) error

	// CreateAdministrator inserts a; a username equal to an existing one
	// after FoldUsername is an *ExistsError naming the stored username. It
	// returns once the row is durable; on SQLite concurrent calls share
	// one transaction and one fsync (each still fails or succeeds alone).
	CreateAdministrator(ctx context.Context, a Administrator) (Administrator, error)
	Administrator(ctx context.Context, org, id string) (Administrator, error)
	// AdministratorWithGroups is Administrator and the groups it belongs
	// to (in the groups' creation order), in one query: the one read of an
	// administrator's groups (a page of administrators has them through
	// Query.WithGroups).
	AdministratorWithGroups(ctx context.Context, org, id string) (Administrator, []GroupRef, error)
	// AdministratorByUsername matches the username exactly (case-sensitive).
	AdministratorByUsername(ctx context.Context, org, username string) (Administrator, error)
	// UpdateAdministrator applies fn to the administrator inside one
	// transaction. Its id, organization and creation time do not change; a
	// new username is checked for a case-insensitive clash; the role of a
	// SCIM-managed administrator is recomputed (see Administrator). A write
	// that leaves the organization without a Super Administrator follows
	// rule.
	UpdateAdministrator(ctx context.Context, org, id string, rule SuperRule, fn func(*Administrator) error) (Administrator, error)
	// DeleteAdministrator removes the administrator, its memberships and
	// invitations. check, when not nil, is called with the locked record
	// inside the delete's transaction (an If-Match, a rule on who may be
	// deleted); its error aborts the delete and is returned.
	DeleteAdministrator(ctx context.Context, org, id string, rule SuperRule, check func(Administrator) error) error
	// InviteAdministrator creates a Pending administrator with its
	// activation invitation and queues the invitation email (when not
	// nil), in one transaction.
	InviteAdministrator(ctx context.Context, a Administrator, inv Invitation, email *OutboxMessage) (Administrator, error)
	// QueryAdministrators returns the administrators of org that match
	// q.Where, sorted and windowed as q says (see Query).
	QueryAdministrators(ctx context.Context, org string, q Query) (Result[Administrator], error)

	// CreateGroup inserts a group with its members, administrator ids of
	// the organization, in one transaction: with an id that is not one
	// (ErrUnknownMember), nothing is written.
	CreateGroup(ctx context.Context, g Group, members ...string) (Group, error)
	Group(ctx context.Context, org, id string) (Group, error)
	// DeleteGroup removes the group and its member rows. check, when not
	// nil, is called with the locked group inside the delete's
	// transaction (an If-Match); its error aborts the delete and is
	// returned.
	DeleteGroup(ctx context.Context, org, id string, check func(Group) error) error
	// QueryGroups is QueryAdministrators for groups.
	QueryGroups(ctx context.Context, org string, q Query) (Result[Group], error)
	// PatchGroup applies p to the group in one transaction holding the
	// group, and returns the group as written. Its Version grows by one if
	// anything changed (fields, or a member added or removed) and not at
	// all otherwise; p.Update sees the version before the patch, so an
	// If-Match check belongs there. An id in p.Add that is not an
	// administrator of org is ErrUnknownMember and nothing of p is applied. The
	// cost is proportional to the ids given (RemoveAll excepted), not to
	// the size of the group.
	PatchGroup(ctx context.Context, org, id string, p GroupPatch) (Group, error)
	// GroupMembers returns a page of members in the order they were added,
	// and their total.
	GroupMembers(ctx context.Context, org, group string, p Page) ([]GroupMember, int, error)

	CreateSCIMToken(ctx context.Context, t SCIMToken) (SCIMToken, error)
	// SCIMTokenByHash finds a token of any organization by the hash of its
	// secret; revoked and expired tokens are returned too (check Usable).
	SCIMTokenByHash(ctx context.Context, hash []byte) (SCIMToken, error)
	SCIMTokens(ctx context.Context, org string) ([]SCIMToken, error)
	TouchSCIMToken(ctx context.Context, id string, at time.Time) error
	RevokeSCIMToken(ctx context.Context, org, id string, at time.Time) error

	CreateInvitation(ctx context.Context, inv Invitation, email *OutboxMessage) error
	// RequestReset counts a password-reset request against its key and,
	// within the limit, creates its invitation and email, in one
	// transaction (see ResetRequest).
	RequestReset(ctx context.Context, r ResetRequest) (bool, error)
	InvitationByHash(ctx context.Context, hash []byte) (Invitation, error)
	// OpenInvitation reports whether the administrator has an unused
	// invitation of the purpose, expired ones included.
	OpenInvitation(ctx context.Context, org, administratorID, purpose string) (bool, error)

	CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error)
	// APIKeyByHash finds a key of any organization by the hash of its
	// secret; revoked and expired keys are returned too (check Usable).
	APIKeyByHash(ctx context.Context, hash []byte) (APIKey, error)
	APIKeys(ctx context.Context, org string) ([]APIKey, error)
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
	RevokeAPIKey(ctx context.Context, org, id string, at time.Time) error

	CreateSSOConnection(ctx context.Context, c SSOConnection) (SSOConnection, error)
	SSOConnection(ctx context.Context, org, id string) (SSOConnection, error)
	// SSOConnectionByID returns a connection of any organization.
	SSOConnectionByID(ctx context.Context, id string) (SSOConnection, error)
	SSOConnections(ctx context.Context, org string) ([]SSOConnection, error)
	// AllSSOConnections lists every organization's connections of a kind.
	AllSSOConnections(ctx context.Context, kind string) ([]SSOConnection, error)
	UpdateSSOConnection(ctx context.Context, org, id string, fn func(*SSOConnection) error) (SSOConnection, error)
	DeleteSSOConnection(ctx context.Context, org, id string) error
	// CreateSSORequest stores a request in flight; ErrLimit when its
	// connection has MaxSSORequestsInFlight unexpired ones.
	CreateSSORequest(ctx context.Context, r SSORequest) (SSORequest, error)
	// HitRateWindow counts a hit for key in a fixed window shared by
	// every instance and returns the window's hits; RateWindowHits reads
	// them without counting.
	HitRateWindow(ctx context.Context, key string, now time.Time, window time.Duration) (int, error)
	RateWindowHits(ctx context.Context, key string, now time.Time, window time.Duration) (int, error)
	// PruneRateWindows deletes windows started before before.
	PruneRateWindows(ctx context.Context, before time.Time) (int64, error)
	// PendingSSORequest returns an unused, unexpired request of the
	// connection bound to browser without using it.
	PendingSSORequest(ctx context.Context, id, connectionID string, browser []byte, now time.Time) (SSORequest, error)
	// UseSSORequest marks such a request used; of concurrent uses exactly
	// one succeeds, the others get ErrNotFound.
	UseSSORequest(ctx context.Context, id, connectionID string, browser []byte, now time.Time) (SSORequest, error)
	// UseSSORequestRecording uses the request and records the assertion
	// in one transaction: ErrNotFound or ErrReplay write nothing.
	UseSSORequestRecording(ctx context.Context, id, connectionID string, browser []byte, now time.Time, assertionID string, expiresAt time.Time) (SSORequest, error)
	SetSSORequestResult(ctx context.Context, id string, result RawJSON) error
	SSORequest(ctx context.Context, org, id string) (SSORequest, error)
	// SSOTests returns a connection's latest test sign-ins with a result.
	SSOTests(ctx context.Context, org, connectionID string, limit int) ([]SSORequest, error)
	// RecordAssertion remembers an assertion ID until expiresAt; a second
	// time is ErrReplay.
	RecordAssertion(ctx context.Context, connectionID, assertionID string, expiresAt time.Time) error

	// The organization's one LDAP connection (see LDAPConnection) and its
	// LDAP users (Credentials.LDAPUser), audited as ldap_connection.*.
	LDAPConnection(ctx context.Context, org string) (LDAPConnection, error)
	PutLDAPConnection(ctx context.Context, org string, fn func(*LDAPConnection) error) (LDAPConnection, error)
	DeleteLDAPConnection(ctx context.Context, org string) error
	LDAPUsers(ctx context.Context, org string, limit int) ([]Administrator, int, error)

	// The OpenID Provider's signing keys and clients: server-wide records,
	// audited in the server's log (ServerAudit). See oidc.go.
	AddSigningKey(ctx context.Context, k SigningKey, retirePrevious time.Time) (SigningKey, error)
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	CreateOIDCClient(ctx context.Context, c OIDCClient) (OIDCClient, error)
	OIDCClient(ctx context.Context, id string) (OIDCClient, error)
	OIDCClientCredentials(ctx context.Context, id string) (OIDCClientCredentials, error)
	OIDCClients(ctx context.Context) ([]OIDCClient, error)
	UpdateOIDCClient(ctx context.Context, id string, fn func(*OIDCClient) error) (OIDCClient, error)
	DeleteOIDCClient(ctx context.Context, id string, check func(OIDCClient) error) error

	// The OpenID Provider's flows: authorization requests, grants and
	// their tokens, and the back-channel logouts owed to clients (which
	// deactivating or deleting an administrator, and ending a session,
	// queue in their own transaction). See oidctokens.go.
	CreateOIDCAuthRequest(ctx context.Context, r OIDCAuthRequest) error
	OIDCAuthRequest(ctx context.Context, id string, now time.Time) (OIDCAuthRequest, error)
	SignInOIDCAuthRequest(ctx context.Context, id, org, administrator, sid string, authTime time.Time, amr []string, now time.Time) error
	SetOIDCAuthCode(ctx context.Context, id string, codeHash []byte, now time.Time) error
	UseOIDCAuthCode(ctx context.Context, codeHash []byte, now time.Time) (OIDCAuthRequest, error)
	IssueOIDCTokens(ctx context.Context, g OIDCGrant, exchanged string, grace time.Duration, tokens []OIDCToken, now time.Time) error
	OIDCToken(ctx context.Context, id string) (OIDCToken, OIDCGrant, error)
	// OIDCIntrospection reads a client's credentials and a token of its
	// grants in one statement (see OIDCIntrospection).
	OIDCIntrospection(ctx context.Context, client, token string) (OIDCIntrospection, error)
	RevokeOIDCGrant(ctx context.Context, id string, now time.Time) error
	DeleteOIDCToken(ctx context.Context, id string) error
	EndOIDCSession(ctx context.Context, sid, except string, now time.Time) error
	ClaimOIDCLogouts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OIDCLogout, error)
	MarkOIDCLogoutSent(ctx context.Context, id string, at time.Time) error
	MarkOIDCLogoutFailed(ctx context.Context, id, errText string, next time.Time) error
	VerifiedEmail(ctx context.Context, administrator string) (string, error)

	// SetBaseURL records the public URL gatehouse serve runs with, for the
	// command line's links; BaseURL reads it back (ErrNotFound: none yet).
	SetBaseURL(ctx context.Context, url string) error
	BaseURL(ctx context.Context) (string, error)

	// Prune deletes expired sessions, sign-in throttle windows older than
	// keepThrottle and emails sent more than keepSent ago.
	Prune(ctx context.Context, now time.Time, keepThrottle, keepSent time.Duration) (int64, error)

	// RecordAudit writes an audit entry no other write carries; every
	// write above records its own, with the Actor of its context.
	RecordAudit(ctx context.Context, e AuditEntry) error
	// AuditLog returns a page of an organization's audit log, newest first.
	AuditLog(ctx context.Context, org string, q AuditQuery) ([]AuditEntry, error)

	// The S3 export of an organization's audit log and login history (see
	// S3Export): its settings, the lease of the one instance exporting it,
	// and the entries to export.
	S3Export(ctx context.Context, org string) (S3Export, error)
	PutS3Export(ctx context.Context, org string, fn func(*S3Export) error) (S3Export, error)
	ClaimS3Export(ctx context.Context, now time.Time, lease time.Duration) (S3Export, error)
	RenewS3Export(ctx context.Context, org, token string, now time.Time, lease time.Duration) error
	AdvanceS3Export(ctx context.Context, org, token string, stream ExportStream, seq int64, now time.Time) error
	ReleaseS3Export(ctx context.Context, org, token string, now, next time.Time, errText string) error
	// ExportAuditAfter and ExportLoginsAfter return the settled entries
	// after a seq, oldest first: no entry below the last one returned can
	// appear later, so a cursor moved to it skips nothing.
	ExportAuditAfter(ctx context.Context, org string, after int64, limit int) ([]AuditEntry, error)
	ExportLoginsAfter(ctx context.Context, org string, after int64, limit int) ([]ExportedLogin, error)
	// The provisioning log (see SCIMExchange): the SCIM requests of each
	// organization's identity provider, written in batches by
	// scim/provlog and pruned by count and age, a bounded number of rows
	// a call.
	AppendSCIMLog(ctx context.Context, entries []SCIMExchange) error
	SCIMLog(ctx context.Context, org string, q SCIMLogQuery) ([]SCIMExchange, error)
	SCIMLogEntry(ctx context.Context, org string, seq int64) (SCIMExchange, error)
	PruneSCIMLog(ctx context.Context, org string, keep, limit int) (int64, error)
	PruneSCIMLogBefore(ctx context.Context, before time.Time, limit int) (int64, error)

	// The email outbox (see OutboxMessage): delivery is at least once.
	// EnqueueEmail queues one message on its own, due now; writes that send
	// an email queue it in their own transaction instead.
	EnqueueEmail(ctx context.Context, m OutboxMessage) (OutboxMessage, error)
	// ClaimEmails claims up to limit due messages (unsent, next attempt at
	// or before now, no lease running), oldest first, until now+lease. No
	// other claim returns them before the lease ends, whichever instance
	// asks; after it they are claimable again, so a sender that dies with a
	// claim loses nothing.
	ClaimEmails(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxMessage, error)
	// MarkEmailSent marks a message sent at at, clears its body and lease.
	MarkEmailSent(ctx context.Context, id string, at time.Time) error
	// MarkEmailFailed counts a failed attempt, keeps errText (cut to about
	// 500 bytes), ends the lease and makes the message due again at next.
	MarkEmailFailed(ctx context.Context, id, errText string, next time.Time) error
	// PendingEmails counts the messages not sent yet.
	PendingEmails(ctx context.Context) (int, error)

	// Sign-in (see Credentials, Session, LoginEvent). Methods that decide
	// by the time take it from the caller, whose clock the rules follow.
	//
	// Credentials returns an administrator's credentials, zero (with
	// AdministratorID) when it has none.
	Credentials(ctx context.Context, org, administratorID string) (Credentials, error)
	// UpdateCredentials applies c in one transaction holding the row
	// (created if absent): the change, audited as c.Action with the
	// non-secret view (passwordSet, passwordChangedAt, mustChangePassword,
	// totpEnabled, lockedUntil), and the end of sessions c asks for.
	UpdateCredentials(ctx context.Context, org, administratorID string, c CredentialsChange) (Credentials, error)
	// UseInvitation redeems an unused, unexpired invitation of purpose at
	// now (otherwise ErrNotFound), applying fn to its administrator
	// (Status only) and credentials and ending the administrator's
	// sessions, in one transaction; of concurrent uses exactly one wins.
	UseInvitation(ctx context.Context, hash []byte, purpose string, now time.Time, fn func(*Administrator, *Credentials) error) (Administrator, error)
	// TakeSignInSlot counts a password sign-in against its address and
	// its name before the password is checked, in one transaction, and
	// says whether the password may be checked (see SignInSlot).
	TakeSignInSlot(ctx context.Context, slot SignInSlot) (SlotVerdict, int, error)
	// ReturnSignInSlot gives back a granted attempt's counts (its password
	// was right) or, with restartName, restarts its name's count (a
	// success, an unlock).
	ReturnSignInSlot(ctx context.Context, slot SignInSlot, restartName bool) error
	// RecordSignIn writes a sign-in attempt in one transaction: history,
	// audit, and on success LastLoginAt, the session and the TOTP step
	// (ErrConflict on a replayed step).
	RecordSignIn(ctx context.Context, a SignInAttempt) (Credentials, error)
	// RecordNameFailure writes a failed sign-in of a name no administrator
	// has, in one transaction as RecordSignIn would.
	RecordNameFailure(ctx context.Context, name string) error
	// LoginHistory returns an administrator's events newest first.
	LoginHistory(ctx context.Context, org, administratorID string, limit int, beforeSeq int64) ([]LoginEvent, error)
	// Session finds a session by the hash of its secret; expired at now
	// is ErrNotFound.
	Session(ctx context.Context, hash []byte, now time.Time) (Session, error)
	// TouchSession slides a session's expiry, writing at most once a
	// minute; it reports whether it wrote.
	TouchSession(ctx context.Context, hash []byte, now, expiresAt time.Time) (bool, error)
	// DeleteSession ends one session (audited as signin.logout).
	DeleteSession(ctx context.Context, hash []byte) error
}
