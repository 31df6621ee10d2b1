package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gatehouse/store"
)

// The console's Preferences → Organization and → API tabs and its audit
// log, in Chromium against gatehouse serve: what a Super Administrator
// changes there holds through the API and SCIM, what an Administrator
// only reads, and the log of it all.

// signInOwner activates the fixture's owner (Jane.Doe, Super
// Administrator) through the link org create printed: the browser is
// then signed in as her.
func signInOwner(t *testing.T, p *page, f *serveFixture) {
	t.Helper()
	p.open(f.link)
	p.submit("form", map[string]string{"#password": consolePassword, "#confirm": consolePassword})
	if loc := p.location(); loc != f.srv.base+"/administrators" {
		t.Fatalf("activation lands on %s: %s", loc, p.text("body"))
	}
}

// eval runs a script in the page and returns its value.
func eval[T any](t *testing.T, p *page, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// forge posts a form built by a script on the console's own origin (what
// a person editing the page, or a stale page, sends), and waits for the
// answer.
func (p *page) forge(action string, fields map[string]string) {
	p.t.Helper()
	b, _ := json.Marshal(fields)
	a, _ := json.Marshal(action)
	p.do("forge "+action,
		chromedp.Evaluate[chromedp.Void](`document.documentElement.dataset.old = "1"; (() => { const f = document.createElement("form");
			f.method = "post"; f.action = `+string(a)+`;
			for (const [k, v] of Object.entries(`+string(b)+`)) { const i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v; f.append(i); }
			document.body.append(f); f.submit(); })()`),
		chromedp.WaitReady(chromedp.CSS(`html:not([data-old])`)), chromedp.WaitReady(chromedp.CSS(`body`)))
}

func (f *serveFixture) orgNow(t *testing.T) store.Org {
	t.Helper()
	o, err := f.store.Org(context.Background(), f.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (f *serveFixture) scimTokens(t *testing.T) []store.SCIMToken {
	t.Helper()
	ts, err := f.store.SCIMTokens(context.Background(), f.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func (f *serveFixture) apiKeys(t *testing.T) []store.APIKey {
	t.Helper()
	ks, err := f.store.APIKeys(context.Background(), f.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// bearerStatus is the status of GET path with the secret as bearer,
// waiting up to ten seconds for want (SCIM caches a verified token for a
// few seconds).
func bearerStatus(t *testing.T, f *serveFixture, path, secret string, want int) {
	t.Helper()
	got := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		resp, _ := get(t, f.srv.base+path, map[string]string{"Authorization": "Bearer " + secret})
		if got = resp.StatusCode; got == want {
			return
		}
	}
	t.Fatalf("GET %s with the secret: %d, want %d", path, got, want)
}

// TestConsoleOrgSCIM: a Super Administrator on the Organization tab reads
// the registered domains, turns the organization-wide two-factor
// requirement on and off, is refused a SCIM token without a description
// or with a nonsense expiry (nothing made), creates one (shown once, in
// the answer to the form, never in a URL), turns SCIM on through its
// confirmation (then the API's invite is refused: the lock holds), uses
// the token on /scim/v2/Users, revokes it through its confirmation (then
// it is refused), designates the Super Administrator group, and finds
// all of it in the audit log, whose filters narrow it.
func TestConsoleOrgSCIM(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	signInOwner(t, p, f)

	p.open(f.srv.base + "/preferences/organization")
	p.expect("h1", "Preferences")
	p.expect(".tabs [aria-current=page]", "Organization")
	p.expect(".domain-list", "example.com")
	p.expect("main", "Contact support to change your registered domains.")
	p.expect("#scim-base-url", f.srv.base+"/scim/v2")
	p.shot("org")

	// Two-factor for the whole organization, on and off.
	p.submit(`form[action="/preferences/organization/two-factor"]`, nil)
	p.expect("main", "The two-factor requirement is saved.")
	p.expect("#twofactor-state", "Required")
	if !f.orgNow(t).RequireTOTP {
		t.Fatal("two-factor is not required after the switch")
	}
	p.shot("org-two-factor-on")
	p.submit(`form[action="/preferences/organization/two-factor"]`, nil)
	p.expect("main", "The two-factor requirement is saved.")
	if f.orgNow(t).RequireTOTP {
		t.Fatal("two-factor is still required after switching it off")
	}

	// Bad input: shown at its field, and no token is made.
	const tokenForm = `form[action="/preferences/organization/scim-tokens"]`
	p.submit(tokenForm, map[string]string{"#description": ""})
	p.expect("#description-error", "Describe the token")
	p.expect(".note", "Nothing was changed.")
	p.do("a nonsense expiry", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("#expiry");
		s.add(new Option("forever and a day", "forever")); s.value = "forever"; })()`))
	p.submit(tokenForm, map[string]string{"#description": "Okta production"})
	p.expect("#expiry-error", "Choose how long it stays valid")
	if v := eval[string](t, p, `document.querySelector("#description").value`); v != "Okta production" {
		t.Fatalf("the refused form lost its description: %q", v)
	}
	if ts := f.scimTokens(t); len(ts) != 0 {
		t.Fatalf("refused forms made %d SCIM tokens", len(ts))
	}
	p.shot("org-token-errors")

	// A token: shown once, in the answer to the form.
	p.do("expiry 30 days", chromedp.SetValue(chromedp.CSS("#expiry"), "30"))
	p.submit(tokenForm, map[string]string{"#description": "Okta production"})
	p.expect("#new-token", "Your new SCIM token")
	secret := strings.TrimSpace(p.text("#new-secret"))
	if !strings.HasPrefix(secret, "gh_scim_") {
		t.Fatalf("the new token reads %q", secret)
	}
	if loc := p.location(); strings.Contains(loc, secret) || strings.Contains(loc, "gh_scim_") {
		t.Fatalf("the token is in the URL %s", loc)
	}
	p.expect("table.list", "Okta production")
	ts := f.scimTokens(t)
	if len(ts) != 1 || ts[0].Description != "Okta production" || ts[0].ExpiresAt == nil ||
		ts[0].ExpiresAt.Sub(time.Now()) < 29*24*time.Hour || ts[0].ExpiresAt.Sub(time.Now()) > 31*24*time.Hour {
		t.Fatalf("tokens after creating one: %+v", ts)
	}
	p.shot("org-token-created")
	p.open(f.srv.base + "/preferences/organization")
	if body := p.text("body"); strings.Contains(body, secret) {
		t.Fatal("the token's secret is shown again")
	}
	p.expect("table.list", ts[0].Prefix)
	if strings.Contains(f.srv.stderr.String(), secret) {
		t.Fatal("the token's secret is in serve's log")
	}

	// SCIM on, through its confirmation.
	p.submit(`form[action="/preferences/organization/scim"]`, nil)
	p.expect("h1", "Turn SCIM on?")
	p.expect("main", "locks inviting, editing, deactivating and reactivating administrators by hand")
	if f.orgNow(t).SCIMEnabled {
		t.Fatal("SCIM is on before the confirmation")
	}
	p.shot("org-scim-confirm")
	p.submit("main form", nil)
	p.expect("main", "The SCIM setting is saved.")
	p.expect("#scim-state", "On")
	if !f.orgNow(t).SCIMEnabled {
		t.Fatal("SCIM is off after the confirmation")
	}
	p.shot("org-scim-on")
	// The lock holds on the API.
	resp, body := f.call(t, "POST", "/api/v1/administrators", `{"username":"Sam.Roe","firstName":"Sam","lastName":"Roe","email":"sam@example.com"}`, nil)
	if problemCode(resp, body) != "scim_enabled" {
		t.Fatalf("invite while SCIM is on: %d %s", resp.StatusCode, body)
	}

	// The token works on SCIM; revoked, it is refused.
	bearerStatus(t, f, "/scim/v2/Users", secret, 200)
	p.submit(`form[action$="/revoke"]`, nil)
	p.expect("h1", "Revoke this SCIM token?")
	p.expect("main", "Okta production")
	p.shot("org-token-revoke-confirm")
	if f.scimTokens(t)[0].RevokedAt != nil {
		t.Fatal("the token is revoked before the confirmation")
	}
	p.submit("main form", nil)
	p.expect("main", "The SCIM token is revoked")
	p.expect("table.list", "Revoked")
	if f.scimTokens(t)[0].RevokedAt == nil {
		t.Fatal("the token is not revoked after the confirmation")
	}
	bearerStatus(t, f, "/scim/v2/Users", secret, 401)

	// The Super Administrator group: a name with a control character is
	// refused at its field (forged: a browser does not type one), then a
	// good one is saved.
	p.forge("/preferences/organization/super-admin-group", map[string]string{"group": "Admins\u0007"})
	p.expect("#group-error", "control characters")
	if g := f.orgNow(t).SuperAdminGroup; g != "" {
		t.Fatalf("a refused group name was saved: %q", g)
	}
	p.submit(`form[action="/preferences/organization/super-admin-group"]`, map[string]string{"#group": "Gatehouse Admins"})
	p.expect("main", "The Super Administrator group is saved.")
	p.expect("main", "Current group: Gatehouse Admins")
	if g := f.orgNow(t).SuperAdminGroup; g != "Gatehouse Admins" {
		t.Fatalf("super administrator group %q", g)
	}
	p.shot("org-done")

	// A form on another site turning SCIM off: refused, SCIM stays on.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/preferences/organization/scim"><input type="hidden" name="enabled" value="off"><button type="submit">Win</button></form>`, f.srv.base)
	}))
	t.Cleanup(evil.Close)
	p.open(evil.URL)
	p.submit("form", nil)
	p.expect("h1", "Form refused")
	if !f.orgNow(t).SCIMEnabled {
		t.Fatal("a cross-site form turned SCIM off")
	}

	// The audit log shows what this test did, who did it and what changed.
	p.open(f.srv.base + "/audit")
	p.expect("h1", "Audit log")
	p.expect("main", "SCIM token created")
	p.expect("main", "SCIM token revoked")
	p.expect("main", "Organization preferences changed")
	p.expect(".audit-entry .audit-actor", "Jane.Doe")
	p.shot("audit")
	// The SCIM switch's entry reads as a change from no to yes.
	scim := eval[string](t, p, `[...document.querySelectorAll(".diff tr")].map(r => r.innerText.replace(/\s+/g, " ").trim()).find(s => s.startsWith("SCIM ")) || ""`)
	if scim != "SCIM no yes" {
		t.Fatalf("the SCIM switch's entry reads %q, want \"SCIM no yes\"", scim)
	}
	all := eval[int](t, p, `document.querySelectorAll(".audit-entry").length`)

	// Filters narrow it: one action; one actor.
	p.do("filter by action", chromedp.SetValue(chromedp.CSS("#action"), "scim_token.revoke"))
	p.submit("form.audit-filters", nil)
	p.expect(".audit-entry", "SCIM token revoked")
	if n := eval[int](t, p, `document.querySelectorAll(".audit-entry").length`); n != 1 {
		t.Fatalf("filtered by the revoke action: %d entries, want 1", n)
	}
	if !strings.Contains(p.location(), "action=scim_token.revoke") {
		t.Fatalf("the filter is not in the URL: %s", p.location())
	}
	p.shot("audit-filtered")
	p.open(f.srv.base + "/audit?actor=Jane.Doe")
	mine := eval[[]string](t, p, `[...document.querySelectorAll(".audit-entry .audit-actor")].map(e => e.textContent.trim())`)
	if len(mine) == 0 || len(mine) >= all {
		t.Fatalf("filtered by Jane.Doe: %d of %d entries", len(mine), all)
	}
	for _, a := range mine {
		if a != "Jane.Doe" {
			t.Fatalf("filtered by Jane.Doe, an entry by %q", a)
		}
	}
	p.open(f.srv.base + "/audit?from=2026-02-30")
	p.expect("#from-error", "Give a date such as")
	p.open(f.srv.base + "/audit?from=2001-01-01&to=2001-01-31")
	p.expect("main", "No entry matches these filters.")
}

// TestConsoleAPIKeys: a Super Administrator on the API tab is refused a
// key without a name (nothing made), creates one with a role and an
// expiry (shown once) that then works on /api/v1/me with that role, sees
// it listed with its creator and last use, revokes it through its
// confirmation (then it is refused); the audit log pages through many
// entries as the API does; and the API reference lists every path of
// the OpenAPI document.
func TestConsoleAPIKeys(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	signInOwner(t, p, f)
	before := len(f.apiKeys(t))

	p.open(f.srv.base + "/preferences/api")
	p.expect(".tabs [aria-current=page]", "API")
	p.expect("table.list", "test") // the fixture's key, made by the operator
	p.shot("api")

	const keyForm = `form[action="/preferences/api/keys"]`
	p.submit(keyForm, map[string]string{"#name": ""})
	p.expect("#name-error", "API key name is required")
	p.do("a nonsense expiry", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("#expiry");
		s.add(new Option("-3 days", "-3")); s.value = "-3"; })()`))
	p.submit(keyForm, map[string]string{"#name": "Terraform"})
	p.expect("#expiry-error", "Choose how long it stays valid")
	if n := len(f.apiKeys(t)); n != before {
		t.Fatalf("refused forms made %d keys", n-before)
	}
	p.shot("api-errors")

	p.do("expiry 90 days", chromedp.SetValue(chromedp.CSS("#expiry"), "90"))
	p.submit(keyForm, map[string]string{"#name": "Terraform"})
	p.expect("#new-key", "Your new API key")
	secret := strings.TrimSpace(p.text("#new-secret"))
	if !strings.HasPrefix(secret, "gh_key_") || strings.Contains(p.location(), secret) {
		t.Fatalf("the new key reads %q at %s", secret, p.location())
	}
	p.shot("api-key-created")
	resp, body := get(t, f.srv.base+"/api/v1/me", map[string]string{"Authorization": "Bearer " + secret})
	if resp.StatusCode != 200 || !strings.Contains(body, `"role":"Administrator"`) {
		t.Fatalf("the new key on /api/v1/me: %d %s", resp.StatusCode, body)
	}
	ks := f.apiKeys(t)
	i := slices.IndexFunc(ks, func(k store.APIKey) bool { return k.Name == "Terraform" })
	if i < 0 || ks[i].CreatedBy != "Jane.Doe" || ks[i].Role != store.RoleAdministrator || ks[i].ExpiresAt == nil {
		t.Fatalf("keys: %+v", ks)
	}
	p.open(f.srv.base + "/preferences/api")
	terraform := eval[string](t, p, `[...document.querySelectorAll("table.list tbody tr")].map(r => r.innerText).find(s => s.includes("Terraform")) || ""`)
	// Its creator, its role, and its use just now (last used and expiry
	// both dates: no "Never").
	if !strings.Contains(terraform, "Jane.Doe") || !strings.Contains(terraform, "Administrator") || strings.Contains(terraform, "Never") {
		t.Fatalf("the key's row: %q", terraform)
	}
	if strings.Contains(p.text("body"), secret) {
		t.Fatal("the key's secret is shown again")
	}

	// Revoke, through its confirmation.
	p.submit(`form[action="/preferences/api/keys/`+ks[i].ID+`/revoke"]`, nil)
	p.expect("h1", "Revoke this API key?")
	p.expect("main", "Terraform")
	p.shot("api-key-revoke-confirm")
	p.submit("main form", nil)
	p.expect("main", "The API key is revoked")
	resp, _ = get(t, f.srv.base+"/api/v1/me", map[string]string{"Authorization": "Bearer " + secret})
	if resp.StatusCode != 401 {
		t.Fatalf("the revoked key on /api/v1/me: %d", resp.StatusCode)
	}

	// The API reference: every operation of the document, no more.
	p.open(f.srv.base + "/preferences/api")
	p.do("open the reference", chromedp.Click(chromedp.CSS(`a[href="/preferences/api/reference"]`)), chromedp.WaitVisible(chromedp.CSS(".ref-group")))
	p.expect("h1", "Preferences")
	p.expect(".ref-toc", "API reference")
	raw, err := os.ReadFile(filepath.Join("..", "..", "admin", "api", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var want []string
	for path, item := range doc.Paths {
		for m := range item {
			if m != "parameters" {
				want = append(want, strings.ToUpper(m)+" /api/v1"+path)
			}
		}
	}
	sort.Strings(want)
	got := eval[[]string](t, p, `[...document.querySelectorAll(".op-sig")].map(e => e.textContent.replace(/\s+/g, " ").trim())`)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("the reference lists\n%v\nthe document has\n%v", got, want)
	}
	p.expect("#post-administrators", "username")                 // a request body's fields
	p.expect("#get-administrators", "Substring of the username") // a parameter
	p.shot("api-reference")

	// Paging through the log as the API does: 60 more keys.
	for i := 0; i < 60; i++ {
		if resp, body := f.call(t, "POST", "/api/v1/api-keys", `{"name":"batch"}`, nil); resp.StatusCode != 201 {
			t.Fatalf("key %d: %d %s", i, resp.StatusCode, body)
		}
	}
	p.open(f.srv.base + "/audit?action=api_key.")
	first := eval[[]string](t, p, `[...document.querySelectorAll(".audit-entry")].map(e => e.id)`)
	if len(first) != 30 {
		t.Fatalf("the first page holds %d entries, want 30", len(first))
	}
	p.do("older", chromedp.Click(chromedp.CSS(`.pager a[href*="before="]`)), chromedp.WaitVisible(chromedp.CSS(`.pager a[href="/audit?action=api_key."]`)))
	second := eval[[]string](t, p, `[...document.querySelectorAll(".audit-entry")].map(e => e.id)`)
	// 63 key entries: the fixture's key, the Terraform key's create and
	// revoke, 60 more; pages of 30.
	if len(second) != 30 || slices.ContainsFunc(second, func(id string) bool { return slices.Contains(first, id) }) {
		t.Fatalf("the second page: %d entries %v", len(second), second)
	}
	if !strings.Contains(p.location(), "action=api_key.") {
		t.Fatalf("the next page lost the filter: %s", p.location())
	}
	p.shot("audit-page-2")
}

// TestConsoleOrgAdministratorReadsOnly: an Administrator reads the
// Organization tab without its controls, and a forged form of each
// Super Administrator action is refused with the rule's message and
// changes nothing.
func TestConsoleOrgAdministratorReadsOnly(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	if resp, body := f.call(t, "POST", "/api/v1/administrators", `{"username":"Sam.Roe","firstName":"Sam","lastName":"Roe","email":"sam@example.com","role":"Administrator"}`, nil); resp.StatusCode != 201 {
		t.Fatalf("invite: %d %s", resp.StatusCode, body)
	}
	p.open(lastLink(t, f.srv, "/activate"))
	p.submit("form", map[string]string{"#password": consolePassword, "#confirm": consolePassword})
	if loc := p.location(); loc != f.srv.base+"/administrators" {
		t.Fatalf("activation lands on %s: %s", loc, p.text("body"))
	}

	p.open(f.srv.base + "/preferences/organization")
	p.expect("main", "Only a Super Administrator can change the organization's preferences")
	p.expect(".domain-list", "example.com")
	p.expect("main", "Only a Super Administrator can see and manage SCIM tokens.")
	if n := eval[int](t, p, `document.querySelectorAll("main form").length`); n != 0 {
		t.Fatalf("an Administrator is offered %d forms on the Organization tab", n)
	}
	p.shot("org-administrator")

	before := f.orgNow(t)
	for _, forged := range []struct {
		action string
		fields map[string]string
	}{
		{"/preferences/organization/scim", map[string]string{"enabled": "on", "confirm": "yes"}},
		{"/preferences/organization/scim", map[string]string{"enabled": "on"}},
		{"/preferences/organization/two-factor", map[string]string{"require": "on"}},
		{"/preferences/organization/super-admin-group", map[string]string{"group": "Everyone"}},
		{"/preferences/organization/scim-tokens", map[string]string{"description": "mine", "expiry": "30"}},
		{"/preferences/api/keys", map[string]string{"name": "mine", "role": "Super Administrator", "expiry": ""}},
	} {
		p.open(f.srv.base + "/preferences/organization")
		p.forge(forged.action, forged.fields)
		p.expect(".alert", "Super Administrator may")
		p.expect("main", "Nothing was changed.")
	}
	p.shot("org-administrator-refused")
	after := f.orgNow(t)
	if after.SCIMEnabled != before.SCIMEnabled || after.RequireTOTP != before.RequireTOTP || after.SuperAdminGroup != before.SuperAdminGroup || after.Version != before.Version {
		t.Fatalf("an Administrator's forged forms changed the organization: %+v → %+v", before, after)
	}
	if ts := f.scimTokens(t); len(ts) != 0 {
		t.Fatalf("an Administrator made %d SCIM tokens", len(ts))
	}
	if ks := f.apiKeys(t); len(ks) != 1 {
		t.Fatalf("an Administrator made API keys: %d keys", len(ks))
	}
	p.open(f.srv.base + "/preferences/api")
	p.expect("main", "Only a Super Administrator can see and manage API keys.")
	p.expect("main", "Read the API reference")
	p.open(f.srv.base + "/preferences/api/reference")
	p.expect(".ref-toc", "API reference")

	// In Russian, the tab and the log read in Russian.
	p.do("Russian", chromedp.Evaluate[chromedp.Void](`document.cookie = "gatehouse_lang=ru; path=/"`))
	p.open(f.srv.base + "/preferences/organization")
	p.expect("#domains", "Зарегистрированные домены")
	p.expect("main", "Чтобы изменить зарегистрированные домены, обратитесь в службу поддержки.")
	p.shot("org-administrator-ru")
	p.open(f.srv.base + "/audit")
	p.expect(".audit-list", "Приглашение принято")
	p.shot("audit-ru")
	p.do("English", chromedp.Evaluate[chromedp.Void](`document.cookie = "gatehouse_lang=en; path=/"`))

	// Every administrator reads the audit log.
	p.open(f.srv.base + "/audit")
	p.expect("main", "Invitation accepted")
	resp, _ := get(t, f.srv.base+"/audit", nil)
	if resp.StatusCode != http.StatusOK { // signed out: the sign-in page, after a redirect
		t.Fatalf("/audit signed out: %d", resp.StatusCode)
	}
}
