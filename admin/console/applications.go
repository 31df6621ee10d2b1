package console

import (
	"net/http"
	"net/url"
	"strings"

	"gatehouse/admin"
	"gatehouse/store"
)

// Preferences → Applications: the product's applications that sign
// administrators in through gatehouse's OpenID Provider (its OIDC
// clients). A Super Administrator registers their organization's own
// (the secret shown once, in the answer to the POST that made or rotated
// it), edits them, rotates a secret, disables, enables and deletes them
// after a confirmation page; the applications the operator shares with
// other organizations are listed read-only. Every action is a call to
// admin.OIDCClients, the service of /api/v1/oidc-clients, which decides
// who may do what: a forged form is refused as the API call is.

// Paths of the Applications tab.
const (
	PathApplications = "/preferences/applications"
	discoveryPath    = "/.well-known/openid-configuration"
)

// appRow is an application in the list or on its page.
type appRow struct {
	ID, Name, Created    string
	Public, Disabled     bool
	FirstParty           bool
	Manageable           bool
	Shared               bool // serves other organizations too
	RedirectURIs         []string
	PostLogoutURIs       []string
	BackchannelLogoutURI string
}

func toAppRow(p admin.Principal, x store.OIDCClient) appRow {
	return appRow{ID: x.ID, Name: x.Name, Created: when(&x.CreatedAt), Public: x.Public, Disabled: x.Disabled, FirstParty: x.FirstParty,
		Manageable: admin.OIDCClientRightsOf(p, x).Manage, Shared: x.AllOrgs || len(x.OrgIDs) > 1,
		RedirectURIs: x.RedirectURIs, PostLogoutURIs: x.PostLogoutRedirectURIs, BackchannelLogoutURI: x.BackchannelLogoutURI}
}

// appsData is the tab's values.
type appsData struct {
	Super bool
	Apps  []appRow
	// App is the application whose page this is (nil: the list).
	App *appRow
	// NewSecret is a secret just made, shown once.
	NewSecret string
	// Issuer and Discovery are what an application is configured with.
	Issuer, Discovery string
	// Form holds the create or edit form's values after a refusal.
	Form map[string]string
}

func (c *Console) issuer() string { return strings.TrimRight(c.BaseURL, "/") }

func (c *Console) appsPage(me store.Administrator, org store.Org) (*page, *appsData) {
	d := &appsData{Super: admin.PrincipalOf(me).Super(), Issuer: c.issuer(), Discovery: c.issuer() + discoveryPath,
		Form: map[string]string{"kind": "confidential"}}
	return &page{Title: msg("Applications"), Me: &me, Org: &org, Nav: "preferences", Tab: "applications", Data: d}, d
}

// applications is the tab: the list and the registration form.
func (c *Console) applications(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	pg, d := c.appsPage(me, org)
	switch r.URL.Query().Get("saved") {
	case "deleted":
		pg.Message = msg("The application is deleted: it can no longer sign administrators in.")
	}
	c.showApps(w, r, http.StatusOK, pg, d)
}

// showApps fills the list (Super Administrators only) and renders.
func (c *Console) showApps(w http.ResponseWriter, r *http.Request, status int, pg *page, d *appsData) {
	if d.Super {
		p := admin.PrincipalOf(*pg.Me)
		list, err := c.OIDCClients.List(r.Context(), p)
		if err != nil {
			c.failure(w, r, err)
			return
		}
		for _, x := range list {
			d.Apps = append(d.Apps, toAppRow(p, x))
		}
	}
	c.render(w, r, status, "applications", pg)
}

// uriLines reads a textarea of URIs, one a line; blank lines are skipped.
func uriLines(v string) []string {
	out := []string{}
	for _, line := range strings.Split(v, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// appFormValues keeps what the form sent, to show it again.
func appFormValues(r *http.Request) map[string]string {
	form := map[string]string{}
	for _, k := range []string{"name", "kind", "redirect_uris", "post_logout_redirect_uris", "backchannel_logout_uri"} {
		form[k] = r.PostFormValue(k)
	}
	if form["kind"] == "" {
		form["kind"] = "confidential"
	}
	return form
}

// appField is the form field a refusal is about.
func appField(e *admin.Error) string {
	switch {
	case e.Code == admin.CodeInvalidName:
		return "name"
	case e.Code != admin.CodeInvalidRedirectURI:
		return ""
	case strings.Contains(e.Message, "post-logout"):
		return "post_logout_redirect_uris"
	case strings.Contains(e.Message, "back-channel"):
		return "backchannel_logout_uri"
	}
	return "redirect_uris"
}

// appRefused shows a refusal on the form it answers (the list, or the
// application's page), or as the page's error when it is no field's.
func (c *Console) appRefused(w http.ResponseWriter, r *http.Request, pg *page, d *appsData, e *admin.Error) {
	status := http.StatusBadRequest
	switch e.Code {
	case admin.CodeForbidden:
		status = http.StatusForbidden
	case admin.CodeNotFound:
		status = http.StatusNotFound
		d.App = nil
	case admin.CodeLimitReached, admin.CodePublicClient:
		status = http.StatusConflict
	}
	d.Form = appFormValues(r)
	if field := appField(e); field != "" && status == http.StatusBadRequest {
		pg.Fields = map[string]string{field: sentence(e.Message)}
	} else {
		pg.Error = sentence(e.Message)
	}
	pg.Note = msg("Nothing was changed.")
	c.showApps(w, r, status, pg, d)
}

// createApplication registers an application of the organization and
// shows its secret in this answer only.
func (c *Console) createApplication(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	pg, d := c.appsPage(me, org)
	p := admin.PrincipalOf(me)
	secret, x, err := c.OIDCClients.Create(r.Context(), p, admin.OIDCClientSpec{Name: strings.TrimSpace(r.PostFormValue("name")),
		Public: r.PostFormValue("kind") == "public", RedirectURIs: uriLines(r.PostFormValue("redirect_uris")),
		PostLogoutRedirectURIs: uriLines(r.PostFormValue("post_logout_redirect_uris")),
		BackchannelLogoutURI:   strings.TrimSpace(r.PostFormValue("backchannel_logout_uri"))})
	if err != nil {
		c.appFailed(w, r, pg, d, p, "", err)
		return
	}
	c.showSecret(w, r, http.StatusCreated, pg, d, p, x, secret, msg("The application is registered. Configure it with the values below."))
}

// showSecret answers with the application's page showing secret, once.
func (c *Console) showSecret(w http.ResponseWriter, r *http.Request, status int, pg *page, d *appsData, p admin.Principal,
	x store.OIDCClient, secret, message string) {
	row := toAppRow(p, x)
	d.App, d.NewSecret, pg.Title, pg.Message = &row, secret, x.Name, message
	c.render(w, r, status, "applications", pg)
}

// appFailed answers a failed action on the application id ("" for a
// registration): a refusal on the application's page when p may see it,
// else on the list; any other error is the failure page.
func (c *Console) appFailed(w http.ResponseWriter, r *http.Request, pg *page, d *appsData, p admin.Principal, id string, err error) {
	e := refusal(err)
	if e == nil {
		c.failure(w, r, err)
		return
	}
	if id != "" {
		if x, gerr := c.OIDCClients.Get(r.Context(), p, id); gerr == nil {
			row := toAppRow(p, x)
			d.App, pg.Title = &row, x.Name
		}
	}
	c.appRefused(w, r, pg, d, e)
}

// application is an application's page; confirm asks about its deletion.
func (c *Console) application(confirm bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		me, org, ok := c.signedIn(w, r)
		if !ok {
			return
		}
		if confirm {
			c.confirmApp(w, r, me, org, "delete", msg("Delete this application?"), msg("Delete the application"),
				msg("Administrators can no longer sign in to it, and its secret stops working."),
				msg("Deleting cannot be undone: registering it again gives it a new client ID."))
			return
		}
		pg, d := c.appsPage(me, org)
		p := admin.PrincipalOf(me)
		x, err := c.OIDCClients.Get(r.Context(), p, r.PathValue("id"))
		if err != nil {
			c.appFailed(w, r, pg, d, p, "", err)
			return
		}
		row := toAppRow(p, x)
		d.App = &row
		pg.Title = x.Name
		switch r.URL.Query().Get("saved") {
		case "saved":
			pg.Message = msg("Saved.")
		case "disabled":
			pg.Message = msg("The application is disabled: no administrator signs in to it and its secret does not work.")
		case "enabled":
			pg.Message = msg("The application is enabled again.")
		}
		c.render(w, r, http.StatusOK, "applications", pg)
	}
}

// confirmApp is the confirmation page of an action (the path's last
// segment) on an application the administrator may manage; its form posts
// the action again with confirm=yes.
func (c *Console) confirmApp(w http.ResponseWriter, r *http.Request, me store.Administrator, org store.Org, action, title, button string, lines ...string) {
	pg, d := c.appsPage(me, org)
	p, id := admin.PrincipalOf(me), r.PathValue("id")
	x, err := c.OIDCClients.Get(r.Context(), p, id)
	if err == nil {
		err = admin.MayManageOIDCClient(p, x)
	}
	if err != nil {
		c.appFailed(w, r, pg, d, p, id, err)
		return
	}
	at := PathApplications + "/" + url.PathEscape(x.ID)
	c.render(w, r, http.StatusOK, "confirm", &page{Title: title, Me: &me, Org: &org, Nav: "preferences", Tab: "applications",
		Data: confirmData{Subject: x.Name, Lines: lines, Action: at + "/" + action, Hidden: []hidden{{"confirm", "yes"}},
			Button: button, Danger: true, Cancel: at}})
}

// appAction runs a change on the application of the path and answers it
// (a redirect to its page, or the refusal on that page).
func (c *Console) appAction(w http.ResponseWriter, r *http.Request, do func(p admin.Principal, id string) (string, error)) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	p, id := admin.PrincipalOf(me), r.PathValue("id")
	saved, err := do(p, id)
	if err == nil {
		http.Redirect(w, r, PathApplications+"/"+url.PathEscape(id)+"?saved="+saved, http.StatusSeeOther)
		return
	}
	pg, d := c.appsPage(me, org)
	c.appFailed(w, r, pg, d, p, id, err)
}

func (c *Console) updateApplication(w http.ResponseWriter, r *http.Request) {
	c.appAction(w, r, func(p admin.Principal, id string) (string, error) {
		name := strings.TrimSpace(r.PostFormValue("name"))
		uris, logout := uriLines(r.PostFormValue("redirect_uris")), uriLines(r.PostFormValue("post_logout_redirect_uris"))
		bcl := strings.TrimSpace(r.PostFormValue("backchannel_logout_uri"))
		_, err := c.OIDCClients.Update(r.Context(), p, id, admin.OIDCClientEdit{Name: &name, RedirectURIs: &uris,
			PostLogoutRedirectURIs: &logout, BackchannelLogoutURI: &bcl})
		return "saved", err
	})
}

func (c *Console) switchApplication(disable bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.appAction(w, r, func(p admin.Principal, id string) (string, error) {
			_, err := c.OIDCClients.SetDisabled(r.Context(), p, id, disable)
			if disable {
				return "disabled", err
			}
			return "enabled", err
		})
	}
}

// rotateApplicationSecret asks first (a page of its own: the application
// stops working until it is given the new secret), then rotates and shows
// the new secret in this answer only.
func (c *Console) rotateApplicationSecret(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		c.confirmApp(w, r, me, org, "secret", msg("Make a new secret?"), msg("Make a new secret"),
			msg("The current secret stops working at once: the application cannot sign anyone in until it is given the new one."))
		return
	}
	pg, d := c.appsPage(me, org)
	p, id := admin.PrincipalOf(me), r.PathValue("id")
	secret, x, err := c.OIDCClients.RotateSecret(r.Context(), p, id)
	if err != nil {
		c.appFailed(w, r, pg, d, p, id, err)
		return
	}
	c.showSecret(w, r, http.StatusOK, pg, d, p, x, secret, msg("The application has a new secret; the old one no longer works."))
}

// deleteApplication deletes after the confirmation page (its form says
// confirm=yes); without it, it shows that page.
func (c *Console) deleteApplication(w http.ResponseWriter, r *http.Request) {
	if r.PostFormValue("confirm") != "yes" {
		c.application(true)(w, r)
		return
	}
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	p, id := admin.PrincipalOf(me), r.PathValue("id")
	if err := c.OIDCClients.Delete(r.Context(), p, id); err != nil {
		pg, d := c.appsPage(me, org)
		c.appFailed(w, r, pg, d, p, id, err)
		return
	}
	http.Redirect(w, r, PathApplications+"?saved=deleted", http.StatusSeeOther)
}

// appFormView is the values of an application's form fields: what a
// refused form sent, else the application's, else nothing.
type appFormView struct {
	Name, RedirectURIs, PostLogoutURIs, BackchannelLogoutURI string
	Fields                                                   map[string]string
}

func appForm(form map[string]string, app *appRow, fields map[string]string) appFormView {
	if _, sent := form["redirect_uris"]; sent {
		return appFormView{Name: form["name"], RedirectURIs: form["redirect_uris"], PostLogoutURIs: form["post_logout_redirect_uris"],
			BackchannelLogoutURI: form["backchannel_logout_uri"], Fields: fields}
	}
	if app == nil {
		return appFormView{Fields: fields}
	}
	return appFormView{Name: app.Name, RedirectURIs: strings.Join(app.RedirectURIs, "\n"), PostLogoutURIs: strings.Join(app.PostLogoutURIs, "\n"),
		BackchannelLogoutURI: app.BackchannelLogoutURI, Fields: fields}
}
