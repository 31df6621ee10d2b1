package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
)

// administrator is an administrator as the API shows it (seed 001's
// fields).
type administrator struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"` // "LastName, FirstName"
	UserName    string     `json:"username"`
	GivenName   string     `json:"firstName"`
	FamilyName  string     `json:"lastName"`
	Email       string     `json:"email"`
	Phone       string     `json:"phone"`
	Language    string     `json:"language"` // "en", "ru", "" none chosen
	Role        store.Role `json:"role"`
	Status      string     `json:"status"` // Pending, Active, Deactivated
	StatusText  string     `json:"statusText"`
	LastLoginAt *time.Time `json:"lastLogin"`
	CreatedAt   time.Time  `json:"created"`
	SCIMManaged bool       `json:"scimManaged"`
	Version     int64      `json:"version"`
}

func toAdministrator(a store.Administrator) administrator {
	text := string(a.Status)
	if a.Status == store.StatusActive {
		text = "Last Login: never"
		if a.LastLoginAt != nil {
			text = "Last Login: " + a.LastLoginAt.UTC().Format("2006-01-02 15:04 UTC")
		}
	}
	return administrator{
		ID: a.ID, Name: a.FamilyName + ", " + a.GivenName, UserName: a.UserName, GivenName: a.GivenName,
		FamilyName: a.FamilyName, Email: a.Email, Phone: a.Phone, Language: a.Language, Role: a.Role, Status: string(a.Status),
		StatusText: text, LastLoginAt: a.LastLoginAt, CreatedAt: a.CreatedAt, SCIMManaged: a.SCIMManaged, Version: a.Version,
	}
}

func (a *API) me(c *call) error {
	out := map[string]any{"organizationId": c.p.OrgID, "role": c.p.Role, "actor": c.p.Actor}
	if c.p.AdministratorID != "" {
		adm, err := a.Administrators.Get(c.r.Context(), c.p, c.p.AdministratorID)
		if err != nil {
			return err
		}
		out["administrator"] = toAdministrator(adm)
	}
	return c.reply(http.StatusOK, out)
}

// query parameters

func (c *call) intParam(name string, def int) (int, error) {
	v := c.r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, &admin.Error{Code: admin.CodeInvalidQuery, Message: fmt.Sprintf("%s must be a whole number, not %q", name, v)}
	}
	return n, nil
}

func (a *API) listAdministrators(c *call) error {
	q := c.r.URL.Query()
	o := admin.ListOptions{Search: q.Get("q"), Status: store.Status(q.Get("status")), Role: store.Role(q.Get("role")), Sort: q.Get("sort")}
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		o.Descending = true
	default:
		return &admin.Error{Code: admin.CodeInvalidQuery, Message: `order must be "asc" or "desc"`}
	}
	var err error
	if o.Offset, err = c.intParam("offset", 0); err != nil {
		return err
	}
	if o.Limit, err = c.intParam("limit", admin.DefaultPage); err != nil {
		return err
	}
	items, total, err := a.Administrators.List(c.r.Context(), c.p, o)
	if err != nil {
		return err
	}
	out := make([]administrator, len(items))
	for i, it := range items {
		out[i] = toAdministrator(it)
	}
	return c.reply(http.StatusOK, map[string]any{"items": out, "total": total, "offset": o.Offset, "limit": o.Limit})
}

type inviteBody struct {
	UserName  string     `json:"username"`
	FirstName string     `json:"firstName"`
	LastName  string     `json:"lastName"`
	Email     string     `json:"email"`
	Phone     string     `json:"phone"`
	Role      store.Role `json:"role"`
	Language  string     `json:"language"`
}

func (a *API) inviteAdministrator(c *call) error {
	var b inviteBody
	if err := c.decode(&b); err != nil {
		return err
	}
	adm, err := a.Administrators.Invite(c.r.Context(), c.p, admin.InviteSpec{UserName: b.UserName, Email: b.Email,
		GivenName: b.FirstName, FamilyName: b.LastName, Phone: b.Phone, Role: b.Role, Language: b.Language})
	if err != nil {
		return err
	}
	c.w.Header().Set("Location", Prefix+"/administrators/"+adm.ID)
	return c.reply(http.StatusCreated, toAdministrator(adm))
}

func (a *API) getAdministrator(c *call) error {
	adm, err := a.Administrators.Get(c.r.Context(), c.p, c.r.PathValue("id"))
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, toAdministrator(adm))
}

type editBody struct {
	FirstName *string     `json:"firstName"`
	LastName  *string     `json:"lastName"`
	Email     *string     `json:"email"`
	Phone     *string     `json:"phone"`
	Role      *store.Role `json:"role"`
	Language  *string     `json:"language"`
}

func (a *API) updateAdministrator(c *call) error {
	var b editBody
	if err := c.decode(&b); err != nil {
		return err
	}
	adm, err := a.Administrators.Update(c.r.Context(), c.p, c.r.PathValue("id"), admin.Edit{GivenName: b.FirstName,
		FamilyName: b.LastName, Email: b.Email, Phone: b.Phone, Role: b.Role, Language: b.Language})
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, toAdministrator(adm))
}

func (a *API) deleteAdministrator(c *call) error {
	if err := a.Administrators.Delete(c.r.Context(), c.p, c.r.PathValue("id")); err != nil {
		return err
	}
	return c.noContent()
}

func (a *API) deactivateAdministrator(c *call) error {
	adm, err := a.Administrators.Deactivate(c.r.Context(), c.p, c.r.PathValue("id"))
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, toAdministrator(adm))
}

func (a *API) reactivateAdministrator(c *call) error {
	adm, err := a.Administrators.Reactivate(c.r.Context(), c.p, c.r.PathValue("id"))
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, toAdministrator(adm))
}

func (a *API) resendInvitation(c *call) error {
	if err := a.Administrators.Resend(c.r.Context(), c.p, c.r.PathValue("id")); err != nil {
		return err
	}
	return c.reply(http.StatusAccepted, map[string]string{"status": "invitation sent"})
}

// organization

type organization struct {
	ID                string   `json:"id"`
	Slug              string   `json:"slug"`
	Name              string   `json:"name"`
	SCIMEnabled       bool     `json:"scimEnabled"`
	RequireTOTP       bool     `json:"requireTotp"`
	RequireSSO        bool     `json:"requireSso"`
	SuperAdminGroup   string   `json:"scimSuperAdminGroup"`
	RegisteredDomains []string `json:"registeredDomains"`
	// SuperAdminMissingSince: the IdP deprovisioned the organization's last
	// Super Administrator then; null while it has one. Support restores one.
	SuperAdminMissingSince *time.Time `json:"superAdministratorMissingSince"`
	CreatedAt              time.Time  `json:"created"`
}

func (a *API) organizationOf(c *call, o store.Org) error {
	ds, err := a.Store.RegisteredDomains(c.r.Context(), o.ID)
	if err != nil {
		return err
	}
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Domain
	}
	return c.reply(http.StatusOK, organization{ID: o.ID, Slug: o.Slug, Name: o.Name, SCIMEnabled: o.SCIMEnabled,
		RequireTOTP: o.RequireTOTP, RequireSSO: o.RequireSSO, SuperAdminGroup: o.SuperAdminGroup, RegisteredDomains: names,
		SuperAdminMissingSince: o.SuperAdminMissingSince, CreatedAt: o.CreatedAt})
}

func (a *API) organization(c *call) error {
	o, err := a.Store.Org(c.r.Context(), c.p.OrgID)
	if err != nil {
		return err
	}
	return a.organizationOf(c, o)
}

type organizationBody struct {
	SCIMEnabled *bool `json:"scimEnabled"`
	RequireTOTP *bool `json:"requireTotp"`
	RequireSSO  *bool `json:"requireSso"`
	// SuperAdminGroup: the SCIM group whose members are Super
	// Administrators ("" for none).
	SuperAdminGroup *string `json:"scimSuperAdminGroup"`
}

// updateOrganization changes the organization's preferences: the SCIM
// switch (and with it the lock of the manual paths) and the two-factor
// requirement. Super Administrators only (seed 000).
func (a *API) updateOrganization(c *call) error {
	var b organizationBody
	if err := c.decode(&b); err != nil {
		return err
	}
	o, err := a.Orgs.SetPreferences(c.r.Context(), c.p, admin.Preferences{SCIMEnabled: b.SCIMEnabled, RequireTOTP: b.RequireTOTP,
		RequireSSO: b.RequireSSO, SuperAdminGroup: b.SuperAdminGroup})
	if err != nil {
		return err
	}
	return a.organizationOf(c, o)
}

// SCIM tokens

type scimToken struct {
	ID          string     `json:"id"`
	Prefix      string     `json:"prefix"`
	Description string     `json:"description"`
	CreatedAt   time.Time  `json:"created"`
	ExpiresAt   *time.Time `json:"expires"`
	LastUsedAt  *time.Time `json:"lastUsed"`
	RevokedAt   *time.Time `json:"revoked"`
	Token       string     `json:"token,omitempty"` // only in the answer to its creation
}

func toSCIMToken(t store.SCIMToken) scimToken {
	return scimToken{ID: t.ID, Prefix: t.Prefix, Description: t.Description, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
		LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}
}

func (a *API) listSCIMTokens(c *call) error {
	ts, err := a.SCIMTokens.List(c.r.Context(), c.p)
	if err != nil {
		return err
	}
	out := make([]scimToken, len(ts))
	for i, t := range ts {
		out[i] = toSCIMToken(t)
	}
	return c.reply(http.StatusOK, map[string]any{"items": out})
}

// expiry reads a lifetime in days ("expiresInDays"); zero or absent means
// no expiry.
func expiry(days *int) (time.Duration, error) {
	if days == nil {
		return 0, nil
	}
	return admin.LifetimeDays(*days, "expiresInDays")
}

func (a *API) createSCIMToken(c *call) error {
	var b struct {
		Description string `json:"description"`
		ExpiresIn   *int   `json:"expiresInDays"`
	}
	if err := c.decode(&b); err != nil {
		return err
	}
	ttl, err := expiry(b.ExpiresIn)
	if err != nil {
		return err
	}
	secret, t, err := a.SCIMTokens.Issue(c.r.Context(), c.p, b.Description, ttl)
	if err != nil {
		return err
	}
	out := toSCIMToken(t)
	out.Token = secret
	return c.reply(http.StatusCreated, out)
}

func (a *API) revokeSCIMToken(c *call) error {
	if err := a.SCIMTokens.Revoke(c.r.Context(), c.p, c.r.PathValue("id")); err != nil {
		return err
	}
	return c.noContent()
}

// API keys

type apiKey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Role       store.Role `json:"role"`
	CreatedBy  string     `json:"createdBy"`
	CreatedAt  time.Time  `json:"created"`
	ExpiresAt  *time.Time `json:"expires"`
	LastUsedAt *time.Time `json:"lastUsed"`
	RevokedAt  *time.Time `json:"revoked"`
	Key        string     `json:"key,omitempty"` // only in the answer to its creation
}

func toAPIKey(k store.APIKey) apiKey {
	return apiKey{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Role: k.Role, CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt}
}

func (a *API) listAPIKeys(c *call) error {
	ks, err := a.APIKeys.List(c.r.Context(), c.p)
	if err != nil {
		return err
	}
	out := make([]apiKey, len(ks))
	for i, k := range ks {
		out[i] = toAPIKey(k)
	}
	return c.reply(http.StatusOK, map[string]any{"items": out})
}

func (a *API) createAPIKey(c *call) error {
	var b struct {
		Name      string     `json:"name"`
		Role      store.Role `json:"role"`
		ExpiresIn *int       `json:"expiresInDays"`
	}
	if err := c.decode(&b); err != nil {
		return err
	}
	ttl, err := expiry(b.ExpiresIn)
	if err != nil {
		return err
	}
	secret, k, err := a.APIKeys.Create(c.r.Context(), c.p, admin.APIKeySpec{Name: b.Name, Role: b.Role, TTL: ttl})
	if err != nil {
		return err
	}
	out := toAPIKey(k)
	out.Key = secret
	return c.reply(http.StatusCreated, out)
}

func (a *API) revokeAPIKey(c *call) error {
	if err := a.APIKeys.Revoke(c.r.Context(), c.p, c.r.PathValue("id")); err != nil {
		return err
	}
	return c.noContent()
}

// audit

func (a *API) auditLog(c *call) error {
	q := c.r.URL.Query()
	aq := store.AuditQuery{ActorID: q.Get("actor"), TargetID: q.Get("target"), Action: q.Get("action")}
	var err error
	if aq.Since, aq.Until, aq.Before, aq.Limit, err = c.logPage(); err != nil {
		return err
	}
	entries, err := a.Store.AuditLog(c.r.Context(), c.p.OrgID, aq)
	if err != nil {
		return err
	}
	out := map[string]any{"items": entries}
	if len(entries) == aq.Limit {
		out["nextBefore"] = entries[len(entries)-1].Seq // the same query with before= this gives the next page
	}
	return c.reply(http.StatusOK, out)
}

// logPage reads the time range and page of a log (the audit log, the
// provisioning log): since and until as RFC 3339 times, before the
// previous page's nextBefore, limit 1 to 1000 (100).
func (c *call) logPage() (since, until time.Time, before int64, limit int, err error) {
	q := c.r.URL.Query()
	for name, dst := range map[string]*time.Time{"since": &since, "until": &until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return since, until, 0, 0, &admin.Error{Code: admin.CodeInvalidQuery, Message: fmt.Sprintf("%s must be an RFC 3339 time such as 2026-11-23T10:00:00Z, not %q", name, v)}
			}
			*dst = t
		}
	}
	if limit, err = c.intParam("limit", 100); err != nil {
		return
	}
	if limit < 1 || limit > 1000 {
		return since, until, 0, 0, &admin.Error{Code: admin.CodeInvalidQuery, Message: "limit must be 1 to 1000"}
	}
	b, err := c.intParam("before", 0)
	return since, until, int64(b), limit, err
}

func now(clock func() time.Time) time.Time {
	if clock == nil {
		return time.Now()
	}
	return clock()
}
