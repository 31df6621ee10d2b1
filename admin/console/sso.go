package console

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
)

// Preferences → Single sign-on: the organization's SSO connections
// (admin.SSOConnections, package sso's rules), whether the organization
// requires SSO (admin.Orgs.SetPreferences) and its break-glass Super
// Administrators (admin.SignIn.NameBreakGlass), and the result page of a
// connection's test. Super Administrators manage all of it; an
// Administrator reads whether SSO is required.

// Paths of the Single sign-on tab.
const (
	PathSSO           = "/preferences/sso"
	pathSSONewSAML    = PathSSO + "/new/saml"
	pathSSONewOIDC    = PathSSO + "/new/oidc"
	pathSSORequire    = PathSSO + "/require"
	pathSSOBreakGlass = PathSSO + "/break-glass"
)

// maxMetadataUpload bounds the body of the SAML form, which may carry an
// IdP's metadata file (the largest federations' single-entity files are
// well under it).
const maxMetadataUpload = 1 << 20

// SSOTestResultPath is the console's page of a connection's kept test
// result (sso.Flow.TestResultURL).
func SSOTestResultPath(connectionID, resultID string) string {
	return PathSSO + "/" + url.PathEscape(connectionID) + "/tests/" + url.PathEscape(resultID)
}

// ssoPage is the tab's own data (page.Data).
type ssoPage struct {
	Super       bool
	RequireSSO  bool
	Connections []ssoRow
	// Open names the panel shown: "saml", "oidc", "" for none; Conn is the
	// connection opened (its details, or the deletion to confirm).
	Open    string
	Conn    *ssoDetail
	Confirm bool
	// Form holds the values of a form shown again after a refusal.
	Form map[string]string
	// Supers are the Super Administrators, for break-glass.
	Supers []breakGlassRow
	// Src is the username source's fields of the open form.
	Src sourceForm
	// Created: the connection was just created (the page says what to
	// give the IdP next).
	Created bool
}

// sourceForm is the username source on a form: "nameid" or "attribute"
// (SAML), the attribute's or claim's name, the refusal at it.
type sourceForm struct{ Kind, Name, Error string }

type ssoRow struct {
	admin.SSOConnectionView
	Source string
	Last   *admin.SSOTestResult
	LastAt string
}

func (r *ssoRow) setLast(t *admin.SSOTestResult) {
	r.Last, r.LastAt = t, when(&t.At)
}

type ssoDetail struct {
	ssoRow
	// TestURL starts a test sign-in (package sso's page, which needs a
	// Super Administrator's session and ends on the console's result
	// page). It is a link, not a form: a form's redirect to the IdP's
	// origin would break the CSP's form-action 'self'.
	TestURL string
	Tests   []admin.SSOTestResult
	// The username source as the form's fields: "nameid" or "attribute"
	// (SAML) and the attribute's or claim's name.
	SourceKind, SourceName string
}

type breakGlassRow struct {
	ID, UserName, Name string
	On                 bool
}

// source is a connection's username source as a person reads it.
func source(from string) string {
	switch {
	case from == "nameid":
		return "NameID"
	case strings.HasPrefix(from, "attribute:"):
		return strings.TrimPrefix(from, "attribute:")
	case strings.HasPrefix(from, "claim:"):
		return strings.TrimPrefix(from, "claim:")
	}
	return from
}

// ssoSignedIn is signedIn with the tab's principal.
func (c *Console) ssoSignedIn(w http.ResponseWriter, r *http.Request) (*page, admin.Principal, bool) {
	a, org, ok := c.signedIn(w, r)
	if !ok {
		return nil, admin.Principal{}, false
	}
	p := &page{Title: msg("Single sign-on"), Me: &a, Org: &org, Nav: "preferences", Tab: "sso"}
	return p, admin.PrincipalOf(a), true
}

// ssoData fills the tab's list, require-SSO and break-glass values.
func (c *Console) ssoData(r *http.Request, pr admin.Principal, org *store.Org) (*ssoPage, error) {
	d := &ssoPage{Super: pr.Super(), RequireSSO: org.RequireSSO, Form: map[string]string{}}
	if !d.Super {
		return d, nil
	}
	views, err := c.SSO.List(r.Context(), pr)
	if err != nil {
		return nil, err
	}
	for _, v := range views {
		row := ssoRow{SSOConnectionView: v, Source: source(v.UsernameFrom)}
		if tests, err := c.ssoTests(r, pr, v.ID); err != nil {
			return nil, err
		} else if len(tests) > 0 {
			row.setLast(&tests[0])
		}
		d.Connections = append(d.Connections, row)
	}
	supers, _, err := c.Administrators.List(r.Context(), pr, admin.ListOptions{Role: store.RoleSuperAdministrator, Limit: admin.MaxPage, Sort: "username"})
	if err != nil {
		return nil, err
	}
	for _, a := range supers {
		creds, err := c.Store.Credentials(r.Context(), pr.OrgID, a.ID)
		if err != nil {
			return nil, err
		}
		d.Supers = append(d.Supers, breakGlassRow{ID: a.ID, UserName: a.UserName, Name: strings.TrimSpace(a.FamilyName + ", " + a.GivenName), On: creds.BreakGlass})
	}
	return d, nil
}

// ssoTests are a connection's kept test results, newest first.
func (c *Console) ssoTests(r *http.Request, pr admin.Principal, id string) ([]admin.SSOTestResult, error) {
	raws, err := c.SSO.TestResults(r.Context(), pr, id)
	if err != nil {
		return nil, err
	}
	out := make([]admin.SSOTestResult, 0, len(raws))
	for _, raw := range raws {
		var t admin.SSOTestResult
		if json.Unmarshal(raw, &t) == nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// ssoShow renders the tab (the list, and the panel d opens).
func (c *Console) ssoShow(w http.ResponseWriter, r *http.Request, status int, p *page, pr admin.Principal, d *ssoPage) {
	full, err := c.ssoData(r, pr, p.Org)
	if err != nil {
		c.ssoFailure(w, r, p, err)
		return
	}
	if d != nil {
		full.Open, full.Conn, full.Confirm, full.Created = d.Open, d.Conn, d.Confirm, d.Created
		for k, v := range d.Form {
			full.Form[k] = v
		}
	}
	full.Src = sourceForm{Kind: full.Form["source"], Name: full.Form["attribute"], Error: p.Fields["username"]}
	if full.Open == store.SSOOIDC {
		full.Src.Name = full.Form["claim"]
	}
	if c := full.Conn; c != nil {
		if full.Src.Kind == "" {
			full.Src.Kind = c.SourceKind
		}
		if c.Kind == store.SSOOIDC {
			full.Src.Name = full.Form["claim"]
		}
		if full.Src.Name == "" {
			full.Src.Name = c.SourceName
		}
	}
	p.Data = full
	c.render(w, r, status, "sso", p)
}

// ssoFailure shows a refusal of the whole page (an Administrator's forged
// post, a connection that is gone) in the console's style, else a
// failure.
func (c *Console) ssoFailure(w http.ResponseWriter, r *http.Request, p *page, err error) {
	e := refusal(err)
	if e == nil {
		c.failure(w, r, err)
		return
	}
	status := http.StatusBadRequest
	switch e.Code {
	case admin.CodeForbidden:
		status = http.StatusForbidden
		p.Title = msg("Not allowed")
	case admin.CodeNotFound:
		status = http.StatusNotFound
		p.Title = msg("Connection not found")
	}
	p.Message = sentence(plain(e.Message))
	p.Data = &ssoPage{Super: admin.PrincipalOf(*p.Me).Super(), RequireSSO: p.Org.RequireSSO}
	c.render(w, r, status, "sso", p)
}

// plain is a refusal's message without the package prefixes of the
// protocol code that made it.
func plain(s string) string {
	for _, prefix := range []string{"sso: oidc: ", "sso: saml: ", "sso: "} {
		s = strings.ReplaceAll(s, prefix, "")
	}
	return s
}

// ssoPageGET is the tab: the connections, require SSO, break-glass.
func (c *Console) ssoPageGET(w http.ResponseWriter, r *http.Request) {
	p, pr, ok := c.ssoSignedIn(w, r)
	if !ok {
		return
	}
	switch r.URL.Query().Get("saved") {
	case "require":
		p.Message = msg("Saved: the organization's sign-in requirement is changed.")
	case "break-glass":
		p.Message = msg("Saved: the break-glass Super Administrators are changed.")
	}
	if r.URL.Query().Get("deleted") != "" {
		p.Message = msg("The connection is deleted.")
	}
	c.ssoShow(w, r, http.StatusOK, p, pr, nil)
}

// ssoNew opens the form of a new SAML or OIDC connection.
func (c *Console) ssoNew(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, pr, ok := c.ssoSignedIn(w, r)
		if !ok {
			return
		}
		if !pr.Super() {
			c.ssoFailure(w, r, p, c.notSuper())
			return
		}
		form := map[string]string{"source": "nameid", "claim": "preferred_username"}
		c.ssoShow(w, r, http.StatusOK, p, pr, &ssoPage{Open: kind, Form: form})
	}
}

func (c *Console) notSuper() error {
	return &admin.Error{Code: admin.CodeForbidden, Message: "only a Super Administrator may manage SSO connections"}
}

// ssoFieldOf is the form field a refusal of a connection's settings
// concerns, from its message ("" for the whole form).
func ssoFieldOf(message, metadataField string) string {
	m := strings.ToLower(message)
	switch {
	case strings.Contains(m, "name: 1 to 200"):
		return "name"
	case strings.Contains(m, "usernamefrom"):
		return "username"
	case strings.Contains(m, "client secret") || strings.Contains(m, "clientsecret"):
		return "secret"
	case strings.Contains(m, "clientid"):
		return "client_id"
	case strings.Contains(m, "issuer") || strings.Contains(m, "oidc provider"):
		return "issuer"
	case strings.Contains(m, "metadata") || strings.Contains(m, "xml") || strings.Contains(m, "certificate") || strings.Contains(m, "entitydescriptor"):
		return metadataField
	}
	return ""
}

// usernameFrom is the username source a form names.
func usernameFrom(kind string, r *http.Request) string {
	if kind == store.SSOOIDC {
		return "claim:" + strings.TrimSpace(r.PostFormValue("claim"))
	}
	if r.PostFormValue("source") == "attribute" {
		return "attribute:" + strings.TrimSpace(r.PostFormValue("attribute"))
	}
	return "nameid"
}

// ssoCreate makes a connection from the SAML or OIDC form. The SAML form
// is multipart (the metadata file); its body is bounded by
// maxMetadataUpload instead of the console's usual bound.
func (c *Console) ssoCreate(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, pr, ok := c.ssoSignedIn(w, r)
		if !ok {
			return
		}
		d := &ssoPage{Open: kind, Form: map[string]string{}}
		fields := map[string]string{}
		if kind == store.SSOSAML {
			if err := r.ParseMultipartForm(maxMetadataUpload); err != nil && !errors.Is(err, http.ErrNotMultipart) {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					fields["metadata_file"] = msg("The file is larger than 1 MB: upload the IdP's metadata XML only.")
				} else {
					fields["metadata_file"] = msg("The form could not be read. Choose the file again.")
				}
			}
		}
		for _, k := range []string{"name", "metadata_url", "source", "attribute", "issuer", "client_id", "claim", "how"} {
			d.Form[k] = r.PostFormValue(k)
		}
		spec := admin.SSOConnectionSpec{Kind: kind, Name: strings.TrimSpace(r.PostFormValue("name")), UsernameFrom: usernameFrom(kind, r)}
		metadataField := "metadata_url"
		if kind == store.SSOSAML && len(fields) == 0 {
			if r.PostFormValue("how") == "file" {
				metadataField = "metadata_file"
				xml, err := uploaded(r, "metadata_file")
				switch {
				case err != nil:
					fields["metadata_file"] = msg("Choose the IdP's metadata file (XML).")
				case !looksLikeXML(xml):
					fields["metadata_file"] = msg("This file is not XML. Upload the metadata XML file your identity provider offers.")
				default:
					spec.IdPMetadataXML = xml
				}
			} else {
				spec.IdPMetadataURL = strings.TrimSpace(r.PostFormValue("metadata_url"))
				if spec.IdPMetadataURL == "" {
					fields["metadata_url"] = msg("Enter the URL of the IdP's metadata.")
				}
			}
		}
		if kind == store.SSOOIDC {
			spec.Issuer = strings.TrimSpace(r.PostFormValue("issuer"))
			spec.ClientID = strings.TrimSpace(r.PostFormValue("client_id"))
			spec.ClientSecret = r.PostFormValue("secret")
			// The form's required fields, named before the service's
			// terser refusal ("issuer: required").
			if spec.Issuer == "" {
				fields["issuer"] = msg("Enter the issuer: the URL of your OpenID provider, for example https://login.example.com.")
			}
			if spec.ClientID == "" {
				fields["client_id"] = msg("Enter the client ID the provider gave gatehouse.")
			}
			if spec.ClientSecret == "" {
				fields["secret"] = msg("Enter the client secret the provider gave gatehouse.")
			}
		}
		if len(fields) == 0 {
			v, err := c.SSO.Create(r.Context(), pr, spec)
			if err == nil {
				http.Redirect(w, r, PathSSO+"/"+url.PathEscape(v.ID)+"?created=1", http.StatusSeeOther)
				return
			}
			e := refusal(err)
			if e == nil || e.Code == admin.CodeForbidden {
				c.ssoFailure(w, r, p, err)
				return
			}
			text := sentence(plain(e.Message))
			if f := ssoFieldOf(e.Message, metadataField); f != "" {
				fields[f] = text
			} else {
				p.Error = text
			}
		}
		if !pr.Super() {
			c.ssoFailure(w, r, p, c.notSuper())
			return
		}
		p.Fields = fields
		c.ssoShow(w, r, http.StatusBadRequest, p, pr, d)
	}
}

// uploaded is the text of the form's file field name ("" and an error
// when none was chosen).
func uploaded(r *http.Request, name string) (string, error) {
	f, hdr, err := r.FormFile(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if hdr.Size == 0 {
		return "", errors.New("empty file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxMetadataUpload))
	return string(b), err
}

// looksLikeXML: the file starts (after a byte-order mark and white space)
// with "<". The service parses it; this only names the mistake of
// uploading another kind of file at its field.
func looksLikeXML(s string) bool {
	s = strings.TrimPrefix(s, "\ufeff")
	return strings.HasPrefix(strings.TrimSpace(s), "<")
}

// ssoConnection opens one connection: what to give the IdP, its settings,
// the test, its recent tests; /delete asks to confirm the deletion.
func (c *Console) ssoConnection(confirm bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, pr, ok := c.ssoSignedIn(w, r)
		if !ok {
			return
		}
		det, err := c.ssoDetail(r, pr, r.PathValue("id"))
		if err != nil {
			c.ssoFailure(w, r, p, err)
			return
		}
		created := r.URL.Query().Get("created") != ""
		if r.URL.Query().Get("saved") != "" {
			p.Message = msg("Saved.")
		}
		if created {
			p.Message = msg("The connection is created. Give your identity provider the values below, then test the connection.")
		}
		c.ssoShow(w, r, http.StatusOK, p, pr, &ssoPage{Conn: det, Confirm: confirm, Created: created})
	}
}

func (c *Console) ssoDetail(r *http.Request, pr admin.Principal, id string) (*ssoDetail, error) {
	v, err := c.SSO.Get(r.Context(), pr, id)
	if err != nil {
		return nil, err
	}
	tests, err := c.ssoTests(r, pr, id)
	if err != nil {
		return nil, err
	}
	test, err := c.SSO.TestURL(r.Context(), pr, id)
	if err != nil {
		return nil, err
	}
	det := &ssoDetail{ssoRow: ssoRow{SSOConnectionView: v, Source: source(v.UsernameFrom)}, Tests: tests, TestURL: test}
	if len(tests) > 0 {
		det.setLast(&tests[0])
	}
	switch {
	case v.UsernameFrom == "nameid":
		det.SourceKind = "nameid"
	case strings.HasPrefix(v.UsernameFrom, "attribute:"):
		det.SourceKind, det.SourceName = "attribute", strings.TrimPrefix(v.UsernameFrom, "attribute:")
	default:
		det.SourceName = strings.TrimPrefix(v.UsernameFrom, "claim:")
	}
	return det, nil
}

// ssoUpdate changes a connection's name, whether it is enabled, and its
// username source.
func (c *Console) ssoUpdate(w http.ResponseWriter, r *http.Request) {
	p, pr, ok := c.ssoSignedIn(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	det, err := c.ssoDetail(r, pr, id)
	if err != nil {
		c.ssoFailure(w, r, p, err)
		return
	}
	enabled := r.PostFormValue("enabled") == "on"
	spec := admin.SSOConnectionSpec{Name: strings.TrimSpace(r.PostFormValue("name")), Enabled: &enabled, UsernameFrom: usernameFrom(det.Kind, r)}
	fields := map[string]string{}
	if spec.Name == "" {
		fields["name"] = msg("Give the connection a name.")
	} else {
		_, err = c.SSO.Update(r.Context(), pr, id, spec)
		if err == nil {
			http.Redirect(w, r, PathSSO+"/"+url.PathEscape(id)+"?saved=1", http.StatusSeeOther)
			return
		}
		e := refusal(err)
		if e == nil || e.Code == admin.CodeForbidden || e.Code == admin.CodeNotFound {
			c.ssoFailure(w, r, p, err)
			return
		}
		if f := ssoFieldOf(e.Message, ""); f != "" {
			fields[f] = sentence(plain(e.Message))
		} else {
			p.Error = sentence(plain(e.Message))
		}
	}
	p.Fields = fields
	form := map[string]string{"name": r.PostFormValue("name"), "source": r.PostFormValue("source"),
		"attribute": r.PostFormValue("attribute"), "claim": r.PostFormValue("claim")}
	c.ssoShow(w, r, http.StatusBadRequest, p, pr, &ssoPage{Conn: det, Form: form})
}

// ssoDelete deletes a connection after its confirmation page.
func (c *Console) ssoDelete(w http.ResponseWriter, r *http.Request) {
	p, pr, ok := c.ssoSignedIn(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	err := c.SSO.Delete(r.Context(), pr, id)
	if err == nil {
		http.Redirect(w, r, PathSSO+"?deleted=1", http.StatusSeeOther)
		return
	}
	e := refusal(err)
	if e == nil || e.Code == admin.CodeForbidden || e.Code == admin.CodeNotFound {
		c.ssoFailure(w, r, p, err)
		return
	}
	det, derr := c.ssoDetail(r, pr, id)
	if derr != nil {
		c.ssoFailure(w, r, p, derr)
		return
	}
	p.Error = sentence(plain(e.Message))
	c.ssoShow(w, r, http.StatusBadRequest, p, pr, &ssoPage{Conn: det, Confirm: true})
}

// ssoTestResult shows a kept test result.
func (c *Console) ssoTestResult(w http.ResponseWriter, r *http.Request) {
	p, pr, ok := c.ssoSignedIn(w, r)
	if !ok {
		return
	}
	det, err := c.ssoDetail(r, pr, r.PathValue("id"))
	if err != nil {
		c.ssoFailure(w, r, p, err)
		return
	}
	p.Title = msg("Test of a connection")
	view := &ssoTestView{Conn: det}
	for i := range det.Tests {
		if det.Tests[i].ID == r.PathValue("result") {
			view.Result = &det.Tests[i]
		}
	}
	status := http.StatusOK
	if view.Result == nil {
		status = http.StatusNotFound
		p.Message = msg("This test result is no longer kept: only the latest tests of a connection are. Test the connection again.")
	} else {
		res := view.Result
		for k := range res.Attributes {
			view.Names = append(view.Names, k)
		}
		sort.Strings(view.Names)
		view.At, view.IssuedAt, view.NotBefore, view.NotOnOrAfter = when(&res.At), when(res.IssuedAt), when(res.NotBefore), when(res.NotOnOrAfter)
	}
	p.Data = view
	c.render(w, r, status, "sso-test", p)
}

// ssoTestView is the data of the test result page.
type ssoTestView struct {
	Conn   *ssoDetail
	Result *admin.SSOTestResult
	Names  []string // the attributes' names, sorted
	// The result's times, formatted.
	At, IssuedAt, NotBefore, NotOnOrAfter string
}

// ssoRequire turns the organization's SSO requirement on or off.
func (c *Console) ssoRequire(w http.ResponseWriter, r *http.Request) {
	p, pr, ok := c.ssoSignedIn(w, r)
	if !ok {
		return
	}
	on := r.PostFormValue("require") == "on"
	_, err := c.Orgs.SetPreferences(r.Context(), pr, admin.Preferences{RequireSSO: &on})
	if e := refusal(err); e != nil && e.Code != admin.CodeForbidden {
		p.Fields = map[string]string{"require": sentence(e.Message)}
		c.ssoShow(w, r, http.StatusBadRequest, p, pr, nil)
		return
	}
	if err != nil {
		c.ssoFailure(w, r, p, err)
		return
	}
	http.Redirect(w, r, PathSSO+"?saved=require#require", http.StatusSeeOther)
}

// ssoBreakGlass names the Super Administrators the form checks as
// break-glass, and no longer names the others.
func (c *Console) ssoBreakGlass(w http.ResponseWriter, r *http.Request) {
	p, pr, ok := c.ssoSignedIn(w, r)
	if !ok {
		return
	}
	if !pr.Super() {
		c.ssoFailure(w, r, p, c.notSuper())
		return
	}
	if err := r.ParseForm(); err != nil {
		c.ssoFailure(w, r, p, &admin.Error{Code: admin.CodeInvalidQuery, Message: "the form could not be read"})
		return
	}
	checked := map[string]bool{}
	for _, id := range r.PostForm["break_glass"] {
		checked[id] = true
	}
	d, err := c.ssoData(r, pr, p.Org)
	if err != nil {
		c.ssoFailure(w, r, p, err)
		return
	}
	for _, s := range d.Supers {
		if s.On == checked[s.ID] {
			continue
		}
		if err := c.SignIn.NameBreakGlass(r.Context(), pr, s.ID, checked[s.ID]); err != nil {
			c.ssoFailure(w, r, p, err)
			return
		}
	}
	http.Redirect(w, r, PathSSO+"?saved=break-glass#break-glass", http.StatusSeeOther)
}

// when formats a time of a test page, in UTC.
func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
