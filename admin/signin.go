package admin

import (
	"context"
	"log/slog"
	"time"

	"gatehouse/store"
)

// LoginPolicy is the sign-in limits. Zero fields take the Default* values.
type LoginPolicy struct {
	// At most LockAfter password checks of one name (an organization and
	// a username) in LockFor: the LockAfter-th attempt without a success
	// locks the name for LockFor from it, and while locked the password
	// is not checked, right or wrong. A success, a password reset or an
	// operator unlock restarts the count. A username that does not exist
	// is counted and locks alike (see Login).
	LockAfter int
	LockFor   time.Duration
	// At most IPLimit attempts from one client address within IPWindow (a
	// fixed window shared by every instance); then every further sign-in
	// from it is too_many_attempts until the window ends. Only guesses
	// count: an attempt whose password proves right (and whose code, if
	// any, is not wrong) gives its counts back, to the address and the
	// name.
	IPLimit  int
	IPWindow time.Duration
	// SessionIdle ends a session not used for that long; SessionAbsolute
	// ends any session that long after sign-in, used or not.
	SessionIdle     time.Duration
	SessionAbsolute time.Duration
	// ResetTTL is the life of a password-reset link; at most ResetLimit
	// reset emails are sent to one administrator per ResetWindow.
	ResetTTL    time.Duration
	ResetLimit  int
	ResetWindow time.Duration
}

// Defaults of LoginPolicy.
const (
	DefaultLockAfter       = 5
	DefaultLockFor         = 15 * time.Minute
	DefaultIPLimit         = 20
	DefaultIPWindow        = 15 * time.Minute
	DefaultSessionIdle     = 30 * time.Minute
	DefaultSessionAbsolute = 12 * time.Hour
	DefaultResetTTL        = time.Hour
	DefaultResetLimit      = 3
	DefaultResetWindow     = time.Hour
)

func (p LoginPolicy) withDefaults() LoginPolicy {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&p.LockAfter, DefaultLockAfter)
	dur(&p.LockFor, DefaultLockFor)
	def(&p.IPLimit, DefaultIPLimit)
	dur(&p.IPWindow, DefaultIPWindow)
	dur(&p.SessionIdle, DefaultSessionIdle)
	dur(&p.SessionAbsolute, DefaultSessionAbsolute)
	dur(&p.ResetTTL, DefaultResetTTL)
	def(&p.ResetLimit, DefaultResetLimit)
	dur(&p.ResetWindow, DefaultResetWindow)
	return p
}

// SignInStore is what SignIn reads and writes: its sessions, the
// credentials and the sign-in throttle, the invitations it uses, the
// administrators and organizations it signs in, and the entries of
// refusals no other write carries. A store.Store is one.
type SignInStore interface {
	Sessions
	Org(ctx context.Context, id string) (store.Org, error)
	OrgBySlug(ctx context.Context, slug string) (store.Org, error)
	Administrator(ctx context.Context, org, id string) (store.Administrator, error)
	AdministratorByUsername(ctx context.Context, org, username string) (store.Administrator, error)
	QueryAdministrators(ctx context.Context, org string, q store.Query) (store.Result[store.Administrator], error)
	Credentials(ctx context.Context, org, administratorID string) (store.Credentials, error)
	UpdateCredentials(ctx context.Context, org, administratorID string, c store.CredentialsChange) (store.Credentials, error)
	TakeSignInSlot(ctx context.Context, slot store.SignInSlot) (store.SlotVerdict, int, error)
	ReturnSignInSlot(ctx context.Context, slot store.SignInSlot, restartName bool) error
	RecordSignIn(ctx context.Context, a store.SignInAttempt) (store.Credentials, error)
	RecordNameFailure(ctx context.Context, name string) error
	InvitationByHash(ctx context.Context, hash []byte) (store.Invitation, error)
	UseInvitation(ctx context.Context, hash []byte, purpose string, now time.Time,
		fn func(*store.Administrator, *store.Credentials) error) (store.Administrator, error)
	RequestReset(ctx context.Context, r store.ResetRequest) (bool, error)
	RecordAudit(ctx context.Context, e store.AuditEntry) error
	LDAPConnection(ctx context.Context, org string) (store.LDAPConnection, error)
}

var _ SignInStore = store.Store(nil)

// SignIn is password sign-in, sessions, activation, password reset and the
// TOTP second factor. It holds the rules; the HTTP layer sets the cookie
// (the Token of a LoginResult: HttpOnly, Secure under https, SameSite=Lax)
// and guards cookie-authenticated writes against CSRF.
//
// Refusals are *Error with the codes below; anything else is an internal
// error whose text is for the log only.
type SignIn struct {
	Store SignInStore
	// Sealer seals TOTP secrets ("totp:" + administrator id) and
	// enrolment tickets; required.
	Sealer *Sealer
	// Mail queues password-reset emails; BaseURL is the server's public
	// URL, under which reset links point. Both are needed by
	// RequestPasswordReset only.
	Mail    Mailer
	BaseURL string
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Policy LoginPolicy
	// Locator places each sign-in's address for its login-history entry;
	// nil leaves every location empty.
	Locator Locator
	// Log receives what a refusal does not tell its client (why the
	// directory of an LDAP user did not judge a password); nil discards.
	Log *slog.Logger
}

func (s *SignIn) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Locator says where an address is (package admin/geoip reads a MaxMind
// database): the zero Location when it cannot say.
type Locator interface {
	Locate(ip string) store.Location
}

func (s *SignIn) now() time.Time { return now(s.Now).UTC() }

// record writes a sign-in attempt (see store.RecordSignIn) with where its
// address is, looked up now: the entry keeps what the database said at
// the time of the sign-in.
func (s *SignIn) record(ctx context.Context, a store.SignInAttempt) (store.Credentials, error) {
	if s.Locator != nil {
		a.Location = s.Locator.Locate(a.IP)
	}
	return s.Store.RecordSignIn(ctx, a)
}

func (s *SignIn) policy() LoginPolicy { return s.Policy.withDefaults() }

// asSelf is ctx with the administrator, now proven (a password, a
// token, an IdP's answer), as the actor of its writes, whatever actor ctx
// carried.
func asSelf(ctx context.Context, a store.Administrator) context.Context {
	return store.WithActor(ctx, store.Actor{Kind: store.ActorAdministrator, ID: a.ID, Name: a.UserName})
}

// unproven is ctx for the writes made before anyone is proven (a refused
// attempt, a reset request): gatehouse itself records them, unless the
// caller named an actor.
func unproven(ctx context.Context) context.Context {
	if _, ok := store.ActorFrom(ctx); ok {
		return ctx
	}
	return store.WithActor(ctx, store.System)
}
