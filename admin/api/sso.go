package api

import (
	"net/http"

	"gatehouse/admin"
	"gatehouse/store"
)

// SSO connections (issue #5), through admin.SSOConnections. Super
// Administrators only; the connections' rules live in package sso.

type ssoBody struct {
	Kind              string   `json:"kind"`
	Name              string   `json:"name"`
	Enabled           *bool    `json:"enabled"`
	UsernameFrom      string   `json:"usernameFrom"`
	IdPMetadataXML    string   `json:"idpMetadataXml"`
	IdPMetadataURL    string   `json:"idpMetadataUrl"`
	SPEntityID        string   `json:"spEntityId"`
	AllowIdPInitiated *bool    `json:"allowIdpInitiated"`
	AllowSHA1         *bool    `json:"allowSha1"`
	ClockSkewSeconds  *int     `json:"clockSkewSeconds"`
	Issuer            string   `json:"issuer"`
	ClientID          string   `json:"clientId"`
	ClientSecret      string   `json:"clientSecret"`
	Scopes            []string `json:"scopes"`
}

func (b ssoBody) spec() admin.SSOConnectionSpec {
	return admin.SSOConnectionSpec{Kind: b.Kind, Name: b.Name, Enabled: b.Enabled, UsernameFrom: b.UsernameFrom,
		IdPMetadataXML: b.IdPMetadataXML, IdPMetadataURL: b.IdPMetadataURL, SPEntityID: b.SPEntityID,
		AllowIdPInitiated: b.AllowIdPInitiated, AllowSHA1: b.AllowSHA1, ClockSkewSeconds: b.ClockSkewSeconds,
		Issuer: b.Issuer, ClientID: b.ClientID, ClientSecret: b.ClientSecret, Scopes: b.Scopes}
}

func (a *API) listSSOConnections(c *call) error {
	cs, err := a.SSO.List(c.r.Context(), c.p)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, map[string]any{"items": cs})
}

func (a *API) createSSOConnection(c *call) error {
	var b ssoBody
	if err := c.decode(&b); err != nil {
		return err
	}
	v, err := a.SSO.Create(c.r.Context(), c.p, b.spec())
	if err != nil {
		return err
	}
	c.w.Header().Set("Location", Prefix+"/sso/connections/"+v.ID)
	return c.reply(http.StatusCreated, v)
}

func (a *API) getSSOConnection(c *call) error {
	v, err := a.SSO.Get(c.r.Context(), c.p, c.r.PathValue("id"))
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, v)
}

func (a *API) updateSSOConnection(c *call) error {
	var b ssoBody
	if err := c.decode(&b); err != nil {
		return err
	}
	v, err := a.SSO.Update(c.r.Context(), c.p, c.r.PathValue("id"), b.spec())
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, v)
}

func (a *API) deleteSSOConnection(c *call) error {
	if err := a.SSO.Delete(c.r.Context(), c.p, c.r.PathValue("id")); err != nil {
		return err
	}
	return c.noContent()
}

func (a *API) testSSOConnection(c *call) error {
	u, err := a.SSO.TestURL(c.r.Context(), c.p, c.r.PathValue("id"))
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, map[string]string{"url": u,
		"how": "open the url in a browser signed in to gatehouse as a Super Administrator of the organization; the result shows there and under /tests"})
}

func (a *API) ssoTestResults(c *call) error {
	rs, err := a.SSO.TestResults(c.r.Context(), c.p, c.r.PathValue("id"))
	if err != nil {
		return err
	}
	if rs == nil {
		rs = []store.RawJSON{}
	}
	return c.reply(http.StatusOK, map[string]any{"items": rs})
}

// setBreakGlass names the Super Administrators who may still sign in with
// a password when the organization requires SSO.
func (a *API) setBreakGlass(c *call) error {
	var b struct {
		Enabled bool `json:"enabled"`
	}
	if err := c.decode(&b); err != nil {
		return err
	}
	if err := a.SignIn.NameBreakGlass(c.r.Context(), c.p, c.r.PathValue("id"), b.Enabled); err != nil {
		return err
	}
	return c.reply(http.StatusOK, map[string]bool{"enabled": b.Enabled})
}
