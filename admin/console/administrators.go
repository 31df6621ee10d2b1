package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"gatehouse/admin"
	"gatehouse/store"
)

// The Administration page (seed 001): the table of the organization's
// administrators, and its drawers (Add New, View/Edit, the confirmation
// of a delete), each a URL of its own that renders the table with the
// drawer open. The table's state (search, filters, sort, page) is the
// query string, kept by every link and form of the page, so a view is
// linkable and the back button works. Every action is a call to the
// management API's services (admin.Administrators, admin.SignIn) with
// the signed-in administrator's Principal: the page hides the controls
// admin.AllowedOn says its user may not use, and the services refuse
// them anyway.

// PathAdministrators is the Administration page.
const PathAdministrators = "/administrators"

// adminPageSize is the rows of one page of the table.
const adminPageSize = 50

// columns of the table, in order: their sort keys (listState.Sort).
var adminColumns = []struct{ key, label string }{
	{"name", msg("Name")}, {"username", msg("Username")}, {"email", msg("Email")},
	{"role", msg("Role")}, {"status", msg("Status")}, {"created", msg("Administrator Created")},
}

// listState is the table's state, from and to the query string. Values
// it does not know are dropped (a link never ends on an error page).
type listState struct {
	Search, Status, Role string
	Sort                 string // a key of adminColumns; default "created"
	Desc                 bool   // default true with the default sort: the newest first
	Offset               int
	After                string // the store's cursor of the page before (creation order only)
}

func parseListState(q url.Values) listState {
	s := listState{Search: strings.TrimSpace(q.Get("q")), Sort: "created", Desc: true}
	if len(s.Search) > 200 {
		s.Search = s.Search[:200]
	}
	switch st := store.Status(q.Get("status")); st {
	case store.StatusPending, store.StatusActive, store.StatusDeactivated:
		s.Status = string(st)
	}
	switch r := store.Role(q.Get("role")); r {
	case store.RoleAdministrator, store.RoleSuperAdministrator:
		s.Role = string(r)
	}
	for _, c := range adminColumns {
		if q.Get("sort") == c.key {
			s.Sort = c.key
			s.Desc = false
		}
	}
	switch q.Get("order") {
	case "asc":
		s.Desc = false
	case "desc":
		s.Desc = true
	}
	if n, err := strconv.Atoi(q.Get("offset")); err == nil && n > 0 && n < 1<<30 {
		s.Offset = n
	}
	if a := q.Get("after"); s.Offset > 0 && s.Sort == "created" && len(a) < 64 {
		s.After = a
	}
	return s
}

// Custom reports whether s is sorted otherwise than by default.
func (s listState) Custom() bool { return s.Sort != "created" || !s.Desc }

// Order is "asc" or "desc".
func (s listState) Order() string {
	if s.Desc {
		return "desc"
	}
	return "asc"
}

// values is s as a query string; the defaults are left out.
func (s listState) values() url.Values {
	v := url.Values{}
	if s.Search != "" {
		v.Set("q", s.Search)
	}
	if s.Status != "" {
		v.Set("status", s.Status)
	}
	if s.Role != "" {
		v.Set("role", s.Role)
	}
	if s.Custom() {
		v.Set("sort", s.Sort)
		v.Set("order", s.Order())
	}
	if s.Offset > 0 {
		v.Set("offset", strconv.Itoa(s.Offset))
	}
	if s.After != "" {
		v.Set("after", s.After)
	}
	return v
}

// href is path with s's query string.
func (s listState) href(path string) string {
	if q := s.values().Encode(); q != "" {
		return path + "?" + q
	}
	return path
}

// options are the admin.ListOptions of s.
func (s listState) options() admin.ListOptions {
	o := admin.ListOptions{Search: s.Search, Status: store.Status(s.Status), Role: store.Role(s.Role), Descending: s.Desc,
		Offset: s.Offset, Limit: adminPageSize, After: s.After}
	if s.Sort != "created" {
		// Creation order is the store's own (a cursor continues it);
		// "Administrator Created" is that order.
		o.Sort = s.Sort
	}
	return o
}

// adminRow is one administrator as the table and the drawer show it.
type adminRow struct {
	ID, Name, UserName, Email, Phone string
	GivenName, FamilyName            string
	Role                             store.Role
	Super                            bool
	Status                           string // pending, active, deactivated
	LastLogin                        string // "" never
	Created                          string
	Href                             string
	Selected                         bool
	SCIMManaged                      bool
}

const timeLayout = "2006-01-02 15:04 UTC"

func toRow(a store.Administrator, state listState) adminRow {
	r := adminRow{ID: a.ID, Name: a.FamilyName + ", " + a.GivenName, UserName: a.UserName, Email: a.Email, Phone: a.Phone,
		GivenName: a.GivenName, FamilyName: a.FamilyName, Role: a.Role, Super: a.Role == store.RoleSuperAdministrator,
		Status: strings.ToLower(string(a.Status)), Created: a.CreatedAt.UTC().Format("2006-01-02"),
		Href: state.href(PathAdministrators + "/" + url.PathEscape(a.ID)), SCIMManaged: a.SCIMManaged}
	if a.GivenName == "" || a.FamilyName == "" {
		r.Name = strings.TrimSpace(a.FamilyName + a.GivenName)
	}
	if a.LastLoginAt != nil {
		r.LastLogin = a.LastLoginAt.UTC().Format(timeLayout)
	}
	return r
}

// columnHead is a header of the table: its sort link and aria-sort.
type columnHead struct {
	Label, Href, Sort string // Sort: ascending, descending or none
}

// loginRow is one sign-in of the login history.
type loginRow struct {
	At, Browser, IP, Method, Result string
	// Location is where the address was at the time, in the page's
	// language when the GeoIP database had that name, else in English;
	// "" when unknown.
	Location string
	OK       bool
}

// placeOf is "City, Country" (or the one known) in lang, else English.
func placeOf(l store.Location, lang string) string {
	city, country := l.CityName(lang), l.CountryName(lang)
	switch {
	case city != "" && country != "":
		return city + ", " + country
	case country != "":
		return country
	case city != "":
		return city
	}
	return l.CountryCode
}

// personForm is what the Add New and edit forms hold.
type personForm struct {
	GivenName, FamilyName, Email, Phone, UserName string
	// Language is the administrator's (seed 002), "" when not chosen.
	Language               string
	Role                   store.Role
	MustChange, SendAccess bool
}

// adminsView is the Administration page's Data.
type adminsView struct {
	State           listState
	Rows            []adminRow
	Total, From, To int
	PrevHref        string
	NextHref        string
	FirstHref       string
	Columns         []columnHead
	ListHref        string // the table with no drawer
	NewHref         string // Add New
	Query           string // the state's query string, for forms' actions
	SCIM            bool
	InviteRoles     []store.Role
	Domains         []string

	// Drawer: "" none, "new", "view", "delete".
	Drawer  string
	Sel     *adminRow
	Allowed admin.Allowed
	// Unlocked is Allowed with SCIM off: a control the lock alone
	// refuses is shown disabled, one the role refuses is not shown.
	Unlocked admin.Allowed
	Form     personForm
	History  []loginRow
	// Located: some entry of History has a location (the column is shown).
	Located bool
	Done    string
}

// Action is the address a drawer's form posts to: the selected
// administrator's (name "" for the edit form, else the action's), or
// Add New's; with the table's state, which the answer keeps.
func (v *adminsView) Action(name string) string {
	path := PathAdministrators + "/new"
	if v.Sel != nil {
		path = PathAdministrators + "/" + url.PathEscape(v.Sel.ID)
		if name != "" {
			path += "/" + name
		}
	}
	if v.Query != "" {
		path += "?" + v.Query
	}
	return path
}

// adminsPage builds the page: the table for the request's state and,
// for a drawer, sel (nil for none or "new").
func (c *Console) adminsPage(w http.ResponseWriter, r *http.Request, me store.Administrator, org store.Org, drawer string,
	sel *store.Administrator) (*page, bool) {
	ctx := r.Context()
	p := admin.PrincipalOf(me)
	state := parseListState(r.URL.Query())
	res, err := c.Administrators.Page(ctx, p, state.options())
	if refusal(err) != nil && state.After != "" {
		state.After = "" // a cursor this server did not give: read the page by its offset
		res, err = c.Administrators.Page(ctx, p, state.options())
	}
	if err != nil {
		c.failure(w, r, err)
		return nil, false
	}
	v := &adminsView{State: state, Total: res.Total, SCIM: admin.Locked(p, org), InviteRoles: admin.InviteRoles(p),
		Drawer: drawer, ListHref: state.href(PathAdministrators), NewHref: state.href(PathAdministrators + "/new"),
		Query: state.values().Encode()}
	for _, a := range res.Items {
		row := toRow(a, state)
		row.Selected = sel != nil && sel.ID == a.ID
		v.Rows = append(v.Rows, row)
	}
	if len(v.Rows) > 0 {
		v.From, v.To = state.Offset+1, state.Offset+len(v.Rows)
	}
	first := state
	first.Offset, first.After = 0, ""
	if state.Offset > 0 {
		prev := first
		prev.Offset = max(0, state.Offset-adminPageSize)
		v.PrevHref, v.FirstHref = prev.href(PathAdministrators), first.href(PathAdministrators)
	}
	if state.Offset+len(v.Rows) < res.Total && len(v.Rows) == adminPageSize {
		next := first
		next.Offset, next.After = state.Offset+len(v.Rows), res.Next
		v.NextHref = next.href(PathAdministrators)
	}
	for _, col := range adminColumns {
		h := columnHead{Label: col.label, Sort: "none"}
		to := first
		to.Sort, to.Desc = col.key, false
		if state.Sort == col.key {
			h.Sort = map[bool]string{true: "descending", false: "ascending"}[state.Desc]
			to.Desc = !state.Desc
		}
		h.Href = to.href(PathAdministrators)
		v.Columns = append(v.Columns, h)
	}
	if drawer == "new" {
		if v.Domains, err = c.domainsOf(r, org.ID); err != nil {
			c.failure(w, r, err)
			return nil, false
		}
		v.Form.Role = store.RoleAdministrator
	}
	if sel != nil {
		row := toRow(*sel, state)
		v.Sel, v.Allowed = &row, admin.AllowedOn(p, org, *sel)
		unlocked := org
		unlocked.SCIMEnabled = false
		v.Unlocked = admin.AllowedOn(p, unlocked, *sel)
		v.Form = personForm{GivenName: sel.GivenName, FamilyName: sel.FamilyName, Email: sel.Email, Phone: sel.Phone,
			UserName: sel.UserName, Role: sel.Role, Language: sel.Language}
		if drawer == "view" {
			if v.Domains, err = c.domainsOf(r, org.ID); err != nil {
				c.failure(w, r, err)
				return nil, false
			}
			events, err := c.Store.LoginHistory(ctx, org.ID, sel.ID, 20, 0)
			if err != nil {
				c.failure(w, r, err)
				return nil, false
			}
			lang := langOf(r, me.Language)
			for _, e := range events {
				row := loginRow{At: e.At.UTC().Format(timeLayout), Browser: browserOf(e.UserAgent), IP: e.IP,
					Location: placeOf(e.Location, lang), Method: e.Method, Result: e.Result, OK: e.Result == store.LoginSuccess}
				v.Located = v.Located || row.Location != ""
				v.History = append(v.History, row)
			}
		}
	}
	title := msg("Administrators")
	return &page{Title: title, Me: &me, Org: &org, Nav: "administrators", Data: v}, true
}

func (c *Console) domainsOf(r *http.Request, org string) ([]string, error) {
	ds, err := c.Store.RegisteredDomains(r.Context(), org)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Domain
	}
	return out, nil
}

// administrators is the table, with no drawer.
func (c *Console) administrators(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	if p, ok := c.adminsPage(w, r, me, org, "", nil); ok {
		if m, ok := doneMessages[r.URL.Query().Get("done")]; ok {
			p.Message = m
		}
		c.render(w, r, http.StatusOK, "administrators", p)
	}
}

// inviteDrawer is Add New.
func (c *Console) inviteDrawer(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	if p, ok := c.adminsPage(w, r, me, org, "new", nil); ok {
		c.render(w, r, http.StatusOK, "administrators", p)
	}
}

// invite sends Add New's form to admin.Administrators.Invite; the new
// administrator's drawer opens on the table, where it is Pending.
func (c *Console) invite(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	form := personForm{GivenName: strings.TrimSpace(r.PostFormValue("first_name")), FamilyName: strings.TrimSpace(r.PostFormValue("last_name")),
		Email: strings.TrimSpace(r.PostFormValue("email")), Phone: strings.TrimSpace(r.PostFormValue("phone")),
		UserName: r.PostFormValue("username"), Role: store.Role(r.PostFormValue("role")), Language: r.PostFormValue("language")}
	a, err := c.Administrators.Invite(r.Context(), admin.PrincipalOf(me), admin.InviteSpec{UserName: form.UserName, Email: form.Email,
		GivenName: form.GivenName, FamilyName: form.FamilyName, Phone: form.Phone, Role: form.Role, Language: form.Language})
	if e := refusal(err); e != nil {
		p, ok := c.adminsPage(w, r, me, org, "new", nil)
		if !ok {
			return
		}
		p.Data.(*adminsView).Form = form
		c.refused(w, r, p, e)
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	// The table from its first page, so the new administrator is in it
	// in the default order (the newest first).
	state := parseListState(r.URL.Query())
	state.Offset, state.After = 0, ""
	c.done(w, r, state, a.ID, "invited")
}

// done redirects to an administrator's drawer after an action, with the
// notice of what was done.
func (c *Console) done(w http.ResponseWriter, r *http.Request, state listState, id, what string) {
	v := state.values()
	v.Set("done", what)
	path := PathAdministrators
	if id != "" {
		path += "/" + url.PathEscape(id)
	}
	http.Redirect(w, r, path+"?"+v.Encode(), http.StatusSeeOther)
}

// doneMessages are the notices of done.
var doneMessages = map[string]string{
	"invited":     msg("Invitation sent. The administrator is Pending until they finish their account from the email."),
	"saved":       msg("Changes saved."),
	"deactivated": msg("The administrator is deactivated: they can no longer sign in."),
	"reactivated": msg("The administrator is reactivated."),
	"resent":      msg("A new invitation was sent; the previous link no longer works."),
	"password":    msg("Password set. The administrator's sessions have ended."),
	"deleted":     msg("The administrator was deleted."),
}

// refused shows a refusal of the services at the field it concerns, or
// at the top of the drawer.
func (c *Console) refused(w http.ResponseWriter, r *http.Request, p *page, e *admin.Error) {
	field := map[string]string{
		admin.CodeInvalidUsername: "username", admin.CodeUsernameTaken: "username",
		admin.CodeInvalidEmail: "email", admin.CodeDomainNotRegistered: "email",
		admin.CodeInvalidGivenName: "first_name", admin.CodeInvalidFamilyName: "last_name",
		admin.CodeInvalidPhone: "phone", admin.CodeInvalidRole: "role", admin.CodeWeakPassword: "password",
		admin.CodeInvalidLanguage: "language",
	}[e.Code]
	if e.Code == admin.CodeForbiddenRole && p.Data.(*adminsView).Drawer == "new" {
		field = "role"
	}
	if field != "" {
		p.Fields = map[string]string{field: sentence(e.Message)}
	} else {
		p.Error = sentence(e.Message)
	}
	status := http.StatusBadRequest
	switch e.Code {
	case admin.CodeForbidden, admin.CodeForbiddenRole, admin.CodeSuperAdminProtected:
		status = http.StatusForbidden
	case admin.CodeSCIMEnabled, admin.CodeLastSuperAdmin, admin.CodeUsernameTaken, admin.CodeNotPending,
		admin.CodeAlreadyDeactivated, admin.CodeNotDeactivated:
		status = http.StatusConflict
	case admin.CodeNotFound:
		status = http.StatusNotFound
	}
	p.Note = msg("Nothing was changed for this administrator.")
	if p.Data.(*adminsView).Drawer == "new" {
		p.Note = msg("No administrator was added.")
	}
	c.render(w, r, status, "administrators", p)
}

// selected reads the administrator of the request's {id}: ok false when
// it has answered (signed out, not found, an error).
func (c *Console) selected(w http.ResponseWriter, r *http.Request) (me store.Administrator, org store.Org, a store.Administrator, ok bool) {
	if me, org, ok = c.signedIn(w, r); !ok {
		return
	}
	a, err := c.Administrators.Get(r.Context(), admin.PrincipalOf(me), r.PathValue("id"))
	if refusal(err) != nil {
		c.render(w, r, http.StatusNotFound, "error", &page{Title: msg("Administrator not found"), Me: &me, Org: &org,
			Nav: "administrators", Message: msg("This administrator does not exist, or was deleted. Go back to the list of administrators.")})
		return me, org, a, false
	}
	if err != nil {
		c.failure(w, r, err)
		return me, org, a, false
	}
	return me, org, a, true
}

// administratorDrawer is View/Edit.
func (c *Console) administratorDrawer(w http.ResponseWriter, r *http.Request) {
	me, org, a, ok := c.selected(w, r)
	if !ok {
		return
	}
	p, ok := c.adminsPage(w, r, me, org, "view", &a)
	if !ok {
		return
	}
	if m, ok := doneMessages[r.URL.Query().Get("done")]; ok {
		p.Message = m
	}
	c.render(w, r, http.StatusOK, "administrators", p)
}

// deleteDrawer asks to confirm a delete: a page of its own, so the
// confirmation works without JavaScript.
func (c *Console) deleteDrawer(w http.ResponseWriter, r *http.Request) {
	me, org, a, ok := c.selected(w, r)
	if !ok {
		return
	}
	if p, ok := c.adminsPage(w, r, me, org, "delete", &a); ok {
		c.render(w, r, http.StatusOK, "administrators", p)
	}
}

// act runs one of the drawer's actions and shows its outcome.
func (c *Console) act(w http.ResponseWriter, r *http.Request, what string, do func(admin.Principal, store.Administrator) error,
	keep func(*personForm)) {
	me, org, a, ok := c.selected(w, r)
	if !ok {
		return
	}
	err := do(admin.PrincipalOf(me), a)
	if e := refusal(err); e != nil {
		// The drawer as it is now (the refusal changed nothing).
		if fresh, gerr := c.Administrators.Get(r.Context(), admin.PrincipalOf(me), a.ID); gerr == nil {
			a = fresh
		}
		drawer := "view"
		if what == "deleted" {
			drawer = "delete"
		}
		p, ok := c.adminsPage(w, r, me, org, drawer, &a)
		if !ok {
			return
		}
		if keep != nil {
			keep(&p.Data.(*adminsView).Form)
		}
		c.refused(w, r, p, e)
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	state := parseListState(r.URL.Query())
	if what == "deleted" {
		c.done(w, r, state, "", what)
		return
	}
	c.done(w, r, state, a.ID, what)
}

// editAdministrator saves the edit form: names, email, phone and role.
func (c *Console) editAdministrator(w http.ResponseWriter, r *http.Request) {
	form := personForm{GivenName: strings.TrimSpace(r.PostFormValue("first_name")), FamilyName: strings.TrimSpace(r.PostFormValue("last_name")),
		Email: strings.TrimSpace(r.PostFormValue("email")), Phone: strings.TrimSpace(r.PostFormValue("phone")),
		Role: store.Role(r.PostFormValue("role")), Language: r.PostFormValue("language")}
	c.act(w, r, "saved", func(p admin.Principal, a store.Administrator) error {
		e := admin.Edit{GivenName: &form.GivenName, FamilyName: &form.FamilyName, Email: &form.Email, Phone: &form.Phone}
		if form.Role != "" && form.Role != a.Role {
			e.Role = &form.Role
		}
		if form.Language != "" && form.Language != a.Language {
			e.Language = &form.Language
		}
		_, err := c.Administrators.Update(r.Context(), p, a.ID, e)
		return err
	}, func(f *personForm) {
		f.GivenName, f.FamilyName, f.Email, f.Phone = form.GivenName, form.FamilyName, form.Email, form.Phone
		if form.Language != "" {
			f.Language = form.Language
		}
		if form.Role != "" {
			f.Role = form.Role
		}
	})
}

func (c *Console) deactivateAdministrator(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, "deactivated", func(p admin.Principal, a store.Administrator) error {
		_, err := c.Administrators.Deactivate(r.Context(), p, a.ID)
		return err
	}, nil)
}

func (c *Console) reactivateAdministrator(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, "reactivated", func(p admin.Principal, a store.Administrator) error {
		_, err := c.Administrators.Reactivate(r.Context(), p, a.ID)
		return err
	}, nil)
}

func (c *Console) resendInvitation(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, "resent", func(p admin.Principal, a store.Administrator) error {
		return c.Administrators.Resend(r.Context(), p, a.ID)
	}, nil)
}

func (c *Console) deleteAdministrator(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, "deleted", func(p admin.Principal, a store.Administrator) error {
		return c.Administrators.Delete(r.Context(), p, a.ID)
	}, nil)
}

// setAdministratorPassword is seed 002's Set Password, as the management
// API's PUT /administrators/{id}/password: the rule (admin.MaySetPassword),
// the password (admin.SignIn.SetPassword, which ends the sessions), then
// the optional email with access (admin.Administrators.SendAccess).
func (c *Console) setAdministratorPassword(w http.ResponseWriter, r *http.Request) {
	password, confirm := r.PostFormValue("password"), r.PostFormValue("confirm")
	mustChange, send := r.PostFormValue("must_change") != "", r.PostFormValue("send_access") != ""
	c.act(w, r, "password", func(p admin.Principal, a store.Administrator) error {
		if err := admin.MaySetPassword(p, a); err != nil {
			return err
		}
		if password != confirm {
			return &admin.Error{Code: admin.CodeWeakPassword, Message: msg("The password and its confirmation differ: type the same password twice.")}
		}
		if err := c.SignIn.SetPassword(p.Context(r.Context()), p.OrgID, a.ID, password, mustChange); err != nil {
			return err
		}
		if send {
			return c.Administrators.SendAccess(r.Context(), p, a)
		}
		return nil
	}, func(f *personForm) { f.MustChange, f.SendAccess = mustChange, send })
}
