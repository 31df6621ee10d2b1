package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"gatehouse/store"
)

// TestConsolePagesWeighUnder100KB: every page of the console, served by
// gatehouse serve with full content (a table page of 50 administrators
// with a drawer open, 50 audit entries, the API reference, keys and
// tokens), weighs under 100 KB with its stylesheet and script; the
// console has no images but the QR code, a data: URL inside the page.
func TestConsolePagesWeighUnder100KB(t *testing.T) {
	f := newServeFixture(t, nil)
	token := f.link[strings.Index(f.link, "token=")+len("token="):]
	if a := postJSON(t, f.srv.base+"/api/v1/activation", `{"token":"`+token+`","password":"`+consolePassword+`"}`, ""); a.status != 200 {
		t.Fatalf("activation: %d %v", a.status, a.body)
	}
	jane := f.admin(t, "Jane.Doe")
	for i := range 60 {
		body := fmt.Sprintf(`{"username":"user.%02d","firstName":"Firstname%02d","lastName":"Lastname%02d","email":"user.%02d@example.com","phone":"+1 555 01%02d"}`, i, i, i, i, i)
		if resp, out := f.call(t, "POST", "/api/v1/administrators", body, nil); resp.StatusCode != 201 {
			t.Fatalf("invite: %d %s", resp.StatusCode, out)
		}
	}
	for i := range 3 {
		f.call(t, "POST", "/api/v1/api-keys", fmt.Sprintf(`{"name":"key %d","role":"Administrator"}`, i), nil)
		f.call(t, "POST", "/api/v1/scim/tokens", fmt.Sprintf(`{"description":"token %d"}`, i), nil)
	}
	logEntry := seedSCIMLog(t, f)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	res, err := client.Post(f.srv.base+"/api/v1/session", "application/json",
		strings.NewReader(`{"organization":"acme","username":"Jane.Doe","password":"`+consolePassword+`"}`))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("sign-in: %v %v", res, err)
	}
	res.Body.Close()

	get := func(path string) (int, string) {
		res, err := client.Get(f.srv.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	assets := 0
	for _, a := range []string{"/assets/console.css", "/assets/console.js"} {
		code, body := get(a)
		if code != 200 || len(body) < 500 {
			t.Fatalf("%s: %d, %d bytes", a, code, len(body))
		}
		assets += len(body)
	}
	for _, path := range []string{"/administrators", "/administrators/new", "/administrators/" + jane.ID + "?sort=email",
		"/preferences/user", "/preferences/organization", "/preferences/sso", "/preferences/sso/new/saml", "/preferences/ldap",
		"/preferences/api", "/preferences/api/reference", "/audit", "/account/password", "/account/two-factor",
		"/preferences/scim-log", "/preferences/scim-log/" + logEntry} {
		code, body := get(path)
		if code != 200 || !strings.Contains(body, `<main id="main"`) {
			t.Fatalf("%s: %d\n%s", path, code, body)
		}
		if total := len(body) + assets; total > 100_000 {
			t.Errorf("%s weighs %d bytes (HTML %d, CSS and JS %d), want under 100 KB (100,000 bytes)", path, total, len(body), assets)
		} else {
			t.Logf("%-40s %6d bytes (HTML %d)", path, total, len(body))
		}
	}
	// The signed-out pages.
	client.Jar, _ = cookiejar.New(nil)
	for _, path := range []string{"/login", "/login/password?org=acme", "/forgot-password", "/activate?token=x"} {
		_, body := get(path)
		if total := len(body) + assets; total > 100_000 || !strings.Contains(body, "</html>") {
			t.Errorf("%s weighs %d bytes", path, total)
		}
	}
}

// TestConsoleFitsA360PixelScreen: every page of the console, with
// content in its tables, fits a 360-pixel-wide phone without sideways
// scrolling (the narrowest width).
func TestConsoleFitsA360PixelScreen(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	for i := range 3 {
		body := fmt.Sprintf(`{"username":"a.rather.long.username.%d","firstName":"Maximiliana%d","lastName":"Oberhauser-Wittgenstein","email":"maximiliana.oberhauser.wittgenstein.%d@example.com"}`, i, i, i)
		if resp, out := f.call(t, "POST", "/api/v1/administrators", body, nil); resp.StatusCode != 201 {
			t.Fatalf("invite: %d %s", resp.StatusCode, out)
		}
	}
	f.call(t, "POST", "/api/v1/api-keys", `{"name":"deployment pipeline key","role":"Administrator"}`, nil)
	f.call(t, "POST", "/api/v1/scim/tokens", `{"description":"Okta production provisioning"}`, nil)
	_, out := f.call(t, "POST", "/api/v1/oidc-clients", `{"name":"The billing and invoicing application","redirectUris":["https://billing.a-rather-long-subdomain.example.com/oauth2/callback"],"postLogoutRedirectUris":["https://billing.a-rather-long-subdomain.example.com/signed-out"]}`, nil)
	var app struct{ ID string }
	json.Unmarshal([]byte(out), &app)
	logEntry := seedSCIMLog(t, f)
	signInOwner(t, p, f)
	jane := f.admin(t, "Jane.Doe")
	// A login-history entry with a long location (the drawer's Location
	// column, shown with --geoip-db).
	if _, err := f.store.RecordSignIn(store.WithActor(context.Background(), store.System), store.SignInAttempt{OrgID: jane.OrgID, AdministratorID: jane.ID,
		At: time.Now(), Method: store.SignInPassword, IP: "2001:db8:85a3:8d3:1319:8a2e:370:7348", Result: store.LoginInvalidPassword,
		Location: store.Location{CountryCode: "GB", Country: map[string]string{"en": "United Kingdom of Great Britain and Northern Ireland"},
			City: map[string]string{"en": "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch"}}}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/preferences/scim-log", "/preferences/scim-log/" + logEntry,
		"/administrators", "/administrators/new", "/administrators/" + jane.ID,
		"/administrators/" + jane.ID + "/delete", "/preferences/user", "/preferences/organization",
		"/preferences/sso", "/preferences/sso/new/saml", "/preferences/ldap", "/preferences/sso/new/oidc", "/preferences/api",
		"/preferences/api/reference", "/audit", "/account/password", "/account/two-factor", "/nope",
		"/preferences/applications", "/preferences/applications/" + app.ID, "/preferences/applications/" + app.ID + "/delete"} {
		p.open(f.srv.base + path)
		fits(t, p, 360)
	}
	p.open(f.srv.base + "/administrators")
	p.submit("header form", nil)
	for _, path := range []string{"/login", "/login/password?org=acme", "/forgot-password", "/activate?token=x"} {
		p.open(f.srv.base + path)
		fits(t, p, 360)
	}
}
