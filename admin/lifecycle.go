package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gatehouse/store"
)

// Lifecycle is the one lifecycle of administrators, called by SCIM, the
// management API and the operator CLI (through Administrators), and
// later the console and the OpenID Provider. For the identity provider:
// Provision (with the re-provisioning of a deactivated administrator),
// Sync (a replace or patch, status included) and Deprovision, each
// checking the expected version inside the write's transaction. By hand:
// Edit (role changes included), Deactivate, Reactivate and Remove, under
// the SCIM lock. Its rules:
//
//   - The role of an administrator the IdP manages follows the IdP alone:
//     IdPRole of its roles, or membership of the organization's designated
//     group (the store computes that part, in SQL, in every write that can
//     change it). A role set by hand takes the administrator out of that
//     rule (see Edit).
//   - The organization keeps a Super Administrator, Pending or Active.
//     Deprovisioning by the IdP is never blocked: the organization is
//     flagged instead (store.FlagMissingSuper) and support restores one.
//     The manual paths are refused (store.KeepSuper). A Super
//     Administrator is deactivated, reactivated or deleted only by support
//     (or the IdP), and demoted only by themselves, by support or by the
//     IdP.
type Lifecycle struct {
	Store store.Store
}

// IdPRole is the role the values of an IdP's roles attribute grant: Super
// Administrator for "Super Administrator" in any case, with or without the
// space, or with an underscore or hyphen (how IdP app roles are often
// spelled); Administrator otherwise.
func IdPRole(values []string) store.Role {
	for _, v := range values {
		v = strings.NewReplacer(" ", "", "_", "", "-", "").Replace(strings.ToLower(v))
		if v == "superadministrator" {
			return store.RoleSuperAdministrator
		}
	}
	return store.RoleAdministrator
}

// VersionCheck reports whether a stored version is the one the caller
// expects (an If-Match); nil expects none.
type VersionCheck func(version int64) bool

// ErrVersionMismatch is a write whose VersionCheck refused the stored
// version; nothing was written.
var ErrVersionMismatch = errors.New("admin: the administrator changed since the version given")

// UsernameTakenError is a provisioning whose userName belongs to another
// administrator (in any case), one that is not the same person coming
// back.
type UsernameTakenError struct {
	Sent     string
	Existing store.Administrator // zero when it could not be read
}

func (e *UsernameTakenError) Error() string {
	if e.Existing.ID == "" {
		return fmt.Sprintf("userName %q is already taken (usernames are unique regardless of case)", e.Sent)
	}
	return fmt.Sprintf("userName %q is already taken by the existing user %q (id %s); usernames are unique regardless of case",
		e.Sent, e.Existing.UserName, e.Existing.ID)
}

// managed marks a as the IdP's: its role follows the IdP (see Lifecycle).
func managed(a *store.Administrator) {
	a.SCIMManaged = true
	if !a.SCIMRole.Valid() {
		a.SCIMRole = store.RoleAdministrator
	}
}

// Provision creates an administrator from the IdP; set fills the record
// from the request (its status included: a new administrator is Active
// unless set says otherwise). A userName that exists already (in any
// case) is a *UsernameTakenError, with one exception that makes IdP
// re-assignment work: when the existing administrator is Deactivated, has
// the same userName exactly, and its externalId is the one sent (or either
// side has none), it is the same person coming back. It is reactivated,
// set again from the request, and returned with reprovisioned true.
func (l *Lifecycle) Provision(ctx context.Context, org string, set func(*store.Administrator) error) (a store.Administrator, reprovisioned bool, err error) {
	a = store.Administrator{OrgID: org, Status: store.StatusActive}
	if err := set(&a); err != nil {
		return store.Administrator{}, false, err
	}
	managed(&a)
	out, err := l.Store.CreateAdministrator(ctx, a)
	var exists *store.ExistsError
	if !errors.As(err, &exists) || exists.Field != "userName" {
		return out, false, err
	}
	old, err := l.Store.AdministratorByUsername(ctx, org, exists.Existing)
	if err != nil {
		return store.Administrator{}, false, &UsernameTakenError{Sent: a.UserName}
	}
	sameExternal := old.ExternalID == "" || a.ExternalID == "" || old.ExternalID == a.ExternalID
	if old.Status != store.StatusDeactivated || old.UserName != a.UserName || !sameExternal {
		return store.Administrator{}, false, &UsernameTakenError{Sent: a.UserName, Existing: old}
	}
	out, err = l.Store.UpdateAdministrator(ctx, org, old.ID, store.FlagMissingSuper, func(b *store.Administrator) error {
		if b.Status != store.StatusDeactivated {
			return &UsernameTakenError{Sent: a.UserName, Existing: *b}
		}
		b.Status = store.StatusActive
		if err := set(b); err != nil {
			return err
		}
		managed(b)
		return nil
	})
	return out, err == nil, err
}

// Sync changes an administrator the IdP manages (a SCIM replace or
// patch, which may deactivate or reactivate it): set gets the stored
// record, after match has accepted its version, inside the write's
// transaction. A write that leaves the organization without a Super
// Administrator goes through and flags it.
func (l *Lifecycle) Sync(ctx context.Context, org, id string, match VersionCheck, set func(*store.Administrator) error) (store.Administrator, error) {
	return l.Store.UpdateAdministrator(ctx, org, id, store.FlagMissingSuper, func(a *store.Administrator) error {
		if match != nil && !match(a.Version) {
			return ErrVersionMismatch
		}
		if err := set(a); err != nil {
			return err
		}
		managed(a)
		return nil
	})
}

// Deprovision deletes an administrator at the IdP's request, after match has
// accepted its version inside the delete's transaction. Never blocked by
// the last-Super-Administrator rule: the organization is flagged instead.
func (l *Lifecycle) Deprovision(ctx context.Context, org, id string, match VersionCheck) error {
	return l.Store.DeleteAdministrator(ctx, org, id, store.FlagMissingSuper, func(a store.Administrator) error {
		if match != nil && !match(a.Version) {
			return ErrVersionMismatch
		}
		return nil
	})
}

// The manual paths.

// unlocked refuses manual lifecycle writes while the identity provider
// owns the lifecycle (seed 001), unless the operator overrides the lock.
func (l *Lifecycle) unlocked(ctx context.Context, p Principal) (store.Org, error) {
	org, err := l.Store.Org(ctx, p.OrgID)
	if err != nil {
		return org, fmt.Errorf("admin: organization: %w", err)
	}
	if org.SCIMEnabled && !(p.Operator && p.OverrideSCIMLock) {
		return org, refuse(CodeSCIMEnabled, "SCIM is enabled for this organization: manage administrators in your identity provider (or turn SCIM off)")
	}
	return org, nil
}

// domains returns the organization's registered domains.
func (l *Lifecycle) domains(ctx context.Context, org string) ([]string, error) {
	ds, err := l.Store.RegisteredDomains(ctx, org)
	if err != nil {
		return nil, fmt.Errorf("admin: registered domains: %w", err)
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Domain
	}
	return out, nil
}

// Edit applies a manual edit (the management API, the console, the
// operator). An Administrator may not change a Super
// Administrator, nor make anyone one; a Super Administrator is demoted
// only by themselves or by support, and never the organization's last
// (see Lifecycle). A role set here is the administrator's from then on:
// one the IdP provisioned (SCIM now off, or the operator's override)
// leaves the IdP's role rule until the IdP next writes it.
func (l *Lifecycle) Edit(ctx context.Context, p Principal, id string, e Edit) (store.Administrator, error) {
	// One's own language is a preference, not the lifecycle the identity
	// provider owns: it may change while SCIM is on.
	ownLanguage := e.Language != nil && p.AdministratorID == id && e == (Edit{Language: e.Language})
	if _, err := l.unlocked(ctx, p); err != nil && !ownLanguage {
		return store.Administrator{}, err
	}
	if e.Language != nil {
		if err := CheckLanguage(*e.Language); err != nil {
			return store.Administrator{}, err
		}
	}
	if e.Role != nil && !e.Role.Valid() {
		return store.Administrator{}, refuse(CodeInvalidRole, "unknown role %q: use %q or %q", *e.Role, store.RoleAdministrator, store.RoleSuperAdministrator)
	}
	if e.Role != nil && *e.Role == store.RoleSuperAdministrator && !p.Super() {
		return store.Administrator{}, refuse(CodeForbiddenRole, "only a Super Administrator may promote an administrator to Super Administrator")
	}
	domains, err := l.domains(ctx, p.OrgID)
	if err != nil {
		return store.Administrator{}, err
	}
	a, err := l.Store.UpdateAdministrator(p.Context(ctx), p.OrgID, id, store.KeepSuper, func(a *store.Administrator) error {
		if a.Role == store.RoleSuperAdministrator && !p.Super() {
			return refuse(CodeForbiddenRole, "only a Super Administrator may change a Super Administrator")
		}
		if e.Role != nil && *e.Role != a.Role {
			if a.Role == store.RoleSuperAdministrator && !p.Operator && p.AdministratorID != a.ID {
				return refuse(CodeSuperAdminProtected, "a Super Administrator is demoted only by themselves, by support (the gatehouse operator) or by the identity provider")
			}
			a.Role = *e.Role
			// Without this the store would recompute the IdP's role and
			// the change would be answered 200 but not made.
			a.SCIMManaged, a.SCIMRole = false, ""
		}
		set(&a.GivenName, e.GivenName)
		set(&a.FamilyName, e.FamilyName)
		set(&a.Phone, e.Phone)
		set(&a.Language, e.Language)
		// The registered domains bind a new address (seed 001); an address
		// the administrator already has stays valid when the list changes.
		emailDomains := []string(nil)
		if e.Email != nil && *e.Email != a.Email {
			a.Email = *e.Email
			a.Emails = nil // the primary address is the only one an administrator edited by hand has
			emailDomains = domains
		}
		if e.GivenName == nil && e.FamilyName == nil && e.Phone == nil && e.Email == nil {
			// A role change alone: an administrator the IdP provisioned
			// may lack what a person entering one must give.
			return nil
		}
		return checkPerson(a.UserName, a.Email, a.GivenName, a.FamilyName, a.Phone, emailDomains)
	})
	if err != nil {
		return store.Administrator{}, writeError(err, id)
	}
	return a, nil
}

func set(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

// Deactivate removes an administrator's access (seed 001). Only a Super
// Administrator may; a Super Administrator's account is deactivated only
// by the operator ("contact support").
func (l *Lifecycle) Deactivate(ctx context.Context, p Principal, id string) (store.Administrator, error) {
	return l.setStatus(ctx, p, id, func(a *store.Administrator) error {
		if a.Status == store.StatusDeactivated {
			return refuse(CodeAlreadyDeactivated, "administrator %q is already deactivated", a.UserName)
		}
		a.Status = store.StatusDeactivated
		return nil
	})
}

// Reactivate restores a deactivated administrator's access: Pending if
// its activation link was never used (the account was never finished),
// Active otherwise.
func (l *Lifecycle) Reactivate(ctx context.Context, p Principal, id string) (store.Administrator, error) {
	unfinished, err := l.Store.OpenInvitation(ctx, p.OrgID, id, store.PurposeActivation)
	if err != nil {
		return store.Administrator{}, err
	}
	return l.setStatus(ctx, p, id, func(a *store.Administrator) error {
		if a.Status != store.StatusDeactivated {
			return refuse(CodeNotDeactivated, "administrator %q is not deactivated", a.UserName)
		}
		a.Status = store.StatusActive
		if unfinished && !a.SCIMManaged {
			a.Status = store.StatusPending
		}
		return nil
	})
}

func (l *Lifecycle) setStatus(ctx context.Context, p Principal, id string, fn func(*store.Administrator) error) (store.Administrator, error) {
	if !p.Super() {
		return store.Administrator{}, refuse(CodeForbidden, "only a Super Administrator may deactivate or reactivate administrators")
	}
	if _, err := l.unlocked(ctx, p); err != nil {
		return store.Administrator{}, err
	}
	a, err := l.Store.UpdateAdministrator(p.Context(ctx), p.OrgID, id, store.KeepSuper, func(a *store.Administrator) error {
		if a.Role == store.RoleSuperAdministrator && !p.Operator {
			return refuse(CodeSuperAdminProtected, "a Super Administrator's account can only be deactivated or reactivated by support (the gatehouse operator)")
		}
		return fn(a)
	})
	if err != nil {
		return store.Administrator{}, writeError(err, id)
	}
	return a, nil
}

// Remove deletes an administrator by hand. The same rules as Deactivate
// apply.
func (l *Lifecycle) Remove(ctx context.Context, p Principal, id string) error {
	if !p.Super() {
		return refuse(CodeForbidden, "only a Super Administrator may delete administrators")
	}
	if _, err := l.unlocked(ctx, p); err != nil {
		return err
	}
	return writeError(l.Store.DeleteAdministrator(p.Context(ctx), p.OrgID, id, store.KeepSuper, func(a store.Administrator) error {
		if a.Role == store.RoleSuperAdministrator && !p.Operator {
			return refuse(CodeSuperAdminProtected, "a Super Administrator's account can only be removed by support (the gatehouse operator)")
		}
		return nil
	}), id)
}
