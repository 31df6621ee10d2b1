package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// TestConsoleApplications: on Preferences → Applications in Chromium
// against gatehouse serve, a Super Administrator is refused a bad
// redirect URI at its field (nothing made), registers an application
// (its secret shown once, in the answer to the form, never in a URL),
// copies what to paste into it, edits it, makes a new secret through a
// confirmation (the old one stops), disables and enables it, and deletes
// it through a confirmation. The operator's shared application is
// read-only for them; forms forged on the console's own origin against
// it or another organization's application are refused and change
// nothing, a cross-site form too; an Administrator sees no application.
func TestConsoleApplications(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	base := f.srv.base
	clients := &admin.OIDCClients{Store: f.store}
	bg := context.Background()
	r := gatehouse(t, f.env, "oidc", "client", "create", "--name", "Shared Portal", "--redirect-uri", "https://portal.example/cb")
	shared := strings.SplitN(r.stdout, "\n", 2)[0]
	if r := gatehouse(t, f.env, orgArgs("beta")...); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r = gatehouse(t, f.env, "oidc", "client", "create", "--name", "Beta Only", "--redirect-uri", "https://beta.example/cb", "--org", "beta")
	betaApp := strings.SplitN(r.stdout, "\n", 2)[0]
	if shared == "" || betaApp == "" {
		t.Fatal("fixture: no applications")
	}
	count := func() int {
		list, err := f.store.OIDCClients(bg)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	ann := inviteActive(t, f, "Ann.Lee", "Administrator")
	signInOwner(t, p, f)

	p.open(base + "/preferences/applications")
	p.expect(".tabs [aria-current=page]", "Applications")
	p.expect("main table", "Shared Portal")
	if strings.Contains(p.text("main"), "Beta Only") {
		t.Fatal("another organization's application is listed")
	}
	p.shot("applications")

	// Bad input: shown at its field, the form kept, nothing made.
	const newForm = `form[action="/preferences/applications"]`
	p.submit(newForm, map[string]string{"#app-name": "Billing", "#redirect_uris": "http://billing.example/cb"})
	p.expect("#redirect_uris-error", "loopback")
	p.expect(".note", "Nothing was changed.")
	if v := eval[string](t, p, `document.querySelector("#app-name").value`); v != "Billing" {
		t.Fatalf("the refused form lost its name: %q", v)
	}
	if n := count(); n != 2 {
		t.Fatalf("a refused form made an application: %d", n)
	}
	p.shot("applications-refused")

	// Registered: the secret once, and what to paste.
	p.submit(newForm, map[string]string{"#app-name": "Billing", "#redirect_uris": "https://billing.example/cb\nhttp://127.0.0.1:8000/cb",
		"#post_logout_redirect_uris": "https://billing.example/bye", "#backchannel_logout_uri": "https://billing.example/bcl"})
	p.expect("main", "The application is registered.")
	secret := strings.TrimSpace(p.text("#new-secret"))
	id := strings.TrimSpace(p.text("#app-client-id"))
	p.expect("#app-discovery", base+"/.well-known/openid-configuration")
	p.expect("#app-issuer", base)
	if !strings.HasPrefix(secret, admin.OIDCClientSecretPrefix) || p.count(`[data-copy="app-client-id"]`) != 1 || p.count(`[data-copy="new-secret"]`) != 1 {
		t.Fatalf("the new application shows secret %q, copy buttons missing?", secret)
	}
	if loc := p.location(); strings.Contains(loc, secret) || strings.Contains(loc, admin.OIDCClientSecretPrefix) {
		t.Fatalf("the secret is in the URL %s", loc)
	}
	if err := clients.Authenticate(bg, id, secret); err != nil {
		t.Fatalf("the shown secret: %v", err)
	}
	x, err := f.store.OIDCClient(bg, id)
	if err != nil || !slices.Equal(x.RedirectURIs, []string{"https://billing.example/cb", "http://127.0.0.1:8000/cb"}) ||
		!slices.Equal(x.PostLogoutRedirectURIs, []string{"https://billing.example/bye"}) || x.AllOrgs || !slices.Equal(x.OrgIDs, []string{f.org.ID}) {
		t.Fatalf("the registered application: %+v, %v", x, err)
	}
	p.shot("application-created")
	p.open(base + "/preferences/applications/" + id)
	if strings.Contains(p.text("body"), secret) {
		t.Fatal("the secret is shown again")
	}
	if strings.Contains(f.srv.stderr.String(), secret) {
		t.Fatal("the secret is in serve's log")
	}

	// Edit: a bad post-logout URI at its field, then saved.
	const editForm = `form[action^="/preferences/applications/"][class="form"]`
	p.submit(editForm, map[string]string{"#post_logout_redirect_uris": "https://billing.example/bye#x"})
	p.expect("#post_logout_redirect_uris-error", "fragment")
	p.submit(editForm, map[string]string{"#app-name": "Billing 2", "#post_logout_redirect_uris": "https://billing.example/bye\nhttps://billing.example/bye?lang=ru"})
	p.expect("main", "Saved.")
	if x, _ := f.store.OIDCClient(bg, id); x.Name != "Billing 2" || len(x.PostLogoutRedirectURIs) != 2 || len(x.RedirectURIs) != 2 {
		t.Fatalf("after the edit: %+v", x)
	}

	// A new secret, through its confirmation.
	p.submit(`form[action$="/secret"]`, nil)
	p.expect("h1", "Make a new secret?")
	p.shot("application-secret-confirm")
	if err := clients.Authenticate(bg, id, secret); err != nil {
		t.Fatalf("the secret changed before the confirmation: %v", err)
	}
	p.submit("main form", nil)
	p.expect("main", "The application has a new secret")
	rotated := strings.TrimSpace(p.text("#new-secret"))
	if err := clients.Authenticate(bg, id, secret); err == nil {
		t.Fatal("the old secret works after the new one was made")
	}
	if err := clients.Authenticate(bg, id, rotated); err != nil {
		t.Fatalf("the new secret: %v", err)
	}

	// Disable, enable.
	p.open(base + "/preferences/applications/" + id)
	p.submit(`form[action$="/disable"]`, nil)
	p.expect("main", "The application is disabled")
	if err := clients.Authenticate(bg, id, rotated); err == nil {
		t.Fatal("a disabled application's secret works")
	}
	p.submit(`form[action$="/enable"]`, nil)
	p.expect("main", "The application is enabled again.")

	// The shared application: read only; forged forms refused.
	p.open(base + "/preferences/applications/" + shared)
	p.expect("main", "only support (the gatehouse operator) changes it")
	if n := p.count(`main form`); n != 0 {
		t.Fatalf("the shared application's page has %d forms", n)
	}
	before := storetest.TakeSnapshot(t, f.store)
	edit := map[string]string{"name": "Mine now", "redirect_uris": "https://evil.example/cb"}
	for _, fp := range []struct {
		path string
		form map[string]string
		want int
	}{
		{"/preferences/applications/" + shared, edit, 403},
		{"/preferences/applications/" + shared + "/secret", map[string]string{"confirm": "yes"}, 403},
		{"/preferences/applications/" + shared + "/secret", nil, 403},
		{"/preferences/applications/" + shared + "/disable", nil, 403},
		{"/preferences/applications/" + shared + "/delete", map[string]string{"confirm": "yes"}, 403},
		{"/preferences/applications/" + betaApp, edit, 404},
		{"/preferences/applications/" + betaApp + "/secret", map[string]string{"confirm": "yes"}, 404},
		{"/preferences/applications/" + betaApp + "/disable", nil, 404},
		{"/preferences/applications/" + betaApp + "/delete", map[string]string{"confirm": "yes"}, 404},
	} {
		if got := p.forgeFetch(fp.path, fp.form); got != fp.want {
			t.Errorf("forged POST %s %v: %d, want %d", fp.path, fp.form, got, fp.want)
		}
	}
	p.open(base + "/preferences/applications/" + betaApp)
	p.expect("main", "not found")
	storetest.AssertUnchanged(t, f.store, before)

	// A form on another site deleting the application: refused.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/preferences/applications/%s/delete"><input type="hidden" name="confirm" value="yes"><button type="submit">Win</button></form>`, base, id)
	}))
	t.Cleanup(evil.Close)
	p.open(evil.URL)
	p.submit("form", nil)
	p.expect("h1", "Form refused")
	if _, err := f.store.OIDCClient(bg, id); err != nil {
		t.Fatalf("a cross-site form deleted the application: %v", err)
	}

	// Delete, through its confirmation.
	p.open(base + "/preferences/applications/" + id)
	p.do("open the deletion", chromedp.Click(chromedp.CSS(`main a[href$="/delete"]`)))
	p.expect("h1", "Delete this application?")
	p.expect("main", "Billing 2")
	p.shot("application-delete-confirm")
	if _, err := f.store.OIDCClient(bg, id); err != nil {
		t.Fatalf("deleted before the confirmation: %v", err)
	}
	p.submit("main form", nil)
	p.expect("main", "The application is deleted")
	if _, err := f.store.OIDCClient(bg, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after the confirmation: %v", err)
	}
	log, _ := f.store.AuditLog(bg, store.ServerAudit, store.AuditQuery{TargetID: id})
	if len(log) != 6 || log[0].ActorName != "Jane.Doe" || log[len(log)-1].ActorName != "Jane.Doe" {
		t.Fatalf("audit of the application: %+v", log)
	}

	// The organization's audit log has its application's history too.
	p.open(base + "/audit")
	p.expect("main", "Application registered")
	p.expect("main", "Application changed")
	p.expect("main", "Application deleted")
	if strings.Contains(p.text("main"), "Shared Portal") || strings.Contains(p.text("main"), "Beta Only") {
		t.Fatal("the organization's audit log shows applications it does not own")
	}
	p.shot("applications-audit")

	// An Administrator: no application, and a forged registration refused.
	p.open(base + "/administrators")
	p.submit("header form", nil)
	p.signIn(base, ann.UserName)
	p.open(base + "/preferences/applications")
	p.expect("main", "Only a Super Administrator can see and manage applications.")
	if strings.Contains(p.text("main"), "Shared Portal") {
		t.Fatal("an Administrator sees the applications")
	}
	n := count()
	if got := p.forgeFetch("/preferences/applications", map[string]string{"name": "Ann's", "redirect_uris": "https://ann.example/cb"}); got != 403 {
		t.Errorf("an Administrator's forged registration: %d, want 403", got)
	}
	if got := p.forgeFetch("/preferences/applications/"+shared+"/disable", nil); got != 403 {
		t.Errorf("an Administrator's forged disable: %d, want 403", got)
	}
	if count() != n {
		t.Fatal("an Administrator's forged form registered an application")
	}
}
