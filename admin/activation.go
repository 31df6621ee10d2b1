package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gatehouse/store"
)

func errInvalidToken() error {
	return refuse(CodeInvalidToken, "the link is not valid: it is unknown, already used or expired")
}

// ActivationInfo is what the activation page shows.
type ActivationInfo struct {
	Administrator store.Administrator
	Org           store.Org
	// TOTPRequired: the organization requires a second factor, so
	// Activate needs TOTP's ticket and a code. TOTP is offered either way.
	TOTPRequired bool
	TOTP         TOTPEnrolment
	// LDAPUser: the administrator's password is their directory's, typed
	// to activate and checked by a bind; no local password is chosen.
	LDAPUser bool
}

// invitation returns the usable invitation of token for purpose and its
// administrator, or invalid_token.
func (s *SignIn) invitation(ctx context.Context, token, purpose string) (store.Invitation, store.Administrator, error) {
	if token == "" || len(token) > 128 {
		return store.Invitation{}, store.Administrator{}, errInvalidToken()
	}
	inv, err := s.Store.InvitationByHash(ctx, HashSecret(token))
	if errors.Is(err, store.ErrNotFound) {
		return store.Invitation{}, store.Administrator{}, errInvalidToken()
	}
	if err != nil {
		return store.Invitation{}, store.Administrator{}, fmt.Errorf("admin: invitation: %w", err)
	}
	if inv.Purpose != purpose || inv.UsedAt != nil || !s.now().Before(inv.ExpiresAt) {
		return store.Invitation{}, store.Administrator{}, errInvalidToken()
	}
	a, err := s.Store.Administrator(ctx, inv.OrgID, inv.AdministratorID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Invitation{}, store.Administrator{}, errInvalidToken()
	}
	if err != nil {
		return store.Invitation{}, store.Administrator{}, fmt.Errorf("admin: invitation: %w", err)
	}
	want := store.StatusActive
	if purpose == store.PurposeActivation {
		want = store.StatusPending
	}
	if a.Status != want {
		return store.Invitation{}, store.Administrator{}, errInvalidToken()
	}
	return inv, a, nil
}

// ActivationInfo reads an activation link without using it: who it is
// for, and a fresh TOTP enrolment to offer.
func (s *SignIn) ActivationInfo(ctx context.Context, token string) (ActivationInfo, error) {
	_, a, err := s.invitation(ctx, token, store.PurposeActivation)
	if err != nil {
		return ActivationInfo{}, err
	}
	org, err := s.Store.Org(ctx, a.OrgID)
	if err != nil {
		return ActivationInfo{}, fmt.Errorf("admin: activation: %w", err)
	}
	enrol, err := newTOTPEnrolment(s.Sealer, a.ID, org.Slug, a.UserName, s.now())
	if err != nil {
		return ActivationInfo{}, fmt.Errorf("admin: activation: %w", err)
	}
	creds, err := s.Store.Credentials(ctx, a.OrgID, a.ID)
	if err != nil {
		return ActivationInfo{}, fmt.Errorf("admin: activation: %w", err)
	}
	return ActivationInfo{Administrator: a, Org: org, TOTPRequired: org.RequireTOTP, TOTP: enrol, LDAPUser: creds.LDAPUser}, nil
}

// CheckResetLink reads a password-reset link without using it: nil while
// ResetPassword would take it, invalid_token once it is used, expired,
// replaced or its administrator is no longer active.
func (s *SignIn) CheckResetLink(ctx context.Context, token string) error {
	_, _, err := s.invitation(ctx, token, store.PurposePasswordReset)
	return err
}

// errStatusChanged: the administrator's status changed between the check
// and the transaction; the link is then not usable.
var errStatusChanged = errors.New("admin: status changed")

// Activate uses an activation link: the Pending administrator becomes
// Active with password as its password and, when totpTicket (the Ticket
// of ActivationInfo's TOTP) is given, that TOTP secret confirmed by
// totpCode. It is required when the organization requires TOTP. The link
// works once and until it expires; of concurrent uses one wins, the others
// are invalid_token. Errors: invalid_token, weak_password, invalid_totp.
func (s *SignIn) Activate(ctx context.Context, token, password, totpTicket, totpCode string) (store.Administrator, error) {
	now := s.now()
	_, a, err := s.invitation(ctx, token, store.PurposeActivation)
	if err != nil {
		return store.Administrator{}, err
	}
	creds, err := s.Store.Credentials(ctx, a.OrgID, a.ID)
	if err != nil {
		return store.Administrator{}, fmt.Errorf("admin: activate: %w", err)
	}
	ldapUser := creds.LDAPUser
	if ldapUser {
		// An LDAP user activates with their directory password, checked
		// by a bind and counted against the lockout like a sign-in; no
		// local password is chosen or kept.
		if err := s.directoryGuess(ctx, a, password); err != nil {
			return store.Administrator{}, err
		}
	} else if err := CheckPassword(password, a.UserName); err != nil {
		return store.Administrator{}, err
	}
	org, err := s.Store.Org(ctx, a.OrgID)
	if err != nil {
		return store.Administrator{}, fmt.Errorf("admin: activate: %w", err)
	}
	var sealed string
	var step int64
	if totpTicket == "" && org.RequireTOTP {
		return store.Administrator{}, refuse(CodeInvalidTOTP, "the organization requires two-factor authentication: scan the code and enter the code of your authenticator app")
	}
	if totpTicket != "" {
		secret, err := openTicket(s.Sealer, totpTicket, a.ID, now)
		if err != nil {
			return store.Administrator{}, refuse(CodeInvalidTOTP, "the two-factor setup has expired: reload the page")
		}
		var ok bool
		if step, ok = matchTOTP(secret, totpCode, now, 0); !ok {
			return store.Administrator{}, errInvalidTOTP()
		}
		sealed = s.Sealer.Seal(secret, totpContext(a.ID))
	}
	hash := ""
	if !ldapUser {
		if hash, err = HashPassword(password); err != nil {
			return store.Administrator{}, err
		}
	}
	out, err := s.Store.UseInvitation(asSelf(ctx, a), HashSecret(token), store.PurposeActivation, now,
		func(a *store.Administrator, c *store.Credentials) error {
			if a.Status != store.StatusPending || c.LDAPUser != ldapUser {
				return errStatusChanged
			}
			a.Status = store.StatusActive
			c.PasswordHash, c.MustChangePassword = hash, false
			if sealed != "" {
				c.TOTPSecret, c.TOTPEnabled, c.TOTPLastStep = sealed, true, step
			}
			return nil
		})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, errStatusChanged) {
		return store.Administrator{}, errInvalidToken()
	}
	if err != nil {
		return store.Administrator{}, fmt.Errorf("admin: activate: %w", err)
	}
	if err := s.restartCount(ctx, out); err != nil {
		return store.Administrator{}, fmt.Errorf("admin: activate: %w", err)
	}
	return out, nil
}

// Activation is what ActivateAndSignIn did: the administrator, now
// Active, and the session it opened; Session.Token is "" when the
// organization signs in through its identity provider only (the
// administrator then signs in there: SSORequired).
type Activation struct {
	Administrator store.Administrator
	Session       LoginResult
	SSORequired   bool
}

// ActivateAndSignIn is Activate, then an active session for the
// administrator, as a person activating in the browser expects: the link
// (a single-use secret) and, when the organization requires TOTP, the
// code just confirmed are the proof, so no second code is asked for. The
// session is recorded in the login history as a password sign-in from ip
// and userAgent. When the organization requires SSO and the
// administrator is not a break-glass Super Administrator, no session is
// opened: SSORequired. Errors: Activate's.
func (s *SignIn) ActivateAndSignIn(ctx context.Context, token, password, totpTicket, totpCode, ip, userAgent string) (Activation, error) {
	a, err := s.Activate(ctx, token, password, totpTicket, totpCode)
	if err != nil {
		return Activation{}, err
	}
	out := Activation{Administrator: a}
	org, err := s.Store.Org(ctx, a.OrgID)
	if err != nil {
		return out, fmt.Errorf("admin: activate: %w", err)
	}
	creds, err := s.Store.Credentials(ctx, a.OrgID, a.ID)
	if err != nil {
		return out, fmt.Errorf("admin: activate: %w", err)
	}
	if org.RequireSSO && !(creds.BreakGlass && a.Role == store.RoleSuperAdministrator) {
		out.SSORequired = true
		return out, nil
	}
	out.Session, err = s.openSession(unproven(ctx), a, store.SignInAttempt{OrgID: a.OrgID, AdministratorID: a.ID, At: s.now(),
		Method: store.SignInPassword, IP: ip, UserAgent: userAgent})
	return out, err
}

// RequestPasswordReset emails a password-reset link (valid ResetTTL) to
// the Active administrator named by usernameOrEmail — its exact username,
// or else its primary email address (case-insensitive) — in the
// organization orgSlug; when orgSlug is empty usernameOrEmail is
// "name@slug", split at its last '@' (see SplitLogin). No other
// organization is searched. It answers nil whether or not such an
// administrator exists, so it does not reveal accounts: it runs the same
// reads and writes the same throttle row for a name that has no account
// (or no email, or is not Active) as for one, so the time does not tell
// either. A new link replaces the previous one, and at most ResetLimit
// are sent per ResetWindow to one name, so the form cannot flood a
// mailbox.
func (s *SignIn) RequestPasswordReset(ctx context.Context, orgSlug, usernameOrEmail string) error {
	ctx = unproven(ctx)
	if s.Mail == nil || s.BaseURL == "" {
		return errors.New("admin: SignIn.Mail and SignIn.BaseURL must be set for password reset")
	}
	if orgSlug == "" {
		usernameOrEmail, orgSlug = SplitLogin(usernameOrEmail)
	}
	if usernameOrEmail == "" || len(usernameOrEmail) > maxUsernameLen {
		return nil
	}
	org, targets, err := s.resetTargets(ctx, orgSlug, usernameOrEmail)
	if err != nil {
		return err
	}
	p, now := s.policy(), s.now()
	req := store.ResetRequest{At: now, Window: p.ResetWindow, Limit: p.ResetLimit}
	sent := false
	for _, a := range targets {
		if a.Status != store.StatusActive || a.Email == "" {
			continue
		}
		// An LDAP user's password is the directory's: no link is sent,
		// and the answer is the same as for any name.
		if creds, err := s.Store.Credentials(ctx, a.OrgID, a.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("admin: password reset: %w", err)
		} else if creds.LDAPUser {
			continue
		}
		secret := newSecret()
		link := strings.TrimRight(s.BaseURL, "/") + "/reset-password?token=" + secret
		e := mailTexts(a.Language).reset
		msg, err := s.Mail.Message(a.OrgID, a.Email, e.subject, fmt.Sprintf(e.body, a.GivenName, a.UserName, ttlText(p.ResetTTL, a.Language), link))
		if err != nil {
			return fmt.Errorf("admin: password reset email: %w", err)
		}
		req.Key, req.Email = "reset:"+a.ID, &msg
		req.Invitation = &store.Invitation{Hash: HashSecret(secret), OrgID: a.OrgID, AdministratorID: a.ID,
			Purpose: store.PurposePasswordReset, ExpiresAt: now.Add(p.ResetTTL)}
		if _, err := s.Store.RequestReset(ctx, req); err != nil && !errors.Is(err, store.ErrNotFound) { // deleted meanwhile
			return fmt.Errorf("admin: password reset: %w", err)
		}
		sent = true
	}
	if !sent {
		// The same transaction, without a link.
		req.Key = "reset:" + nameKey(org, orgSlug, usernameOrEmail)
		if _, err := s.Store.RequestReset(ctx, req); err != nil {
			return fmt.Errorf("admin: password reset: %w", err)
		}
	}
	return nil
}

// resetTargets finds the administrators a reset request names in the
// organization orgSlug (the zero Org when no organization has that slug):
// the one with that exact username, else, for an address, those whose
// primary email it is. It runs the same reads whether or not they exist.
func (s *SignIn) resetTargets(ctx context.Context, orgSlug, name string) (store.Org, []store.Administrator, error) {
	org, err := s.Store.OrgBySlug(ctx, SlugOf(orgSlug))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return org, nil, fmt.Errorf("admin: password reset: %w", err)
	}
	a, err := s.Store.AdministratorByUsername(ctx, org.ID, name)
	if err == nil {
		return org, []store.Administrator{a}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return org, nil, fmt.Errorf("admin: password reset: %w", err)
	}
	if !strings.Contains(name, "@") {
		return org, nil, nil
	}
	res, err := s.Store.QueryAdministrators(ctx, org.ID, store.Query{
		Where: store.Compare{Field: store.AdministratorEmail, Op: store.OpEq, Value: name, Fold: true},
		Page:  store.Page{Limit: 5},
	})
	if err != nil {
		return org, nil, fmt.Errorf("admin: password reset: %w", err)
	}
	return org, res.Items, nil
}

// ResetPassword uses a password-reset link: it sets newPassword, clears
// "must change password" and any lockout, and ends every session of the
// administrator. Errors: invalid_token (unknown, used, expired, or the
// administrator is no longer Active), weak_password.
func (s *SignIn) ResetPassword(ctx context.Context, token, newPassword string) error {
	now := s.now()
	_, a, err := s.invitation(ctx, token, store.PurposePasswordReset)
	if err != nil {
		return err
	}
	if err := CheckPassword(newPassword, a.UserName); err != nil {
		return err
	}
	hash, err := HashPassword(newPassword)
	if err != nil {
		return err
	}
	_, err = s.Store.UseInvitation(asSelf(ctx, a), HashSecret(token), store.PurposePasswordReset, now,
		func(a *store.Administrator, c *store.Credentials) error {
			if a.Status != store.StatusActive {
				return errStatusChanged
			}
			if c.LDAPUser {
				return errLDAPUser()
			}
			c.PasswordHash, c.MustChangePassword = hash, false
			return nil
		})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, errStatusChanged) {
		return errInvalidToken()
	}
	if e := (*Error)(nil); errors.As(err, &e) {
		return e
	}
	if err != nil {
		return fmt.Errorf("admin: reset password: %w", err)
	}
	if err := s.restartCount(ctx, a); err != nil {
		return fmt.Errorf("admin: reset password: %w", err)
	}
	return nil
}
