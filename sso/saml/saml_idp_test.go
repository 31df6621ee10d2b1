package saml

// End-to-end sign-ins against a real SAML IdP: crewjam/saml's samlidp,
// served on 127.0.0.1 inside the test. It sends the user's email as a
// transient NameID plus uid/mail/... attributes, signs the Response and
// the Assertion with rsa-sha1 unless told otherwise, and encrypts the
// assertion when the SP metadata has an encryption key.

import (
	"bytes"
	"context"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"
	dsig "github.com/russellhaering/goxmldsig"
	"golang.org/x/crypto/bcrypt"

	"gatehouse/sso/protocol"
	"gatehouse/store"
)

type samlRealIdP struct {
	t   *testing.T
	srv *httptest.Server
	idp *samlidp.Server
}

func newSAMLRealIdP(t *testing.T, kp samlKeyPair) *samlRealIdP {
	t.Helper()
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	s, err := samlidp.New(samlidp.Options{URL: *u, Key: kp.key, Certificate: kp.cert, Store: &samlidp.MemoryStore{},
		Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	handler = s
	hash, _ := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err := s.Store.Put("/users/alice", samlidp.User{Name: "alice", HashedPassword: hash, Email: "alice@example.com",
		GivenName: "Alice", Surname: "Liddell"}); err != nil {
		t.Fatal(err)
	}
	return &samlRealIdP{t: t, srv: srv, idp: s}
}

func (p *samlRealIdP) metadata() string {
	p.t.Helper()
	res, err := http.Get(p.srv.URL + "/metadata")
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// register uploads the SP metadata of e, without its encryption key
// unless encrypt.
func (p *samlRealIdP) register(e *samlEnv, encrypt bool) {
	p.t.Helper()
	md, err := e.c.Metadata()
	if err != nil {
		p.t.Fatal(err)
	}
	if !encrypt {
		d := etree.NewDocument()
		if err := d.ReadFromBytes(md); err != nil {
			p.t.Fatal(err)
		}
		for _, kd := range d.FindElements("//KeyDescriptor[@use='encryption']") {
			kd.Parent().RemoveChild(kd)
		}
		md, _ = d.WriteToBytes()
	}
	req, _ := http.NewRequest("PUT", p.srv.URL+"/services/gatehouse", bytes.NewReader(md))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusNoContent {
		p.t.Fatalf("register SP: %v %v", res, err)
	}
	res.Body.Close()
}

var samlFormInput = regexp.MustCompile(`name="(\w+)" value="([^"]*)"`)

func samlFormValues(t *testing.T, page string) url.Values {
	v := url.Values{}
	for _, m := range samlFormInput.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if v.Get("SAMLResponse") == "" && v.Get("SAMLRequest") == "" {
		t.Fatalf("no SAML form in %q", page)
	}
	return v
}

func samlReadPage(t *testing.T) func(res *http.Response, err error) string {
	return func(res *http.Response, err error) string {
		t.Helper()
		return samlPageBody(t, res, err)
	}
}

func samlPageBody(t *testing.T, res *http.Response, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", res.Request.URL, res.StatusCode, b)
	}
	return string(b)
}

// signIn runs an SP-initiated sign-in: Start, the redirect to samlidp,
// its login form posted to /sso, and its auto-post form to Finish.
func (p *samlRealIdP) signIn(e *samlEnv, browser string) (protocol.Identity, store.SSORequest, error) {
	t := p.t
	t.Helper()
	w := httptest.NewRecorder()
	if err := e.c.Start(context.Background(), w, httptest.NewRequest("GET", "/sso/start/x", nil),
		protocol.StartRequest{Browser: samlBrowser(browser), RedirectTo: "/console/after"}); err != nil {
		t.Fatal(err)
	}
	loc := w.Header().Get("Location")
	if !strings.HasPrefix(loc, p.srv.URL+"/sso?") {
		t.Fatalf("Start redirected to %q", loc)
	}
	login := samlFormValues(t, samlReadPage(t)(http.Get(loc)))
	login.Set("user", "alice")
	login.Set("password", "correct horse")
	answer := samlFormValues(t, samlReadPage(t)(http.PostForm(p.srv.URL+"/sso", login)))
	u, _ := url.Parse(loc)
	if answer.Get("RelayState") != u.Query().Get("RelayState") {
		t.Fatalf("RelayState came back as %q", answer.Get("RelayState"))
	}
	return e.finishForm(answer, browser)
}

// samlRealEnv is a connection to a samlidp with its metadata.
func samlRealEnv(t *testing.T, p *samlRealIdP, configure func(cfg *Config, conn *store.SSOConnection)) *samlEnv {
	md := p.metadata()
	e := newSAMLEnv(t, samlSQLite(t), "org-a", samlTestKeys(t).idpA, func(cfg *Config, conn *store.SSOConnection) {
		cfg.IdPMetadataXML = md
		if configure != nil {
			configure(cfg, conn)
		}
	})
	e.idpID = p.srv.URL + "/metadata"
	return e
}

func TestSAMLRealIdP(t *testing.T) {
	keys := samlTestKeys(t)
	for _, tc := range []struct {
		name         string
		usernameFrom string
		encrypt      bool
		sha256       bool
		want         string
	}{
		{"nameid, plain", "nameid", false, false, "alice@example.com"},
		{"uid attribute, plain", "attribute:uid", false, false, "alice"},
		{"uid attribute by URI, encrypted", "attribute:urn:oid:0.9.2342.19200300.100.1.1", true, false, "alice"},
		{"nameid, encrypted", "nameid", true, false, "alice@example.com"},
		{"nameid, rsa-sha256, encrypted", "nameid", true, true, "alice@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newSAMLRealIdP(t, keys.idpA)
			if tc.sha256 {
				p.idp.IDP.SignatureMethod = dsig.RSASHA256SignatureMethod
			}
			e := samlRealEnv(t, p, func(cfg *Config, conn *store.SSOConnection) {
				cfg.AllowSHA1 = !tc.sha256
				conn.UsernameFrom = tc.usernameFrom
			})
			p.register(e, tc.encrypt)
			id, req, err := p.signIn(e, "b1")
			if err != nil {
				t.Fatal(err)
			}
			if id.Username != tc.want || id.Subject != "alice@example.com" || id.Issuer != p.srv.URL+"/metadata" {
				t.Fatalf("identity %+v", id)
			}
			if req.RedirectTo != "/console/after" || req.UsedAt == nil {
				t.Fatalf("request %+v", req)
			}
			if got := id.Attributes["urn:oid:0.9.2342.19200300.100.1.3"]; len(got) != 1 || got[0] != "alice@example.com" {
				t.Fatalf("attributes %v", id.Attributes)
			}
			if !strings.Contains(id.Certificate, "CN=IdP A") || !strings.Contains(id.Certificate, "SHA-256 ") {
				t.Fatalf("certificate %q", id.Certificate)
			}
			if id.IssuedAt.IsZero() || !id.NotBefore.Before(id.NotOnOrAfter) {
				t.Fatalf("times %+v", id)
			}
		})
	}
}

// samlidp signs with rsa-sha1; a connection that does not allow SHA-1
// refuses it and says why.
func TestSAMLRealIdPSHA1RefusedByDefault(t *testing.T) {
	p := newSAMLRealIdP(t, samlTestKeys(t).idpA)
	e := samlRealEnv(t, p, nil)
	p.register(e, false)
	_, _, err := p.signIn(e, "b1")
	samlWantRefused(t, err, "SHA-1", "rsa-sha1", "allow SHA-1")
}

func TestSAMLRealIdPInitiated(t *testing.T) {
	keys := samlTestKeys(t)
	for _, allow := range []bool{true, false} {
		p := newSAMLRealIdP(t, keys.idpA)
		e := samlRealEnv(t, p, func(cfg *Config, conn *store.SSOConnection) {
			cfg.AllowSHA1, cfg.AllowIdPInitiated = true, allow
			conn.UsernameFrom = "attribute:uid"
		})
		p.register(e, true)
		shortcut := `{"service_provider":"` + e.c.sp.entityID + `","relay_state":"https://evil.test/"}`
		req, _ := http.NewRequest("PUT", p.srv.URL+"/shortcuts/gatehouse", strings.NewReader(shortcut))
		if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusNoContent {
			t.Fatalf("shortcut: %v %v", res, err)
		}
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar}
		samlReadPage(t)(client.PostForm(p.srv.URL+"/login", url.Values{"user": {"alice"}, "password": {"correct horse"}}))
		form := samlFormValues(t, samlReadPage(t)(client.Get(p.srv.URL+"/login/gatehouse")))
		if form.Get("RelayState") != "https://evil.test/" {
			t.Fatalf("RelayState %q", form.Get("RelayState"))
		}
		id, sreq, err := e.finishForm(form, "b1")
		if !allow {
			samlWantRefused(t, err, "IdP-initiated", "does not allow")
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		// The RelayState is never followed: no request, no redirect.
		if id.Username != "alice" || sreq.ID != "" || sreq.RedirectTo != "" {
			t.Fatalf("IdP-initiated: %+v %+v", id, sreq)
		}
		_, _, err = e.finishForm(form, "b1")
		samlWantRefused(t, err, "already used")
	}
}

// Certificate rollover: metadata with two IdP certificates; the IdP signs
// with either, and both are accepted; a third is not.
func TestSAMLRealIdPRollover(t *testing.T) {
	keys := samlTestKeys(t)
	p := newSAMLRealIdP(t, keys.idpA)
	md := samlIdPMetadata(p.srv.URL+"/metadata", p.srv.URL+"/sso", saml.HTTPRedirectBinding, keys.idpA.cert, keys.idpA2.cert)
	e := samlRealEnv(t, p, func(cfg *Config, conn *store.SSOConnection) {
		cfg.IdPMetadataXML, cfg.AllowSHA1 = md, true
	})
	p.register(e, true)
	for _, kp := range []samlKeyPair{keys.idpA, keys.idpA2, keys.idpA} {
		p.idp.IDP.Key, p.idp.IDP.Certificate = kp.key, kp.cert
		id, _, err := p.signIn(e, "b1")
		if err != nil {
			t.Fatalf("signed by %s: %v", kp.cert.Subject, err)
		}
		if !strings.Contains(id.Certificate, kp.cert.Subject.String()) {
			t.Fatalf("verified by %q, want %s", id.Certificate, kp.cert.Subject)
		}
	}
	p.idp.IDP.Key, p.idp.IDP.Certificate = keys.idpB.key, keys.idpB.cert
	_, _, err := p.signIn(e, "b1")
	samlWantRefused(t, err, "CN=IdP B", "not a signing certificate in the IdP metadata")
}

// Rollover for IdPs that send no KeyInfo: each certificate is tried.
func TestSAMLRolloverWithoutKeyInfo(t *testing.T) {
	keys := samlTestKeys(t)
	e := newSAMLEnv(t, samlSQLite(t), "org-a", keys.idpA, nil, keys.idpA.cert, keys.idpA2.cert)
	for _, kp := range []samlKeyPair{keys.idpA, keys.idpA2} {
		for _, signResponse := range []bool{false, true} {
			m := e.mint(e.start("b1"))
			m.Signer, m.NoKeyInfo = kp, true
			m.SignResponse, m.SignAssertion = signResponse, !signResponse
			id, _, err := e.finish(m.bytes(), "b1")
			if err != nil {
				t.Fatalf("%s: %v", kp.cert.Subject, err)
			}
			if !strings.Contains(id.Certificate, kp.cert.Subject.String()) {
				t.Fatalf("verified by %q", id.Certificate)
			}
		}
	}
}
