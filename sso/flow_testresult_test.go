package sso

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
	"gatehouse/store"
)

// testFlowEnv is a SAML connection behind the Flow's HTTP endpoints, with
// a signed-in Super Administrator to run tests.
type testFlowEnv struct {
	*samlEnv
	srv     *httptest.Server
	manager *Manager
	super   admin.Principal
	session string // the Super Administrator's session cookie
}

func newTestFlowEnv(t *testing.T) *testFlowEnv {
	t.Helper()
	keys := samlTestKeys(t)
	e := newSAMLEnv(t, samlSQLite(t), "org-a", keys.idpA, nil)
	ctx := context.Background()
	o, err := e.st.AdministratorByUsername(ctx, e.org.ID, "owner")
	if err != nil {
		t.Fatalf("owner: %v", err)
	}
	owner, err := e.st.UpdateAdministrator(ctx, e.org.ID, o.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.Status = store.StatusActive; return nil })
	if err != nil {
		t.Fatal(err)
	}
	signIn := &admin.SignIn{Store: e.st, Sealer: samlSealer}
	res, err := signIn.SSO(ctx, owner, store.SignInSAML, "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&Flow{Store: e.st, SignIn: signIn, BaseURL: "http://127.0.0.1",
		New: func(context.Context, store.SSOConnection) (Connector, error) { return e.c, nil }}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testFlowEnv{samlEnv: e, srv: srv, manager: &Manager{Store: e.st},
		super: admin.Principal{OrgID: e.org.ID, Role: store.RoleSuperAdministrator}, session: res.Token}
}

// startTest starts a test sign-in in browser and returns the request ID.
func (e *testFlowEnv) startTest(t *testing.T, browser *http.Client) string {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/sso/start/"+e.conn.ID+"?test=1", nil)
	req.AddCookie(&http.Cookie{Name: admin.SessionCookie, Value: e.session})
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
	fe := &flowEnv{t: t, srv: e.srv}
	return fe.post(browser, ACSPath(e.conn.ID), url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}, "RelayState": {relayState}})
}

// A test sign-in refused before the match — certificate, audience,
// Destination, time, signature algorithm, a document that does not even
// parse — shows the exact reason on the test page, and keeps it as the
// test's result, where the management API reads it. Outside a test, or
// from another browser, the same refusal shows only a reference.
func TestSAMLTestSignInShowsEveryRefusal(t *testing.T) {
	e := newTestFlowEnv(t)
	evil := samlNewKeyPair(t, "evil")
	for _, tc := range []struct {
		name   string
		answer func(m *samlMint) []byte
		reason string
	}{
		{"certificate not in metadata", func(m *samlMint) []byte { m.Signer = evil; return m.bytes() }, "not a signing certificate in the IdP metadata"},
		{"audience", func(m *samlMint) []byte {
			now := time.Now()
			m.ConditionsXML = samlConditions(now.Add(-time.Minute), now.Add(5*time.Minute), "https://other.example/sp")
			return m.bytes()
		}, "does not include this SP"},
		{"destination", func(m *samlMint) []byte { m.Destination = "https://evil.example/acs"; return m.bytes() }, "Destination"},
		{"time", func(m *samlMint) []byte {
			m.IssueInstant, m.AssertionIssueInstant = time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour)
			return m.bytes()
		}, "IssueInstant expired"},
		{"signature algorithm", func(m *samlMint) []byte { m.SigAlg = dsig.RSASHA1SignatureMethod; return m.bytes() }, "SHA-1"},
		{"unsigned", func(m *samlMint) []byte { m.SignAssertion = false; return m.bytes() }, "neither the Response nor its Assertion is signed"},
		{"not parsed", func(*samlMint) []byte { return []byte(`<!DOCTYPE x [<!ENTITY a "b">]><x/>`) }, "DOCTYPE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			browser := (&flowEnv{}).browserClient()
			id := e.startTest(t, browser)
			doc := tc.answer(e.mint(id))

			// Another browser posting the tester's answer gets a
			// reference, and writes no result.
			res, body := e.postACS(t, (&flowEnv{}).browserClient(), doc, id)
			if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "Reference") || strings.Contains(body, "No sign-in") {
				t.Fatalf("from another browser: %d %s", res.StatusCode, body)
			}

			res, body = e.postACS(t, browser, doc, id)
			if res.StatusCode != http.StatusOK || !strings.Contains(body, "No sign-in: ") ||
				!strings.Contains(html.UnescapeString(body), tc.reason) {
				t.Fatalf("test page: %d, want the reason %q:\n%s", res.StatusCode, tc.reason, body)
			}
			results, err := e.manager.TestResults(context.Background(), e.super, e.conn.ID)
			if err != nil || len(results) == 0 {
				t.Fatalf("test results: %v %v", results, err)
			}
			var got TestResult
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
		browser := (&flowEnv{}).browserClient()
		res, err := browser.Get(e.srv.URL + "/sso/start/" + e.conn.ID)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc, _ := url.Parse(res.Header.Get("Location"))
		id := loc.Query().Get("RelayState")
		m := e.mint(id)
		m.Signer = evil
		res, body := e.postACS(t, browser, m.bytes(), id)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "Reference") || strings.Contains(body, "certificate") {
			t.Fatalf("a refused sign-in: %d %s", res.StatusCode, body)
		}
	})
}
