package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gatehouse/store"
)

// Sessions keeps the console's sessions, shared by every instance: one
// found by the hash of its secret (expired at now is store.ErrNotFound),
// its idle expiry slid at most once a minute (reporting whether it wrote),
// and its end (audited as a sign-out). A RecordSignIn of a success creates
// one. A store.Store is one.
type Sessions interface {
	Session(ctx context.Context, hash []byte, now time.Time) (store.Session, error)
	TouchSession(ctx context.Context, hash []byte, now, expiresAt time.Time) (bool, error)
	DeleteSession(ctx context.Context, hash []byte) error
}

func errInvalidSession() error {
	return refuse(CodeInvalidSession, "the session has ended: sign in again")
}

// session finds the session of token and its administrator, refreshing
// its idle expiry; the session must be in one of stages.
func (s *SignIn) session(ctx context.Context, token string, stages ...string) (store.Session, store.Administrator, error) {
	p, now := s.policy(), s.now()
	if token == "" || len(token) > 128 {
		return store.Session{}, store.Administrator{}, errInvalidSession()
	}
	hash := HashSecret(token)
	ss, err := s.Store.Session(ctx, hash, now)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, store.Administrator{}, errInvalidSession()
	}
	if err != nil {
		return store.Session{}, store.Administrator{}, fmt.Errorf("admin: session: %w", err)
	}
	end := ss.CreatedAt.Add(p.SessionAbsolute)
	if !now.Before(end) || !now.Before(ss.LastSeenAt.Add(p.SessionIdle)) {
		return store.Session{}, store.Administrator{}, errInvalidSession()
	}
	a, err := s.Store.Administrator(ctx, ss.OrgID, ss.AdministratorID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, store.Administrator{}, errInvalidSession()
	}
	if err != nil {
		return store.Session{}, store.Administrator{}, fmt.Errorf("admin: session: %w", err)
	}
	if a.Status != store.StatusActive {
		return store.Session{}, store.Administrator{}, errInvalidSession()
	}
	if now.Sub(ss.LastSeenAt) >= time.Minute {
		exp := now.Add(p.SessionIdle)
		if exp.After(end) {
			exp = end
		}
		if _, err := s.Store.TouchSession(ctx, hash, now, exp); err != nil {
			return store.Session{}, store.Administrator{}, fmt.Errorf("admin: session: %w", err)
		}
		ss.LastSeenAt, ss.ExpiresAt = now, exp
	}
	for _, st := range stages {
		if ss.Stage == st {
			return ss, a, nil
		}
	}
	switch ss.Stage {
	case store.SessionChangePassword:
		return ss, a, refuse(CodePasswordChangeRequired, "change your password first")
	case store.SessionEnrolTOTP:
		return ss, a, refuse(CodeTOTPEnrolmentRequired, "set up two-factor authentication first")
	}
	return store.Session{}, store.Administrator{}, errInvalidSession()
}

// Authenticate returns the active session of token and its administrator,
// for every request. An unknown, expired (idle for SessionIdle, or older
// than SessionAbsolute) session, or one whose administrator is no longer
// active or was deleted, is invalid_session. A session that must first
// change its password or enrol TOTP is refused with
// password_change_required / totp_enrolment_required, the session and
// administrator being returned with the error so the caller can show the
// right page. The session's idle expiry slides, written at most once a
// minute.
func (s *SignIn) Authenticate(ctx context.Context, token string) (store.Session, store.Administrator, error) {
	return s.session(ctx, token, store.SessionActive)
}

// Logout ends the session of token; an unknown one is not an error. The
// holder of a live session signs out as themselves; an expired one is
// gatehouse's clean-up.
func (s *SignIn) Logout(ctx context.Context, token string) error {
	if token == "" || len(token) > 128 {
		return nil
	}
	ctx = unproven(ctx)
	hash := HashSecret(token)
	if ss, err := s.Store.Session(ctx, hash, s.now()); err == nil {
		a, err := s.Store.Administrator(ctx, ss.OrgID, ss.AdministratorID)
		switch {
		case err == nil:
			ctx = asSelf(ctx, a)
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("admin: logout: %w", err)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("admin: logout: %w", err)
	}
	err := s.Store.DeleteSession(ctx, hash)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("admin: logout: %w", err)
	}
	return nil
}

// SSO signs in an administrator an SSO connection matched (method
// store.SignInSAML or store.SignInOIDC): a session, a login-history entry
// and the last-login time, in one transaction. The identity provider
// handled the credentials and any second factor; Pending and Deactivated
// administrators are refused (and the refusal recorded).
func (s *SignIn) SSO(ctx context.Context, a store.Administrator, method, ip, userAgent string) (LoginResult, error) {
	ctx = unproven(ctx)
	now := s.now()
	attempt := store.SignInAttempt{OrgID: a.OrgID, AdministratorID: a.ID, At: now, Method: method, IP: ip, UserAgent: userAgent}
	var refusal error
	switch a.Status {
	case store.StatusPending:
		attempt.Result, refusal = store.LoginPending, refuse(CodeAccountPending, "the account is not activated yet")
	case store.StatusDeactivated:
		attempt.Result, refusal = store.LoginDeactivated, refuse(CodeAccountDeactivated, "the account is deactivated")
	}
	if refusal != nil {
		if _, err := s.record(ctx, attempt); err != nil {
			return LoginResult{}, fmt.Errorf("admin: SSO sign-in: %w", err)
		}
		return LoginResult{}, refusal
	}
	return s.openSession(ctx, a, attempt)
}

// openSession records attempt as a success that opens an active session
// for a (history row, last login and session in one transaction) and
// returns it: the end of an SSO sign-in and of an activation, whose
// proofs (the IdP's assertion, the link and the code just confirmed)
// were checked by the caller.
func (s *SignIn) openSession(ctx context.Context, a store.Administrator, attempt store.SignInAttempt) (LoginResult, error) {
	p, now := s.policy(), attempt.At
	token := newSecret()
	attempt.Result = store.LoginSuccess
	attempt.Session = &store.Session{Hash: HashSecret(token), Stage: store.SessionActive, ExpiresAt: now.Add(min(p.SessionIdle, p.SessionAbsolute))}
	if _, err := s.record(asSelf(ctx, a), attempt); err != nil {
		return LoginResult{}, fmt.Errorf("admin: sign-in: %w", err)
	}
	ss, err := s.Store.Session(ctx, attempt.Session.Hash, now)
	if err != nil {
		return LoginResult{}, fmt.Errorf("admin: sign-in: %w", err)
	}
	if a, err = s.Store.Administrator(ctx, a.OrgID, a.ID); err != nil {
		return LoginResult{}, fmt.Errorf("admin: sign-in: %w", err)
	}
	return LoginResult{Token: token, Session: ss, Administrator: a, Stage: store.SessionActive}, nil
}

// SessionAbsolute is how long a session may last at most: the cookie's
// lifetime.
func (s *SignIn) SessionAbsolute() time.Duration { return s.policy().SessionAbsolute }
