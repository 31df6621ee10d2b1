package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gatehouse/store"
)

// The Administration page (seed 001) in a real browser against a real
// gatehouse serve: the table, its drawers and every action, the role
// rules (hidden controls, and the server's refusal of a forged post),
// the SCIM lock, and bad input shown at its field, changing nothing.

// activateOwner finishes the owner's (Jane.Doe, Super Administrator)
// account through the API, with consolePassword.
func activateOwner(t *testing.T, f *serveFixture) {
	t.Helper()
	token := f.link[strings.Index(f.link, "token=")+len("token="):]
	if a := postJSON(t, f.srv.base+"/api/v1/activation", `{"token":"`+token+`","password":"`+consolePassword+`"}`, ""); a.status != 200 {
		t.Fatalf("activation: %d %v", a.status, a.body)
	}
}

// inviteActive invites an administrator through the API and activates
// it with consolePassword. A username First.Last gives the names; a
// single word is the first name, with the last name "Test".
func inviteActive(t *testing.T, f *serveFixture, username, role string) store.Administrator {
	t.Helper()
	first, last, _ := strings.Cut(username, ".")
	if last == "" {
		last = "Test"
	}
	body := fmt.Sprintf(`{"username":%q,"firstName":%q,"lastName":%q,"email":%q,"role":%q}`, username, first, last,
		strings.ToLower(username)+"@example.com", role)
	links := strings.Count(f.srv.stderr.String(), "/activate?token=")
	if resp, out := f.call(t, "POST", "/api/v1/administrators", body, nil); resp.StatusCode != 201 {
		t.Fatalf("invite %s: %d %s", username, resp.StatusCode, out)
	}
	// The outbox sends in the background: wait for this invitation's link.
	for deadline := time.Now().Add(10 * time.Second); strings.Count(f.srv.stderr.String(), "/activate?token=") == links; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no invitation email for %s", username)
		}
	}
	link := lastLink(t, f.srv, "/activate")
	token := link[strings.Index(link, "token=")+len("token="):]
	if a := postJSON(t, f.srv.base+"/api/v1/activation", `{"token":"`+token+`","password":"`+consolePassword+`"}`, ""); a.status != 200 {
		t.Fatalf("activation of %s: %d %v", username, a.status, a.body)
	}
	a, err := f.store.AdministratorByUsername(context.Background(), f.org.ID, username)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// signIn signs username in on the sign-in page: the console opens on the
// Administration page.
func (p *page) signIn(base, username string) {
	p.t.Helper()
	p.open(base + "/login/password?org=acme")
	p.submit("form", map[string]string{"#u": username, "#p": consolePassword})
	if loc := p.location(); loc != base+"/administrators" {
		p.t.Fatalf("signing in %s lands on %s, want /administrators: %s", username, loc, p.text("body"))
	}
}

// drawerShot saves the page with its drawer unrolled: the drawer
// scrolls on its own in a browser, so a screenshot of the viewport
// would cut it.
func (p *page) drawerShot(name string) {
	p.t.Helper()
	p.do("unroll the drawer", chromedp.Evaluate[chromedp.Void](`(() => { const d = document.getElementById("drawer");
		document.body.style.position = "relative"; d.style.position = "absolute"; d.style.bottom = "auto";
		d.style.minHeight = "100%"; d.style.overflow = "visible" })()`))
	p.shot(name)
}

// count is the number of elements sel matches.
func (p *page) count(sel string) int {
	p.t.Helper()
	q, _ := json.Marshal(sel)
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+string(q)+`).length`))
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}

// attr is the attribute name of the first element sel matches
// ("<absent>" when it has none; "<none>" when no element matches).
func (p *page) attr(sel, name string) string {
	p.t.Helper()
	q, _ := json.Marshal(sel)
	n, _ := json.Marshal(name)
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`(() => { const e = document.querySelector(`+string(q)+`);
		return e ? (e.getAttribute(`+string(n)+`) ?? "<absent>") : "<none>" })()`))
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

// forge posts a form from the page's own origin (the session's cookie,
// Sec-Fetch-Site: same-origin), as a person editing the page's HTML
// could: the answer's status.
func (p *page) forgeFetch(path string, form map[string]string) int {
	p.t.Helper()
	body, _ := json.Marshal(form)
	u, _ := json.Marshal(path)
	status, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](`fetch(`+string(u)+`, {method: "POST", redirect: "manual",
		body: new URLSearchParams(`+string(body)+`)}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("forged POST %s: %v", path, err)
	}
	return status
}

func (f *serveFixture) admin(t *testing.T, username string) store.Administrator {
	t.Helper()
	a, err := f.store.AdministratorByUsername(context.Background(), f.org.ID, username)
	if err != nil {
		t.Fatalf("%s: %v", username, err)
	}
	return a
}

func (f *serveFixture) administrators(t *testing.T) int {
	t.Helper()
	res, err := f.store.QueryAdministrators(context.Background(), f.org.ID, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Total
}

// TestConsoleAdministrators: a Super Administrator invites an
// administrator from Add New (bad input first: empty fields, a domain
// the organization has not registered, a username that differs only in
// case, each shown at its field with nothing added), sees them Pending
// in the list, edits them, deactivates and reactivates them, resends the
// invitation, sets a password (must change, email with access), reads
// the login history, and deletes them after a confirmation. A Super
// Administrator's own drawer says to contact support instead of
// offering Deactivate.
func TestConsoleAdministrators(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	activateOwner(t, f)
	base := f.srv.base

	p.signIn(base, "Jane.Doe")
	p.expect("h1", "Administrators")
	p.expect("table.admins", "Jane.Doe")
	p.expect("table.admins", "Last Login: 20")
	p.expect("#count", "1–1 of 1 administrators")
	p.shot("administrators")
	// / is the Administration page for a signed-in administrator.
	p.open(base + "/")
	if loc := p.location(); loc != base+"/administrators" {
		t.Fatalf("/ signed in shows %s", loc)
	}

	p.do("Add New", chromedp.Click(chromedp.CSS(`.admins-head a.button`)), chromedp.WaitVisible(chromedp.CSS(`#admin-new`)))
	if loc := p.location(); loc != base+"/administrators/new" {
		t.Fatalf("Add New opens %s", loc)
	}
	p.expect("#email-hint", "example.com")
	p.drawerShot("administrators-new")

	// Bad input, each at its field; nothing is added.
	before := f.administrators(t)
	p.do("no browser validation", chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("[required]").forEach(e => e.removeAttribute("required"))`))
	p.submit("#admin-new", map[string]string{"#first_name": "", "#last_name": "", "#email": "", "#username": ""})
	p.expect("#username-error", "username is required")
	p.expect(".drawer .note", "No administrator was added")
	form := map[string]string{"#first_name": "Sam", "#last_name": "Roe", "#email": "sam@elsewhere.org", "#username": "Sam.Roe"}
	p.submit("#admin-new", form)
	p.expect("#email-error", "not in a registered domain")
	p.expect("#email-error", "example.com")
	if v := p.attr("#first_name", "value"); v != "Sam" {
		t.Fatalf("a refused form lost its first name: %q", v)
	}
	p.drawerShot("administrators-new-errors")
	form["#email"], form["#username"] = "sam@example.com", "jane.doe"
	p.submit("#admin-new", form)
	p.expect("#username-error", `"Jane.Doe" is taken`)
	if n := f.administrators(t); n != before {
		t.Fatalf("refused invitations added administrators: %d, was %d", n, before)
	}

	form["#username"] = "Sam.Roe"
	p.do("language", chromedp.SetValue(chromedp.CSS(`#admin-new #language`), "ru"))
	p.submit("#admin-new", form)
	sam := f.admin(t, "Sam.Roe")
	if sam.Status != store.StatusPending || sam.Email != "sam@example.com" || sam.Role != store.RoleAdministrator || sam.Language != "ru" {
		t.Fatalf("invited: %+v", sam)
	}
	if loc := p.location(); !strings.HasPrefix(loc, base+"/administrators/"+sam.ID) {
		t.Fatalf("after the invitation: %s", loc)
	}
	p.expect(".drawer .done", "Invitation sent")
	p.expect("table.admins tbody tr:first-child", "Sam.Roe")
	p.expect("table.admins tbody tr:first-child", "Pending")
	p.expect("table.admins tbody tr:first-child", "Roe, Sam")
	p.drawerShot("administrators-view-pending")

	// Edit: a bad email is refused at its field and changes nothing; then
	// the names, phone and role are saved.
	p.submit("#admin-edit", map[string]string{"#email": "sam@elsewhere.org"})
	p.expect("#email-error", "not in a registered domain")
	if a := f.admin(t, "Sam.Roe"); a.Email != "sam@example.com" || a.Version != sam.Version {
		t.Fatalf("a refused edit changed Sam: %+v", a)
	}
	p.do("role", chromedp.SetValue(chromedp.CSS(`#role-select`), "Super Administrator"))
	p.do("role back", chromedp.SetValue(chromedp.CSS(`#role-select`), "Administrator"))
	p.do("language", chromedp.SetValue(chromedp.CSS(`#admin-edit #language`), "en"))
	p.submit("#admin-edit", map[string]string{"#email": "sam.rowe@example.com", "#last_name": "Rowe", "#phone": "+1 555 0100"})
	p.expect(".drawer .done", "Changes saved")
	if a := f.admin(t, "Sam.Roe"); a.FamilyName != "Rowe" || a.Email != "sam.rowe@example.com" || a.Phone != "+1 555 0100" || a.Language != "en" {
		t.Fatalf("edit: %+v", a)
	}
	p.expect("table.admins", "Rowe, Sam")

	// Resend, deactivate, reactivate (Pending again: the account was
	// never finished).
	p.submit("#admin-resend", nil)
	p.expect(".drawer .done", "new invitation was sent")
	p.submit("#admin-deactivate", nil)
	p.expect(".drawer .done", "deactivated")
	p.expect("tr.selected", "Deactivated")
	if a := f.admin(t, "Sam.Roe"); a.Status != store.StatusDeactivated {
		t.Fatalf("deactivate: %s", a.Status)
	}
	if p.count("#admin-deactivate") != 0 || p.count("#admin-reactivate") != 1 {
		t.Fatal("a deactivated administrator's drawer offers Deactivate, or not Reactivate")
	}
	p.drawerShot("administrators-view-deactivated")
	p.submit("#admin-reactivate", nil)
	p.expect(".drawer .done", "reactivated")
	if a := f.admin(t, "Sam.Roe"); a.Status != store.StatusPending {
		t.Fatalf("reactivate: %s", a.Status)
	}

	// Set password on an active administrator: a mismatch and a weak
	// password are refused at the field; then it is set, must be changed
	// at the next sign-in, and the email with access is queued.
	ann := inviteActive(t, f, "Ann.Lee", "Administrator")
	p.open(base + "/administrators/" + ann.ID)
	p.submit("#admin-password", map[string]string{"#password": "a new passphrase for Ann", "#confirm": "something else"})
	p.expect("#password-error", "differ")
	p.submit("#admin-password", map[string]string{"#password": "short", "#confirm": "short"})
	p.expect("#password-error", "shorter than")
	if a := postJSON(t, base+"/api/v1/session", `{"organization":"acme","username":"Ann.Lee","password":"`+consolePassword+`"}`, ""); a.status != 200 {
		t.Fatalf("after refused passwords Ann's own still signs in: %d %v", a.status, a.body)
	}
	p.do("send access", chromedp.Click(chromedp.CSS(`#admin-password input[name=send_access]`)))
	p.submit("#admin-password", map[string]string{"#password": "a new passphrase for Ann", "#confirm": "a new passphrase for Ann"})
	p.expect(".drawer .done", "Password set")
	if c, err := f.store.Credentials(context.Background(), f.org.ID, ann.ID); err != nil || !c.MustChangePassword {
		t.Fatalf("set password: must change %v, %v", c.MustChangePassword, err)
	}
	a := postJSON(t, base+"/api/v1/session", `{"organization":"acme","username":"Ann.Lee","password":"a new passphrase for Ann"}`, "")
	if code, _ := a.body["code"].(string); a.status == 401 || (a.status != 200 && code != "password_change_required") {
		t.Fatalf("the new password does not sign in: %d %v", a.status, a.body)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(f.srv.stderr.String(), "Your access to Acme"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no email with access was sent")
		}
	}

	// Login history: Jane's browser sign-in, readable.
	jane := f.admin(t, "Jane.Doe")
	p.open(base + "/administrators/" + jane.ID)
	p.expect("table.history", "Chrome")
	p.expect("table.history", "on Linux")
	p.expect("table.history", "Password")
	p.expect("table.history", "Signed in")
	p.expect(".drawer", "To deactivate a Super Administrator, contact support.")
	if p.count("#admin-deactivate") != 0 || p.count("#admin-password") != 1 {
		t.Fatal("a Super Administrator's own drawer: Deactivate shown, or Set password missing")
	}
	p.drawerShot("administrators-view-super")

	// Delete, after a confirmation of its own page.
	p.open(base + "/administrators/" + sam.ID)
	p.do("Delete", chromedp.Click(chromedp.CSS(`.drawer a.danger-outline`)), chromedp.WaitVisible(chromedp.CSS(`#admin-delete`)))
	p.expect("#drawer-title", "Delete this administrator?")
	p.expect(".drawer", "Sam.Roe")
	p.drawerShot("administrators-delete")
	if _, err := f.store.Administrator(context.Background(), f.org.ID, sam.ID); err != nil {
		t.Fatalf("the confirmation page deleted Sam: %v", err)
	}
	p.submit("#admin-delete", nil)
	p.expect("main .note", "deleted")
	if _, err := f.store.Administrator(context.Background(), f.org.ID, sam.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete: %v", err)
	}
	if strings.Contains(p.text("table.admins"), "Sam.Roe") {
		t.Fatal("the list still shows Sam")
	}
	// The link of a deleted administrator's drawer is a page, not a 404 of the mux.
	p.open(base + "/administrators/" + sam.ID)
	p.expect("h1", "Administrator not found")
}

// TestConsoleAdministratorsRoleRules: an Administrator sees no control a
// Super Administrator's rules keep from them, and a post forged from
// the page is refused by the server with the rule's message, changing
// nothing. A cross-site post is refused too.
func TestConsoleAdministratorsRoleRules(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	activateOwner(t, f)
	base := f.srv.base
	ann := inviteActive(t, f, "Ann.Lee", "Administrator")
	bob := inviteActive(t, f, "Bob.Ray", "Administrator")
	jane := f.admin(t, "Jane.Doe")

	p.signIn(base, "Ann.Lee")
	// Add New offers the Administrator role only.
	p.open(base + "/administrators/new")
	if n := p.count(`#role-select option`); n != 1 || p.attr(`#role-select option`, "value") != "Administrator" {
		t.Fatalf("an Administrator's Add New offers %d roles", n)
	}
	// Another Administrator: editable, but no Deactivate, Delete or Set password.
	p.open(base + "/administrators/" + bob.ID)
	p.expect("#drawer-title", "Ray, Bob")
	if p.count("#admin-edit button[type=submit]") != 1 || p.attr("#role-select", "disabled") != "" {
		t.Fatal("an Administrator cannot save another Administrator's details, or may change roles")
	}
	for _, sel := range []string{"#admin-deactivate", "#admin-reactivate", "#admin-password", ".drawer a.danger-outline", ".drawer button.danger-outline"} {
		if p.count(sel) != 0 {
			t.Errorf("an Administrator sees %s", sel)
		}
	}
	p.drawerShot("administrators-as-administrator")
	// A Super Administrator: read only, and it says so.
	p.open(base + "/administrators/" + jane.ID)
	if p.attr("#admin-edit fieldset", "disabled") == "<none>" || p.attr("#admin-edit fieldset", "disabled") != "" {
		t.Fatalf("an Administrator's edit form of a Super Administrator is not disabled: %q", p.attr("#admin-edit fieldset", "disabled"))
	}
	p.expect("#edit-off", "Only a Super Administrator may change a Super Administrator")
	p.expect(".drawer", "To deactivate a Super Administrator, contact support.")
	if p.count("#admin-password") != 0 || p.count("#admin-deactivate") != 0 {
		t.Fatal("an Administrator sees Set password or Deactivate on a Super Administrator")
	}

	// Forged posts from the same origin: refused, nothing changed.
	forged := []struct {
		path string
		form map[string]string
		want int
	}{
		{"/administrators/" + bob.ID + "/deactivate", nil, 403},
		{"/administrators/" + bob.ID + "/delete", nil, 403},
		{"/administrators/" + bob.ID + "/password", map[string]string{"password": "a password of theirs", "confirm": "a password of theirs"}, 403},
		{"/administrators/" + bob.ID, map[string]string{"first_name": "Bob", "last_name": "Ray", "email": "bob.ray@example.com", "role": "Super Administrator"}, 403},
		{"/administrators/" + jane.ID, map[string]string{"first_name": "Mallory", "last_name": "Doe", "email": "jane@example.com"}, 403},
		{"/administrators/" + jane.ID + "/password", map[string]string{"password": "a password of theirs", "confirm": "a password of theirs"}, 403},
		{"/administrators/new", map[string]string{"first_name": "Eve", "last_name": "Super", "email": "eve@example.com", "username": "Eve", "role": "Super Administrator"}, 403},
	}
	for _, fp := range forged {
		if got := p.forgeFetch(fp.path, fp.form); got != fp.want {
			t.Errorf("forged POST %s %v: %d, want %d", fp.path, fp.form, got, fp.want)
		}
	}
	if b := f.admin(t, "Bob.Ray"); b.Status != store.StatusActive || b.Role != store.RoleAdministrator || b.Version != bob.Version {
		t.Fatalf("forged posts changed Bob: %+v", b)
	}
	if j := f.admin(t, "Jane.Doe"); j.GivenName != jane.GivenName || j.Version != jane.Version {
		t.Fatalf("forged posts changed Jane: %+v", j)
	}
	if _, err := f.store.AdministratorByUsername(context.Background(), f.org.ID, "Eve"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a forged invitation of a Super Administrator: %v", err)
	}
	if a := postJSON(t, base+"/api/v1/session", `{"organization":"acme","username":"Bob.Ray","password":"a password of theirs"}`, ""); a.status == 200 {
		t.Fatal("a forged Set password changed Bob's password")
	}
	// The refusal, as a person submitting the forged form sees it: the
	// rule's message on the page.
	p.open(base + "/administrators/" + bob.ID)
	p.do("forge a Deactivate button", chromedp.Evaluate[chromedp.Void](`(() => { const f = document.createElement("form");
		f.method = "post"; f.id = "forged"; f.action = "/administrators/`+bob.ID+`/deactivate";
		f.innerHTML = "<button type=submit>Deactivate</button>"; document.querySelector(".drawer").append(f) })()`))
	p.submit("#forged", nil)
	p.expect(".drawer .alert", "Only a Super Administrator may deactivate or reactivate administrators")
	p.drawerShot("administrators-forged-refused")

	// A post from another site is refused before any rule.
	req, _ := http.NewRequest("POST", base+"/administrators/"+ann.ID+"/deactivate", nil)
	req.Header.Set("Origin", "http://attacker.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, body := do(t, req); resp.StatusCode != 403 || !strings.Contains(body, "another site") {
		t.Fatalf("cross-site POST: %d", resp.StatusCode)
	}
}

// TestConsoleAdministratorsSCIMLock: with SCIM on (the operator's
// command), the page says so in a banner and every manual lifecycle
// control is disabled with its reason; a post forged from the page is
// refused with the rule's message and changes nothing.
func TestConsoleAdministratorsSCIMLock(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	activateOwner(t, f)
	base := f.srv.base
	bob := inviteActive(t, f, "Bob.Ray", "Administrator")
	if r := gatehouse(t, f.env, "scim", "enable", "--org", "acme"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	p.signIn(base, "Jane.Doe")
	p.expect("#scim-banner", "SCIM is enabled for your organization: manage administrators in your identity provider")
	if p.attr(".admins-head button", "disabled") != "" {
		t.Fatal("Add New is not disabled while SCIM is on")
	}
	p.shot("administrators-scim")
	p.open(base + "/administrators/" + bob.ID)
	for _, sel := range []string{"#admin-edit fieldset", "#admin-deactivate button", ".drawer button.danger-outline"} {
		if v := p.attr(sel, "disabled"); v != "" {
			t.Errorf("%s while SCIM is on: disabled=%q", sel, v)
		}
	}
	p.expect("#locked-hint", "While SCIM is on")
	p.expect("#edit-off", "While SCIM is on")
	p.drawerShot("administrators-scim-view")

	for _, fp := range []struct {
		path string
		form map[string]string
	}{
		{"/administrators/" + bob.ID + "/deactivate", nil},
		{"/administrators/" + bob.ID + "/delete", nil},
		{"/administrators/" + bob.ID, map[string]string{"first_name": "Robert", "last_name": "Ray", "email": "bob.ray@example.com"}},
		{"/administrators/new", map[string]string{"first_name": "Eve", "last_name": "Lee", "email": "eve@example.com", "username": "Eve.Lee"}},
	} {
		if got := p.forgeFetch(fp.path, fp.form); got != http.StatusConflict {
			t.Errorf("forged POST %s while SCIM is on: %d, want 409", fp.path, got)
		}
	}
	if b := f.admin(t, "Bob.Ray"); b.Status != store.StatusActive || b.GivenName != "Bob" || b.Version != bob.Version {
		t.Fatalf("forged posts changed Bob while SCIM is on: %+v", b)
	}
	if _, err := f.store.AdministratorByUsername(context.Background(), f.org.ID, "Eve.Lee"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a forged invitation while SCIM is on: %v", err)
	}
	p.do("re-enable the form", chromedp.Evaluate[chromedp.Void](`document.querySelector("#admin-edit fieldset").disabled = false;
		document.querySelector("#admin-edit").insertAdjacentHTML("beforeend", "<button type=submit id=forged-save>Save</button>")`))
	p.submit("#admin-edit", map[string]string{"#first_name": "Robert"})
	p.expect(".drawer .alert", "SCIM is enabled for this organization")
	if b := f.admin(t, "Bob.Ray"); b.GivenName != "Bob" {
		t.Fatalf("a forged edit while SCIM is on: %+v", b)
	}
}

// TestConsoleAdministratorsTable: search, filters, sort and paging over
// a few hundred administrators, every state in the URL.
func TestConsoleAdministratorsTable(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	activateOwner(t, f)
	base := f.srv.base
	seedAdministrators(t, f.store, f.org.ID, 300)

	p.signIn(base, "Jane.Doe")
	p.expect("#count", "1–50 of 301 administrators")
	// The default order is the newest first.
	p.expect("table.admins tbody tr:first-child", "user0299")
	if s := p.attr(`th[aria-sort=descending] a`, "href"); !strings.Contains(s, "sort=created") {
		t.Fatalf("the sorted column: %q", s)
	}
	// Next pages carry the cursor; Previous comes back.
	p.do("next", chromedp.Click(chromedp.CSS(`a[rel=next]`)), chromedp.WaitReady(chromedp.CSS(`a[rel=prev]`)))
	if loc := p.location(); !strings.Contains(loc, "offset=50") || !strings.Contains(loc, "after=") {
		t.Fatalf("the next page's URL: %s", loc)
	}
	p.expect("#count", "51–100 of 301")
	p.expect("table.admins tbody tr:first-child", "user0249")
	p.do("next", chromedp.Click(chromedp.CSS(`a[rel=next]`)))
	p.expect("#count", "101–150 of 301")
	p.expect("table.admins tbody tr:first-child", "user0199")
	p.do("previous", chromedp.Click(chromedp.CSS(`a[rel=prev]`)))
	p.expect("#count", "51–100 of 301")
	p.shot("administrators-page-2")

	// Sort by username, ascending then descending, through the headers.
	p.open(base + "/administrators")
	p.do("sort", chromedp.Click(chromedp.CSS(`th:nth-child(2) a`)))
	p.expect("th[aria-sort=ascending]", "Username")
	p.expect("table.admins tbody tr:first-child", "Jane.Doe")
	p.do("sort desc", chromedp.Click(chromedp.CSS(`th:nth-child(2) a`)))
	p.expect("th[aria-sort=descending]", "Username")
	p.expect("table.admins tbody tr:first-child", "user0299")

	// Search (name, username or email, any case) keeps the sort; filters.
	p.submit("form[role=search]", map[string]string{"#q": "USER012"})
	p.expect("#count", "1–10 of 10")
	p.expect("table.admins tbody tr:first-child", "user0129")
	if loc := p.location(); !strings.Contains(loc, "q=USER012") || !strings.Contains(loc, "sort=username") {
		t.Fatalf("the search's URL: %s", loc)
	}
	p.submit("form[role=search]", map[string]string{"#q": "Family-7"})
	p.expect("#count", "of 30")
	p.open(base + "/administrators?status=Deactivated")
	p.expect("#count", "1–50 of 100")
	p.expect("table.admins tbody", "Deactivated")
	if strings.Contains(p.text("table.admins tbody"), "Pending") {
		t.Fatal("the Deactivated filter shows a Pending administrator")
	}
	p.open(base + "/administrators?role=Super+Administrator&status=Active")
	p.expect("#count", "1–1 of 1")
	p.expect("table.admins", "Jane.Doe")
	p.open(base + "/administrators?q=nobody-has-this")
	p.expect("#count", "No administrator matches")
	// A link with values the page does not know still opens a page.
	p.open(base + "/administrators?sort=nonsense&order=sideways&offset=-4&after=garbage&status=Gone")
	p.expect("#count", "of 301")
	p.open(base + "/administrators?offset=50&after=c1.2")
	p.expect("#count", "51–100 of 301")
	// The drawer keeps the table's state.
	p.open(base + "/administrators?q=user01&sort=email&order=asc")
	p.do("open a row", chromedp.Click(chromedp.CSS(`table.admins tbody tr:first-child td a`)), chromedp.WaitVisible(chromedp.CSS(`#drawer`)))
	if loc := p.location(); !strings.Contains(loc, "q=user01") || !strings.Contains(loc, "sort=email") {
		t.Fatalf("the drawer's URL lost the table's state: %s", loc)
	}
	if href := p.attr(".drawer-close", "href"); !strings.Contains(href, "q=user01") {
		t.Fatalf("the drawer's close link: %s", href)
	}
	p.drawerShot("administrators-search-drawer")
}

// seedAdministrators adds n administrators fast (one transaction):
// username userNNNN, family name Family-(N mod 10), a third each
// Active, Pending and Deactivated.
func seedAdministrators(t testing.TB, s *store.SQL, org string, n int) {
	t.Helper()
	as := make([]store.Administrator, n)
	statuses := []store.Status{store.StatusActive, store.StatusPending, store.StatusDeactivated}
	for i := range as {
		as[i] = store.Administrator{OrgID: org, UserName: fmt.Sprintf("user%04d", i), Email: fmt.Sprintf("user%04d@example.com", i),
			GivenName: fmt.Sprintf("Given%d", i), FamilyName: fmt.Sprintf("Family-%d", i%10), Role: store.RoleAdministrator,
			Status: statuses[i%3]}
	}
	ctx := store.WithActor(context.Background(), store.Actor{Kind: store.ActorOperator, Name: "test"})
	if err := s.CreateAdministrators(ctx, as); err != nil {
		t.Fatal(err)
	}
}
