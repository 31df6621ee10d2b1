package saml

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"gatehouse/sso/protocol"
	"gatehouse/store"
)

func TestSAMLConfigValidate(t *testing.T) {
	keys := samlTestKeys(t)
	good := samlIdPMetadata("https://idp.example/md", "https://idp.example/sso", saml.HTTPPostBinding, keys.idpA.cert)
	c, err := ParseConfig([]byte(`{"idpMetadataXml":` + samlJSON(good) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Skew() != time.Minute || !c.SignsRequests() || c.AllowSHA1 || c.AllowIdPInitiated {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = ParseConfig([]byte(`{"idpMetadataXml":` + samlJSON(good) + `,"clockSkew":600,"signRequests":false,"allowSha1":true,"allowIdpInitiated":true,"metadataFetchedAt":"2026-01-02T03:04:05Z"}`))
	if err != nil || c.Skew() != 10*time.Minute || c.SignsRequests() || !c.AllowSHA1 || !c.AllowIdPInitiated || c.MetadataFetchedAt.IsZero() {
		t.Fatalf("%+v %v", c, err)
	}
	entities := `<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">` + good + `</EntitiesDescriptor>`
	if _, err := ParseConfig([]byte(`{"idpMetadataXml":` + samlJSON(entities) + `}`)); err != nil {
		t.Fatalf("EntitiesDescriptor with one IdP: %v", err)
	}
	noCert := samlIdPMetadata("https://idp.example/md", "https://idp.example/sso", saml.HTTPPostBinding)
	artifactOnly := samlIdPMetadata("https://idp.example/md", "https://idp.example/sso", saml.HTTPArtifactBinding, keys.idpA.cert)
	for name, tc := range map[string]struct{ json, want string }{
		"not JSON":          {`{`, "not valid JSON"},
		"no metadata":       {`{}`, "metadata is missing"},
		"not XML":           {`{"idpMetadataXml":"hello"}`, "not acceptable XML"},
		"DOCTYPE":           {`{"idpMetadataXml":` + samlJSON(`<!DOCTYPE x [<!ENTITY a "b">]>`+good) + `}`, "DOCTYPE"},
		"no certificate":    {`{"idpMetadataXml":` + samlJSON(noCert) + `}`, "no signing certificate"},
		"no SSO endpoint":   {`{"idpMetadataXml":` + samlJSON(artifactOnly) + `}`, "HTTP-Redirect or HTTP-POST"},
		"skew too large":    {`{"idpMetadataXml":` + samlJSON(good) + `,"clockSkew":601}`, "clock skew"},
		"negative skew":     {`{"idpMetadataXml":` + samlJSON(good) + `,"clockSkew":-1}`, "clock skew"},
		"two IdPs":          {`{"idpMetadataXml":` + samlJSON(`<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">`+good+good+`</EntitiesDescriptor>`) + `}`, "2 identity providers"},
		"bad SP cert":       {`{"idpMetadataXml":` + samlJSON(good) + `,"spCertificate":"nope"}`, "SP certificate"},
		"an SP's metadata":  {`{"idpMetadataXml":` + samlJSON(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><SPSSODescriptor/></EntityDescriptor>`) + `}`, "no IDPSSODescriptor"},
		"bad cert base64":   {`{"idpMetadataXml":` + samlJSON(strings.Replace(good, base64.StdEncoding.EncodeToString(keys.idpA.cert.Raw), "!!not-base64", 1)) + `}`, "signing certificate"},
		"http SSO location": {`{"idpMetadataXml":` + samlJSON(strings.Replace(good, "https://idp.example/sso", "javascript:alert(1)", 1)) + `}`, "javascript"},
	} {
		if _, err := ParseConfig([]byte(tc.json)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", name, err, tc.want)
		}
	}
}

func samlJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String() + `"`
}

func TestNewSAMLKeyAndConnectorErrors(t *testing.T) {
	certPEM, keyPEM, err := NewKey()
	if err != nil || !strings.Contains(certPEM, "BEGIN CERTIFICATE") || !strings.Contains(keyPEM, "PRIVATE KEY") {
		t.Fatalf("NewKey: %v", err)
	}
	cert, err := parseCertificate(certPEM)
	if err != nil || cert.PublicKey.(*rsa.PublicKey).N.BitLen() != 2048 || cert.NotAfter.Before(time.Now().AddDate(9, 11, 0)) {
		t.Fatalf("cert %v", err)
	}
	keys := samlTestKeys(t)
	e := newSAMLEnv(t, samlSQLite(t), "org-a", keys.idpA, nil)
	bad := e.conn
	bad.Secret = samlSealer.Seal(keyPEM, protocol.SealContext(bad.ID)) // another key than the certificate's
	if _, err := New(bad, e.st, samlSealer, e.base, nil); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("mismatched key: %v", err)
	}
	bad = e.conn
	bad.Secret = samlSealer.Seal(keys.spKeyPEM, protocol.SealContext("another-connection"))
	if _, err := New(bad, e.st, samlSealer, e.base, nil); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("key sealed for another connection: %v", err)
	}
	bad = e.conn
	bad.UsernameFrom = "claim:sub"
	if _, err := New(bad, e.st, samlSealer, e.base, nil); err == nil || !strings.Contains(err.Error(), "attribute:NAME") {
		t.Fatalf("usernameFrom: %v", err)
	}
}

func TestSAMLMetadata(t *testing.T) {
	keys := samlTestKeys(t)
	e := newSAMLEnv(t, samlSQLite(t), "org-a", keys.idpA, nil)
	// Without IdP metadata too: IdPs often want the SP's first.
	conn := e.conn
	conn.Config = store.RawJSON(`{"spCertificate":` + samlJSON(keys.spCertPEM) + `}`)
	md, err := SPMetadata(conn, samlSealer, e.base)
	if err != nil {
		t.Fatal(err)
	}
	// crewjam reads validUntil="0001-01-01..." back as a zero time, so
	// the raw document is what is checked.
	if bytes.Contains(md, []byte("validUntil")) || bytes.Contains(md, []byte("cacheDuration")) {
		t.Fatalf("the SP metadata has an expiry:\n%s", md)
	}
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(md, &ed); err != nil {
		t.Fatal(err)
	}
	d := ed.SPSSODescriptors[0]
	if ed.EntityID != "https://gatehouse.test/sso/saml/conn-org-a/metadata" || !ed.ValidUntil.IsZero() ||
		len(d.AssertionConsumerServices) != 1 || d.AssertionConsumerServices[0].Location != "https://gatehouse.test/sso/saml/conn-org-a/acs" ||
		d.AssertionConsumerServices[0].Binding != saml.HTTPPostBinding || !*d.AuthnRequestsSigned || !*d.WantAssertionsSigned ||
		len(d.KeyDescriptors) != 2 || d.KeyDescriptors[0].Use != "signing" || d.KeyDescriptors[1].Use != "encryption" {
		t.Fatalf("metadata %s", md)
	}
	if m2, _ := e.c.Metadata(); !bytes.Equal(m2, md) {
		t.Fatalf("connector metadata differs:\n%s\n%s", m2, md)
	}
}

func TestSAMLStartRedirect(t *testing.T) {
	keys := samlTestKeys(t)
	e := newSAMLEnv(t, samlSQLite(t), "org-a", keys.idpA, nil)
	w := httptest.NewRecorder()
	if err := e.c.Start(context.Background(), w, httptest.NewRequest("GET", "/", nil), protocol.StartRequest{Browser: samlBrowser("b1"), RedirectTo: "/x", Test: true}); err != nil {
		t.Fatal(err)
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	q := loc.Query()
	if loc.Host != "idp.org-a.example" || q.Get("SigAlg") != dsig.RSASHA256SignatureMethod || q.Get("Signature") == "" {
		t.Fatalf("redirect %s", loc)
	}
	// The signature covers SAMLRequest, RelayState and SigAlg as sent.
	signed := loc.RawQuery[:strings.Index(loc.RawQuery, "&Signature=")]
	sig, _ := base64.StdEncoding.DecodeString(q.Get("Signature"))
	h := sha256.Sum256([]byte(signed))
	if err := rsa.VerifyPKCS1v15(e.c.sp.cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, h[:], sig); err != nil {
		t.Fatalf("redirect signature: %v", err)
	}
	raw, _ := base64.StdEncoding.DecodeString(q.Get("SAMLRequest"))
	x, _ := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	var ar saml.AuthnRequest
	if err := xml.Unmarshal(x, &ar); err != nil {
		t.Fatal(err)
	}
	if ar.ID != q.Get("RelayState") || ar.AssertionConsumerServiceURL != e.c.sp.acsURL || ar.Issuer.Value != e.c.sp.entityID ||
		ar.Destination != "https://idp.org-a.example/sso" {
		t.Fatalf("AuthnRequest %s", x)
	}
	r, err := e.st.SSORequest(context.Background(), e.org.ID, ar.ID)
	if err != nil || !bytes.Equal(r.Browser, samlBrowser("b1")) || r.RedirectTo != "/x" || !r.Test || r.ConnectionID != e.conn.ID ||
		r.ExpiresAt.Sub(time.Now()) > protocol.RequestTTL {
		t.Fatalf("stored request %+v %v", r, err)
	}
	if err := e.c.Start(context.Background(), httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), protocol.StartRequest{}); err == nil {
		t.Fatal("a sign-in without browser binding started")
	}
}

func TestSAMLStartPost(t *testing.T) {
	keys := samlTestKeys(t)
	e := newSAMLEnv(t, samlSQLite(t), "org-a", keys.idpA, func(cfg *Config, conn *store.SSOConnection) {
		cfg.IdPMetadataXML = samlIdPMetadata("https://idp.org-a.example/metadata", `https://idp.org-a.example/sso?a=1&b="2"`, saml.HTTPPostBinding, keys.idpA.cert)
	})
	w := httptest.NewRecorder()
	if err := e.c.Start(context.Background(), w, httptest.NewRequest("GET", "/", nil), protocol.StartRequest{Browser: samlBrowser("b1")}); err != nil {
		t.Fatal(err)
	}
	page := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(page, `action="https://idp.org-a.example/sso?a=1&amp;b=%222%22"`) || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("page %d %s", w.Code, page)
	}
	form := samlFormValues(t, page)
	x, _ := base64.StdEncoding.DecodeString(form.Get("SAMLRequest"))
	var ar saml.AuthnRequest
	if err := xml.Unmarshal(x, &ar); err != nil || ar.ID != form.Get("RelayState") || ar.Signature == nil {
		t.Fatalf("posted AuthnRequest %s %v", x, err)
	}
}

// A valid response: the identity, the request, the times.
func TestSAMLAccepts(t *testing.T) {
	keys := samlTestKeys(t)
	for _, mode := range []string{"assertion signed", "response signed", "both signed", "encrypted, assertion signed"} {
		e := newSAMLEnv(t, samlSQLite(t), "org-a", keys.idpA, nil)
		reqID := e.start("b1")
		m := e.mint(reqID)
		switch mode {
		case "response signed":
			m.SignResponse, m.SignAssertion = true, false
		case "both signed":
			m.SignResponse = true
		case "encrypted, assertion signed":
			m.EncryptTo = e.c.sp.cert
		}
		id, req, err := e.finish(m.bytes(), "b1")
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if id.Username != "alice" || id.Subject != "alice" || id.Issuer != e.idpID || req.ID != reqID || req.RedirectTo != "/console" ||
			id.Attributes["email"][0] != "alice@example.com" || !strings.HasPrefix(id.Certificate, "CN=IdP A (SHA-256 ") ||
			id.NotOnOrAfter.Before(time.Now()) || id.IssuedAt.After(time.Now()) {
			t.Fatalf("%s: %+v %+v", mode, id, req)
		}
	}
}

func FuzzSAMLInspect(f *testing.F) {
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" InResponseTo="x"><a:Assertion xmlns:a="y"/></samlp:Response>`))
	f.Add([]byte(`<!DOCTYPE a><a/>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, err := inspect(doc)
		if err == nil && s.root.Local == "" {
			t.Fatal("accepted a document without root")
		}
	})
}
