package admin

import "gatehouse/store"

// Allowed is what a principal may do by hand to one administrator of its
// organization, as the services decide it (Lifecycle's Edit, Deactivate,
// Reactivate and Remove, Administrators.Resend, MaySetPassword): for a
// page to show only the controls its user may use. It never replaces the
// services' own checks, which refuse the same requests whatever a page
// showed (TestAllowedMatchesTheServices holds the two together).
type Allowed struct {
	// Locked: SCIM is on and the identity provider owns the lifecycle;
	// every manual lifecycle control below is then false.
	Locked bool
	// Edit: the names, email and phone.
	Edit bool
	// ChangeRole: set the role to another value; Roles are the roles the
	// principal may give (Super Administrator only by a Super
	// Administrator).
	ChangeRole bool
	Roles      []store.Role
	Deactivate bool
	Reactivate bool
	Delete     bool
	Resend     bool
	// SuperProtected: the administrator is a Super Administrator, whose
	// account only support deactivates, reactivates or deletes (seed
	// 001: "contact support").
	SuperProtected bool
	// SetPassword is seed 002's "Set Password"; the SCIM lock does not
	// cover it (the management API's rule).
	SetPassword bool
}

// Locked reports whether the manual lifecycle paths are refused to p in
// org (SCIM on; see Lifecycle.unlocked).
func Locked(p Principal, org store.Org) bool {
	return org.SCIMEnabled && !(p.Operator && p.OverrideSCIMLock)
}

// InviteRoles are the roles p may invite an administrator with.
func InviteRoles(p Principal) []store.Role {
	if p.Super() {
		return []store.Role{store.RoleAdministrator, store.RoleSuperAdministrator}
	}
	return []store.Role{store.RoleAdministrator}
}

// AllowedOn is what p may do to a, an administrator of org.
func AllowedOn(p Principal, org store.Org, a store.Administrator) Allowed {
	super := a.Role == store.RoleSuperAdministrator
	out := Allowed{Locked: Locked(p, org), SuperProtected: super && !p.Operator,
		SetPassword: MaySetPassword(p, a) == nil, Roles: []store.Role{a.Role}}
	if out.Locked {
		return out
	}
	out.Edit = !super || p.Super()
	out.ChangeRole = out.Edit && p.Super() && (!super || p.Operator || p.AdministratorID == a.ID)
	if out.ChangeRole {
		out.Roles = InviteRoles(p)
	}
	manage := p.Super() && !out.SuperProtected
	out.Deactivate = manage && a.Status != store.StatusDeactivated
	out.Reactivate = manage && a.Status == store.StatusDeactivated
	out.Delete = manage
	out.Resend = a.Status == store.StatusPending && (!super || p.Super())
	return out
}

// MaySetPassword is the rule of seed 002's "Set Password": a Super
// Administrator sets another administrator's password, but a Super
// Administrator's password is theirs to change (or support's to reset).
func MaySetPassword(p Principal, a store.Administrator) error {
	if !p.Super() {
		return refuse(CodeForbidden, "only a Super Administrator may set another administrator's password")
	}
	if a.Role == store.RoleSuperAdministrator && a.ID != p.AdministratorID && !p.Operator {
		return refuse(CodeSuperAdminProtected, "a Super Administrator's password is theirs to change (or support's to reset)")
	}
	return nil
}
