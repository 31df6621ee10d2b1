package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
)

// Preferences → Organization: the registered domains (read only: "contact
// support"), the organization-wide two-factor requirement, and SCIM (the
// switch, its base URL, its tokens, the Super Administrator group).
// Super Administrators change them; Administrators read them. Every
// change is a call to admin.Orgs.SetPreferences or admin.SCIMTokens, the
// services of PATCH /api/v1/organization and /api/v1/scim/tokens, which
// refuse an Administrator's forged form as they refuse the API call.

// Paths of the Organization tab.
const (
	PathOrganization        = "/preferences/organization"
	pathOrgTwoFactor        = PathOrganization + "/two-factor"
	pathOrgSCIM             = PathOrganization + "/scim"
	pathOrgSCIMTokens       = PathOrganization + "/scim-tokens"
	pathOrgSuperAdminGroup  = PathOrganization + "/super-admin-group"
	pathOrgS3Export         = PathOrganization + "/s3-export"
	scimPath                = "/scim/v2"
	maxGroupSuggestions     = 200
	orgSecretElementID      = "new-secret"
	orgSCIMBaseURLElementID = "scim-base-url"
)

// orgData is the Organization tab's own values.
type orgData struct {
	Super       bool
	Domains     []string
	RequireTOTP bool
	RequireSSO  bool
	SCIMEnabled bool
	SCIMBaseURL string
	// Tokens are the SCIM tokens (Super Administrators only).
	Tokens []tokenRow
	// NewToken is the secret of the token just created, shown once.
	NewToken *shownSecret
	Group    string   // the designated Super Administrator group, "" for none
	Groups   []string // the organization's SCIM groups, suggested
	// The token form's values after a refusal.
	Description, Expiry string
	GroupInput          string
	Expiries            []option
	// Export is the S3 export (Super Administrators only): its settings,
	// or the form's values after a refusal, and its status.
	Export                               *admin.S3ExportView
	ExportLastSuccess, ExportLastErrorAt string
}

// tokenRow is a SCIM token or an API key in a list.
type tokenRow struct {
	ID, Prefix, Description, Created, Expires, LastUsed, Revoked string
	Name, Role, CreatedBy                                        string
	Active                                                       bool
	// Label names the secret to a screen reader; RevokeURL revokes it.
	Label, RevokeURL string
}

// shownSecret is a secret shown once, in the answer to its creation.
type shownSecret struct {
	Secret, Prefix, Label string
}

type option struct {
	Value, Label string
}

// expiryOptions are the lifetimes a form offers, in days ("" never).
func expiryOptions() []option {
	return []option{{"90", msg("90 days")}, {"30", msg("30 days")}, {"180", msg("180 days")}, {"365", msg("1 year")},
		{"", msg("Never expires")}}
}

// lifetimeOf reads a form's expiry (whole days, "" for never) through the
// rule the API applies to expiresInDays (admin.LifetimeDays); a refusal
// speaks of the form's list.
func lifetimeOf(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	days, err := strconv.Atoi(v)
	if err == nil && days > 0 {
		var d time.Duration
		if d, err = admin.LifetimeDays(days, "expiry"); err == nil {
			return d, nil
		}
	}
	return 0, &admin.Error{Code: admin.CodeInvalidExpiry, Message: msg("Choose how long it stays valid from the list.")}
}

// when formats a time for a list: UTC, to the minute.
func when(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func (c *Console) scimBaseURL() string {
	return strings.TrimRight(c.BaseURL, "/") + scimPath
}

// orgPage gathers the Organization tab of a signed-in administrator.
func (c *Console) orgPage(w http.ResponseWriter, r *http.Request, me store.Administrator, org store.Org) (*page, *orgData, bool) {
	ctx := r.Context()
	p := admin.PrincipalOf(me)
	d := &orgData{Super: p.Super(), RequireTOTP: org.RequireTOTP, RequireSSO: org.RequireSSO, SCIMEnabled: org.SCIMEnabled,
		SCIMBaseURL: c.scimBaseURL(), Group: org.SuperAdminGroup, GroupInput: org.SuperAdminGroup, Expiry: "90",
		Expiries: expiryOptions()}
	ds, err := c.Store.RegisteredDomains(ctx, org.ID)
	if err != nil {
		c.failure(w, r, err)
		return nil, nil, false
	}
	for _, dm := range ds {
		d.Domains = append(d.Domains, dm.Domain)
	}
	if d.Super {
		ts, err := c.SCIMTokens.List(ctx, p)
		if err != nil {
			c.failure(w, r, err)
			return nil, nil, false
		}
		for _, t := range ts {
			d.Tokens = append(d.Tokens, tokenRow{ID: t.ID, Prefix: t.Prefix, Description: t.Description, Created: when(&t.CreatedAt),
				Expires: when(t.ExpiresAt), LastUsed: when(t.LastUsedAt), Revoked: when(t.RevokedAt), Active: t.Usable(time.Now()),
				Label: t.Description, RevokeURL: pathOrgSCIMTokens + "/" + url.PathEscape(t.ID) + "/revoke"})
		}
		gs, err := c.Store.QueryGroups(ctx, org.ID, store.Query{Page: store.Page{Limit: maxGroupSuggestions}})
		if err != nil {
			c.failure(w, r, err)
			return nil, nil, false
		}
		for _, g := range gs.Items {
			d.Groups = append(d.Groups, g.DisplayName)
		}
		if c.S3Exports != nil {
			v, err := c.S3Exports.Get(ctx, p)
			if err != nil {
				c.failure(w, r, err)
				return nil, nil, false
			}
			if v.Status == admin.S3ExportNotConfigured {
				v.Region, v.PathStyle = "us-east-1", false
			}
			d.Export, d.ExportLastSuccess, d.ExportLastErrorAt = &v, when(v.LastSuccessAt), when(v.LastErrorAt)
		}
	}
	pg := &page{Title: msg("Organization preferences"), Me: &me, Org: &org, Nav: "preferences", Tab: "organization", Data: d}
	switch r.URL.Query().Get("saved") {
	case "two-factor":
		pg.Message = msg("The two-factor requirement is saved.")
	case "scim":
		pg.Message = msg("The SCIM setting is saved.")
	case "revoked":
		pg.Message = msg("The SCIM token is revoked: within a few seconds every request with it is refused.")
	case "group":
		pg.Message = msg("The Super Administrator group is saved.")
	case "s3-export":
		pg.Message = msg("The S3 export is saved. Entries reach the bucket within a few minutes; its status is below.")
	}
	return pg, d, true
}

func (c *Console) organization(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	pg, _, ok := c.orgPage(w, r, me, org)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "organization", pg)
}

// orgRefused shows the Organization tab again with a refusal at its
// field (or for the whole page), nothing changed.
func (c *Console) orgRefused(w http.ResponseWriter, r *http.Request, me store.Administrator, org store.Org, field string, e *admin.Error, edit func(*orgData)) {
	pg, d, ok := c.orgPage(w, r, me, org)
	if !ok {
		return
	}
	if edit != nil {
		edit(d)
	}
	status := http.StatusBadRequest
	if e.Code == admin.CodeForbidden {
		status = http.StatusForbidden
	}
	if field == "" || e.Code == admin.CodeForbidden {
		pg.Error = sentence(e.Message)
	} else {
		pg.Fields = map[string]string{field: sentence(e.Message)}
	}
	pg.Note = msg("Nothing was changed.")
	c.render(w, r, status, "organization", pg)
}

// setPreference applies one preference through admin.Orgs.SetPreferences
// and goes back to the tab saying so.
func (c *Console) setPreference(w http.ResponseWriter, r *http.Request, field, saved string, prefs func(v string) (admin.Preferences, *admin.Error)) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	pr, bad := prefs(r.PostFormValue(field))
	if bad != nil {
		c.orgRefused(w, r, me, org, field, bad, nil)
		return
	}
	_, err := c.Orgs.SetPreferences(r.Context(), admin.PrincipalOf(me), pr)
	if e := refusal(err); e != nil {
		c.orgRefused(w, r, me, org, field, e, func(d *orgData) {
			if field == "group" {
				d.GroupInput = r.PostFormValue("group")
			}
		})
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	http.Redirect(w, r, PathOrganization+"?saved="+saved, http.StatusSeeOther)
}

// onOff reads a switch's value: "on" or "off".
func onOff(v string) (*bool, *admin.Error) {
	switch v {
	case "on":
		t := true
		return &t, nil
	case "off":
		f := false
		return &f, nil
	}
	return nil, &admin.Error{Code: admin.CodeInvalidQuery, Message: msg("Choose on or off.")}
}

func (c *Console) orgTwoFactor(w http.ResponseWriter, r *http.Request) {
	c.setPreference(w, r, "require", "two-factor", func(v string) (admin.Preferences, *admin.Error) {
		b, bad := onOff(v)
		return admin.Preferences{RequireTOTP: b}, bad
	})
}

// orgSCIM is the SCIM switch. Turning it on takes a confirmation step
// (a page of its own, so it works without JavaScript) that says what it
// locks; turning it off gives the manual paths back at once.
func (c *Console) orgSCIM(w http.ResponseWriter, r *http.Request) {
	if r.PostFormValue("enabled") == "on" && r.PostFormValue("confirm") != "yes" {
		me, org, ok := c.signedIn(w, r)
		if !ok {
			return
		}
		// An Administrator's forged form goes straight to the service,
		// which refuses it: no confirmation of what cannot be done.
		if admin.PrincipalOf(me).Super() {
			c.render(w, r, http.StatusOK, "confirm", &page{Title: msg("Turn SCIM on?"), Me: &me, Org: &org, Nav: "preferences",
				Tab: "organization", Data: confirmData{
					Lines: []string{
						msg("Turning SCIM on locks inviting, editing, deactivating and reactivating administrators by hand: your identity provider manages them."),
						msg("The Administration page shows a banner, and its controls for those actions are disabled until SCIM is turned off again."),
						msg("Your identity provider needs the SCIM base URL and a SCIM token, both on the Organization tab."),
					},
					Action: pathOrgSCIM, Hidden: []hidden{{"enabled", "on"}, {"confirm", "yes"}},
					Button: msg("Turn SCIM on"), Cancel: PathOrganization}})
			return
		}
	}
	c.setPreference(w, r, "enabled", "scim", func(v string) (admin.Preferences, *admin.Error) {
		b, bad := onOff(v)
		return admin.Preferences{SCIMEnabled: b}, bad
	})
}

func (c *Console) orgSuperAdminGroup(w http.ResponseWriter, r *http.Request) {
	c.setPreference(w, r, "group", "group", func(v string) (admin.Preferences, *admin.Error) {
		return admin.Preferences{SuperAdminGroup: &v}, nil
	})
}

// orgS3Export saves the S3 export's settings through admin.S3Exports, the
// service of PUT /api/v1/organization/s3-export. The secret access key is
// never put back in the form: an empty field keeps the stored one.
func (c *Console) orgS3Export(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	if c.S3Exports == nil {
		c.orgRefused(w, r, me, org, "", &admin.Error{Code: admin.CodeNotFound, Message: msg("The S3 export is not available on this server.")}, nil)
		return
	}
	f := r.PostFormValue
	spec := admin.S3ExportSpec{Enabled: f("enabled") == "on", Endpoint: f("endpoint"), Region: f("region"), Bucket: f("bucket"),
		Prefix: f("prefix"), AccessKeyID: f("access_key_id"), SecretAccessKey: f("secret_access_key"), PathStyle: f("path_style") == "on"}
	_, err := c.S3Exports.Set(r.Context(), admin.PrincipalOf(me), spec)
	if e := refusal(err); e != nil {
		c.orgRefused(w, r, me, org, "s3-export", e, func(d *orgData) {
			if d.Export != nil {
				d.Export.Enabled, d.Export.Endpoint, d.Export.Region, d.Export.Bucket, d.Export.Prefix = spec.Enabled, spec.Endpoint,
					spec.Region, spec.Bucket, spec.Prefix
				d.Export.AccessKeyID, d.Export.PathStyle = spec.AccessKeyID, spec.PathStyle
			}
		})
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	http.Redirect(w, r, PathOrganization+"?saved=s3-export#s3-export", http.StatusSeeOther)
}

// createSCIMToken issues a token and shows its secret in this answer
// only: never in a URL, a redirect or a log.
func (c *Console) createSCIMToken(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	description, expiry := strings.TrimSpace(r.PostFormValue("description")), r.PostFormValue("expiry")
	keep := func(d *orgData) { d.Description, d.Expiry = description, expiry }
	if description == "" {
		// The API lets a token go without a description; a person's list
		// needs one to tell tokens apart.
		c.orgRefused(w, r, me, org, "description", &admin.Error{Code: admin.CodeInvalidDescription,
			Message: msg("Describe the token, for example the identity provider that uses it.")}, keep)
		return
	}
	ttl, err := lifetimeOf(expiry)
	if e := refusal(err); e != nil {
		c.orgRefused(w, r, me, org, "expiry", e, keep)
		return
	}
	secret, t, err := c.SCIMTokens.Issue(r.Context(), admin.PrincipalOf(me), description, ttl)
	if e := refusal(err); e != nil {
		c.orgRefused(w, r, me, org, "description", e, keep)
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	pg, d, ok := c.orgPage(w, r, me, org)
	if !ok {
		return
	}
	d.NewToken = &shownSecret{Secret: secret, Prefix: t.Prefix, Label: t.Description}
	c.render(w, r, http.StatusCreated, "organization", pg)
}

// revokeSCIMToken asks first (a page of its own), then revokes.
func (c *Console) revokeSCIMToken(w http.ResponseWriter, r *http.Request) {
	c.revokeSecret(w, r, revocation{
		tab: "organization", back: PathOrganization, action: pathOrgSCIMTokens, title: msg("Revoke this SCIM token?"),
		line:   msg("The identity provider that uses this token can no longer reach SCIM with it: its provisioning stops until it is given a new token."),
		button: msg("Revoke the token"), missing: msg("That SCIM token does not exist."),
		find: func(ctx context.Context, p admin.Principal, id string) (string, bool, error) {
			ts, err := c.SCIMTokens.List(ctx, p)
			for _, t := range ts {
				if t.ID == id {
					return t.Description + " · " + t.Prefix + "…", true, nil
				}
			}
			return "", false, err
		},
		revoke: c.SCIMTokens.Revoke,
		refused: func(w http.ResponseWriter, r *http.Request, me store.Administrator, org store.Org, e *admin.Error) {
			c.orgRefused(w, r, me, org, "", e, nil)
		},
	})
}

// revocation is the revoking of one secret (an API key, a SCIM token):
// a confirmation page naming it, then the service's revoke.
type revocation struct {
	tab, back, action            string // the Preferences tab, its page, the secrets' path
	title, line, button, missing string
	find                         func(ctx context.Context, p admin.Principal, id string) (subject string, found bool, err error)
	revoke                       func(ctx context.Context, p admin.Principal, id string) error
	refused                      func(w http.ResponseWriter, r *http.Request, me store.Administrator, org store.Org, e *admin.Error)
}

// revokeSecret asks first (a page of its own: the form's confirm=yes
// comes from it), then revokes and returns to the tab.
func (c *Console) revokeSecret(w http.ResponseWriter, r *http.Request, rv revocation) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	p, id := admin.PrincipalOf(me), r.PathValue("id")
	var err error
	if r.PostFormValue("confirm") != "yes" {
		subject, found := "", false
		if subject, found, err = rv.find(r.Context(), p, id); err == nil && found {
			c.render(w, r, http.StatusOK, "confirm", &page{Title: rv.title, Me: &me, Org: &org, Nav: "preferences", Tab: rv.tab,
				Data: confirmData{Subject: subject, Lines: []string{rv.line, msg("Revoking cannot be undone.")},
					Action: rv.action + "/" + url.PathEscape(id) + "/revoke", Hidden: []hidden{{"confirm", "yes"}},
					Button: rv.button, Danger: true, Cancel: rv.back}})
			return
		}
		if err == nil {
			err = &admin.Error{Code: admin.CodeNotFound, Message: rv.missing}
		}
	} else if err = rv.revoke(r.Context(), p, id); err == nil {
		http.Redirect(w, r, rv.back+"?saved=revoked", http.StatusSeeOther)
		return
	}
	if e := refusal(err); e != nil {
		rv.refused(w, r, me, org, e)
		return
	}
	c.failure(w, r, err)
}

// confirmData is a confirmation step: what is about to happen, and a form
// that does it (a Cancel link goes back).
type confirmData struct {
	Subject string
	Lines   []string
	Action  string
	Hidden  []hidden
	Button  string
	Danger  bool
	Cancel  string
}

// hidden is a form's hidden field.
type hidden struct{ Name, Value string }
