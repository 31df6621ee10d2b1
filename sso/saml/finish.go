package saml

// Finish: the ACS side of the SAML connector. The order is deliberate:
//
//  1. bounded body, form, base64;
//  2. inspect refuses DOCTYPE/entities and deep nesting before any
//     other parser sees the document, and reads (unverified) the
//     Response's InResponseTo — only to look the request up;
//  3. crewjam's ParseXMLResponse with that single request ID (or none,
//     for an allowed IdP-initiated response); its signature checks go
//     through verifier, which refuses SHA-1, matches KeyInfo against
//     the metadata certificates and keeps what the signature covers;
//  4. our checks on the covered (verified, canonical) XML only — never on
//     the document as received: one NameID in the assertion namespace
//     (GO-2026-6909), audience, bearer confirmation, Destination, times
//     with the connection's skew;
//  5. the request is used (once), the assertion ID goes to the replay
//     cache shared by every instance.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"

	"gatehouse/sso/protocol"
	"gatehouse/store"
)

const (
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	nsXMLEnc    = "http://www.w3.org/2001/04/xmlenc#"
	cmBearer    = "urn:oasis:names:tc:SAML:2.0:cm:bearer"

	// samlMaxDepth bounds element nesting. A real response is about 8
	// deep (Response/Assertion/Signature/SignedInfo/Reference/Transforms/
	// Transform/InclusiveNamespaces).
	samlMaxDepth = 32
)

// responseShape is what inspect learns of a document without trusting it.
type responseShape struct {
	root            xml.Name
	inResponseTo    string
	hasInResponseTo bool
	destination     string
	hasDestination  bool
	issueInstant    string
	// assertions counts the root's children named Assertion or
	// EncryptedAssertion, in any namespace; anywhere counts them (and
	// Response elements) at any depth — wrapping attacks (XSW) need a
	// second copy somewhere.
	assertions, assertionsAnywhere, responses int
}

// inspect reads doc with a plain tokenizer before anything else
// parses it: no DTD (DOCTYPE, ENTITY — entity expansion bombs, external
// entities), no processing instructions but the XML declaration, nesting
// at most samlMaxDepth, UTF-8. It uses RawToken (no namespace
// translation, the costly part); the root's namespace is resolved from
// its own declarations, where the root's must be.
func inspect(doc []byte) (responseShape, *protocol.Error) {
	var s responseShape
	d := xml.NewDecoder(bytes.NewReader(doc))
	depth := 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return s, protocol.Refuse(nil, "the XML is not well-formed: "+err.Error())
		}
		switch t := tok.(type) {
		case xml.Directive:
			return s, protocol.Refuse(nil, "the XML contains a DOCTYPE or entity declaration (<!"+clip(string(t), 20)+"...>), which SAML forbids")
		case xml.ProcInst:
			if t.Target != "xml" || depth > 0 || s.root.Local != "" {
				return s, protocol.Refuse(nil, "the XML contains a processing instruction <?"+clip(t.Target, 20)+"?>")
			}
		case xml.StartElement:
			depth++
			if depth > samlMaxDepth {
				return s, protocol.Refuse(nil, fmt.Sprintf("the XML nests elements more than %d deep", samlMaxDepth))
			}
			if depth == 1 {
				if s.root.Local != "" {
					return s, protocol.Refuse(nil, "the XML has more than one root element")
				}
				s.root = xml.Name{Local: t.Name.Local}
				for _, a := range t.Attr {
					switch {
					case a.Name.Space == "xmlns" && a.Name.Local == t.Name.Space && t.Name.Space != "",
						a.Name.Space == "" && a.Name.Local == "xmlns" && t.Name.Space == "":
						s.root.Space = a.Value
					case a.Name.Space != "":
					case a.Name.Local == "InResponseTo":
						s.inResponseTo, s.hasInResponseTo = a.Value, true
					case a.Name.Local == "Destination":
						s.destination, s.hasDestination = a.Value, true
					case a.Name.Local == "IssueInstant":
						s.issueInstant = a.Value
					}
				}
			}
			switch t.Name.Local {
			case "Assertion", "EncryptedAssertion":
				s.assertionsAnywhere++
				if depth == 2 {
					s.assertions++
				}
			case "Response":
				s.responses++
			}
		case xml.EndElement:
			depth--
		}
	}
	if s.root.Local == "" {
		return s, protocol.Refuse(nil, "the XML has no root element")
	}
	return s, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// readACS returns the decoded SAMLResponse of an ACS request: POST,
// at most protocol.MaxAnswerBody, exactly one SAMLResponse.
func readACS(r *http.Request) ([]byte, *protocol.Error) {
	if r.Method != http.MethodPost {
		return nil, protocol.Refuse(nil, "the SAML response must be posted (HTTP-POST binding), not sent with "+r.Method)
	}
	if r.ContentLength > protocol.MaxAnswerBody {
		return nil, protocol.Refuse(nil, fmt.Sprintf("the ACS request body is %d bytes, more than the %d allowed", r.ContentLength, protocol.MaxAnswerBody))
	}
	r.Body = http.MaxBytesReader(nil, r.Body, protocol.MaxAnswerBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, protocol.Refuse(nil, fmt.Sprintf("the ACS request body is larger than the %d bytes allowed", protocol.MaxAnswerBody))
		}
		return nil, protocol.Refuse(err, "the ACS request is not a readable form")
	}
	values := r.PostForm["SAMLResponse"]
	switch {
	case len(values) == 0 || values[0] == "":
		return nil, protocol.Refuse(nil, "the ACS request carries no SAMLResponse")
	case len(values) > 1:
		return nil, protocol.Refuse(nil, "the ACS request carries more than one SAMLResponse")
	}
	doc, err := base64.StdEncoding.DecodeString(stripSpace(values[0]))
	if err != nil {
		return nil, protocol.Refuse(nil, "the SAMLResponse is not base64: "+err.Error())
	}
	return doc, nil
}

// verifier is crewjam's SignatureVerifier for one Finish: it refuses
// SHA-1 unless allowed, picks the metadata certificate the signature
// names (or tries each, for IdPs that send no KeyInfo), and keeps what
// the signature covers and which certificate verified it.
type verifier struct {
	c        *connector
	now      time.Time
	verified []verifiedElement
	refusal  *protocol.Error
}

type verifiedElement struct {
	el   *etree.Element // the signed element as canonicalized and verified
	cert *x509.Certificate
}

func (v *verifier) VerifySignature(_ *dsig.ValidationContext, el *etree.Element) error {
	what := el.Tag
	if r := v.c.checkAlgorithms(el, what); r != nil {
		v.refusal = r
		return r
	}
	certs, r := v.c.candidateCerts(el, what, v.now)
	if r != nil {
		v.refusal = r
		return r
	}
	var last error
	for _, cert := range certs {
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
		vc.IdAttribute = "ID"
		vc.Clock = dsig.NewFakeClockAt(v.now)
		out, err := vc.Validate(el)
		if err == nil {
			v.verified = append(v.verified, verifiedElement{el: out, cert: cert})
			return nil
		}
		last = err
	}
	v.refusal = protocol.Refuse(last, fmt.Sprintf("the signature on the %s does not verify with the IdP's certificate (%d in the metadata)", what, len(v.c.idp.certs)))
	return v.refusal
}

// candidateCerts returns the metadata certificates that may have
// signed el: the one its KeyInfo names, or every valid one when it names
// none. A KeyInfo certificate absent from the metadata is refused here —
// trust comes from the metadata only.
func (c *connector) candidateCerts(el *etree.Element, what string, now time.Time) ([]*x509.Certificate, *protocol.Error) {
	sigs, _ := childrenNS(el, nsDSig, "Signature")
	var keyInfoCert string
	if len(sigs) == 1 {
		if x := sigs[0].FindElement("./KeyInfo/X509Data/X509Certificate"); x != nil {
			keyInfoCert, _ = textOf(x)
			keyInfoCert = stripSpace(keyInfoCert)
		}
	}
	var certs []*x509.Certificate
	if keyInfoCert != "" {
		for i, b64 := range c.idp.certsB64 {
			if b64 == keyInfoCert {
				certs = []*x509.Certificate{c.idp.certs[i]}
			}
		}
		if certs == nil {
			desc := "a certificate that does not parse"
			if der, err := base64.StdEncoding.DecodeString(keyInfoCert); err == nil {
				if cert, err := x509.ParseCertificate(der); err == nil {
					desc = describeCert(cert)
				}
			}
			return nil, protocol.Refuse(nil, fmt.Sprintf("the %s is signed with %s, which is not a signing certificate in the IdP metadata", what, desc))
		}
	} else {
		certs = c.idp.certs
	}
	var valid []*x509.Certificate
	for _, cert := range certs {
		if !now.Before(cert.NotBefore) && !now.After(cert.NotAfter) {
			valid = append(valid, cert)
		}
	}
	if len(valid) == 0 {
		cert := certs[0]
		return nil, protocol.Refuse(nil, fmt.Sprintf("the IdP certificate %s that signs the %s is valid only from %s to %s; update the IdP metadata",
			describeCert(cert), what, cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339)))
	}
	return valid, nil
}

// Signature and digest algorithms: SHA-2 always; SHA-1 only when the
// connection allows it.
var (
	strongSignatureMethods = map[string]string{
		dsig.RSASHA256SignatureMethod:   "rsa-sha256",
		dsig.RSASHA384SignatureMethod:   "rsa-sha384",
		dsig.RSASHA512SignatureMethod:   "rsa-sha512",
		dsig.ECDSASHA256SignatureMethod: "ecdsa-sha256",
		dsig.ECDSASHA384SignatureMethod: "ecdsa-sha384",
		dsig.ECDSASHA512SignatureMethod: "ecdsa-sha512",
	}
	sha1SignatureMethods = map[string]string{
		dsig.RSASHA1SignatureMethod:   "rsa-sha1",
		dsig.ECDSASHA1SignatureMethod: "ecdsa-sha1",
	}
	strongDigests = map[string]string{
		"http://www.w3.org/2001/04/xmlenc#sha256":       "sha256",
		"http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
		"http://www.w3.org/2001/04/xmlenc#sha512":       "sha512",
	}
	sha1Digests = map[string]string{"http://www.w3.org/2000/09/xmldsig#sha1": "sha1"}
)

// checkAlgorithms refuses el if any signature in it (its own, and
// any nested one) uses an algorithm the connection does not accept.
func (c *connector) checkAlgorithms(el *etree.Element, what string) *protocol.Error {
	var bad *protocol.Error
	walk(el, func(e *etree.Element) {
		if bad != nil || e.Tag != "SignedInfo" {
			return
		}
		for _, m := range e.ChildElements() {
			switch m.Tag {
			case "SignatureMethod":
				bad = c.algorithm(m.SelectAttrValue("Algorithm", ""), "signature", what, strongSignatureMethods, sha1SignatureMethods)
			case "Reference":
				for _, dm := range m.ChildElements() {
					if dm.Tag == "DigestMethod" && bad == nil {
						bad = c.algorithm(dm.SelectAttrValue("Algorithm", ""), "digest", what, strongDigests, sha1Digests)
					}
				}
			}
			if bad != nil {
				return
			}
		}
	})
	return bad
}

func (c *connector) algorithm(alg, kind, what string, strong, sha1 map[string]string) *protocol.Error {
	if _, ok := strong[alg]; ok {
		return nil
	}
	if name, ok := sha1[alg]; ok {
		if c.cfg.AllowSHA1 {
			return nil
		}
		return protocol.Refuse(nil, fmt.Sprintf("the %s uses the SHA-1 %s algorithm %s, which this connection refuses (have the IdP sign with SHA-256, or allow SHA-1 in the connection's settings)", what, kind, name))
	}
	return protocol.Refuse(nil, fmt.Sprintf("the %s uses the unsupported %s algorithm %q", what, kind, alg))
}

func walk(el *etree.Element, fn func(*etree.Element)) {
	fn(el)
	for _, c := range el.ChildElements() {
		walk(c, fn)
	}
}

// childrenNS returns el's child elements named local in namespace
// ns, and separately those with that local name in another namespace.
func childrenNS(el *etree.Element, ns, local string) (match, foreign []*etree.Element) {
	for _, c := range el.ChildElements() {
		if c.Tag != local {
			continue
		}
		if c.NamespaceURI() == ns {
			match = append(match, c)
		} else {
			foreign = append(foreign, c)
		}
	}
	return match, foreign
}

// oneChild returns the single child local in ns; "" reason if found.
func oneChild(el *etree.Element, ns, local, where string, required bool) (*etree.Element, *protocol.Error) {
	m, f := childrenNS(el, ns, local)
	switch {
	case len(f) > 0:
		return nil, protocol.Refuse(nil, fmt.Sprintf("the %s has a %s element in the foreign namespace %q", where, local, f[0].NamespaceURI()))
	case len(m) > 1:
		return nil, protocol.Refuse(nil, fmt.Sprintf("the %s has %d %s elements; exactly one is allowed", where, len(m), local))
	case len(m) == 0 && required:
		return nil, protocol.Refuse(nil, fmt.Sprintf("the %s has no %s", where, local))
	case len(m) == 0:
		return nil, nil
	}
	return m[0], nil
}

// textOf is an element's character data, all of it: text split by a
// comment (alice@example.com<!---->.evil.test) is joined, never cut at
// the comment. An element with child elements has no text (false).
func textOf(el *etree.Element) (string, bool) {
	var b strings.Builder
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.CharData:
			b.WriteString(t.Data)
		case *etree.Element:
			return "", false
		}
	}
	return b.String(), true
}

func timeAttr(el *etree.Element, attr, what string, required bool) (time.Time, *protocol.Error) {
	a := el.SelectAttr(attr)
	if a == nil {
		if required {
			return time.Time{}, protocol.Refuse(nil, fmt.Sprintf("the %s has no %s", what, attr))
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, a.Value)
	if err != nil {
		return time.Time{}, protocol.Refuse(nil, fmt.Sprintf("the %s %s %q is not an xs:dateTime", what, attr, clip(a.Value, 40)))
	}
	return t, nil
}

// assertionFacts is what the verified assertion says.
type assertionFacts struct {
	id           string
	issueInstant time.Time
	nameID       string
	attributes   map[string][]string
	friendly     map[string][]string // by FriendlyName, for UsernameFrom
	notBefore    time.Time           // Conditions
	notOnOrAfter time.Time           // Conditions; zero if absent
	confirmUntil time.Time           // the bearer SubjectConfirmationData's NotOnOrAfter
	authnInstant time.Time
}

// Finish validates a SAML response posted to the connection's ACS.
func (c *connector) Finish(ctx context.Context, r *http.Request, browser []byte) (protocol.Identity, store.SSORequest, error) {
	now := c.now()
	doc, rerr := readACS(r)
	if rerr != nil {
		return protocol.Identity{}, store.SSORequest{}, rerr
	}
	shape, rerr := inspect(doc)
	if rerr != nil {
		return protocol.Identity{}, store.SSORequest{}, rerr
	}
	if shape.root.Space != nsProtocol || shape.root.Local != "Response" {
		return protocol.Identity{}, store.SSORequest{}, protocol.Refuse(nil, fmt.Sprintf("the document is a {%s}%s, not a SAML 2.0 protocol Response",
			clip(shape.root.Space, 80), clip(shape.root.Local, 40)))
	}
	switch {
	case shape.responses != 1:
		return protocol.Identity{}, store.SSORequest{}, protocol.Refuse(nil, fmt.Sprintf("the document contains %d Response elements; a copy of the Response is a signature wrapping (XSW) attack", shape.responses))
	case shape.assertions != 1 || shape.assertionsAnywhere != 1:
		return protocol.Identity{}, store.SSORequest{}, protocol.Refuse(nil, fmt.Sprintf("the document contains %d Assertion elements (%d directly in the Response); exactly one is accepted, and copies elsewhere are a signature wrapping (XSW) attack",
			shape.assertionsAnywhere, shape.assertions))
	}

	// The request this answers. The ID is read from the unverified XML
	// only to find the one request crewjam may accept; the signed
	// InResponseTo is compared again below. From here on a refusal
	// returns that request (pending for this connection in this
	// browser), so that a test sign-in shows why.
	idpInitiated := !shape.hasInResponseTo
	var pending store.SSORequest
	if idpInitiated {
		if !c.cfg.AllowIdPInitiated {
			return protocol.Identity{}, store.SSORequest{}, protocol.Refuse(nil, "the Response answers no AuthnRequest (no InResponseTo: IdP-initiated sign-in), which this connection does not allow")
		}
	} else {
		var err error
		pending, err = c.st.PendingSSORequest(ctx, shape.inResponseTo, c.conn.ID, browser, now)
		if errors.Is(err, store.ErrNotFound) {
			return protocol.Identity{}, store.SSORequest{}, protocol.Refuse(nil, c.explainRequest(ctx, shape.inResponseTo, browser, now))
		}
		if err != nil {
			return protocol.Identity{}, store.SSORequest{}, fmt.Errorf("sso: look up SAML request: %w", err)
		}
	}

	v := &verifier{c: c, now: now}
	sp := c.crew
	sp.SignatureVerifier = v
	sp.AllowIDPInitiated = idpInitiated
	// crewjam accepts an assertion without AudienceRestriction and lets
	// any one restriction match; checkAssertion requires every
	// restriction to name us, with a precise reason.
	sp.ValidateAudienceRestriction = func(*saml.Assertion) error { return nil }
	var ids []string
	if !idpInitiated {
		ids = []string{shape.inResponseTo}
	}
	acs, _ := url.Parse(c.sp.acsURL)
	if _, err := sp.ParseXMLResponse(doc, ids, *acs); err != nil {
		return protocol.Identity{}, pending, crewRefusal(v, err)
	}
	if len(v.verified) != 1 {
		return protocol.Identity{}, pending, protocol.Refuse(nil, fmt.Sprintf("%d signatures were verified; exactly one (on the Response or on the Assertion) was expected", len(v.verified)))
	}
	signed := v.verified[0]

	// The Response's own attributes: from the verified element when the
	// Response is signed, else (unauthenticated, but still checked) as
	// received.
	respSigned := signed.el.Tag == "Response" && signed.el.NamespaceURI() == nsProtocol
	var assertionEl *etree.Element
	if respSigned {
		resp := signed.el
		shape.destination, shape.hasDestination = resp.SelectAttrValue("Destination", ""), resp.SelectAttr("Destination") != nil
		shape.inResponseTo, shape.hasInResponseTo = resp.SelectAttrValue("InResponseTo", ""), resp.SelectAttr("InResponseTo") != nil
		shape.issueInstant = resp.SelectAttrValue("IssueInstant", "")
		plain, _ := childrenNS(resp, nsAssertion, "Assertion")
		enc, _ := childrenNS(resp, nsAssertion, "EncryptedAssertion")
		switch {
		case len(plain)+len(enc) != 1:
			return protocol.Identity{}, pending, protocol.Refuse(nil, fmt.Sprintf("the signed Response carries %d assertions; exactly one is accepted", len(plain)+len(enc)))
		case len(enc) == 1:
			var rerr *protocol.Error
			if assertionEl, rerr = c.decrypt(enc[0]); rerr != nil {
				return protocol.Identity{}, pending, rerr
			}
		default:
			assertionEl = plain[0]
		}
	} else if signed.el.Tag == "Assertion" && signed.el.NamespaceURI() == nsAssertion {
		assertionEl = signed.el
	} else {
		return protocol.Identity{}, pending, protocol.Refuse(nil, "the verified signature covers a "+signed.el.Tag+", not the Response or the Assertion")
	}
	if rerr := c.checkResponse(shape, respSigned, idpInitiated, pending.ID, now); rerr != nil {
		return protocol.Identity{}, pending, rerr
	}
	facts, rerr := c.checkAssertion(assertionEl, idpInitiated, pending.ID, now)
	if rerr != nil {
		return protocol.Identity{}, pending, rerr
	}
	username, rerr := c.usernameOf(facts)
	if rerr != nil {
		return protocol.Identity{}, pending, rerr
	}

	// Keep the assertion ID until no check could accept it any more: the
	// earliest end of its validity, with the largest skew any connection
	// may be given (a later settings change must not reopen the window).
	until := facts.confirmUntil
	if !facts.notOnOrAfter.IsZero() && facts.notOnOrAfter.Before(until) {
		until = facts.notOnOrAfter
	}
	if end := facts.issueInstant.Add(maxIssueAge); end.Before(until) {
		until = end
	}
	// The request is used and the assertion remembered in one
	// transaction (one durable commit per sign-in).
	var err error
	if idpInitiated {
		err = c.st.RecordAssertion(ctx, c.conn.ID, facts.id, until.Add(MaxClockSkew))
	} else {
		var used store.SSORequest
		used, err = c.st.UseSSORequestRecording(ctx, pending.ID, c.conn.ID, browser, now, facts.id, until.Add(MaxClockSkew))
		if errors.Is(err, store.ErrNotFound) {
			// Used meanwhile by a concurrent answer, whose outcome stands.
			return protocol.Identity{}, store.SSORequest{}, protocol.Refuse(nil, c.explainRequest(ctx, pending.ID, browser, now))
		}
		pending = used
	}
	if errors.Is(err, store.ErrReplay) {
		return protocol.Identity{}, pending, protocol.Refuse(err, fmt.Sprintf("the assertion %q was already used (replayed response)", clip(facts.id, 80)))
	}
	if err != nil {
		return protocol.Identity{}, pending, fmt.Errorf("sso: SAML request and replay cache: %w", err)
	}

	id := protocol.Identity{Username: username, Subject: facts.nameID, Issuer: c.idp.entity.EntityID, Attributes: facts.attributes,
		Certificate: describeCert(signed.cert), IssuedAt: facts.authnInstant, NotBefore: facts.notBefore, NotOnOrAfter: until}
	if id.IssuedAt.IsZero() {
		id.IssuedAt = facts.issueInstant
	}
	if id.NotBefore.IsZero() {
		id.NotBefore = facts.issueInstant
	}
	return id, pending, nil
}

// crewRefusal turns crewjam's error into a refusal. Its
// InvalidResponseError carries the whole response: only the private
// error's text is kept.
func crewRefusal(v *verifier, err error) error {
	if v.refusal != nil {
		return v.refusal
	}
	var ire *saml.InvalidResponseError
	if !errors.As(err, &ire) {
		return protocol.Refuse(nil, "the SAML response failed validation: "+err.Error())
	}
	priv := ire.PrivateErr
	var status saml.ErrBadStatus
	switch {
	case priv == nil:
		return protocol.Refuse(nil, "the SAML response failed validation")
	case errors.As(priv, &status):
		return protocol.Refuse(nil, fmt.Sprintf("the IdP answered with status %q instead of Success (the sign-in failed at the IdP)", status.Status))
	case priv.Error() == "signature element not present":
		return protocol.Refuse(nil, "neither the Response nor its Assertion is signed")
	}
	return protocol.Refuse(nil, "the SAML response failed validation: "+priv.Error())
}

// explainRequest says why a request ID is not pending for this
// connection and browser, for the administrators.
func (c *connector) explainRequest(ctx context.Context, id string, browser []byte, now time.Time) string {
	q := fmt.Sprintf("InResponseTo %q", clip(id, 80))
	r, err := c.st.SSORequest(ctx, c.conn.OrgID, id)
	switch {
	case err != nil || r.ConnectionID != c.conn.ID:
		return q + " names no sign-in request of this connection (unknown ID, or a response meant for another connection)"
	case r.UsedAt != nil:
		return q + " names a sign-in request that was already used at " + r.UsedAt.UTC().Format(time.RFC3339) + " (replayed response)"
	case !now.Before(r.ExpiresAt):
		return q + " names a sign-in request that expired at " + r.ExpiresAt.UTC().Format(time.RFC3339)
	case !bytes.Equal(r.Browser, browser):
		return q + " names a sign-in request started in another browser"
	}
	return q + " names a sign-in request that is not pending"
}

// decrypt decrypts an EncryptedAssertion with the SP key (as crewjam
// does), checking the plaintext like any received XML.
func (c *connector) decrypt(enc *etree.Element) (*etree.Element, *protocol.Error) {
	data, _ := childrenNS(enc, nsXMLEnc, "EncryptedData")
	if len(data) != 1 {
		return nil, protocol.Refuse(nil, "the EncryptedAssertion must hold exactly one EncryptedData")
	}
	var key any = c.sp.key
	if keyEl := enc.FindElement("./EncryptedKey"); keyEl != nil {
		k, err := xmlenc.Decrypt(c.sp.key, keyEl)
		if err != nil {
			return nil, protocol.Refuse(err, "the assertion's key does not decrypt with this connection's SP key")
		}
		key = k
	}
	plain, err := xmlenc.Decrypt(key, data[0])
	if err != nil {
		return nil, protocol.Refuse(err, "the assertion does not decrypt with this connection's SP key")
	}
	if _, rerr := inspect(plain); rerr != nil {
		return nil, protocol.Refuse(nil, "the decrypted assertion: "+rerr.Reason)
	}
	d := etree.NewDocument()
	if err := d.ReadFromBytes(plain); err != nil || d.Root() == nil {
		return nil, protocol.Refuse(err, "the decrypted assertion is not XML")
	}
	return d.Root(), nil
}

// checkResponse checks the Response's Destination, InResponseTo and
// IssueInstant.
func (c *connector) checkResponse(s responseShape, signed, idpInitiated bool, requestID string, now time.Time) *protocol.Error {
	switch {
	case signed && !s.hasDestination:
		return protocol.Refuse(nil, "the signed Response has no Destination (required for signed responses, SAML bindings §3.5.5.2)")
	case s.hasDestination && s.destination != c.sp.acsURL:
		return protocol.Refuse(nil, fmt.Sprintf("the Response's Destination %q is not this connection's ACS URL %q", clip(s.destination, 200), c.sp.acsURL))
	case idpInitiated && s.hasInResponseTo:
		return protocol.Refuse(nil, "the IdP-initiated Response carries an InResponseTo")
	case !idpInitiated && s.inResponseTo != requestID:
		return protocol.Refuse(nil, fmt.Sprintf("the Response's InResponseTo %q is not the request %q", clip(s.inResponseTo, 80), requestID))
	}
	if s.issueInstant == "" {
		return protocol.Refuse(nil, "the Response has no IssueInstant")
	}
	t, err := time.Parse(time.RFC3339Nano, s.issueInstant)
	if err != nil {
		return protocol.Refuse(nil, fmt.Sprintf("the Response's IssueInstant %q is not an xs:dateTime", clip(s.issueInstant, 40)))
	}
	return c.checkIssueInstant(t, "Response", now)
}

func (c *connector) checkIssueInstant(t time.Time, what string, now time.Time) *protocol.Error {
	switch {
	case t.After(now.Add(c.skew)):
		return protocol.Refuse(nil, fmt.Sprintf("the %s's IssueInstant %s is in the future (now %s, clock skew %s)", what, fmtTime(t), fmtTime(now), c.skew))
	case t.Add(maxIssueAge + c.skew).Before(now):
		return protocol.Refuse(nil, fmt.Sprintf("the %s's IssueInstant %s is stale: more than %s old (now %s, clock skew %s)", what, fmtTime(t), maxIssueAge, fmtTime(now), c.skew))
	}
	return nil
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// checkAssertion reads and checks the verified assertion. Only
// direct children in the SAML assertion namespace count: crewjam decodes
// Subject.NameID without its namespace (GO-2026-6909), so nothing is
// taken from its parsed structs.
func (c *connector) checkAssertion(a *etree.Element, idpInitiated bool, requestID string, now time.Time) (assertionFacts, *protocol.Error) {
	var f assertionFacts
	if a.Tag != "Assertion" || a.NamespaceURI() != nsAssertion {
		return f, protocol.Refuse(nil, "the assertion is not a SAML 2.0 Assertion")
	}
	if f.id = a.SelectAttrValue("ID", ""); f.id == "" {
		return f, protocol.Refuse(nil, "the assertion has no ID")
	}
	if v := a.SelectAttrValue("Version", ""); v != "2.0" {
		return f, protocol.Refuse(nil, fmt.Sprintf("the assertion's Version is %q, not 2.0", clip(v, 10)))
	}
	var rerr *protocol.Error
	if f.issueInstant, rerr = timeAttr(a, "IssueInstant", "assertion", true); rerr != nil {
		return f, rerr
	}
	if rerr := c.checkIssueInstant(f.issueInstant, "assertion", now); rerr != nil {
		return f, rerr
	}
	issuer, rerr := oneChild(a, nsAssertion, "Issuer", "assertion", true)
	if rerr != nil {
		return f, rerr
	}
	if iss, _ := textOf(issuer); iss != c.idp.entity.EntityID {
		return f, protocol.Refuse(nil, fmt.Sprintf("the assertion's Issuer %q is not the IdP %q", clip(iss, 200), c.idp.entity.EntityID))
	}

	// Subject: exactly one NameID, in the assertion namespace.
	subject, rerr := oneChild(a, nsAssertion, "Subject", "assertion", true)
	if rerr != nil {
		return f, rerr
	}
	nameIDs, foreign := childrenNS(subject, nsAssertion, "NameID")
	switch {
	case len(foreign) > 0:
		return f, protocol.Refuse(nil, fmt.Sprintf("the Subject has a NameID in the foreign namespace %q (GO-2026-6909)", clip(foreign[0].NamespaceURI(), 100)))
	case len(nameIDs) == 0:
		if enc, _ := childrenNS(subject, nsAssertion, "EncryptedID"); len(enc) > 0 {
			return f, protocol.Refuse(nil, "the Subject's NameID is encrypted (EncryptedID), which gatehouse does not support")
		}
		return f, protocol.Refuse(nil, "the Subject has no NameID")
	case len(nameIDs) > 1:
		return f, protocol.Refuse(nil, fmt.Sprintf("the Subject has %d NameIDs; exactly one is allowed", len(nameIDs)))
	}
	var ok bool
	if f.nameID, ok = textOf(nameIDs[0]); !ok {
		return f, protocol.Refuse(nil, "the NameID contains elements, not text")
	}
	if f.nameID == "" {
		return f, protocol.Refuse(nil, "the NameID is empty")
	}

	// A bearer SubjectConfirmation for us, for this request, still valid.
	confs, _ := childrenNS(subject, nsAssertion, "SubjectConfirmation")
	var why *protocol.Error
	for _, sc := range confs {
		if sc.SelectAttrValue("Method", "") != cmBearer {
			continue
		}
		until, rerr := c.checkBearer(sc, idpInitiated, requestID, now)
		if rerr == nil {
			f.confirmUntil = until
			why = nil
			break
		}
		if why == nil {
			why = rerr
		}
	}
	if f.confirmUntil.IsZero() {
		if why != nil {
			return f, why
		}
		return f, protocol.Refuse(nil, "the Subject has no bearer SubjectConfirmation (Method "+cmBearer+")")
	}

	// Conditions: the validity window and our audience.
	cond, rerr := oneChild(a, nsAssertion, "Conditions", "assertion", true)
	if rerr != nil {
		return f, rerr
	}
	if f.notBefore, rerr = timeAttr(cond, "NotBefore", "Conditions", false); rerr != nil {
		return f, rerr
	}
	if f.notOnOrAfter, rerr = timeAttr(cond, "NotOnOrAfter", "Conditions", false); rerr != nil {
		return f, rerr
	}
	if !f.notBefore.IsZero() && f.notBefore.After(now.Add(c.skew)) {
		return f, protocol.Refuse(nil, fmt.Sprintf("the assertion is not valid yet: Conditions NotBefore %s is in the future (now %s, clock skew %s)", fmtTime(f.notBefore), fmtTime(now), c.skew))
	}
	if !f.notOnOrAfter.IsZero() && !now.Before(f.notOnOrAfter.Add(c.skew)) {
		return f, protocol.Refuse(nil, fmt.Sprintf("the assertion has expired: Conditions NotOnOrAfter %s has passed (now %s, clock skew %s)", fmtTime(f.notOnOrAfter), fmtTime(now), c.skew))
	}
	restrictions, foreignAR := childrenNS(cond, nsAssertion, "AudienceRestriction")
	if len(foreignAR) > 0 {
		return f, protocol.Refuse(nil, "the Conditions have an AudienceRestriction in a foreign namespace")
	}
	if len(restrictions) == 0 {
		return f, protocol.Refuse(nil, fmt.Sprintf("the assertion has no AudienceRestriction; it must name this SP's entity ID %q as audience", c.sp.entityID))
	}
	// SAML core §2.5.1.4: every AudienceRestriction must be met, each by
	// one of its Audiences.
	for _, ar := range restrictions {
		auds, _ := childrenNS(ar, nsAssertion, "Audience")
		met := false
		var seen []string
		for _, au := range auds {
			t, _ := textOf(au)
			seen = append(seen, clip(t, 200))
			if t == c.sp.entityID {
				met = true
			}
		}
		if !met {
			return f, protocol.Refuse(nil, fmt.Sprintf("the assertion's audience %q does not include this SP's entity ID %q", seen, c.sp.entityID))
		}
	}

	// AuthnStatement (required by the Web SSO profile, §4.1.4.2).
	authn, _ := childrenNS(a, nsAssertion, "AuthnStatement")
	if len(authn) == 0 {
		return f, protocol.Refuse(nil, "the assertion has no AuthnStatement")
	}
	if f.authnInstant, rerr = timeAttr(authn[0], "AuthnInstant", "AuthnStatement", true); rerr != nil {
		return f, rerr
	}

	// Attributes, values exactly as sent.
	f.attributes, f.friendly = map[string][]string{}, map[string][]string{}
	stmts, _ := childrenNS(a, nsAssertion, "AttributeStatement")
	for _, st := range stmts {
		attrs, _ := childrenNS(st, nsAssertion, "Attribute")
		for _, at := range attrs {
			name := at.SelectAttrValue("Name", "")
			vals, _ := childrenNS(at, nsAssertion, "AttributeValue")
			for _, v := range vals {
				t, ok := textOf(v)
				if !ok {
					continue // a complex value: not a string
				}
				f.attributes[name] = append(f.attributes[name], t)
				if fn := at.SelectAttrValue("FriendlyName", ""); fn != "" {
					f.friendly[fn] = append(f.friendly[fn], t)
				}
			}
		}
	}
	return f, nil
}

// checkBearer checks one bearer SubjectConfirmation and returns its
// NotOnOrAfter (SAML profiles §4.1.4.2).
func (c *connector) checkBearer(sc *etree.Element, idpInitiated bool, requestID string, now time.Time) (time.Time, *protocol.Error) {
	data, rerr := oneChild(sc, nsAssertion, "SubjectConfirmationData", "bearer SubjectConfirmation", true)
	if rerr != nil {
		return time.Time{}, rerr
	}
	if rcpt := data.SelectAttrValue("Recipient", ""); rcpt != c.sp.acsURL {
		return time.Time{}, protocol.Refuse(nil, fmt.Sprintf("the bearer SubjectConfirmation's Recipient %q is not this connection's ACS URL %q", clip(rcpt, 200), c.sp.acsURL))
	}
	irt := data.SelectAttr("InResponseTo")
	switch {
	case idpInitiated && irt != nil:
		return time.Time{}, protocol.Refuse(nil, "the IdP-initiated assertion's SubjectConfirmationData carries an InResponseTo")
	case !idpInitiated && (irt == nil || irt.Value != requestID):
		got := "none"
		if irt != nil {
			got = fmt.Sprintf("%q", clip(irt.Value, 80))
		}
		return time.Time{}, protocol.Refuse(nil, fmt.Sprintf("the bearer SubjectConfirmation's InResponseTo is %s, not the request %q", got, requestID))
	}
	until, rerr := timeAttr(data, "NotOnOrAfter", "bearer SubjectConfirmationData", true)
	if rerr != nil {
		return time.Time{}, rerr
	}
	if !now.Before(until.Add(c.skew)) {
		return time.Time{}, protocol.Refuse(nil, fmt.Sprintf("the bearer SubjectConfirmation has expired: NotOnOrAfter %s has passed (now %s, clock skew %s)", fmtTime(until), fmtTime(now), c.skew))
	}
	nb, rerr := timeAttr(data, "NotBefore", "bearer SubjectConfirmationData", false)
	if rerr != nil {
		return time.Time{}, rerr
	}
	if !nb.IsZero() && nb.After(now.Add(c.skew)) {
		return time.Time{}, protocol.Refuse(nil, fmt.Sprintf("the bearer SubjectConfirmation is not valid yet: NotBefore %s is in the future", fmtTime(nb)))
	}
	return until, nil
}

// usernameOf picks the username the connection names, byte for byte.
func (c *connector) usernameOf(f assertionFacts) (string, *protocol.Error) {
	if c.users.attribute == "" {
		return f.nameID, nil
	}
	name := c.users.attribute
	vals, ok := f.attributes[name]
	if !ok {
		vals, ok = f.friendly[name]
	}
	switch {
	case !ok || len(vals) == 0:
		return "", protocol.Refuse(nil, fmt.Sprintf("the assertion has no attribute %q to take the username from (NameID %q)", name, clip(f.nameID, 100)))
	case len(vals) > 1:
		return "", protocol.Refuse(nil, fmt.Sprintf("the attribute %q has %d values; the username needs exactly one", name, len(vals)))
	case vals[0] == "":
		return "", protocol.Refuse(nil, fmt.Sprintf("the attribute %q is empty", name))
	}
	return vals[0], nil
}
