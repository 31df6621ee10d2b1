package saml

// Test fixtures of the SAML connector: key pairs, an organization with a
// SAML connection on a real store, and samlMint, which builds responses
// the way an IdP does (signed with goxmldsig) so that tests can then
// edit, rewrap or replay them.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"

	"gatehouse/admin"
	"gatehouse/sso/protocol"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// samlKeyPair is an RSA key with a self-signed certificate.
type samlKeyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

func samlNewKeyPair(t testing.TB, cn string) samlKeyPair {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return samlKeyPair{key: key, cert: cert}
}

// samlKeys are made once per test binary: RSA key generation is slow.
type samlKeySet struct {
	once                        sync.Once
	idpA, idpA2, idpB, attacker samlKeyPair
	spCertPEM, spKeyPEM         string
}

var samlKeys samlKeySet

func samlTestKeys(t testing.TB) *samlKeySet {
	samlKeys.once.Do(func() {
		samlKeys.idpA = samlNewKeyPair(t, "IdP A")
		samlKeys.idpA2 = samlNewKeyPair(t, "IdP A (next)")
		samlKeys.idpB = samlNewKeyPair(t, "IdP B")
		samlKeys.attacker = samlNewKeyPair(t, "Attacker")
		var err error
		samlKeys.spCertPEM, samlKeys.spKeyPEM, err = NewKey()
		if err != nil {
			t.Fatal(err)
		}
	})
	return &samlKeys
}

// samlIdPMetadata is an IdP's metadata with the given signing certificates.
func samlIdPMetadata(entityID, ssoURL string, binding string, certs ...*x509.Certificate) string {
	var kds []saml.KeyDescriptor
	for _, c := range certs {
		kds = append(kds, saml.KeyDescriptor{Use: "signing", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{
			X509Certificates: []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(c.Raw)}}}}})
	}
	ed := saml.EntityDescriptor{EntityID: entityID, IDPSSODescriptors: []saml.IDPSSODescriptor{{
		SSODescriptor: saml.SSODescriptor{RoleDescriptor: saml.RoleDescriptor{
			ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol", KeyDescriptors: kds}},
		SingleSignOnServices: []saml.Endpoint{{Binding: binding, Location: ssoURL}},
	}}}
	b, err := xml.Marshal(ed)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// samlEnv is one organization with one SAML connection.
type samlEnv struct {
	t      testing.TB
	st     store.Store
	sealer *admin.Sealer
	org    store.Org
	conn   store.SSOConnection
	c      *connector
	base   string
	idp    samlKeyPair // the key the IdP signs with by default
	idpID  string
}

var samlSealer = func() *admin.Sealer {
	s, err := admin.NewSealer(make([]byte, admin.SecretKeySize))
	if err != nil {
		panic(err)
	}
	return s
}()

// newSAMLEnv makes an organization slug on st with a SAML connection
// trusting idpCerts; cfg and usernameFrom adjust it.
func newSAMLEnv(t testing.TB, st store.Store, slug string, idp samlKeyPair, configure func(cfg *Config, conn *store.SSOConnection), idpCerts ...*x509.Certificate) *samlEnv {
	t.Helper()
	keys := samlTestKeys(t)
	ctx := storetest.Context(context.Background())
	o, _, err := st.CreateOrg(ctx, store.NewOrg{
		Org:     store.Org{Slug: slug, Name: "Org " + slug},
		Domains: []string{slug + ".example"},
		Owner: store.Administrator{UserName: "owner", Email: "owner@" + slug + ".example", GivenName: "Olive", FamilyName: "Owner",
			Role: store.RoleSuperAdministrator, Status: store.StatusPending},
		Invitation: store.Invitation{Hash: []byte("hash-" + slug), ExpiresAt: time.Now().Add(time.Hour)},
	})
	if err != nil {
		t.Fatalf("CreateOrg: %v", err)
	}
	if len(idpCerts) == 0 {
		idpCerts = []*x509.Certificate{idp.cert}
	}
	e := &samlEnv{t: t, st: st, sealer: samlSealer, org: o, base: "https://gatehouse.test", idp: idp,
		idpID: "https://idp." + slug + ".example/metadata"}
	cfg := Config{IdPMetadataXML: samlIdPMetadata(e.idpID, "https://idp."+slug+".example/sso", saml.HTTPRedirectBinding, idpCerts...),
		SPCertificate: keys.spCertPEM}
	conn := store.SSOConnection{ID: "conn-" + slug, OrgID: o.ID, Kind: store.SSOSAML, Name: "SAML " + slug, Enabled: true, UsernameFrom: "nameid"}
	if configure != nil {
		configure(&cfg, &conn)
	}
	raw, _ := json.Marshal(cfg)
	conn.Config = store.RawJSON(raw)
	conn.Secret = samlSealer.Seal(keys.spKeyPEM, protocol.SealContext(conn.ID))
	if e.conn, err = st.CreateSSOConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if e.c, err = newConnector(e.conn, st, samlSealer, e.base, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

// start runs Start for browser and returns the AuthnRequest ID.
func (e *samlEnv) start(browser string) string {
	e.t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/sso/start/"+e.conn.ID, nil)
	if err := e.c.Start(context.Background(), w, r, protocol.StartRequest{Browser: samlBrowser(browser), RedirectTo: "/console"}); err != nil {
		e.t.Fatal(err)
	}
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil || w.Code != http.StatusSeeOther {
		e.t.Fatalf("Start answered %d %q", w.Code, w.Header().Get("Location"))
	}
	return loc.Query().Get("RelayState")
}

func samlBrowser(name string) []byte { return []byte("browser-hash-" + name) }

// finish posts a base64 SAMLResponse to the connector.
func (e *samlEnv) finish(doc []byte, browser string) (protocol.Identity, store.SSORequest, error) {
	return e.finishForm(url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}, "RelayState": {"ignored"}}, browser)
}

func (e *samlEnv) finishForm(form url.Values, browser string) (protocol.Identity, store.SSORequest, error) {
	r := httptest.NewRequest("POST", ACSPath(e.conn.ID), strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.c.Finish(context.Background(), r, samlBrowser(browser))
}

// samlMint is a response under construction. The XML fields are raw
// fragments so that a test can put anything there.
type samlMint struct {
	ResponseID, AssertionID string
	// ResponseAttrs are extra attributes of <Response>: Destination and
	// InResponseTo by default.
	Destination, InResponseTo    string
	NoDestination, NoResponseIRT bool
	Issuer                       string
	IssueInstant                 time.Time // Response and Assertion
	AssertionIssueInstant        time.Time
	Status                       string
	NameIDXML                    string // inside <Subject>, before the confirmations
	ConfirmationXML              string
	ConditionsXML                string
	AuthnXML                     string
	AttributesXML                string
	// Signing: which elements, with which key pair and algorithm.
	SignAssertion, SignResponse bool
	Signer                      samlKeyPair
	SigAlg                      string
	NoKeyInfo                   bool
	// EncryptTo encrypts the (signed) assertion to this certificate.
	EncryptTo *x509.Certificate
}

const samlTestNS = `xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"`

// mint returns a valid response to requestID ("" for IdP-initiated):
// assertion signed with rsa-sha256 by the env's IdP key.
func (e *samlEnv) mint(requestID string) *samlMint {
	now := time.Now().UTC()
	m := &samlMint{ResponseID: samlTestID(), AssertionID: samlTestID(), Destination: e.c.sp.acsURL, InResponseTo: requestID,
		NoResponseIRT: requestID == "", Issuer: e.idpID, IssueInstant: now, AssertionIssueInstant: now,
		Status: "urn:oasis:names:tc:SAML:2.0:status:Success", SignAssertion: true, Signer: e.idp, SigAlg: dsig.RSASHA256SignatureMethod}
	m.NameIDXML = samlNameID("alice")
	m.ConfirmationXML = samlConfirmation(cmBearer, e.c.sp.acsURL, requestID, now.Add(5*time.Minute))
	m.ConditionsXML = samlConditions(now.Add(-time.Minute), now.Add(5*time.Minute), e.c.sp.entityID)
	m.AuthnXML = fmt.Sprintf(`<saml:AuthnStatement AuthnInstant="%s" SessionIndex="s-1"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`,
		samlTS(now.Add(-10*time.Second)))
	m.AttributesXML = samlAttribute("username", "alice") + samlAttribute("email", "alice@example.com")
	return m
}

func samlTestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("_%x", b)
}

func samlTS(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func samlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func samlNameID(v string) string {
	return `<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">` + samlEscape(v) + `</saml:NameID>`
}

func samlConfirmation(method, recipient, irt string, notOnOrAfter time.Time) string {
	a := ""
	if irt != "" {
		a = ` InResponseTo="` + irt + `"`
	}
	return fmt.Sprintf(`<saml:SubjectConfirmation Method="%s"><saml:SubjectConfirmationData NotOnOrAfter="%s" Recipient="%s"%s/></saml:SubjectConfirmation>`,
		method, samlTS(notOnOrAfter), recipient, a)
}

func samlConditions(notBefore, notOnOrAfter time.Time, audiences ...string) string {
	var ar string
	if len(audiences) > 0 {
		ar = "<saml:AudienceRestriction>"
		for _, a := range audiences {
			ar += "<saml:Audience>" + samlEscape(a) + "</saml:Audience>"
		}
		ar += "</saml:AudienceRestriction>"
	}
	return fmt.Sprintf(`<saml:Conditions NotBefore="%s" NotOnOrAfter="%s">%s</saml:Conditions>`, samlTS(notBefore), samlTS(notOnOrAfter), ar)
}

func samlAttribute(name string, values ...string) string {
	s := `<saml:Attribute Name="` + name + `" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">`
	for _, v := range values {
		s += `<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">` + samlEscape(v) + `</saml:AttributeValue>`
	}
	return s + `</saml:Attribute>`
}

func (m *samlMint) assertionXML() string {
	return fmt.Sprintf(`<saml:Assertion %s ID="%s" Version="2.0" IssueInstant="%s"><saml:Issuer>%s</saml:Issuer><saml:Subject>%s%s</saml:Subject>%s%s<saml:AttributeStatement>%s</saml:AttributeStatement></saml:Assertion>`,
		samlTestNS, m.AssertionID, samlTS(m.AssertionIssueInstant), samlEscape(m.Issuer), m.NameIDXML, m.ConfirmationXML, m.ConditionsXML, m.AuthnXML, m.AttributesXML)
}

// sign signs el (enveloped, exclusive c14n) and moves the Signature
// after the Issuer, where the schema puts it.
func (m *samlMint) sign(el *etree.Element) *etree.Element {
	ks := dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{m.Signer.cert.Raw}, PrivateKey: m.Signer.key})
	ctx := dsig.NewDefaultSigningContext(ks)
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(m.SigAlg); err != nil {
		panic(err)
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		panic(err)
	}
	// goxmldsig appends the Signature without etree's bookkeeping: take
	// it out by position.
	sig := signed.Child[len(signed.Child)-1].(*etree.Element)
	signed.Child = signed.Child[:len(signed.Child)-1]
	sig = sig.Copy()
	if m.NoKeyInfo {
		sig.RemoveChild(sig.FindElement("./KeyInfo"))
	}
	signed.InsertChildAt(1, sig) // after <Issuer>
	return signed
}

// build returns the response as a document, for a test to edit.
func (m *samlMint) build() *etree.Document {
	ad := etree.NewDocument()
	if err := ad.ReadFromString(m.assertionXML()); err != nil {
		panic(err)
	}
	assertion := ad.Root()
	if m.SignAssertion {
		assertion = m.sign(assertion)
	}
	if m.EncryptTo != nil {
		assertion = samlEncrypt(assertion, m.EncryptTo)
	}
	attrs := ""
	if !m.NoDestination {
		attrs += ` Destination="` + m.Destination + `"`
	}
	if !m.NoResponseIRT {
		attrs += ` InResponseTo="` + m.InResponseTo + `"`
	}
	rd := etree.NewDocument()
	err := rd.ReadFromString(fmt.Sprintf(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" %s ID="%s" Version="2.0" IssueInstant="%s"%s><saml:Issuer>%s</saml:Issuer><samlp:Status><samlp:StatusCode Value="%s"/></samlp:Status></samlp:Response>`,
		samlTestNS, m.ResponseID, samlTS(m.IssueInstant), attrs, samlEscape(m.Issuer), m.Status))
	if err != nil {
		panic(err)
	}
	resp := rd.Root()
	resp.AddChild(assertion)
	if m.SignResponse {
		resp = m.sign(resp)
	}
	out := etree.NewDocument()
	out.SetRoot(resp)
	return out
}

func (m *samlMint) bytes() []byte { return samlDocBytes(m.build()) }

// samlEncrypt wraps el in an EncryptedAssertion for cert, as samlidp
// does (AES-128-CBC, RSA-OAEP).
func samlEncrypt(el *etree.Element, cert *x509.Certificate) *etree.Element {
	d := etree.NewDocument()
	d.SetRoot(el.Copy())
	buf, err := d.WriteToBytes()
	if err != nil {
		panic(err)
	}
	enc := xmlenc.OAEP()
	enc.BlockCipher = xmlenc.AES128CBC
	enc.DigestMethod = &xmlenc.SHA1
	data, err := enc.Encrypt(cert, buf, nil)
	if err != nil {
		panic(err)
	}
	data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	ea := etree.NewElement("saml:EncryptedAssertion")
	ea.AddChild(data)
	return ea
}

func samlDocBytes(d *etree.Document) []byte {
	b, err := d.WriteToBytes()
	if err != nil {
		panic(err)
	}
	return b
}

// samlWantRefused checks that err is a refusal whose Reason mentions every
// one of wants.
func samlWantRefused(t testing.TB, err error, wants ...string) {
	t.Helper()
	var e *protocol.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a refusal mentioning %q, got %v", wants, err)
	}
	if !errors.Is(err, protocol.ErrRefused) {
		t.Fatalf("refusal %v is not protocol.ErrRefused", err)
	}
	for _, w := range wants {
		if !strings.Contains(e.Reason, w) {
			t.Fatalf("refusal reason %q does not mention %q", e.Reason, w)
		}
	}
}

func samlSQLite(t testing.TB) store.Store { return storetest.SQLite(t) }
