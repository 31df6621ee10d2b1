package api

import (
	"errors"
	"net/http"
	"time"

	"gatehouse/admin"
)

// The organization's LDAP connection and LDAP users (issue #15), through
// admin.LDAP. Super Administrators only.

type ldapBody struct {
	URL               string `json:"url"`
	StartTLS          *bool  `json:"startTLS"`
	CACertificate     string `json:"caCertificate"`
	BindDN            string `json:"bindDN"`
	BindPassword      string `json:"bindPassword"`
	BaseDN            string `json:"baseDN"`
	UserFilter        string `json:"userFilter"`
	UsernameAttribute string `json:"usernameAttribute"`
	Timeout           string `json:"timeout"` // a Go duration: "5s", "1500ms"
	Enabled           *bool  `json:"enabled"`
}

func (b ldapBody) spec() (admin.LDAPSpec, error) {
	s := admin.LDAPSpec{URL: b.URL, StartTLS: b.StartTLS, CACertificate: b.CACertificate, BindDN: b.BindDN, BindPassword: b.BindPassword,
		BaseDN: b.BaseDN, UserFilter: b.UserFilter, UsernameAttribute: b.UsernameAttribute, Enabled: b.Enabled}
	if b.Timeout != "" {
		d, err := time.ParseDuration(b.Timeout)
		if err != nil {
			return s, &admin.Error{Code: admin.CodeInvalidLDAP, Message: `the timeout must be a duration such as "5s"`}
		}
		s.Timeout = &d
	}
	return s, nil
}

func (a *API) getLDAP(c *call) error {
	v, err := a.LDAP.Get(c.r.Context(), c.p)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, v)
}

func (a *API) setLDAP(c *call) error {
	var b ldapBody
	if err := c.decode(&b); err != nil {
		return err
	}
	spec, err := b.spec()
	if err != nil {
		return err
	}
	v, err := a.LDAP.Set(c.r.Context(), c.p, spec)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, v)
}

func (a *API) deleteLDAP(c *call) error {
	if err := a.LDAP.Delete(c.r.Context(), c.p); err != nil {
		return err
	}
	return c.noContent()
}

// testLDAP connects and binds as the service account (and finds the
// username's entry when one is given). A failed test is a report, not an
// error of the request: 200 with connected false and the problem.
func (a *API) testLDAP(c *call) error {
	var b struct {
		Username string `json:"username"`
	}
	if c.r.ContentLength != 0 {
		if err := c.decode(&b); err != nil {
			return err
		}
	}
	r, err := a.LDAP.Test(c.r.Context(), c.p, b.Username)
	if e := (*admin.Error)(nil); errors.As(err, &e) && e.Code == admin.CodeLDAPTestFailed {
		r.Problem = e.Message
		return c.reply(http.StatusOK, r)
	}
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, r)
}

func (a *API) listLDAPUsers(c *call) error {
	us, n, err := a.LDAP.Users(c.r.Context(), c.p)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, map[string]any{"items": us, "total": n})
}

// setLDAPUser marks an administrator as an LDAP user, or not.
func (a *API) setLDAPUser(c *call) error {
	var b struct {
		Enabled bool `json:"enabled"`
	}
	if err := c.decode(&b); err != nil {
		return err
	}
	if err := a.LDAP.SetUser(c.r.Context(), c.p, c.r.PathValue("id"), b.Enabled); err != nil {
		return err
	}
	return c.reply(http.StatusOK, map[string]bool{"enabled": b.Enabled})
}
