package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"gatehouse/store"
)

// LoginRequest is one password sign-in.
type LoginRequest struct {
	// OrgSlug names the organization (its slug). When empty, Username is
	// "username@slug" (seed 002's "login@accountname"), split at its last
	// '@'. A sign-in never looks a username up in other organizations.
	OrgSlug   string
	Username  string // compared exactly, byte for byte
	Password  string
	TOTPCode  string // six digits; "" asks whether one is needed (totp_required)
	IP        string // the client's address, the key of the per-address limit: always give it ("" is one shared bucket)
	UserAgent string
}

// LoginResult is a successful sign-in. Token is the cookie's value: it is
// shown once and stored only as HashSecret(Token). Stage is
// Session.Stage: store.SessionActive, or store.SessionChangePassword /
// store.SessionEnrolTOTP when only ChangePassword / BeginTOTP+ConfirmTOTP
// may be called with the session before it becomes active.
type LoginResult struct {
	Token         string
	Session       store.Session
	Administrator store.Administrator
	Stage         string
}

func errInvalidCredentials() error {
	return refuse(CodeInvalidCredentials, "the username or password is incorrect")
}

func errLocked() error {
	return refuse(CodeAccountLocked, "too many failed sign-ins: the account is locked for a while, try again later")
}

func errInvalidTOTP() error {
	return refuse(CodeInvalidTOTP, "the authentication code is incorrect, expired or already used")
}

// SplitLogin splits "username@slug" at its last '@' (so an email
// username works: "jane@acme.com@acme"); without an '@' the slug is "".
func SplitLogin(login string) (username, orgSlug string) {
	at := strings.LastIndexByte(login, '@')
	if at < 0 {
		return login, ""
	}
	return login[:at], login[at+1:]
}

// SlugOf is how a typed organization slug is looked up: slugs are lower
// case ASCII, so ASCII capitals are lowered (ACME names acme) and
// nothing else changes — no Unicode folding, which would let "\u212Acme"
// (a Kelvin sign) name kcme.
func SlugOf(typed string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, typed)
}

// nameKey is the throttle key of a name signed in as: the organization
// (its id, or the slug as typed when no organization has it) and the
// username, whether or not an administrator has it. A digest, so the
// throttle table holds no typed usernames.
func nameKey(org store.Org, orgSlug, username string) string {
	scope := "org:" + org.ID
	if org.ID == "" {
		scope = "slug:" + orgSlug
	}
	h := sha256.Sum256([]byte(scope + "\x00" + username))
	return "name:" + hex.EncodeToString(h[:])
}

func ipKey(ip string) string { return "ip:" + ip }

// Login checks a username and password (and TOTP code) and opens a
// session. The order of the checks, and why:
//
//  1. The organization and the username are looked up exactly, in that
//     organization only: a sign-in tells nothing about other
//     organizations. No organization, an unknown one and an unknown
//     username are the same to what follows: a name without an account.
//  2. The attempt is counted, before any password is checked, against the
//     client address and the name, in one transaction of the database
//     shared by every instance (store.TakeSignInSlot): an address past
//     IPLimit is too_many_attempts, a name past LockAfter account_locked
//     (recorded in the login history when it has an account), whatever
//     the password, which is not checked. So concurrent attempts on any
//     number of instances get no more checks than the limits, and the
//     right password is answered as a wrong one while locked.
//  3. A name without an account has its password hashed once (the time of
//     a wrong password) and is invalid_credentials, its failure written
//     as an account's would be: which names exist shows neither in the
//     answer, the lock nor the time.
//  4. A wrong password: invalid_credentials, recorded.
//  5. Only after the right password: account_pending, account_deactivated,
//     sso_required (recorded), then the second factor: totp_required when
//     no code was given (nothing recorded: the form asks for the code),
//     invalid_totp (recorded) when the code is wrong or already used.
//  6. Success: one transaction writes the history row, last login and the
//     session, whose Stage is change_password when the administrator must
//     change their password, enrol_totp when the organization requires
//     TOTP and they have none; then the name's count restarts.
//
// An attempt whose password was right gives back its counts against the
// address and the name, unless its code was wrong: only guesses count, so
// an office behind one address is not locked out by its sign-ins. (A
// success restarts its name's count only when no attempt was counted
// after its own, so a burst of guesses racing it keeps its count, and any
// lock its length.) The last attempt of a name (the LockAfter-th) locks
// it for LockFor from its start unless its password proves right.
func (s *SignIn) Login(ctx context.Context, r LoginRequest) (LoginResult, error) {
	ctx = unproven(ctx)
	p, now := s.policy(), s.now()
	if r.OrgSlug == "" {
		r.Username, r.OrgSlug = SplitLogin(r.Username)
	}
	a, org, creds, found, err := s.findLogin(ctx, r.OrgSlug, r.Username)
	if err != nil {
		return LoginResult{}, err
	}
	attempt := store.SignInAttempt{OrgID: a.OrgID, AdministratorID: a.ID, At: now, Method: store.SignInPassword,
		IP: r.IP, UserAgent: r.UserAgent}
	slot := store.SignInSlot{At: now, Name: nameKey(org, r.OrgSlug, r.Username), LockAfter: p.LockAfter, LockFor: p.LockFor,
		Address: ipKey(r.IP), AddressLimit: p.IPLimit, AddressWindow: p.IPWindow}
	verdict, n, err := s.Store.TakeSignInSlot(ctx, slot)
	slot.Number = n
	switch {
	case err != nil:
		return LoginResult{}, fmt.Errorf("admin: login: %w", err)
	case verdict == store.SlotAddressLimited:
		return LoginResult{}, refuse(CodeTooManyAttempts, "too many failed sign-ins from this address: try again later")
	case verdict == store.SlotLocked:
		return LoginResult{}, errLocked()
	}
	if n == p.LockAfter {
		until := now.Add(p.LockFor)
		attempt.LockedUntil = &until // if this attempt fails
	}
	if !found {
		dummyVerify(r.Password)
		if err := s.Store.RecordNameFailure(ctx, slot.Name); err != nil {
			return LoginResult{}, fmt.Errorf("admin: login: %w", err)
		}
		return LoginResult{}, errInvalidCredentials()
	}
	// fail records a refusal and returns refusal; giveBack returns the
	// attempt's counts (the password was right).
	fail := func(result string, refusal error, giveBack bool) (LoginResult, error) {
		attempt.Result = result
		if _, err := s.record(ctx, attempt); err != nil {
			return LoginResult{}, fmt.Errorf("admin: login: %w", err)
		}
		if giveBack {
			if err := s.Store.ReturnSignInSlot(ctx, slot, false); err != nil {
				return LoginResult{}, fmt.Errorf("admin: login: %w", err)
			}
		}
		return LoginResult{}, refusal
	}
	ok := false
	switch {
	case creds.LDAPUser:
		// The directory judges; a local hash is never read, and a
		// directory that cannot judge is no reason to fall back to one.
		// The hash's time is spent all the same, so an LDAP user's
		// answer is not quicker than a name without an account's.
		dummyVerify(r.Password)
		if ok, err = s.directoryCheck(ctx, a.OrgID, a.UserName, r.Password); err != nil {
			e := (*Error)(nil)
			if !errors.As(err, &e) || e.Code != CodeDirectoryUnavailable {
				return LoginResult{}, err
			}
			s.logger().Warn("LDAP sign-in: the directory did not judge the password", "org", a.OrgID, "administrator", a.ID, "err", e.Err)
			attempt.LockedUntil = nil // not a guess: nothing was judged
			return fail(store.LoginDirectoryUnavailable, errDirectoryUnavailable(), true)
		}
	case creds.PasswordHash == "":
		dummyVerify(r.Password)
	default:
		if ok, err = VerifyPassword(creds.PasswordHash, r.Password); err != nil {
			ok = false // a damaged hash matches nothing; the operator resets it
		}
	}
	if !ok {
		return fail(store.LoginInvalidPassword, errInvalidCredentials(), false)
	}
	attempt.LockedUntil = nil // the right password: the lock is not this attempt's doing
	switch a.Status {
	case store.StatusPending:
		return fail(store.LoginPending, refuse(CodeAccountPending, "the account is not activated yet: follow the link of the invitation email"), true)
	case store.StatusDeactivated:
		return fail(store.LoginDeactivated, refuse(CodeAccountDeactivated, "the account is deactivated"), true)
	}
	if org.RequireSSO && !(creds.BreakGlass && a.Role == store.RoleSuperAdministrator) {
		return fail(store.LoginSSORequired, refuse(CodeSSORequired, "this organization signs in through its identity provider: use single sign-on"), true)
	}
	if creds.TOTPEnabled {
		if r.TOTPCode == "" {
			if err := s.Store.ReturnSignInSlot(ctx, slot, false); err != nil {
				return LoginResult{}, fmt.Errorf("admin: login: %w", err)
			}
			return LoginResult{}, refuse(CodeTOTPRequired, "enter the code of your authenticator app")
		}
		secret, err := s.Sealer.Open(creds.TOTPSecret, totpContext(a.ID))
		if err != nil {
			return LoginResult{}, fmt.Errorf("admin: login: TOTP secret of %s: %w", a.ID, err)
		}
		step, ok := matchTOTP(secret, r.TOTPCode, now, creds.TOTPLastStep)
		if !ok {
			return fail(store.LoginInvalidTOTP, errInvalidTOTP(), false)
		}
		attempt.TOTPStep = step
	}
	stage := store.SessionActive
	switch {
	case creds.MustChangePassword && !creds.LDAPUser:
		stage = store.SessionChangePassword
	case org.RequireTOTP && !creds.TOTPEnabled:
		stage = store.SessionEnrolTOTP
	}
	token := newSecret()
	attempt.Result = store.LoginSuccess
	attempt.Session = &store.Session{Hash: HashSecret(token), Stage: stage, ExpiresAt: now.Add(min(p.SessionIdle, p.SessionAbsolute))}
	_, err = s.record(asSelf(ctx, a), attempt)
	switch {
	case errors.Is(err, store.ErrConflict): // the code's step was used meanwhile: a replay
		attempt.TOTPStep, attempt.Session = 0, nil
		return fail(store.LoginInvalidTOTP, errInvalidTOTP(), false)
	case err != nil:
		return LoginResult{}, fmt.Errorf("admin: login: %w", err)
	}
	if err := s.Store.ReturnSignInSlot(ctx, slot, true); err != nil {
		return LoginResult{}, fmt.Errorf("admin: login: %w", err)
	}
	ss, err := s.Store.Session(ctx, attempt.Session.Hash, now)
	if err != nil {
		return LoginResult{}, fmt.Errorf("admin: login: %w", err)
	}
	if a, err = s.Store.Administrator(ctx, a.OrgID, a.ID); err != nil {
		return LoginResult{}, fmt.Errorf("admin: login: %w", err)
	}
	return LoginResult{Token: token, Session: ss, Administrator: a, Stage: stage}, nil
}

// findLogin finds the administrator a login names in the organization
// orgSlug, its organization and its credentials; found is false when
// there is none (org is then the zero Org when orgSlug names none). It
// runs the same three reads either way.
func (s *SignIn) findLogin(ctx context.Context, orgSlug, username string) (a store.Administrator, org store.Org, creds store.Credentials, found bool, err error) {
	org, err = s.Store.OrgBySlug(ctx, SlugOf(orgSlug))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return a, org, creds, false, fmt.Errorf("admin: login: %w", err)
	}
	a, err = s.Store.AdministratorByUsername(ctx, org.ID, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return a, org, creds, false, fmt.Errorf("admin: login: %w", err)
	}
	creds, err = s.Store.Credentials(ctx, org.ID, a.ID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Administrator{}, org, store.Credentials{}, false, nil
	}
	if err != nil {
		return a, org, creds, false, fmt.Errorf("admin: login: %w", err)
	}
	return a, org, creds, true, nil
}

// restartCount restarts the lockout count of an administrator's name
// (after an unlock, a reset or a new password).
func (s *SignIn) restartCount(ctx context.Context, a store.Administrator) error {
	return s.Store.ReturnSignInSlot(ctx, store.SignInSlot{Name: nameKey(store.Org{ID: a.OrgID}, "", a.UserName)}, true)
}

// ChangePassword changes the password of the session's administrator,
// who gives the current one. It works in an active session and in a
// change_password one, which it moves on (to enrol_totp when the
// organization requires TOTP the administrator lacks, else active); every
// other session of the administrator ends. A wrong current password is
// invalid_credentials and counts toward the lockout like a failed
// sign-in. It returns the session as it now is.
func (s *SignIn) ChangePassword(ctx context.Context, sessionToken, current, newPassword string) (store.Session, error) {
	ss, a, err := s.session(ctx, sessionToken, store.SessionActive, store.SessionChangePassword)
	if err != nil {
		return store.Session{}, err
	}
	ctx = asSelf(ctx, a)
	// The new password is checked first: a refusal that needs no
	// password check writes nothing.
	if err := CheckPassword(newPassword, a.UserName); err != nil {
		return store.Session{}, err
	}
	if newPassword == current {
		return store.Session{}, refuse(CodeWeakPassword, "the new password is the current one")
	}
	creds, err := s.Store.Credentials(ctx, a.OrgID, a.ID)
	if err != nil {
		return store.Session{}, fmt.Errorf("admin: change password: %w", err)
	}
	if creds.LDAPUser {
		return store.Session{}, errLDAPUser()
	}
	err = s.checkGuess(ctx, a, ss, store.LoginInvalidPassword, refuse(CodeInvalidCredentials, "the current password is incorrect"), func() bool {
		if creds.PasswordHash == "" {
			dummyVerify(current)
			return false
		}
		ok, err := VerifyPassword(creds.PasswordHash, current)
		return err == nil && ok
	})
	if err != nil {
		return store.Session{}, err
	}
	hash, err := HashPassword(newPassword)
	if err != nil {
		return store.Session{}, err
	}
	stage := ss.Stage
	if stage == store.SessionChangePassword {
		org, err := s.Store.Org(ctx, a.OrgID)
		if err != nil {
			return store.Session{}, fmt.Errorf("admin: change password: %w", err)
		}
		stage = store.SessionActive
		if org.RequireTOTP && !creds.TOTPEnabled {
			stage = store.SessionEnrolTOTP
		}
	}
	_, err = s.Store.UpdateCredentials(ctx, a.OrgID, a.ID, store.CredentialsChange{
		Action: store.AuditPasswordChange,
		Update: func(c *store.Credentials) error {
			if c.LDAPUser {
				return errLDAPUser()
			}
			if c.PasswordHash != creds.PasswordHash {
				return store.ErrConflict // changed meanwhile: the current password checked is no longer current
			}
			c.PasswordHash, c.MustChangePassword = hash, false
			return nil
		},
		EndSessions: true, KeepSession: ss.Hash, KeepStage: stage,
	})
	if errors.Is(err, store.ErrConflict) {
		return store.Session{}, refuse(CodeInvalidCredentials, "the password was changed meanwhile: try again")
	}
	if e := (*Error)(nil); errors.As(err, &e) {
		return store.Session{}, e
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, errInvalidSession()
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("admin: change password: %w", err)
	}
	ss.Stage = stage
	return ss, nil
}

// BeginTOTP offers a new TOTP secret to the session's administrator (in
// an active or enrol_totp session); ConfirmTOTP enables it. An
// administrator who has TOTP already is totp_already_enabled: they
// replace it with BeginTOTPReplacement and ReplaceTOTP, which ask for a
// code of the app in use, so a stolen session cannot move the second
// factor to another phone; without that app the operator resets it
// (ResetTOTP).
func (s *SignIn) BeginTOTP(ctx context.Context, sessionToken string) (TOTPEnrolment, error) {
	return s.beginTOTP(ctx, sessionToken, false)
}

// BeginTOTPReplacement offers a new TOTP secret to the administrator of
// an active session who has TOTP already (else totp_not_enabled), for
// ReplaceTOTP.
func (s *SignIn) BeginTOTPReplacement(ctx context.Context, sessionToken string) (TOTPEnrolment, error) {
	return s.beginTOTP(ctx, sessionToken, true)
}

func (s *SignIn) beginTOTP(ctx context.Context, sessionToken string, replace bool) (TOTPEnrolment, error) {
	stages := []string{store.SessionActive, store.SessionEnrolTOTP}
	if replace {
		stages = stages[:1]
	}
	_, a, err := s.session(ctx, sessionToken, stages...)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	creds, err := s.Store.Credentials(ctx, a.OrgID, a.ID)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("admin: TOTP: %w", err)
	}
	switch {
	case creds.TOTPEnabled && !replace:
		return TOTPEnrolment{}, refuse(CodeTOTPAlreadyEnabled, "two-factor authentication is already set up")
	case !creds.TOTPEnabled && replace:
		return TOTPEnrolment{}, errTOTPNotEnabled()
	}
	org, err := s.Store.Org(ctx, a.OrgID)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("admin: TOTP: %w", err)
	}
	return newTOTPEnrolment(s.Sealer, a.ID, org.Slug, a.UserName, s.now())
}

func errTOTPNotEnabled() error {
	return refuse(CodeTOTPNotEnabled, "two-factor authentication is not set up yet: set it up instead")
}

// ReplaceTOTP moves the second factor of the session's administrator (an
// active session) to a new authenticator app: currentCode, from the app
// in use, proves the factor; ticket (BeginTOTPReplacement's) and code
// prove the new app has its secret. The new code is checked first, so a
// refusal that needs no proof writes nothing; a wrong current code counts toward the lockout like a failed sign-in (a
// stolen session cannot guess codes faster than the sign-in form could),
// and a current code already used is a replay (both
// invalid_current_totp). Every other session of
// the administrator ends. Audited as credentials.totp_replace.
func (s *SignIn) ReplaceTOTP(ctx context.Context, sessionToken, currentCode, ticket, code string) (store.Session, error) {
	ss, a, err := s.session(ctx, sessionToken, store.SessionActive)
	if err != nil {
		return store.Session{}, err
	}
	now := s.now()
	ctx = asSelf(ctx, a)
	secret, err := openTicket(s.Sealer, ticket, a.ID, now)
	if err != nil {
		return store.Session{}, refuse(CodeInvalidTOTP, "the two-factor setup has expired: start again")
	}
	newStep, ok := matchTOTP(secret, code, now, 0)
	if !ok {
		return store.Session{}, errInvalidTOTP()
	}
	creds, err := s.Store.Credentials(ctx, a.OrgID, a.ID)
	if err != nil {
		return store.Session{}, fmt.Errorf("admin: replace TOTP: %w", err)
	}
	if !creds.TOTPEnabled {
		return store.Session{}, errTOTPNotEnabled()
	}
	current, err := s.Sealer.Open(creds.TOTPSecret, totpContext(a.ID))
	if err != nil {
		return store.Session{}, fmt.Errorf("admin: replace TOTP: secret of %s: %w", a.ID, err)
	}
	errCurrent := refuse(CodeInvalidCurrentTOTP, "the code of your current authenticator app is incorrect or was already used")
	var currentStep int64
	err = s.checkGuess(ctx, a, ss, store.LoginInvalidTOTP, errCurrent, func() bool {
		var ok bool
		currentStep, ok = matchTOTP(current, currentCode, now, creds.TOTPLastStep)
		return ok
	})
	if err != nil {
		return store.Session{}, err
	}
	sealed := s.Sealer.Seal(secret, totpContext(a.ID))
	_, err = s.Store.UpdateCredentials(ctx, a.OrgID, a.ID, store.CredentialsChange{
		Action: store.AuditTOTPReplace,
		Update: func(c *store.Credentials) error {
			// Changed meanwhile, or the current code's step used by a
			// sign-in since it was read: the proof no longer holds.
			if c.TOTPSecret != creds.TOTPSecret || c.TOTPLastStep >= currentStep {
				return errCurrent
			}
			c.TOTPSecret, c.TOTPLastStep = sealed, max(currentStep, newStep)
			return nil
		},
		EndSessions: true, KeepSession: ss.Hash, KeepStage: ss.Stage,
	})
	if err != nil {
		return store.Session{}, sessionWriteError(err, "replace TOTP")
	}
	return ss, nil
}

// sessionWriteError is the answer to a failed credentials write of a
// session's own administrator: invalid_session when the account is gone,
// the refusal the write's Update returned, else err wrapped as what.
func sessionWriteError(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return errInvalidSession()
	}
	if e := (*Error)(nil); errors.As(err, &e) {
		return e
	}
	return fmt.Errorf("admin: %s: %w", what, err)
}

// ConfirmTOTP enables the secret of ticket (from BeginTOTP) once code
// shows the administrator's app has it. An enrol_totp session becomes
// active; the administrator's other sessions end. Errors: invalid_totp,
// totp_already_enabled.
func (s *SignIn) ConfirmTOTP(ctx context.Context, sessionToken, ticket, code string) (store.Session, error) {
	ss, a, err := s.session(ctx, sessionToken, store.SessionActive, store.SessionEnrolTOTP)
	if err != nil {
		return store.Session{}, err
	}
	now := s.now()
	secret, err := openTicket(s.Sealer, ticket, a.ID, now)
	if err != nil {
		return store.Session{}, refuse(CodeInvalidTOTP, "the two-factor setup has expired: start again")
	}
	step, ok := matchTOTP(secret, code, now, 0)
	if !ok {
		return store.Session{}, errInvalidTOTP()
	}
	sealed := s.Sealer.Seal(secret, totpContext(a.ID))
	stage := ss.Stage
	if stage == store.SessionEnrolTOTP {
		stage = store.SessionActive
	}
	errEnabled := refuse(CodeTOTPAlreadyEnabled, "two-factor authentication is already set up")
	_, err = s.Store.UpdateCredentials(asSelf(ctx, a), a.OrgID, a.ID, store.CredentialsChange{
		Action: store.AuditTOTPEnrol,
		Update: func(c *store.Credentials) error {
			if c.TOTPEnabled {
				return errEnabled
			}
			c.TOTPSecret, c.TOTPEnabled, c.TOTPLastStep = sealed, true, max(step, c.TOTPLastStep)
			return nil
		},
		EndSessions: true, KeepSession: ss.Hash, KeepStage: stage,
	})
	if err != nil {
		return store.Session{}, sessionWriteError(err, "TOTP")
	}
	ss.Stage = stage
	return ss, nil
}

// checkGuess runs check, a proof typed in a signed-in session (the
// current password, a code of the app in use), counted against the
// name's lockout before it runs, as a sign-in's password is: a stolen
// session cannot guess faster than the sign-in form could, on any number
// of instances. A failed check is recorded in the login history as
// result (locking the name when it is the last attempt allowed) and
// answered refused; a passed one gives its count back.
func (s *SignIn) checkGuess(ctx context.Context, a store.Administrator, ss store.Session, result string, refused error, check func() bool) error {
	p, now := s.policy(), s.now()
	slot := store.SignInSlot{At: now, Name: nameKey(store.Org{ID: a.OrgID}, "", a.UserName), LockAfter: p.LockAfter, LockFor: p.LockFor}
	verdict, n, err := s.Store.TakeSignInSlot(ctx, slot)
	slot.Number = n
	if err != nil {
		return fmt.Errorf("admin: check: %w", err)
	}
	if verdict != store.SlotGranted {
		return errLocked()
	}
	if !check() {
		attempt := store.SignInAttempt{OrgID: a.OrgID, AdministratorID: a.ID, At: now,
			Method: store.SignInPassword, IP: ss.IP, UserAgent: ss.UserAgent, Result: result}
		if n == p.LockAfter {
			until := now.Add(p.LockFor)
			attempt.LockedUntil = &until
		}
		if _, err := s.record(ctx, attempt); err != nil {
			return fmt.Errorf("admin: check: %w", err)
		}
		return refused
	}
	if err := s.Store.ReturnSignInSlot(ctx, slot, false); err != nil { // not a guess
		return fmt.Errorf("admin: check: %w", err)
	}
	return nil
}

// ResetTOTP removes an administrator's second factor (the operator's
// command line, for a lost phone; the management API may offer it to super
// administrators). Audited as credentials.totp_reset with the actor of
// ctx. When the organization requires TOTP the administrator enrols again
// at the next sign-in.
func (s *SignIn) ResetTOTP(ctx context.Context, orgID, administratorID string) error {
	_, err := s.Store.UpdateCredentials(ctx, orgID, administratorID, store.CredentialsChange{
		Action: store.AuditTOTPReset,
		Update: func(c *store.Credentials) error {
			c.TOTPSecret, c.TOTPEnabled = "", false
			return nil
		},
	})
	if errors.Is(err, store.ErrNotFound) {
		return refuse(CodeNotFound, "administrator %q not found in the organization", administratorID)
	}
	if err != nil {
		return fmt.Errorf("admin: reset TOTP: %w", err)
	}
	return nil
}

// SetPassword sets an administrator's password on another's behalf (seed
// 002 "Set Password", with "User must change password on next login" as
// mustChange), ending its sessions and any lockout. Authorisation is the
// caller's. Errors: weak_password, not_found.
func (s *SignIn) SetPassword(ctx context.Context, orgID, administratorID, password string, mustChange bool) error {
	a, err := s.Store.Administrator(ctx, orgID, administratorID)
	if errors.Is(err, store.ErrNotFound) {
		return refuse(CodeNotFound, "administrator %q not found in the organization", administratorID)
	}
	if err != nil {
		return fmt.Errorf("admin: set password: %w", err)
	}
	if err := CheckPassword(password, a.UserName); err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	_, err = s.Store.UpdateCredentials(ctx, orgID, administratorID, store.CredentialsChange{
		Action: store.AuditPasswordSet,
		Update: func(c *store.Credentials) error {
			if c.LDAPUser {
				return errLDAPUser()
			}
			c.PasswordHash, c.MustChangePassword = hash, mustChange
			return nil
		},
		EndSessions: true,
	})
	if errors.Is(err, store.ErrNotFound) {
		return refuse(CodeNotFound, "administrator %q not found in the organization", administratorID)
	}
	if e := (*Error)(nil); errors.As(err, &e) {
		return e
	}
	if err != nil {
		return fmt.Errorf("admin: set password: %w", err)
	}
	if err := s.restartCount(ctx, a); err != nil {
		return fmt.Errorf("admin: set password: %w", err)
	}
	return nil
}

// Unlock ends an administrator's lockout and restarts its failure count
// (the operator's command line). Audited as credentials.unlock.
func (s *SignIn) Unlock(ctx context.Context, orgID, administratorID string) error {
	a, err := s.Store.Administrator(ctx, orgID, administratorID)
	if errors.Is(err, store.ErrNotFound) {
		return refuse(CodeNotFound, "administrator %q not found in the organization", administratorID)
	}
	if err != nil {
		return fmt.Errorf("admin: unlock: %w", err)
	}
	// The count is the name's throttle window; the audit entry says who
	// ended it.
	if err := s.restartCount(ctx, a); err != nil {
		return fmt.Errorf("admin: unlock: %w", err)
	}
	if err := s.Store.RecordAudit(ctx, store.AuditEntry{OrgID: orgID, Action: store.AuditCredentialsUnlock, TargetKind: "administrator",
		TargetID: a.ID, TargetName: a.UserName, After: store.RawJSON(`{"unlocked":true}`)}); err != nil {
		return fmt.Errorf("admin: unlock: %w", err)
	}
	return nil
}

// SetBreakGlass names (or no longer names) an administrator who may sign
// in with a password while the organization requires SSO. Authorisation
// is the caller's. Audited as credentials.update.
func (s *SignIn) SetBreakGlass(ctx context.Context, orgID, administratorID string, enabled bool) error {
	_, err := s.Store.UpdateCredentials(ctx, orgID, administratorID, store.CredentialsChange{Action: store.AuditCredentialsUpdate,
		Update: func(c *store.Credentials) error { c.BreakGlass = enabled; return nil }})
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Code: CodeNotFound, Message: fmt.Sprintf("administrator %q not found", administratorID), Err: err}
	}
	return err
}
