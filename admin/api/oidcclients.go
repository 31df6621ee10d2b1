package api

import (
	"net/http"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
)

// The applications that sign administrators in through the OpenID
// Provider (issue #14). admin.OIDCClients decides who may see and change
// which; these handlers only translate.

// oidcClient is an application as the API shows it.
type oidcClient struct {
	ID                     string   `json:"id"` // the OAuth client_id
	Name                   string   `json:"name"`
	Public                 bool     `json:"public"`
	RedirectURIs           []string `json:"redirectUris"`
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectUris"`
	BackchannelLogoutURI   string   `json:"backchannelLogoutUri"`
	// AllOrganizations: every organization's administrators may sign in;
	// otherwise those of Organizations (slugs). A Super Administrator sees
	// only their own organization named there: which other customers a
	// shared client serves is none of theirs (OtherOrganizations says
	// there are some).
	AllOrganizations   bool      `json:"allOrganizations"`
	Organizations      []string  `json:"organizations"`
	OtherOrganizations bool      `json:"otherOrganizations"`
	FirstParty         bool      `json:"firstParty"`
	Disabled           bool      `json:"disabled"`
	Manageable         bool      `json:"manageable"` // the caller may change it
	CreatedAt          time.Time `json:"created"`
	Secret             string    `json:"secret,omitempty"` // only in the answer to its creation or rotation
}

func (a *API) toOIDCClient(c *call, x store.OIDCClient) (oidcClient, error) {
	out := oidcClient{ID: x.ID, Name: x.Name, Public: x.Public, RedirectURIs: x.RedirectURIs, PostLogoutRedirectURIs: x.PostLogoutRedirectURIs,
		BackchannelLogoutURI: x.BackchannelLogoutURI, AllOrganizations: x.AllOrgs, Organizations: []string{}, FirstParty: x.FirstParty,
		Disabled: x.Disabled, Manageable: admin.OIDCClientRightsOf(c.p, x).Manage, CreatedAt: x.CreatedAt}
	if out.RedirectURIs == nil {
		out.RedirectURIs = []string{}
	}
	if out.PostLogoutRedirectURIs == nil {
		out.PostLogoutRedirectURIs = []string{}
	}
	for _, id := range x.OrgIDs {
		if !c.p.Operator && id != c.p.OrgID {
			out.OtherOrganizations = true
			continue
		}
		o, err := a.Store.Org(c.r.Context(), id)
		if err != nil {
			return oidcClient{}, err
		}
		out.Organizations = append(out.Organizations, o.Slug)
	}
	return out, nil
}

func (a *API) replyOIDCClient(c *call, status int, x store.OIDCClient, secret string) error {
	out, err := a.toOIDCClient(c, x)
	if err != nil {
		return err
	}
	out.Secret = secret
	return c.reply(status, out)
}

func (a *API) listOIDCClients(c *call) error {
	list, err := a.OIDCClients.List(c.r.Context(), c.p)
	if err != nil {
		return err
	}
	out := make([]oidcClient, 0, len(list))
	for _, x := range list {
		v, err := a.toOIDCClient(c, x)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return c.reply(http.StatusOK, map[string]any{"items": out})
}

type oidcClientBody struct {
	Name                   string   `json:"name"`
	Public                 bool     `json:"public"`
	RedirectURIs           []string `json:"redirectUris"`
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectUris"`
	BackchannelLogoutURI   string   `json:"backchannelLogoutUri"`
	Organizations          []string `json:"organizations"`
	FirstParty             bool     `json:"firstParty"`
}

func (a *API) createOIDCClient(c *call) error {
	var b oidcClientBody
	if err := c.decode(&b); err != nil {
		return err
	}
	secret, x, err := a.OIDCClients.Create(c.r.Context(), c.p, admin.OIDCClientSpec{Name: b.Name, Public: b.Public,
		RedirectURIs: b.RedirectURIs, PostLogoutRedirectURIs: b.PostLogoutRedirectURIs, BackchannelLogoutURI: b.BackchannelLogoutURI,
		Orgs: b.Organizations, FirstParty: b.FirstParty})
	if err != nil {
		return err
	}
	c.w.Header().Set("Location", Prefix+"/oidc-clients/"+x.ID)
	return a.replyOIDCClient(c, http.StatusCreated, x, secret)
}

func (a *API) getOIDCClient(c *call) error {
	x, err := a.OIDCClients.Get(c.r.Context(), c.p, c.r.PathValue("id"))
	if err != nil {
		return err
	}
	return a.replyOIDCClient(c, http.StatusOK, x, "")
}

type oidcClientPatch struct {
	Name                   *string   `json:"name"`
	RedirectURIs           *[]string `json:"redirectUris"`
	PostLogoutRedirectURIs *[]string `json:"postLogoutRedirectUris"`
	BackchannelLogoutURI   *string   `json:"backchannelLogoutUri"`
	Organizations          *[]string `json:"organizations"`
	FirstParty             *bool     `json:"firstParty"`
}

func (a *API) updateOIDCClient(c *call) error {
	var b oidcClientPatch
	if err := c.decode(&b); err != nil {
		return err
	}
	// A field absent (or null) stays as it is; an empty list is "none"
	// (for organizations: every organization, which only the operator
	// may choose).
	x, err := a.OIDCClients.Update(c.r.Context(), c.p, c.r.PathValue("id"), admin.OIDCClientEdit{Name: b.Name,
		RedirectURIs: b.RedirectURIs, PostLogoutRedirectURIs: b.PostLogoutRedirectURIs, BackchannelLogoutURI: b.BackchannelLogoutURI,
		Orgs: b.Organizations, FirstParty: b.FirstParty})
	if err != nil {
		return err
	}
	return a.replyOIDCClient(c, http.StatusOK, x, "")
}

func (a *API) deleteOIDCClient(c *call) error {
	if err := a.OIDCClients.Delete(c.r.Context(), c.p, c.r.PathValue("id")); err != nil {
		return err
	}
	return c.noContent()
}

func (a *API) rotateOIDCClientSecret(c *call) error {
	secret, x, err := a.OIDCClients.RotateSecret(c.r.Context(), c.p, c.r.PathValue("id"))
	if err != nil {
		return err
	}
	return a.replyOIDCClient(c, http.StatusOK, x, secret)
}

func (a *API) disableOIDCClient(c *call) error { return a.switchOIDCClient(c, true) }
func (a *API) enableOIDCClient(c *call) error  { return a.switchOIDCClient(c, false) }

func (a *API) switchOIDCClient(c *call, disabled bool) error {
	x, err := a.OIDCClients.SetDisabled(c.r.Context(), c.p, c.r.PathValue("id"), disabled)
	if err != nil {
		return err
	}
	return a.replyOIDCClient(c, http.StatusOK, x, "")
}
