// Package saml is gatehouse's SAML 2.0 service provider, one connector
// (protocol.Connector) per SSOConnection of kind "saml": the connection's
// settings (Config, ParseConfig), its SP key pair (NewKey) and SP
// metadata (SPMetadata), the redirect or POST that starts a sign-in, the
// checks of the IdP's answer at the ACS (finish.go), the paths of its
// endpoints (ACSPath, SPMetadataPath), and the IdP metadata: its check
// (CheckIdPMetadata) and its refresh from the URL the administrator gave
// (MetadataRefresher, RefreshIdPMetadata), fetched through sso/fetch.
//
// crewjam/saml does the XML signature and most protocol checks; the
// checks it leaves out (see /work/shared/notes/sso-security.md and
// finish.go) are ours. samlsp is not used: it logs whole responses and
// follows raw RelayState values.
package saml

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"gatehouse/admin"
	"gatehouse/sso/protocol"
	"gatehouse/store"
)

// Config is SSOConnection.Config for the kind "saml" (JSON). Its zero
// value (plus IdP metadata) is the safe setting: SP-initiated only,
// SHA-1 refused, 60 s of clock skew, signed AuthnRequests.
type Config struct {
	// IdPMetadataXML is the identity provider's SAML metadata
	// (EntityDescriptor, or an EntitiesDescriptor holding exactly one
	// IdP). When the administrator gave a URL, the metadata fetcher fills
	// it and records where from and when in IdPMetadataURL and
	// MetadataFetchedAt.
	IdPMetadataXML    string    `json:"idpMetadataXml"`
	IdPMetadataURL    string    `json:"idpMetadataUrl,omitempty"`
	MetadataFetchedAt time.Time `json:"metadataFetchedAt,omitzero"`
	// SPEntityID is our entity ID at this IdP; "" means the SP metadata
	// URL (baseURL + SPMetadataPath).
	SPEntityID string `json:"spEntityId,omitempty"`
	// SPCertificate is the PEM certificate of the SP key (NewKey);
	// the key itself is SSOConnection.Secret, sealed with context
	// protocol.SealContext.
	SPCertificate string `json:"spCertificate"`
	// AllowIdPInitiated accepts responses that answer no AuthnRequest
	// (unsolicited). They are then only protected by the replay cache
	// and the short validity window, not by the browser binding.
	AllowIdPInitiated bool `json:"allowIdpInitiated,omitempty"`
	// AllowSHA1 accepts rsa-sha1 signatures and sha1 digests.
	AllowSHA1 bool `json:"allowSha1,omitempty"`
	// ClockSkew is the tolerated difference between the IdP's clock and
	// ours, in seconds: 0 means DefaultClockSkew, at most
	// MaxClockSkew.
	ClockSkew int `json:"clockSkew,omitempty"`
	// SignRequests signs AuthnRequests (rsa-sha256); nil means true.
	SignRequests *bool `json:"signRequests,omitempty"`
}

// Clock skew bounds, and how old an IssueInstant may be.
const (
	DefaultClockSkew = 60 * time.Second
	MaxClockSkew     = 600 * time.Second
	// maxIssueAge: a Response or Assertion issued longer ago than this
	// (plus the skew) is refused, whatever its NotOnOrAfter says.
	maxIssueAge = 5 * time.Minute
)

func init() {
	// crewjam/saml keeps its time tolerances in package globals, so they
	// cannot vary per connection. Set them once to the loosest value any
	// connection may have; Finish enforces the connection's own skew and
	// issue age afterwards (checkAssertion).
	saml.MaxClockSkew = MaxClockSkew
	saml.MaxIssueDelay = maxIssueAge + MaxClockSkew
}

// Skew returns the connection's clock skew.
func (c Config) Skew() time.Duration {
	if c.ClockSkew == 0 {
		return DefaultClockSkew
	}
	return time.Duration(c.ClockSkew) * time.Second
}

// SignsRequests reports whether AuthnRequests are signed.
func (c Config) SignsRequests() bool { return c.SignRequests == nil || *c.SignRequests }

// ParseConfig decodes and validates a connection's Config.
func ParseConfig(raw []byte) (Config, error) {
	var c Config
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &c); err != nil {
			return Config{}, fmt.Errorf("sso: SAML settings are not valid JSON: %w", err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks the settings: the IdP metadata parses and has a
// signing certificate and a single sign-on endpoint with the
// HTTP-Redirect or HTTP-POST binding; the SP certificate, when set, is
// a PEM certificate; the clock skew is in range.
func (c Config) Validate() error {
	if c.ClockSkew < 0 || time.Duration(c.ClockSkew)*time.Second > MaxClockSkew {
		return fmt.Errorf("sso: clock skew must be between 0 and %d seconds, not %d", int(MaxClockSkew/time.Second), c.ClockSkew)
	}
	if _, err := parseIdP(c.IdPMetadataXML); err != nil {
		return err
	}
	if c.SPCertificate != "" {
		if _, err := parseCertificate(c.SPCertificate); err != nil {
			return err
		}
	}
	if c.SPEntityID != "" && strings.TrimSpace(c.SPEntityID) != c.SPEntityID {
		return errors.New("sso: the SP entity ID must not start or end with spaces")
	}
	return nil
}

// identityProvider is what gatehouse uses of the IdP metadata.
type identityProvider struct {
	entity *saml.EntityDescriptor
	certs  []*x509.Certificate // signing certificates, all trusted (rollover)
	// certsB64 are the certificates' DER in base64, to match a
	// signature's KeyInfo without parsing it.
	certsB64 []string
	// ssoURL and ssoBinding: where AuthnRequests go; HTTP-Redirect is
	// preferred.
	ssoURL, ssoBinding string
}

// parseIdP parses and checks IdP metadata.
func parseIdP(doc string) (*identityProvider, error) {
	if strings.TrimSpace(doc) == "" {
		return nil, errors.New("sso: the IdP metadata is missing")
	}
	if _, err := inspect([]byte(doc)); err != nil {
		return nil, fmt.Errorf("sso: the IdP metadata is not acceptable XML: %s", err.Reason)
	}
	var ed saml.EntityDescriptor
	err := xml.Unmarshal([]byte(doc), &ed)
	if err != nil {
		var eds saml.EntitiesDescriptor
		if err2 := xml.Unmarshal([]byte(doc), &eds); err2 != nil {
			return nil, fmt.Errorf("sso: the IdP metadata is not a SAML EntityDescriptor: %w", err)
		}
		var idps []saml.EntityDescriptor
		for _, e := range eds.EntityDescriptors {
			if len(e.IDPSSODescriptors) > 0 {
				idps = append(idps, e)
			}
		}
		if len(idps) != 1 {
			return nil, fmt.Errorf("sso: the IdP metadata lists %d identity providers; give the metadata of exactly one", len(idps))
		}
		ed = idps[0]
	}
	if ed.EntityID == "" {
		return nil, errors.New("sso: the IdP metadata has no entityID")
	}
	if len(ed.IDPSSODescriptors) == 0 {
		return nil, fmt.Errorf("sso: the metadata of %q has no IDPSSODescriptor (is it an SP's metadata?)", ed.EntityID)
	}
	idp := &identityProvider{entity: &ed}
	for _, d := range ed.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
				b64 := stripSpace(xc.Data)
				if b64 == "" {
					continue
				}
				der, err := base64.StdEncoding.DecodeString(b64)
				if err != nil {
					return nil, fmt.Errorf("sso: a signing certificate in the IdP metadata is not base64: %w", err)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					return nil, fmt.Errorf("sso: a signing certificate in the IdP metadata does not parse: %w", err)
				}
				if !containsCert(idp.certs, cert) {
					idp.certs = append(idp.certs, cert)
					idp.certsB64 = append(idp.certsB64, base64.StdEncoding.EncodeToString(cert.Raw))
				}
			}
		}
	}
	if len(idp.certs) == 0 {
		return nil, fmt.Errorf("sso: the IdP metadata of %q has no signing certificate", ed.EntityID)
	}
	for _, binding := range []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding} {
		for _, d := range ed.IDPSSODescriptors {
			for _, s := range d.SingleSignOnServices {
				if s.Binding == binding && idp.ssoURL == "" {
					u, err := url.Parse(s.Location)
					if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
						return nil, fmt.Errorf("sso: the IdP single sign-on location %q is not an http(s) URL", s.Location)
					}
					idp.ssoURL, idp.ssoBinding = s.Location, binding
				}
			}
		}
	}
	if idp.ssoURL == "" {
		return nil, fmt.Errorf("sso: the IdP metadata of %q has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding", ed.EntityID)
	}
	return idp, nil
}

func containsCert(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range certs {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
}

func parseCertificate(pemText string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("sso: the SP certificate is not a PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sso: the SP certificate does not parse: %w", err)
	}
	return cert, nil
}

// describeCert names a certificate for administrators: subject and
// SHA-256 fingerprint.
func describeCert(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return c.Subject.String() + " (SHA-256 " + b.String() + ")"
}

// NewKey makes the SP key pair of a new connection: RSA-2048 and a
// self-signed certificate valid for 10 years. Store the certificate in
// Config.SPCertificate and the key sealed in SSOConnection.Secret.
func NewKey() (certPEM string, keyPEM string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return "", "", err
	}
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "gatehouse SAML SP"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})), nil
}

// serviceProvider is the connection's service-provider side: its key pair and
// URLs.
type serviceProvider struct {
	entityID, acsURL, metadataURL string
	cert                          *x509.Certificate
	key                           *rsa.PrivateKey
}

// openSP opens the connection's SP key and checks it against the
// certificate.
func openSP(conn store.SSOConnection, cfg Config, sealer *admin.Sealer, baseURL string) (*serviceProvider, error) {
	base := strings.TrimSuffix(baseURL, "/")
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("sso: the base URL %q is not an absolute http(s) URL", baseURL)
	}
	sp := &serviceProvider{acsURL: base + ACSPath(conn.ID), metadataURL: base + SPMetadataPath(conn.ID), entityID: cfg.SPEntityID}
	if sp.entityID == "" {
		sp.entityID = sp.metadataURL
	}
	if cfg.SPCertificate == "" {
		return nil, errors.New("sso: the connection has no SP certificate")
	}
	cert, err := parseCertificate(cfg.SPCertificate)
	if err != nil {
		return nil, err
	}
	if sealer == nil {
		return nil, errors.New("sso: no sealer to open the SP key")
	}
	keyPEM, err := sealer.Open(conn.Secret, protocol.SealContext(conn.ID))
	if err != nil {
		return nil, fmt.Errorf("sso: the SP key of connection %s does not open: %w", conn.ID, err)
	}
	block, _ := pem.Decode([]byte(keyPEM))
	if block == nil {
		return nil, errors.New("sso: the SP key is not PEM")
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		err = fmt.Errorf("unexpected PEM type %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("sso: the SP key does not parse: %w", err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("sso: the SP key must be RSA, not %T", key)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&rsaKey.PublicKey) {
		return nil, errors.New("sso: the SP certificate does not belong to the SP key")
	}
	sp.cert, sp.key = cert, rsaKey
	return sp, nil
}

// RequestStore is what a SAML connector keeps in the database, shared by
// every instance: the AuthnRequests it sent, their single use bound to the
// browser, and the IDs of the assertions it accepted (the replay cache).
// A store.Store is one.
type RequestStore interface {
	CreateSSORequest(ctx context.Context, r store.SSORequest) (store.SSORequest, error)
	PendingSSORequest(ctx context.Context, id, connectionID string, browser []byte, now time.Time) (store.SSORequest, error)
	UseSSORequestRecording(ctx context.Context, id, connectionID string, browser []byte, now time.Time,
		assertionID string, expiresAt time.Time) (store.SSORequest, error)
	RecordAssertion(ctx context.Context, connectionID, assertionID string, expiresAt time.Time) error
	SSORequest(ctx context.Context, org, id string) (store.SSORequest, error)
}

var _ RequestStore = store.Store(nil)

// connector is a SAML connection's Connector.
type connector struct {
	conn  store.SSOConnection
	cfg   Config
	skew  time.Duration
	st    RequestStore
	now   func() time.Time
	sp    *serviceProvider
	idp   *identityProvider
	crew  saml.ServiceProvider // template; Finish works on a copy
	users usernameSource
}

// usernameSource is a parsed UsernameFrom.
type usernameSource struct {
	attribute string // "" means the NameID
}

func parseUsernameFrom(s string) (usernameSource, error) {
	if s == "nameid" {
		return usernameSource{}, nil
	}
	if name, ok := strings.CutPrefix(s, "attribute:"); ok && name != "" {
		return usernameSource{attribute: name}, nil
	}
	return usernameSource{}, fmt.Errorf(`sso: a SAML connection takes the username from "nameid" or "attribute:NAME", not %q`, s)
}

// New returns the protocol.Connector of a SAML connection. It parses and
// checks everything once (metadata, certificates, the sealed SP key), so
// callers should keep it per connection version. now is the clock; nil
// means time.Now.
func New(conn store.SSOConnection, st RequestStore, sealer *admin.Sealer, baseURL string, now func() time.Time) (protocol.Connector, error) {
	return newConnector(conn, st, sealer, baseURL, now)
}

func newConnector(conn store.SSOConnection, st RequestStore, sealer *admin.Sealer, baseURL string, now func() time.Time) (*connector, error) {
	if conn.Kind != store.SSOSAML {
		return nil, fmt.Errorf("sso: connection %s is of kind %q, not SAML", conn.ID, conn.Kind)
	}
	if st == nil {
		return nil, errors.New("sso: New needs a store")
	}
	if now == nil {
		now = time.Now
	}
	cfg, err := ParseConfig(conn.Config)
	if err != nil {
		return nil, err
	}
	users, err := parseUsernameFrom(conn.UsernameFrom)
	if err != nil {
		return nil, err
	}
	idp, err := parseIdP(cfg.IdPMetadataXML)
	if err != nil {
		return nil, err
	}
	sp, err := openSP(conn, cfg, sealer, baseURL)
	if err != nil {
		return nil, err
	}
	c := &connector{conn: conn, cfg: cfg, skew: cfg.Skew(), st: st, now: now, sp: sp, idp: idp, users: users}
	c.crew = crewSP(sp, cfg)
	c.crew.IDPMetadata = idp.entity
	return c, nil
}

// crewSP is crewjam's view of our SP.
func crewSP(sp *serviceProvider, cfg Config) saml.ServiceProvider {
	acs, _ := url.Parse(sp.acsURL)
	md, _ := url.Parse(sp.metadataURL)
	s := saml.ServiceProvider{
		EntityID:          sp.entityID,
		Key:               sp.key,
		Certificate:       sp.cert,
		MetadataURL:       *md,
		AcsURL:            *acs,
		AuthnNameIDFormat: saml.UnspecifiedNameIDFormat,
	}
	if cfg.SignsRequests() {
		s.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	return s
}

// SPMetadata renders a SAML connection's SP metadata, for the
// administrator to give the IdP: entity ID, the ACS URL (HTTP-POST), the
// SP certificate for signing and encryption, AuthnRequestsSigned and
// WantAssertionsSigned. It does not need the IdP metadata (IdPs often
// want the SP's first), but checks that the sealed key opens and matches
// the certificate.
func SPMetadata(conn store.SSOConnection, sealer *admin.Sealer, baseURL string) ([]byte, error) {
	if conn.Kind != store.SSOSAML {
		return nil, fmt.Errorf("sso: connection %s is of kind %q, not SAML", conn.ID, conn.Kind)
	}
	var cfg Config
	if len(bytes.TrimSpace(conn.Config)) > 0 {
		if err := json.Unmarshal(conn.Config, &cfg); err != nil {
			return nil, fmt.Errorf("sso: SAML settings are not valid JSON: %w", err)
		}
	}
	sp, err := openSP(conn, cfg, sealer, baseURL)
	if err != nil {
		return nil, err
	}
	return spMetadata(sp, cfg)
}

// Metadata is the connection's SP metadata (see SPMetadata).
func (c *connector) Metadata() ([]byte, error) { return spMetadata(c.sp, c.cfg) }

func spMetadata(sp *serviceProvider, cfg Config) ([]byte, error) {
	crew := crewSP(sp, cfg)
	ed := crew.Metadata()
	certB64 := base64.StdEncoding.EncodeToString(sp.cert.Raw)
	yes, signed := true, cfg.SignsRequests()
	d := &ed.SPSSODescriptors[0]
	d.ValidUntil = nil
	d.KeyDescriptors = []saml.KeyDescriptor{
		{Use: "signing", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{{Data: certB64}}}}},
		{Use: "encryption", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{{Data: certB64}}}},
			EncryptionMethods: []saml.EncryptionMethod{
				{Algorithm: "http://www.w3.org/2009/xmlenc11#aes128-gcm"},
				{Algorithm: "http://www.w3.org/2009/xmlenc11#aes256-gcm"},
				{Algorithm: "http://www.w3.org/2001/04/xmlenc#aes128-cbc"},
				{Algorithm: "http://www.w3.org/2001/04/xmlenc#aes256-cbc"},
				{Algorithm: "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"},
			}},
	}
	d.AuthnRequestsSigned, d.WantAssertionsSigned = &signed, &yes
	d.AssertionConsumerServices = []saml.IndexedEndpoint{{Binding: saml.HTTPPostBinding, Location: sp.acsURL, Index: 1, IsDefault: &yes}}
	d.SingleLogoutServices = nil
	out, err := xml.MarshalIndent(ed, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sso: SP metadata: %w", err)
	}
	// No validUntil and no cacheDuration: the document is uploaded once
	// to the IdP, or fetched from a URL that always answers the current
	// one, so an expiry would only break sign-in some day for nothing.
	// crewjam writes the attribute even for a zero time, as
	// validUntil="0001-01-01T00:00:00Z", which IdPs that honour it
	// (SimpleSAMLphp) take as long expired: it is removed from the
	// rendered document, whatever crewjam put in it.
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(out); err != nil {
		return nil, fmt.Errorf("sso: SP metadata: %w", err)
	}
	doc.Root().RemoveAttr("validUntil")
	doc.Root().RemoveAttr("cacheDuration")
	out, err = doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("sso: SP metadata: %w", err)
	}
	return append([]byte(xml.Header), out...), nil
}

// postRequestPage posts an AuthnRequest to the IdP (HTTP-POST
// binding, SAML bindings §3.5.4).
var postRequestPage = template.Must(template.New("saml-post").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Signing in…</title></head>
<body onload="document.forms[0].submit()">
<form method="post" action="{{.URL}}">
<input type="hidden" name="SAMLRequest" value="{{.SAMLRequest}}">
<input type="hidden" name="RelayState" value="{{.RelayState}}">
<noscript><button type="submit">Continue to sign in</button></noscript>
</form>
</body></html>
`))

// Start sends the browser to the IdP with an AuthnRequest whose ID is the
// stored SSORequest's ID; RelayState is that ID too (never a URL).
func (c *connector) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, req protocol.StartRequest) error {
	if len(req.Browser) == 0 {
		return errors.New("sso: a sign-in must be bound to a browser")
	}
	now := c.now()
	sp := c.crew
	// Built with the redirect binding so crewjam does not sign it yet:
	// the IssueInstant is set from our clock first.
	authn, err := sp.MakeAuthenticationRequest(c.idp.ssoURL, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		return fmt.Errorf("sso: AuthnRequest: %w", err)
	}
	authn.IssueInstant = now.UTC()
	if _, err := c.st.CreateSSORequest(ctx, store.SSORequest{ID: authn.ID, ConnectionID: c.conn.ID, OrgID: c.conn.OrgID,
		Browser: req.Browser, RedirectTo: req.RedirectTo, Test: req.Test, ExpiresAt: now.Add(protocol.RequestTTL)}); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	if c.idp.ssoBinding == saml.HTTPRedirectBinding {
		u, err := authn.Redirect(authn.ID, &sp)
		if err != nil {
			return fmt.Errorf("sso: AuthnRequest: %w", err)
		}
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return nil
	}
	if sp.SignatureMethod != "" {
		if err := sp.SignAuthnRequest(authn); err != nil {
			return fmt.Errorf("sso: sign AuthnRequest: %w", err)
		}
	}
	doc, err := elementBytes(authn)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	return postRequestPage.Execute(w, map[string]string{"URL": c.idp.ssoURL,
		"SAMLRequest": base64.StdEncoding.EncodeToString(doc), "RelayState": authn.ID})
}

func elementBytes(authn *saml.AuthnRequest) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(authn.Element())
	b, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("sso: AuthnRequest: %w", err)
	}
	return b, nil
}

// Paths of a SAML connection's endpoints under the server's base URL.
func ACSPath(connectionID string) string        { return "/sso/saml/" + connectionID + "/acs" }
func SPMetadataPath(connectionID string) string { return "/sso/saml/" + connectionID + "/metadata" }
