package saml_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/crewjam/saml/samlidp"
	"golang.org/x/crypto/bcrypt"

	"gatehouse/admin"
	"gatehouse/sso"
	"gatehouse/sso/fetch"
	"gatehouse/sso/saml"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// TestFlowWithSAMLIdP is a whole browser-less sign-in through gatehouse's
// HTTP endpoints and crewjam's samlidp: /login finds the organization by
// its registered domain and sends the browser to the IdP, the IdP's
// answer comes back to the ACS, and the IdP user "Alice" signs in only as
// the administrator "Alice", never as "alice".
func TestFlowWithSAMLIdP(t *testing.T) {
	ctx := storetest.Context(context.Background())
	s := storetest.SQLite(t)
	var gh http.Handler
	ghSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { gh.ServeHTTP(w, r) }))
	t.Cleanup(ghSrv.Close)

	// The identity provider, with its user "Alice".
	kp := saml.NewTestKeyPair(t, "samlidp")
	var idpH http.Handler
	idpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { idpH.ServeHTTP(w, r) }))
	t.Cleanup(idpSrv.Close)
	u, _ := url.Parse(idpSrv.URL)
	idp, err := samlidp.New(samlidp.Options{URL: *u, Key: kp.Key(), Certificate: kp.Cert(), Store: &samlidp.MemoryStore{}, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	idpH = idp
	hash, _ := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err := idp.Store.Put("/users/Alice", samlidp.User{Name: "Alice", HashedPassword: hash, Email: "alice@acme.test"}); err != nil {
		t.Fatal(err)
	}

	// gatehouse: an organization with the domain acme.test and "alice".
	org, _, _, err := (&admin.Orgs{Store: s, BaseURL: ghSrv.URL}).Create(ctx, admin.OrgSpec{Slug: "acme", Name: "Acme", Domains: []string{"acme.test"},
		Owner: admin.OwnerSpec{UserName: "owner", Email: "owner@acme.test", GivenName: "O", FamilyName: "O"}})
	if err != nil {
		t.Fatal(err)
	}
	newAdmin := func(name string) store.Administrator {
		a, err := s.CreateAdministrator(ctx, store.Administrator{OrgID: org.ID, UserName: name, Email: name + "@acme.test",
			GivenName: "A", FamilyName: "L", Role: store.RoleAdministrator, Status: store.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	lower := newAdmin("alice")
	key := make([]byte, admin.SecretKeySize)
	rand.Read(key)
	sealer, _ := admin.NewSealer(key)
	m := &sso.Manager{Store: s, Sealer: sealer, BaseURL: ghSrv.URL, Fetch: fetch.NewClient(fetch.Options{AllowLoopback: true})}
	super := admin.Principal{OrgID: org.ID, Role: store.RoleSuperAdministrator, Actor: store.Actor{Kind: store.ActorOperator, Name: "test"}}
	sha1 := true // samlidp signs with rsa-sha1
	view, err := m.Create(ctx, super, admin.SSOConnectionSpec{Kind: store.SSOSAML, Name: "samlidp", IdPMetadataURL: idpSrv.URL + "/metadata",
		UsernameFrom: "attribute:uid", AllowSHA1: &sha1})
	if err != nil {
		t.Fatal(err)
	}
	signIn := &admin.SignIn{Store: s, Sealer: sealer}
	mux := http.NewServeMux()
	(&sso.Flow{Store: s, SignIn: signIn, BaseURL: ghSrv.URL, New: m.NewConnector, Metadata: m.Metadata}).Register(mux)
	gh = mux

	// The IdP learns the SP from gatehouse's SP metadata endpoint.
	res, err := http.Get(view.Endpoints["spMetadataUrl"])
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("SP metadata: %v %v", res, err)
	}
	spMD, _ := io.ReadAll(res.Body)
	res.Body.Close()
	req, _ := http.NewRequest("PUT", idpSrv.URL+"/services/gatehouse", bytes.NewReader(spMD))
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("register SP: %v %v", res, err)
	}

	signInAsAlice := func() *http.Response {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := browser.PostForm(ghSrv.URL+"/login", url.Values{"username": {"someone@acme.test"}, "next": {"/console"}})
		if err != nil || res.StatusCode/100 != 3 || !strings.HasPrefix(res.Header.Get("Location"), idpSrv.URL+"/sso?") {
			t.Fatalf("/login: %v %v", res.Header.Get("Location"), err)
		}
		login := saml.TestFormValues(t, saml.TestReadPage(t)(browser.Get(res.Header.Get("Location"))))
		login.Set("user", "Alice")
		login.Set("password", "correct horse")
		answer := saml.TestFormValues(t, saml.TestReadPage(t)(browser.PostForm(idpSrv.URL+"/sso", login)))
		res, err = browser.PostForm(ghSrv.URL+saml.ACSPath(view.ID), answer)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := signInAsAlice(); res.StatusCode != http.StatusForbidden || sessionCookie(res) != "" {
		t.Fatalf("Alice signed in as alice: %d", res.StatusCode)
	}
	// Usernames are unique whatever their case: the administrator becomes
	// "Alice", and now the IdP's "Alice" matches.
	alice, err := s.UpdateAdministrator(ctx, org.ID, lower.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.UserName = "Alice"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	res = signInAsAlice()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console" || sessionCookie(res) == "" {
		t.Fatalf("Alice: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if _, a, err := signIn.Authenticate(ctx, sessionCookie(res)); err != nil || a.ID != alice.ID {
		t.Fatalf("session is %+v, %v; want Alice", a, err)
	}
	hist, _ := s.LoginHistory(ctx, org.ID, alice.ID, 5, 0)
	if len(hist) != 1 || hist[0].Method != store.SignInSAML || hist[0].Result != store.LoginSuccess {
		t.Fatalf("history %+v", hist)
	}
}
