package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"gatehouse/admin/directory/slapdtest"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// The console's LDAP tab in a real browser, against a real gatehouse
// serve and a real slapd: the connection set (a refusal first), tested,
// an administrator marked as an LDAP user, who then signs in on the
// console's password page with the directory's password; the tab fits
// 360 pixels.
func TestConsoleLDAP(t *testing.T) {
	ctx := browser(t)
	srv := slapdtest.Start(t)
	cfg := srv.Config()
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	signInOwner(t, p, f)
	if _, err := f.store.CreateAdministrator(storetest.Context(context.Background()), store.Administrator{OrgID: f.org.ID, UserName: "alice",
		Email: "alice@example.com", Role: store.RoleAdministrator, Status: store.StatusActive}); err != nil {
		t.Fatal(err)
	}

	p.open(f.srv.base + "/preferences/ldap")
	p.expect("h2#settings-h", "LDAP connection")
	fits(t, p, 360)
	settings := map[string]string{"#url": cfg.URL, "#bind_dn": cfg.BindDN, "#bind_password": cfg.BindPassword,
		"#base_dn": cfg.BaseDN, "#filter": "(uid=%s)", "#attribute": "uid"}
	// The CA's PEM is set as the textarea's value (typing its line
	// breaks key by key is slow and adds nothing).
	setCA := chromedp.Evaluate[chromedp.Void](`document.querySelector("#ca").value = ` + jsString(srv.CAPEM))
	p.do("CA", setCA)
	p.submit("#settings form", settings)
	p.expect(".alert", "{username}")
	if _, err := f.store.LDAPConnection(context.Background(), f.org.ID); err == nil {
		t.Fatal("a refused setting was stored")
	}
	p.do("CA", setCA)
	settings["#filter"] = cfg.UserFilter
	p.submit("#settings form", settings)
	p.expect("main .note", "Saved")
	p.submit("#test form", map[string]string{"#test-username": "alice"})
	p.expect("#test-result", "uid=alice,ou=people")
	fits(t, p, 360)
	p.submit("#test form", map[string]string{"#test-username": "ALICE"})
	p.expect("#test-result", "Not found")
	p.submit("#users form.form", map[string]string{"#ldap-username": "nobody"})
	p.expect("#users .field-error", "matched exactly")
	p.submit("#users form.form", map[string]string{"#ldap-username": "alice"})
	p.expect("#users", "alice")
	if n := strings.Count(p.text("#users ul"), "alice"); n != 1 {
		t.Fatalf("LDAP users list: %q", p.text("#users ul"))
	}
	p.shot("ldap")

	// bob, invited (Pending) and marked, activates with the directory's
	// password, typed once.
	if resp, out := f.call(t, "POST", "/api/v1/administrators",
		`{"username":"bob","firstName":"Bob","lastName":"Directory","email":"bob@example.com"}`, nil); resp.StatusCode != 201 {
		t.Fatalf("invite: %d %s", resp.StatusCode, out)
	}
	p.submit("#users form.form", map[string]string{"#ldap-username": "bob"})
	p.expect("#users", "bob")
	p.submit("header form", nil)
	p.open(lastLink(t, f.srv, "/activate"))
	p.expect("main", "directory (LDAP) password")
	p.submit("form", map[string]string{"#password": "not bob's"})
	p.expect("#password-error", "incorrect")
	p.submit("form", map[string]string{"#password": "bob-password"})
	if loc := p.location(); loc != f.srv.base+"/administrators" {
		t.Fatalf("bob's activation lands on %s: %s", loc, p.text("body"))
	}

	// alice signs in with the directory's password.
	p.submit("header form", nil)
	p.open(f.srv.base + "/login/password?org=acme")
	p.submit("form", map[string]string{"#u": "alice", "#p": "wrong password"})
	p.expect("main", "incorrect")
	p.submit("form", map[string]string{"#u": "alice", "#p": "alice-password"})
	if loc := p.location(); loc != f.srv.base+"/administrators" {
		t.Fatalf("alice's sign-in lands on %s: %s", loc, p.text("body"))
	}
}

func jsString(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`", "$", "\\$").Replace(s) + "`"
}
