package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleProvisioningLog: Preferences → Provisioning log in Chromium
// against gatehouse serve: a Super Administrator finds it beside the
// Organization tab, reads the IdP's requests with their errors, filters
// them by status and username, opens an entry whose bodies show no
// password, in English and Russian, on a 360-pixel screen; an
// Administrator is neither offered the tab nor shown the page.
func TestConsoleProvisioningLog(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	inviteActive(t, f, "Sam.Roe", "Administrator") // before SCIM locks inviting
	if r := gatehouse(t, f.env, "scim", "enable", "--org", "acme"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := gatehouse(t, f.env, "scim", "token", "create", "--org", "acme", "--description", "Okta")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	token := strings.TrimSpace(r.stdout)
	scim := func(method, path, body string) int {
		req, _ := http.NewRequest(method, f.srv.base+"/scim/v2"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, _ := do(t, req)
		return resp.StatusCode
	}
	if st := scim("POST", "/Users", `{"userName":"okta.user@example.com","password":"Console-secret-1","name":{"givenName":"Okta","familyName":"User"}}`); st != 201 {
		t.Fatalf("create: %d", st)
	}
	if st := scim("POST", "/Users", `{"userName":"okta.user@example.com","Password":"Console-secret-2"}`); st != 409 {
		t.Fatalf("clash: %d", st)
	}
	if st := scim("GET", "/Users?filter="+strings.ReplaceAll(`userName eq "nobody"`, " ", "%20"), ""); st != 200 {
		t.Fatalf("list: %d", st)
	}
	waitWritten(t, f.srv.base, 3)

	signInOwner(t, p, f)
	p.open(f.srv.base + "/preferences/organization")
	p.expect(".tabs", "Provisioning log")
	p.expect("#scim-log-link", "the provisioning log")
	p.do("follow the link", chromedp.Click(chromedp.CSS(`#scim-log-link a`)), chromedp.WaitReady(chromedp.CSS(`#scim-log-title`)))
	p.expect(".scim-log", "POST /scim/v2/Users")
	p.expect(".scim-log", "uniqueness")
	p.expect(".scim-log", `userName eq "nobody"`)
	p.expect(".scim-log", "okta.user@example.com")
	if n := eval[int](t, p, `document.querySelectorAll(".scim-log tbody tr").length`); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
	fits(t, p, 360)
	p.shot("scim-log")

	p.submit("form.audit-filters", map[string]string{"#status": "4xx"})
	if n := eval[int](t, p, `document.querySelectorAll(".scim-log tbody tr").length`); n != 1 {
		t.Fatalf("4xx: %d rows, want 1", n)
	}
	p.expect(".scim-log", "409")
	p.submit("form.audit-filters", map[string]string{"#status": "", "#userName": "OKTA.USER@EXAMPLE.COM"})
	p.expect("#scim-log-empty", "No request matches these filters.")
	p.submit("form.audit-filters", map[string]string{"#status": "4x", "#userName": ""})
	p.expect("#status-error", "Give an HTTP status such as 404")
	resp, _ := get(t, f.srv.base+"/preferences/scim-log?status=4x", nil)
	if resp.StatusCode != http.StatusOK { // signed out: the sign-in page
		t.Fatalf("signed out: %d", resp.StatusCode)
	}

	// The create's entry, on its own page: the bodies, the password
	// redacted.
	p.open(f.srv.base + "/preferences/scim-log?status=201")
	p.do("open the entry", chromedp.Click(chromedp.CSS(`.scim-log tbody tr a`)), chromedp.WaitReady(chromedp.CSS(`#entry-title`)))
	p.expect("#entry-status", "201")
	p.expect("#request-body", `"password": "[redacted]"`)
	p.expect("#response-body", `"userName": "okta.user@example.com"`)
	if body := p.text("body"); strings.Contains(body, "Console-secret") || strings.Contains(body, token) {
		t.Fatal("the entry page shows a secret")
	}
	fits(t, p, 360)
	p.shot("scim-log-entry")
	p.do("back", chromedp.Evaluate[chromedp.Void](`document.documentElement.dataset.old = "1"`),
		chromedp.Click(chromedp.CSS(`.prefs-section > p > a`)), chromedp.WaitReady(chromedp.CSS(`html:not([data-old]) #scim-log-title`)))
	if v := eval[string](t, p, `document.querySelector("#status").value`); v != "201" {
		t.Fatalf("back to the list filtered %q, want 201", v)
	}

	p.do("Russian", chromedp.Evaluate[chromedp.Void](`document.cookie = "gatehouse_lang=ru; path=/"`))
	if c := eval[string](t, p, `document.cookie`); !strings.Contains(c, "gatehouse_lang=ru") {
		t.Fatalf("cookies %q", c)
	}
	p.open(f.srv.base + "/preferences/scim-log")
	p.expect("#scim-log-title", "Журнал провизионирования")
	if th := eval[string](t, p, `document.querySelector(".scim-log thead th:nth-child(4)").textContent`); th != "Пользователь или группа" {
		t.Fatalf("the column reads %q in Russian", th)
	}
	fits(t, p, 360)
	p.shot("scim-log-ru")
	p.do("English", chromedp.Evaluate[chromedp.Void](`document.cookie = "gatehouse_lang=en; path=/"`))

	// An Administrator: no tab, and the page refuses.
	p.forge("/logout", map[string]string{})
	p.signIn(f.srv.base, "Sam.Roe")
	p.open(f.srv.base + "/preferences/organization")
	if n := eval[int](t, p, `document.querySelectorAll('.tabs a[href="/preferences/scim-log"]').length`); n != 0 {
		t.Fatal("an Administrator is offered the provisioning log")
	}
	p.open(f.srv.base + "/preferences/scim-log")
	p.expect("main", "Only a Super Administrator may read the provisioning log.")
	if strings.Contains(p.text("body"), "okta.user@example.com") {
		t.Fatal("an Administrator reads the log")
	}
}
