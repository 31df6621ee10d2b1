package saml_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/google/uuid"

	"gatehouse/admin"
	"gatehouse/admin/web"
	"gatehouse/sso"
	"gatehouse/sso/fetch"
	"gatehouse/sso/protocol"
	"gatehouse/sso/saml"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// ssppFlow is gatehouse's sign-in flow on a real HTTP server, wired as
// serve wires it (Manager's connectors and SP metadata), and a
// SimpleSAMLphp that knows gatehouse only from the SP metadata URL.
type ssppFlow struct {
	st      *store.SQL
	idp     *saml.SSPPIdP
	srv     *httptest.Server
	org     store.Org
	conn    store.SSOConnection
	manager *sso.Manager
	signIn  *admin.SignIn
}

func newSSPPFlow(t *testing.T, adjust ...func(*saml.SSPPOptions)) *ssppFlow {
	t.Helper()
	saml.SSPPRequire(t)
	ctx := storetest.Context(context.Background())
	st := storetest.SQLite(t)
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)

	org, owner, _, err := (&admin.Orgs{Store: st, BaseURL: srv.URL}).Create(ctx, admin.OrgSpec{Slug: "acme", Name: "Acme",
		Owner: admin.OwnerSpec{UserName: "owner", Email: "owner@acme.test", GivenName: "O", FamilyName: "O"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateAdministrator(ctx, org.ID, owner.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.Status = store.StatusActive; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateAdministrator(ctx, store.Administrator{OrgID: org.ID, UserName: "Alice", Email: "alice@acme.test",
		GivenName: "A", FamilyName: "E", Role: store.RoleAdministrator, Status: store.StatusActive}); err != nil {
		t.Fatal(err)
	}

	// The connection and the flow first, with stand-in IdP metadata:
	// SimpleSAMLphp reads the SP metadata from the start (the SP
	// metadata needs no IdP's); then the IdP's real metadata.
	id := uuid.NewString()
	key := make([]byte, admin.SecretKeySize)
	rand.Read(key)
	sealer, _ := admin.NewSealer(key)
	certPEM, keyPEM, err := saml.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	standIn := saml.NewTestKeyPair(t, "stand-in")
	config := func(md, mdURL string) store.RawJSON {
		cfg, _ := json.Marshal(map[string]any{"idpMetadataXml": md, "idpMetadataUrl": mdURL,
			"metadataFetchedAt": time.Now().UTC(), "spCertificate": certPEM})
		return cfg
	}
	conn, err := st.CreateSSOConnection(ctx, store.SSOConnection{ID: id, OrgID: org.ID, Kind: store.SSOSAML, Name: "SimpleSAMLphp",
		Enabled: true, UsernameFrom: "nameid", Config: config(saml.TestIdPMetadata("https://stand-in.test", "https://stand-in.test/sso",
			crewjam.HTTPRedirectBinding, standIn.Cert()), ""), Secret: sealer.Seal(keyPEM, protocol.SealContext(id))})
	if err != nil {
		t.Fatal(err)
	}
	m := &sso.Manager{Store: st, Sealer: sealer, BaseURL: srv.URL, Fetch: fetch.NewClient(fetch.Options{AllowLoopback: true})}
	signIn := &admin.SignIn{Store: st, Sealer: sealer}
	mux := http.NewServeMux()
	(&sso.Flow{Store: st, SignIn: signIn, BaseURL: srv.URL, New: m.NewConnector, Metadata: m.Metadata}).Register(mux)
	h = mux

	opts := saml.SSPPDefaults(t, "", srv.URL+saml.ACSPath(id), "")
	opts.SPMetadataURL = srv.URL + saml.SPMetadataPath(id)
	for _, fn := range adjust {
		fn(&opts)
	}
	idp := saml.StartSimpleSAMLphpWith(t, opts)
	md, err := fetch.Get(ctx, fetch.NewClient(fetch.Options{AllowLoopback: true}), idp.MetadataURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err = st.UpdateSSOConnection(ctx, org.ID, id, func(c *store.SSOConnection) error {
		c.Config = config(string(md), idp.MetadataURL)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return &ssppFlow{st: st, idp: idp, srv: srv, org: org, conn: conn, manager: m, signIn: signIn}
}

// signIn runs an SP-initiated sign-in as a browser would: /sso/start
// (with extra cookies), SimpleSAMLphp's login form, the POST to the ACS.
func (f *ssppFlow) signInAs(t *testing.T, query, user, password string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", f.srv.URL+"/sso/start/"+f.conn.ID+query, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	res, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), f.idp.BaseURL+"/") {
		t.Fatalf("start: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	samlResponse, relay := f.idp.Login(t, res.Header.Get("Location"), user, password)
	res, err = browser.PostForm(f.srv.URL+saml.ACSPath(f.conn.ID), url.Values{"SAMLResponse": {samlResponse}, "RelayState": {relay}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// SimpleSAMLphp reads gatehouse's SP metadata from its URL, as served,
// and accepts the signed AuthnRequest it describes: an SP-initiated
// sign-in ends in a session. With the old validUntil="0001-01-01..."
// SimpleSAMLphp refused every request ("Metadata for the entity ...
// expired ... seconds ago").
func TestSimpleSAMLphpReadsServedSPMetadata(t *testing.T) {
	f := newSSPPFlow(t)
	res, body := f.signInAs(t, "?next=/console", "Alice", "password")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console" || sessionCookie(res) == "" {
		t.Fatalf("ACS: %d %q\n%s", res.StatusCode, res.Header.Get("Location"), body)
	}
	if _, a, err := f.signIn.Authenticate(context.Background(), sessionCookie(res)); err != nil || a.UserName != "Alice" {
		t.Fatalf("session of %q, %v", a.UserName, err)
	}
}

// A test sign-in through SimpleSAMLphp that is refused before the match
// (SHA-1 signatures, which the connection does not allow) shows the
// reason on the test page and keeps it as the test's result.
func TestSimpleSAMLphpTestSignInShowsRefusal(t *testing.T) {
	f := newSSPPFlow(t, func(o *saml.SSPPOptions) { o.SignatureAlgorithm = "http://www.w3.org/2000/09/xmldsig#rsa-sha1" })
	ctx := storetest.Context(context.Background())
	owner, err := f.st.AdministratorByUsername(ctx, f.org.ID, "owner")
	if err != nil {
		t.Fatal(err)
	}
	session, err := f.signIn.SSO(ctx, owner, store.SignInSAML, "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	res, body := f.signInAs(t, "?test=1", "Alice", "password", &http.Cookie{Name: web.SessionCookie, Value: session.Token})
	const reason = "uses the SHA-1 signature algorithm rsa-sha1, which this connection refuses"
	if res.StatusCode != http.StatusOK || !strings.Contains(html.UnescapeString(body), "No sign-in: the Response uses the SHA-1") ||
		!strings.Contains(html.UnescapeString(body), reason) {
		t.Fatalf("test page: %d\n%s", res.StatusCode, body)
	}
	results, err := f.manager.TestResults(ctx, admin.Principal{OrgID: f.org.ID, Role: store.RoleSuperAdministrator}, f.conn.ID)
	if err != nil || len(results) != 1 || !strings.Contains(string(results[0]), reason) {
		t.Fatalf("test results %s, %v", results, err)
	}
}
