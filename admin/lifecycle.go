package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gatehouse/store"
)

// Lifecycle is the lifecycle of the administrators an identity provider
// manages over SCIM: provision (with the re-provisioning of a deactivated
// administrator), replace or patch (status included), and delete, each
// checking the expected version inside the write's transaction. The
// manual paths (Administrators: the management API, the console, the
// operator) share its rules:
//
//   - The role of an administrator the IdP manages follows the IdP alone:
//     IdPRole of its roles, or membership of the organization's designated
//     group (the store computes that part, in SQL, in every write that can
//     change it). A role set by hand takes the administrator out of that
//     rule (see Administrators.Update).
//   - The organization keeps a Super Administrator, Pending or Active.
//     Deprovisioning by the IdP is never blocked: the organization is
//     flagged instead (store.FlagMissingSuper) and support restores one.
//     The manual paths are refused (store.KeepSuper), and no Super
//     Administrator is demoted, deactivated or deleted by another
//     administrator: that is support's or the IdP's to do.
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

// Update changes an administrator the IdP manages (a SCIM replace or
// patch, which may deactivate or reactivate it): set gets the stored
// record, after match has accepted its version, inside the write's
// transaction. A write that leaves the organization without a Super
// Administrator goes through and flags it.
func (l *Lifecycle) Update(ctx context.Context, org, id string, match VersionCheck, set func(*store.Administrator) error) (store.Administrator, error) {
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

// Delete removes an administrator at the IdP's request, after match has
// accepted its version inside the delete's transaction. Never blocked by
// the last-Super-Administrator rule: the organization is flagged instead.
func (l *Lifecycle) Delete(ctx context.Context, org, id string, match VersionCheck) error {
	return l.Store.DeleteAdministrator(ctx, org, id, store.FlagMissingSuper, func(a store.Administrator) error {
		if match != nil && !match(a.Version) {
			return ErrVersionMismatch
		}
		return nil
	})
}
