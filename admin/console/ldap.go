package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
)

// Preferences → LDAP: the organization's LDAP connection (admin.LDAP),
// its test, and which administrators are LDAP users (seed 002 "Is LDAP
// user"). Super Administrators only; an Administrator reads that the
// section is theirs.

// Paths of the LDAP tab.
const (
	PathLDAP       = "/preferences/ldap"
	pathLDAPTest   = PathLDAP + "/test"
	pathLDAPDelete = PathLDAP + "/delete"
	pathLDAPUsers  = PathLDAP + "/users"
)

// ldapPage is the tab's own data (page.Data).
type ldapPage struct {
	Super bool
	// Conn is the connection, nil when the organization has none.
	Conn *admin.LDAPView
	// Form holds the values of the settings form (the stored ones, or
	// those typed when refused).
	Form  map[string]string
	Users []admin.LDAPUserView
	Total int
	// Test is a connection test's outcome, shown once.
	Test *ldapTestView
}

type ldapTestView struct {
	Connected               bool
	Username, DN, Problem   string
	UserFound, UserSearched bool
}

func (c *Console) ldapSignedIn(w http.ResponseWriter, r *http.Request) (*page, admin.Principal, bool) {
	a, org, ok := c.signedIn(w, r)
	if !ok {
		return nil, admin.Principal{}, false
	}
	return &page{Title: msg("LDAP"), Me: &a, Org: &org, Nav: "preferences", Tab: "ldap"}, admin.PrincipalOf(a), true
}

// ldapShow renders the tab with d's form values and test over the stored
// state.
func (c *Console) ldapShow(w http.ResponseWriter, r *http.Request, status int, p *page, pr admin.Principal, d *ldapPage) {
	if d == nil {
		d = &ldapPage{}
	}
	d.Super = pr.Super()
	if d.Super {
		v, err := c.LDAP.Get(r.Context(), pr)
		switch e := refusal(err); {
		case err == nil:
			d.Conn = &v
		case e == nil || e.Code != admin.CodeLDAPNotConfigured:
			c.failure(w, r, err)
			return
		}
		if d.Users, d.Total, err = c.LDAP.Users(r.Context(), pr); err != nil {
			c.failure(w, r, err)
			return
		}
		if d.Form == nil {
			d.Form = ldapForm(d.Conn)
		}
	}
	p.Data = d
	c.render(w, r, status, "ldap", p)
}

// ldapForm is the settings form filled with the stored connection (the
// defaults of a first one).
func ldapForm(v *admin.LDAPView) map[string]string {
	if v == nil {
		return map[string]string{"filter": "(uid={username})", "attribute": "uid", "timeout": "5", "enabled": "on"}
	}
	f := map[string]string{"url": v.URL, "ca": v.CACertificate, "bind_dn": v.BindDN, "base_dn": v.BaseDN,
		"filter": v.UserFilter, "attribute": v.UsernameAttribute}
	if d, err := time.ParseDuration(v.Timeout); err == nil {
		f["timeout"] = strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	}
	if v.StartTLS {
		f["starttls"] = "on"
	}
	if v.Enabled {
		f["enabled"] = "on"
	}
	return f
}

func (c *Console) ldapPageGET(w http.ResponseWriter, r *http.Request) {
	p, pr, ok := c.ldapSignedIn(w, r)
	if !ok {
		return
	}
	switch r.URL.Query().Get("saved") {
	case "settings":
		p.Message = msg("Saved: the LDAP connection is set. Test it before marking administrators as LDAP users.")
	case "users":
		p.Message = msg("Saved: the LDAP users are changed.")
	case "deleted":
		p.Message = msg("The LDAP connection is deleted. Its LDAP users cannot sign in with a password until a connection is set again.")
	}
	c.ldapShow(w, r, http.StatusOK, p, pr, nil)
}

// ldapRefused shows a refusal of a form on the tab (400), or of the whole
// page (403 for an Administrator's post).
func (c *Console) ldapRefused(w http.ResponseWriter, r *http.Request, p *page, pr admin.Principal, d *ldapPage, err error) {
	e := refusal(err)
	if e == nil {
		c.failure(w, r, err)
		return
	}
	p.Error = sentence(e.Message)
	status := http.StatusBadRequest
	switch e.Code {
	case admin.CodeForbidden:
		status, p.Title = http.StatusForbidden, msg("Not allowed")
	case admin.CodeNotFound:
		status = http.StatusNotFound
	case admin.CodeLDAPNotConfigured:
		status = http.StatusConflict
	}
	c.ldapShow(w, r, status, p, pr, d)
}

// ldapSave sets the connection from the form. Empty text fields keep
// their value (the bind password above all: it is never shown);
// checkboxes are the form's.
func (c *Console) ldapSave(w http.ResponseWriter, r *http.Request) {
	p, pr, ok := c.ldapSignedIn(w, r)
	if !ok {
		return
	}
	form := map[string]string{}
	for _, k := range []string{"url", "ca", "bind_dn", "base_dn", "filter", "attribute", "timeout", "starttls", "enabled"} {
		form[k] = r.PostFormValue(k)
	}
	starttls, enabled := form["starttls"] == "on", form["enabled"] == "on"
	spec := admin.LDAPSpec{URL: form["url"], StartTLS: &starttls, CACertificate: form["ca"], BindDN: form["bind_dn"],
		BindPassword: r.PostFormValue("bind_password"), BaseDN: form["base_dn"], UserFilter: form["filter"],
		UsernameAttribute: form["attribute"], Enabled: &enabled}
	if t := strings.TrimSpace(form["timeout"]); t != "" {
		secs, err := strconv.ParseFloat(t, 64)
		if err != nil || secs <= 0 || secs > 3600 {
			p.Fields = map[string]string{"timeout": msg("The timeout is a number of seconds, such as 5.")}
			c.ldapShow(w, r, http.StatusBadRequest, p, pr, &ldapPage{Form: form})
			return
		}
		d := time.Duration(secs * float64(time.Second))
		spec.Timeout = &d
	}
	if _, err := c.LDAP.Set(r.Context(), pr, spec); err != nil {
		c.ldapRefused(w, r, p, pr, &ldapPage{Form: form}, err)
		return
	}
	http.Redirect(w, r, PathLDAP+"?saved=settings", http.StatusSeeOther)
}

// ldapTest tests the stored connection (and a username's entry) and
// shows the outcome on the tab.
func (c *Console) ldapTest(w http.ResponseWriter, r *http.Request) {
	p, pr, ok := c.ldapSignedIn(w, r)
	if !ok {
		return
	}
	username := r.PostFormValue("username")
	rep, err := c.LDAP.Test(r.Context(), pr, username)
	t := &ldapTestView{Connected: rep.Connected, Username: username, DN: rep.DN, Problem: rep.Problem,
		UserSearched: username != "", UserFound: rep.DN != ""}
	if e := refusal(err); e != nil && e.Code == admin.CodeLDAPTestFailed {
		t.Problem = e.Message
	} else if err != nil {
		c.ldapRefused(w, r, p, pr, nil, err)
		return
	}
	c.ldapShow(w, r, http.StatusOK, p, pr, &ldapPage{Test: t})
}

// ldapDelete removes the connection once the form confirms it.
func (c *Console) ldapDelete(w http.ResponseWriter, r *http.Request) {
	p, pr, ok := c.ldapSignedIn(w, r)
	if !ok {
		return
	}
	if r.PostFormValue("confirm") != "on" {
		p.Fields = map[string]string{"confirm": msg("Check the box to confirm the deletion.")}
		c.ldapShow(w, r, http.StatusBadRequest, p, pr, nil)
		return
	}
	if err := c.LDAP.Delete(r.Context(), pr); err != nil {
		c.ldapRefused(w, r, p, pr, nil, err)
		return
	}
	http.Redirect(w, r, PathLDAP+"?saved=deleted", http.StatusSeeOther)
}

// ldapUsers marks the administrator named by the form (its exact
// username) as an LDAP user, or unmarks the one whose id the form posts.
func (c *Console) ldapUsers(w http.ResponseWriter, r *http.Request) {
	p, pr, ok := c.ldapSignedIn(w, r)
	if !ok {
		return
	}
	id, on := r.PostFormValue("remove"), false
	if id == "" {
		name := r.PostFormValue("username")
		a, err := c.Store.AdministratorByUsername(r.Context(), pr.OrgID, name)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				c.failure(w, r, err)
				return
			}
			p.Fields = map[string]string{"username": msg("No administrator of the organization has this username (it is matched exactly).")}
			c.ldapShow(w, r, http.StatusBadRequest, p, pr, nil)
			return
		}
		id, on = a.ID, true
	}
	if err := c.LDAP.SetUser(r.Context(), pr, id, on); err != nil {
		c.ldapRefused(w, r, p, pr, nil, err)
		return
	}
	http.Redirect(w, r, PathLDAP+"?saved=users#users", http.StatusSeeOther)
}
