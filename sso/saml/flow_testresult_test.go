package saml_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	dsig "github.com/russellhaering/goxmldsig"

	"gatehouse/admin"
	"gatehouse/admin/web"
	"gatehouse/sso"
	"gatehouse/sso/protocol"
	"gatehouse/sso/saml"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// testFlowEnv is a SAML connection behind the Flow's HTTP endpoints, with
// a signed-in Super Administrator to run tests.
type testFlowEnv struct {
	*saml.TestEnv
	srv     *httptest.Server
	manager *sso.Manager
	super   admin.Principal
	session string // the Super Administrator's session cookie
}

func newTestFlowEnv(t *testing.T) *testFlowEnv {
	t.Helper()
	e := saml.NewTestEnv(t)
	ctx := storetest.Context(context.Background())
	o, err := e.Store().AdministratorByUsername(ctx, e.Org().ID, "owner")
	if err != nil {
		t.Fatalf("owner: %v", err)
	}
	owner, err := e.Store().UpdateAdministrator(ctx, e.Org().ID, o.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.Status = store.StatusActive; return nil })
	if err != nil {
		t.Fatal(err)
	}
	signIn := &admin.SignIn{Store: e.Store(), Sealer: e.Sealer()}
	res, err := signIn.SSO(ctx, owner, store.SignInSAML, "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&sso.Flow{Store: e.Store(), SignIn: signIn, BaseURL: "http://127.0.0.1",
		New: func(context.Context, store.SSOConnection) (protocol.Connector, error) { return e.Connector(), nil }}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testFlowEnv{TestEnv: e, srv: srv, manager: &sso.Manager{Store: e.Store()},
		super: admin.Principal{OrgID: e.Org().ID, Role: store.RoleSuperAdministrator}, session: res.Token}
}

// startTest starts a test sign-in in browser and returns the request ID.
func (e *testFlowEnv) startTest(t *testing.T, browser *http.Client) string {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/sso/start/"+e.Conn().ID+"?test=1", nil)
	req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: e.session})
	res, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	id := loc.Query().Get("RelayState")
	if res.StatusCode != http.StatusSeeOther || id == "" {
		t.Fatalf("test start: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	return id
}

func (e *testFlowEnv) postACS(t *testing.T, browser *http.Client, doc []byte, relayState string) (*http.Response, string) {
	t.Helper()
	return postForm(t, browser, e.srv.URL+saml.ACSPath(e.Conn().ID), url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}, "RelayState": {relayState}})
}

// A test sign-in refused before the match — certificate, audience,
// Destination, time, signature algorithm, a document that does not even
// parse — shows the exact reason on the test page, and keeps it as the
// test's result, where the management API reads it. Outside a test, or
// from another browser, the same refusal shows only a reference.
func TestSAMLTestSignInShowsEveryRefusal(t *testing.T) {
	e := newTestFlowEnv(t)
	evil := saml.NewTestKeyPair(t, "evil")
	for _, tc := range []struct {
		name   string
		answer func(m *saml.TestMint) []byte
		reason string
	}{
		{"certificate not in metadata", func(m *saml.TestMint) []byte { m.Signer = evil; return m.Bytes() }, "not a signing certificate in the IdP metadata"},
		{"audience", func(m *saml.TestMint) []byte {
			now := time.Now()
			m.ConditionsXML = saml.TestConditions(now.Add(-time.Minute), now.Add(5*time.Minute), "https://other.example/sp")
			return m.Bytes()
		}, "does not include this SP"},
		{"destination", func(m *saml.TestMint) []byte { m.Destination = "https://evil.example/acs"; return m.Bytes() }, "Destination"},
		{"time", func(m *saml.TestMint) []byte {
			m.IssueInstant, m.AssertionIssueInstant = time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour)
			return m.Bytes()
		}, "IssueInstant expired"},
		{"signature algorithm", func(m *saml.TestMint) []byte { m.SigAlg = dsig.RSASHA1SignatureMethod; return m.Bytes() }, "SHA-1"},
		{"unsigned", func(m *saml.TestMint) []byte { m.SignAssertion = false; return m.Bytes() }, "neither the Response nor its Assertion is signed"},
		{"not parsed", func(*saml.TestMint) []byte { return []byte(`<!DOCTYPE x [<!ENTITY a "b">]><x/>`) }, "DOCTYPE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			browser := browserClient()
			id := e.startTest(t, browser)
			doc := tc.answer(e.Mint(id))

			// Another browser posting the tester's answer gets a
			// reference, and writes no result.
			res, body := e.postACS(t, browserClient(), doc, id)
			if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "Reference") || strings.Contains(body, "No sign-in") {
				t.Fatalf("from another browser: %d %s", res.StatusCode, body)
			}

			res, body = e.postACS(t, browser, doc, id)
			if res.StatusCode != http.StatusOK || !strings.Contains(body, "No sign-in: ") ||
				!strings.Contains(html.UnescapeString(body), tc.reason) {
				t.Fatalf("test page: %d, want the reason %q:\n%s", res.StatusCode, tc.reason, body)
			}
			results, err := e.manager.TestResults(context.Background(), e.super, e.Conn().ID)
			if err != nil || len(results) == 0 {
				t.Fatalf("test results: %v %v", results, err)
			}
			var got sso.TestResult
			found := false
			for _, r := range results {
				if json.Unmarshal(r, &got) == nil && !got.Succeeded && strings.Contains(got.Reason, tc.reason) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no kept test result with %q in %s", tc.reason, results)
			}
		})
	}

	t.Run("not a test", func(t *testing.T) {
		browser := browserClient()
		res, err := browser.Get(e.srv.URL + "/sso/start/" + e.Conn().ID)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc, _ := url.Parse(res.Header.Get("Location"))
		id := loc.Query().Get("RelayState")
		m := e.Mint(id)
		m.Signer = evil
		res, body := e.postACS(t, browser, m.Bytes(), id)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "Reference") || strings.Contains(body, "certificate") {
			t.Fatalf("a refused sign-in: %d %s", res.StatusCode, body)
		}
	})
}
