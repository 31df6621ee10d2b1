package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
)

// Preferences → API: the management API's keys (create with a name, a
// role and an expiry, the secret shown once; list with creator and last
// use; revoke), through admin.APIKeys, the service of /api/v1/api-keys,
// which only Super Administrators may use; and a link to the API
// reference (apireference.go).

// Paths of the API tab.
const (
	PathAPI          = "/preferences/api"
	pathAPIKeys      = PathAPI + "/keys"
	PathAPIReference = PathAPI + "/reference"
)

type apiData struct {
	Super  bool
	Keys   []tokenRow
	NewKey *shownSecret
	// The form's values after a refusal.
	Name, Role, Expiry string
	Roles              []option
	Expiries           []option
}

func roleOptions() []option {
	return []option{{string(store.RoleAdministrator), msg("Administrator")}, {string(store.RoleSuperAdministrator), msg("Super Administrator")}}
}

func (c *Console) apiPage(w http.ResponseWriter, r *http.Request, me store.Administrator, org store.Org) (*page, *apiData, bool) {
	p := admin.PrincipalOf(me)
	d := &apiData{Super: p.Super(), Role: string(store.RoleAdministrator), Expiry: "90", Roles: roleOptions(), Expiries: expiryOptions()}
	if d.Super {
		ks, err := c.APIKeys.List(r.Context(), p)
		if err != nil {
			c.failure(w, r, err)
			return nil, nil, false
		}
		for _, k := range ks {
			d.Keys = append(d.Keys, tokenRow{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Role: string(k.Role), CreatedBy: k.CreatedBy,
				Created: when(&k.CreatedAt), Expires: when(k.ExpiresAt), LastUsed: when(k.LastUsedAt), Revoked: when(k.RevokedAt),
				Active: k.Usable(time.Now()), Label: k.Name, RevokeURL: pathAPIKeys + "/" + url.PathEscape(k.ID) + "/revoke"})
		}
	}
	pg := &page{Title: msg("API preferences"), Me: &me, Org: &org, Nav: "preferences", Tab: "api", Data: d}
	if r.URL.Query().Get("saved") == "revoked" {
		pg.Message = msg("The API key is revoked: it no longer works.")
	}
	return pg, d, true
}

func (c *Console) apiKeys(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	pg, _, ok := c.apiPage(w, r, me, org)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "api", pg)
}

func (c *Console) apiRefused(w http.ResponseWriter, r *http.Request, me store.Administrator, org store.Org, field string, e *admin.Error) {
	pg, d, ok := c.apiPage(w, r, me, org)
	if !ok {
		return
	}
	d.Name, d.Role, d.Expiry = strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("role"), r.PostFormValue("expiry")
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
	c.render(w, r, status, "api", pg)
}

// createAPIKey issues a key and shows its secret in this answer only.
func (c *Console) createAPIKey(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	ttl, err := lifetimeOf(r.PostFormValue("expiry"))
	if e := refusal(err); e != nil {
		c.apiRefused(w, r, me, org, "expiry", e)
		return
	}
	secret, k, err := c.APIKeys.Create(r.Context(), admin.PrincipalOf(me), admin.APIKeySpec{
		Name: strings.TrimSpace(r.PostFormValue("name")), Role: store.Role(r.PostFormValue("role")), TTL: ttl})
	if e := refusal(err); e != nil {
		field := "name"
		if e.Code == admin.CodeInvalidRole {
			field = "role"
		}
		c.apiRefused(w, r, me, org, field, e)
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	pg, d, ok := c.apiPage(w, r, me, org)
	if !ok {
		return
	}
	d.NewKey = &shownSecret{Secret: secret, Prefix: k.Prefix, Label: k.Name}
	c.render(w, r, http.StatusCreated, "api", pg)
}

// revokeAPIKey asks first (a page of its own), then revokes.
func (c *Console) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	c.revokeSecret(w, r, revocation{
		tab: "api", back: PathAPI, action: pathAPIKeys, title: msg("Revoke this API key?"),
		line:   msg("Every program that uses this key is refused from now on."),
		button: msg("Revoke the key"), missing: msg("That API key does not exist."),
		find: func(ctx context.Context, p admin.Principal, id string) (string, bool, error) {
			ks, err := c.APIKeys.List(ctx, p)
			for _, k := range ks {
				if k.ID == id {
					return k.Name + " · " + k.Prefix + "…", true, nil
				}
			}
			return "", false, err
		},
		revoke: c.APIKeys.Revoke,
		refused: func(w http.ResponseWriter, r *http.Request, me store.Administrator, org store.Org, e *admin.Error) {
			c.apiRefused(w, r, me, org, "", e)
		},
	})
}
