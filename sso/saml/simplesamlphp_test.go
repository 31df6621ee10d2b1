package saml

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"gatehouse/admin"
	"gatehouse/sso/fetch"
	"gatehouse/sso/protocol"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// ssppSignIn is gatehouse's SAML connector set up against a running
// SimpleSAMLphp: one organization, one connection, its SP key sealed.
type ssppSignIn struct {
	st        *store.SQL
	idp       *ssppIdP
	conn      store.SSOConnection
	connector protocol.Connector
	acsURL    string
}

const ssppBaseURL = "https://gatehouse.test"

// newSSPPSignIn starts SimpleSAMLphp with startSimpleSAMLphp's options,
// changed by each of adjust.
func newSSPPSignIn(t *testing.T, adjust ...func(*ssppOptions)) *ssppSignIn {
	t.Helper()
	ssppRequire(t)
	ctx := storetest.Context(context.Background())
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	org, _, err := st.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "acme", Name: "Acme"},
		Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusPending}})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, admin.SecretKeySize)
	rand.Read(key)
	sealer, err := admin.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}

	id := uuid.NewString()
	acsURL := ssppBaseURL + ACSPath(id)
	spEntityID := ssppBaseURL + "/sso/saml/acme"
	certPEM, keyPEM, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	opts := ssppDefaults(t, spEntityID, acsURL, certPEM)
	for _, fn := range adjust {
		fn(&opts)
	}
	idp := startSimpleSAMLphpWith(t, opts)

	// The IdP's metadata comes in as an administrator would give it: by
	// URL, through the fetch rules (loopback allowed).
	md, err := fetch.Get(ctx, fetch.NewClient(fetch.Options{AllowLoopback: true}), idp.MetadataURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckIdPMetadata(md); err != nil {
		t.Fatalf("SimpleSAMLphp's metadata: %v", err)
	}
	cfg, err := json.Marshal(map[string]any{"idpMetadataXml": string(md), "idpMetadataUrl": idp.MetadataURL,
		"metadataFetchedAt": time.Now().UTC(), "spEntityId": spEntityID, "spCertificate": certPEM})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := st.CreateSSOConnection(ctx, store.SSOConnection{ID: id, OrgID: org.ID, Kind: store.SSOSAML, Name: "SimpleSAMLphp",
		Enabled: true, UsernameFrom: "nameid", Config: cfg, Secret: sealer.Seal(keyPEM, protocol.SealContext(id))})
	if err != nil {
		t.Fatal(err)
	}
	connector, err := New(conn, st, sealer, ssppBaseURL, time.Now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &ssppSignIn{st: st, idp: idp, conn: conn, connector: connector, acsURL: acsURL}
}

// ssppBrowser is a new browser binding: the SHA-256 of a cookie secret.
func ssppBrowser() []byte {
	secret := make([]byte, 32)
	rand.Read(secret)
	h := sha256.Sum256(secret)
	return h[:]
}

// start runs the connector's Start for browser and returns where it
// sends the browser (the IdP's SSO URL with a signed AuthnRequest).
func (s *ssppSignIn) start(t *testing.T, browser []byte, redirectTo string) string {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, ssppBaseURL+"/sso/start", nil)
	if err := s.connector.Start(context.Background(), w, r, protocol.StartRequest{Browser: browser, RedirectTo: redirectTo}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	loc := w.Header().Get("Location")
	if w.Code != http.StatusSeeOther && w.Code != http.StatusFound || !strings.HasPrefix(loc, s.idp.BaseURL+"/") {
		t.Fatalf("Start answered %d, Location %q; want a redirect to the IdP at %s", w.Code, loc, s.idp.BaseURL)
	}
	return loc
}

// finish posts the IdP's answer to the ACS, from browser.
func (s *ssppSignIn) finish(samlResponse, relayState string, browser []byte) (protocol.Identity, store.SSORequest, error) {
	form := url.Values{"SAMLResponse": {samlResponse}, "RelayState": {relayState}}
	r := httptest.NewRequest(http.MethodPost, s.acsURL, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return s.connector.Finish(context.Background(), r, browser)
}

// A real IdP's sign-in through the SAML connector: Start sends a signed
// AuthnRequest (SimpleSAMLphp is set to require the signature), the user
// signs in at SimpleSAMLphp, and Finish accepts its signed Response and
// yields the username byte for byte as the IdP sent it.
func TestSimpleSAMLphpSignIn(t *testing.T) {
	s := newSSPPSignIn(t)

	for _, tc := range []struct{ user, password string }{{"Alice", "password"}, {"alice2", "password2"}} {
		t.Run(tc.user, func(t *testing.T) {
			browser := ssppBrowser()
			resp, relay := s.idp.Login(t, s.start(t, browser, "/console/"+tc.user), tc.user, tc.password)
			id, req, err := s.finish(resp, relay, browser)
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			if id.Username != tc.user {
				t.Fatalf("Username = %q, want %q exactly", id.Username, tc.user)
			}
			if id.Issuer != s.idp.EntityID {
				t.Errorf("Issuer = %q, want %q", id.Issuer, s.idp.EntityID)
			}
			if req.RedirectTo != "/console/"+tc.user || req.ConnectionID != s.conn.ID || req.UsedAt == nil {
				t.Errorf("request = %+v", req)
			}
			if got := id.Attributes["mail"]; len(got) != 1 || got[0] != strings.ToLower(tc.user)+"@example.com" {
				t.Errorf("mail attribute = %q", got)
			}

			// The same response again (replay) is refused.
			if _, _, err := s.finish(resp, relay, browser); !errors.Is(err, protocol.ErrRefused) {
				t.Fatalf("replayed response: err = %v, want a refusal", err)
			}
		})
	}

	t.Run("another browser", func(t *testing.T) {
		browser := ssppBrowser()
		resp, relay := s.idp.Login(t, s.start(t, browser, "/"), "Alice", "password")
		if _, _, err := s.finish(resp, relay, ssppBrowser()); !errors.Is(err, protocol.ErrRefused) {
			t.Fatalf("response posted from another browser: err = %v, want a refusal", err)
		}
		// Still usable by the browser that started it.
		if id, _, err := s.finish(resp, relay, browser); err != nil || id.Username != "Alice" {
			t.Fatalf("the right browser after a refused one: %q, %v", id.Username, err)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		if _, _, err := s.idp.login(s.start(t, ssppBrowser(), "/"), "Alice", "wrong"); !errors.Is(err, ssppErrLoginRefused) {
			t.Fatalf("err = %v, want the IdP to refuse", err)
		}
		// Usernames are exact at the IdP too: "alice" is not "Alice".
		if _, _, err := s.idp.login(s.start(t, ssppBrowser(), "/"), "alice", "password"); !errors.Is(err, ssppErrLoginRefused) {
			t.Fatalf("err = %v, want the IdP to refuse", err)
		}
	})
}

// The SAML shapes SimpleSAMLphp can send: what is signed, encryption,
// the signature algorithm. SHA-1 is refused (the connection does not
// allow it); the others yield the username exactly.
func TestSimpleSAMLphpResponseShapes(t *testing.T) {
	ssppRequire(t)
	for _, tc := range []struct {
		name       string
		adjust     func(*ssppOptions)
		signatures int    // how many the Response carries (outside encryption)
		contains   string // in the Response, to show the IdP did as told
		refused    string // a substring of the refusal; "" for accepted
	}{
		{"response signed only", func(o *ssppOptions) { o.SignAssertion = false }, 1, "<saml:Assertion", ""},
		{"assertion signed only", func(o *ssppOptions) { o.SignResponse = false }, 1, "<saml:Assertion", ""},
		{"encrypted assertion", func(o *ssppOptions) { o.SP.EncryptAssertion = true }, 1, "<saml:EncryptedAssertion", ""},
		{"rsa-sha512", func(o *ssppOptions) { o.SignatureAlgorithm = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" }, 2, "#rsa-sha512", ""},
		{"rsa-sha1", func(o *ssppOptions) { o.SignatureAlgorithm = "http://www.w3.org/2000/09/xmldsig#rsa-sha1" }, 2, "#rsa-sha1", "sha1"},
		{"unsigned", func(o *ssppOptions) { o.SignResponse, o.SignAssertion = false, false }, 0, "<saml:Assertion", "sign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSSPPSignIn(t, tc.adjust)
			browser := ssppBrowser()
			resp, relay := s.idp.Login(t, s.start(t, browser, "/"), "Alice", "password")
			doc, err := base64.StdEncoding.DecodeString(resp)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(doc), "<ds:Signature "); n != tc.signatures || !strings.Contains(string(doc), tc.contains) {
				t.Fatalf("SimpleSAMLphp sent %d signatures (want %d), %q in it: %v:\n%s", n, tc.signatures, tc.contains,
					strings.Contains(string(doc), tc.contains), doc)
			}
			id, _, err := s.finish(resp, relay, browser)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("Finish: %v", err)
			case tc.refused == "" && id.Username != "Alice":
				t.Fatalf("Username = %q, want Alice", id.Username)
			case tc.refused != "" && (!errors.Is(err, protocol.ErrRefused) || !strings.Contains(strings.ToLower(err.Error()), tc.refused)):
				t.Fatalf("err = %v, want a refusal mentioning %q", err, tc.refused)
			}
		})
	}
}

// The harness itself: SimpleSAMLphp checks the AuthnRequest's signature
// (so a pass above means the connector's signed request was accepted),
// and refuses a request for another ACS URL.
func TestSimpleSAMLphpChecksRequests(t *testing.T) {
	s := newSSPPSignIn(t)
	loc, err := url.Parse(s.start(t, ssppBrowser(), "/"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	sig := q.Get("Signature")
	if sig == "" || q.Get("SigAlg") == "" {
		t.Fatalf("the AuthnRequest is not signed: %s", loc)
	}
	q.Set("Signature", "A"+sig[1:])
	if sig[0] == 'A' {
		q.Set("Signature", "B"+sig[1:])
	}
	loc.RawQuery = q.Encode()
	if _, _, err := s.idp.login(loc.String(), "Alice", "password"); err == nil {
		t.Fatal("SimpleSAMLphp accepted an AuthnRequest with a broken signature")
	}
	q.Del("Signature")
	q.Del("SigAlg")
	loc.RawQuery = q.Encode()
	if _, _, err := s.idp.login(loc.String(), "Alice", "password"); err == nil {
		t.Fatal("SimpleSAMLphp accepted an unsigned AuthnRequest")
	}
}
