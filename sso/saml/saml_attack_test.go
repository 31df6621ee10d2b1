package saml

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"gatehouse/sso/protocol"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// samlAttack is one malicious response: base is shared with the control
// (the same builder, unmodified, must be accepted), attack edits the
// response before signing, tamper the signed document, raw its bytes.
type samlAttack struct {
	name      string
	configure func(cfg *Config, conn *store.SSOConnection)
	base      func(e *samlEnv, m *samlMint)
	attack    func(e *samlEnv, m *samlMint)
	tamper    func(e *samlEnv, d *etree.Document)
	raw       func(b []byte) []byte
	browser   string // the browser the attack posts from; "b1" if ""
	reuse     bool   // answer the control's (used) request
	want      []string
}

// answer makes m answer requestID in the Response and the confirmation.
func (m *samlMint) answer(e *samlEnv, requestID string) {
	m.InResponseTo, m.NoResponseIRT = requestID, requestID == ""
	m.ConfirmationXML = samlConfirmation(cmBearer, e.c.sp.acsURL, requestID, time.Now().Add(5*time.Minute))
}

func responseSigned(_ *samlEnv, m *samlMint) { m.SignResponse, m.SignAssertion = true, false }

// samlAssertionOf returns the document's (first) Assertion.
func samlAssertionOf(d *etree.Document) *etree.Element { return d.Root().FindElement("./Assertion") }

func samlSetNameID(a *etree.Element, v string) { a.FindElement("./Subject/NameID").SetText(v) }

func samlRemoveSignature(el *etree.Element) {
	if s := el.FindElement("./Signature"); s != nil {
		el.RemoveChild(s)
	}
}

// samlEvilCopy is a copy of el with ID _evil, NameID admin and no
// signature: what an attacker wants processed.
func samlEvilCopy(el *etree.Element) *etree.Element {
	evil := el.Copy()
	evil.CreateAttr("ID", "_evil")
	samlRemoveSignature(evil)
	if n := evil.FindElement(".//NameID"); n != nil {
		n.SetText("admin")
	}
	return evil
}

func samlXSWCases() []samlAttack {
	return []samlAttack{
		{name: "XSW1 evil Response root, signed original inside its Signature", base: responseSigned,
			tamper: func(e *samlEnv, d *etree.Document) {
				orig := d.Root()
				evil := orig.Copy()
				evil.CreateAttr("ID", "_evil")
				evil.FindElement("./Assertion/Subject/NameID").SetText("admin")
				inner := orig.Copy()
				samlRemoveSignature(inner)
				evil.FindElement("./Signature").AddChild(inner)
				d.SetRoot(evil)
			}, want: []string{"2 Response elements", "XSW"}},
		{name: "XSW2 evil Response root, signed original before its detached Signature", base: responseSigned,
			tamper: func(e *samlEnv, d *etree.Document) {
				orig := d.Root()
				evil := orig.Copy()
				evil.CreateAttr("ID", "_evil")
				evil.FindElement("./Assertion/Subject/NameID").SetText("admin")
				inner := orig.Copy()
				samlRemoveSignature(inner)
				sig := evil.FindElement("./Signature")
				evil.InsertChildAt(sig.Index(), inner)
				d.SetRoot(evil)
			}, want: []string{"2 Response elements", "XSW"}},
		{name: "XSW3 unsigned evil Assertion before the signed one",
			tamper: func(e *samlEnv, d *etree.Document) {
				orig := samlAssertionOf(d)
				d.Root().InsertChildAt(orig.Index(), samlEvilCopy(orig))
			}, want: []string{"2 Assertion elements", "XSW"}},
		{name: "XSW4 signed Assertion wrapped inside an evil one",
			tamper: func(e *samlEnv, d *etree.Document) {
				orig := samlAssertionOf(d)
				evil := samlEvilCopy(orig)
				d.Root().InsertChildAt(orig.Index(), evil)
				d.Root().RemoveChild(orig)
				evil.AddChild(orig)
			}, want: []string{"2 Assertion elements", "XSW"}},
		{name: "XSW5 signed Assertion edited, unsigned original appended",
			tamper: func(e *samlEnv, d *etree.Document) {
				orig := samlAssertionOf(d)
				clean := orig.Copy()
				samlRemoveSignature(clean)
				orig.CreateAttr("ID", "_evil")
				samlSetNameID(orig, "admin")
				d.Root().AddChild(clean)
			}, want: []string{"2 Assertion elements", "XSW"}},
		{name: "XSW6 signed Assertion edited, unsigned original inside its Signature",
			tamper: func(e *samlEnv, d *etree.Document) {
				orig := samlAssertionOf(d)
				clean := orig.Copy()
				samlRemoveSignature(clean)
				orig.CreateAttr("ID", "_evil")
				samlSetNameID(orig, "admin")
				orig.FindElement("./Signature").AddChild(clean)
			}, want: []string{"2 Assertion elements", "XSW"}},
		{name: "XSW7 evil Assertion in samlp:Extensions",
			tamper: func(e *samlEnv, d *etree.Document) {
				orig := samlAssertionOf(d)
				ext := etree.NewElement("samlp:Extensions")
				ext.AddChild(samlEvilCopy(orig))
				d.Root().InsertChildAt(1, ext)
			}, want: []string{"2 Assertion elements", "XSW"}},
		{name: "XSW8 signed Assertion edited, unsigned original in ds:Object",
			tamper: func(e *samlEnv, d *etree.Document) {
				orig := samlAssertionOf(d)
				clean := orig.Copy()
				samlRemoveSignature(clean)
				samlSetNameID(orig, "admin")
				obj := etree.NewElement("ds:Object")
				obj.AddChild(clean)
				orig.FindElement("./Signature").AddChild(obj)
			}, want: []string{"2 Assertion elements", "XSW"}},
	}
}

func TestSAMLAttacks(t *testing.T) {
	cases := []samlAttack{
		{name: "signature removed", tamper: func(e *samlEnv, d *etree.Document) { samlRemoveSignature(samlAssertionOf(d)) },
			want: []string{"neither the Response nor its Assertion is signed"}},
		{name: "signature removed from a signed Response", base: responseSigned,
			tamper: func(e *samlEnv, d *etree.Document) { samlRemoveSignature(d.Root()) },
			want:   []string{"neither the Response nor its Assertion is signed"}},
		{name: "NameID edited after signing", tamper: func(e *samlEnv, d *etree.Document) { samlSetNameID(samlAssertionOf(d), "admin") },
			want: []string{"signature on the Assertion does not verify"}},
		{name: "NameID edited after signing the Response", base: responseSigned,
			tamper: func(e *samlEnv, d *etree.Document) { samlSetNameID(samlAssertionOf(d), "admin") },
			want:   []string{"signature on the Response does not verify"}},
		{name: "attribute edited after signing", configure: func(c *Config, conn *store.SSOConnection) { conn.UsernameFrom = "attribute:username" },
			tamper: func(e *samlEnv, d *etree.Document) {
				samlAssertionOf(d).FindElement("./AttributeStatement/Attribute[@Name='username']/AttributeValue").SetText("admin")
			}, want: []string{"signature on the Assertion does not verify"}},
		{name: "attacker key with its own certificate in KeyInfo", attack: func(e *samlEnv, m *samlMint) { m.Signer = samlTestKeys(e.t).attacker },
			want: []string{"CN=Attacker", "not a signing certificate in the IdP metadata"}},
		{name: "attacker key without KeyInfo", attack: func(e *samlEnv, m *samlMint) { m.Signer, m.NoKeyInfo = samlTestKeys(e.t).attacker, true },
			want: []string{"does not verify"}},
		{name: "attacker key with the IdP's certificate in KeyInfo", attack: func(e *samlEnv, m *samlMint) { m.Signer = samlTestKeys(e.t).attacker },
			tamper: func(e *samlEnv, d *etree.Document) {
				samlAssertionOf(d).FindElement("./Signature/KeyInfo/X509Data/X509Certificate").SetText(base64.StdEncoding.EncodeToString(e.idp.cert.Raw))
			}, want: []string{"does not verify"}},
		{name: "foreign-namespace NameID (GO-2026-6909)", attack: func(e *samlEnv, m *samlMint) {
			m.NameIDXML = `<x:NameID xmlns:x="urn:not-saml">admin</x:NameID>`
		}, want: []string{"foreign namespace", "GO-2026-6909"}},
		{name: "foreign-namespace NameID next to the real one", attack: func(e *samlEnv, m *samlMint) {
			m.NameIDXML = samlNameID("alice") + `<x:NameID xmlns:x="urn:not-saml">admin</x:NameID>`
		}, want: []string{"foreign namespace"}},
		{name: "foreign-namespace NameID via default namespace", attack: func(e *samlEnv, m *samlMint) {
			m.NameIDXML = `<NameID xmlns="urn:not-saml">admin</NameID>`
		}, want: []string{"foreign namespace"}},
		{name: "two NameIDs", attack: func(e *samlEnv, m *samlMint) { m.NameIDXML = samlNameID("alice") + samlNameID("admin") },
			want: []string{"2 NameIDs"}},
		{name: "empty NameID", attack: func(e *samlEnv, m *samlMint) { m.NameIDXML = samlNameID("") }, want: []string{"NameID is empty"}},
		{name: "NameID with child elements", attack: func(e *samlEnv, m *samlMint) {
			m.NameIDXML = `<saml:NameID>ali<saml:X>ce</saml:X></saml:NameID>`
		}, want: []string{"NameID contains elements"}},
		{name: "unknown InResponseTo", attack: func(e *samlEnv, m *samlMint) { m.answer(e, "id-unknown") },
			want: []string{`"id-unknown"`, "names no sign-in request of this connection"}},
		{name: "InResponseTo from another browser", browser: "b2", want: []string{"started in another browser"}},
		{name: "reused InResponseTo", reuse: true, want: []string{"already used"}},
		{name: "InResponseTo only in the confirmation differs", attack: func(e *samlEnv, m *samlMint) {
			m.ConfirmationXML = samlConfirmation(cmBearer, e.c.sp.acsURL, "id-other", time.Now().Add(5*time.Minute))
		}, want: []string{"SubjectConfirmation"}},
		{name: "IdP-initiated when not allowed", attack: func(e *samlEnv, m *samlMint) { m.answer(e, "") },
			want: []string{"IdP-initiated", "does not allow"}},
		{name: "missing audience", attack: func(e *samlEnv, m *samlMint) {
			m.ConditionsXML = samlConditions(time.Now().Add(-time.Minute), time.Now().Add(5*time.Minute))
		}, want: []string{"no AudienceRestriction"}},
		{name: "another SP's audience", attack: func(e *samlEnv, m *samlMint) {
			m.ConditionsXML = samlConditions(time.Now().Add(-time.Minute), time.Now().Add(5*time.Minute), "https://other-sp.example/metadata")
		}, want: []string{"does not include this SP's entity ID", "other-sp.example"}},
		{name: "a second AudienceRestriction for another SP", attack: func(e *samlEnv, m *samlMint) {
			c := samlConditions(time.Now().Add(-time.Minute), time.Now().Add(5*time.Minute), e.c.sp.entityID)
			m.ConditionsXML = strings.Replace(c, "</saml:Conditions>", "<saml:AudienceRestriction><saml:Audience>https://other-sp.example/metadata</saml:Audience></saml:AudienceRestriction></saml:Conditions>", 1)
		}, want: []string{"does not include this SP's entity ID"}},
		{name: "wrong Recipient", attack: func(e *samlEnv, m *samlMint) {
			m.ConfirmationXML = samlConfirmation(cmBearer, "https://gatehouse.test/sso/saml/other/acs", m.InResponseTo, time.Now().Add(5*time.Minute))
		}, want: []string{"Recipient"}},
		{name: "wrong Destination", attack: func(e *samlEnv, m *samlMint) { m.Destination = "https://gatehouse.test/sso/saml/other/acs" },
			want: []string{"Destination"}},
		{name: "signed Response without Destination", base: responseSigned, attack: func(e *samlEnv, m *samlMint) { m.NoDestination = true },
			want: []string{"Destination"}},
		{name: "no bearer SubjectConfirmation", attack: func(e *samlEnv, m *samlMint) {
			m.ConfirmationXML = samlConfirmation("urn:oasis:names:tc:SAML:2.0:cm:holder-of-key", e.c.sp.acsURL, m.InResponseTo, time.Now().Add(5*time.Minute))
		}, want: []string{"no bearer SubjectConfirmation"}},
		{name: "no SubjectConfirmation at all", attack: func(e *samlEnv, m *samlMint) { m.ConfirmationXML = "" },
			want: []string{"no bearer SubjectConfirmation"}},
		{name: "NotBefore in the future", attack: func(e *samlEnv, m *samlMint) {
			m.ConditionsXML = samlConditions(time.Now().Add(5*time.Minute), time.Now().Add(10*time.Minute), e.c.sp.entityID)
		}, want: []string{"not valid yet", "NotBefore"}},
		{name: "NotOnOrAfter past", attack: func(e *samlEnv, m *samlMint) {
			m.ConditionsXML = samlConditions(time.Now().Add(-5*time.Minute), time.Now().Add(-2*time.Minute), e.c.sp.entityID)
		}, want: []string{"expired", "NotOnOrAfter"}},
		{name: "confirmation NotOnOrAfter past", attack: func(e *samlEnv, m *samlMint) {
			m.ConfirmationXML = samlConfirmation(cmBearer, e.c.sp.acsURL, m.InResponseTo, time.Now().Add(-2*time.Minute))
		}, want: []string{"bearer SubjectConfirmation has expired"}},
		{name: "stale IssueInstant", attack: func(e *samlEnv, m *samlMint) {
			m.IssueInstant, m.AssertionIssueInstant = time.Now().Add(-7*time.Minute), time.Now().Add(-7*time.Minute)
		}, want: []string{"IssueInstant", "stale"}},
		{name: "stale assertion IssueInstant in a fresh Response", attack: func(e *samlEnv, m *samlMint) {
			m.AssertionIssueInstant = time.Now().Add(-7 * time.Minute)
		}, want: []string{"assertion's IssueInstant", "stale"}},
		{name: "future IssueInstant", attack: func(e *samlEnv, m *samlMint) {
			m.IssueInstant, m.AssertionIssueInstant = time.Now().Add(3*time.Minute), time.Now().Add(3*time.Minute)
		}, want: []string{"IssueInstant", "in the future"}},
		{name: "SHA-1 signature when not allowed", attack: func(e *samlEnv, m *samlMint) { m.SigAlg = dsig.RSASHA1SignatureMethod },
			want: []string{"SHA-1", "rsa-sha1"}},
		{name: "SHA-1 digest when not allowed", tamper: func(e *samlEnv, d *etree.Document) {
			samlAssertionOf(d).FindElement("./Signature/SignedInfo/Reference/DigestMethod").CreateAttr("Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1")
		}, want: []string{"SHA-1 digest"}},
		{name: "two signed assertions", tamper: func(e *samlEnv, d *etree.Document) {
			d.Root().AddChild(samlAssertionOf(d).Copy())
		}, want: []string{"2 Assertion elements"}},
		{name: "IdP answered with a failure status", attack: func(e *samlEnv, m *samlMint) {
			m.Status = "urn:oasis:names:tc:SAML:2.0:status:Requester"
		}, want: []string{"status", "status:Requester"}},
		{name: "another issuer", attack: func(e *samlEnv, m *samlMint) { m.Issuer = "https://idp.evil.test/metadata" },
			want: []string{"Issuer"}},
		{name: "assertion encrypted to another key", attack: func(e *samlEnv, m *samlMint) { m.EncryptTo = samlTestKeys(e.t).attacker.cert },
			want: []string{"decrypt"}},
		{name: "DOCTYPE", raw: func(b []byte) []byte {
			return append([]byte(`<?xml version="1.0"?><!DOCTYPE Response [<!ELEMENT x ANY>]>`), b...)
		}, want: []string{"DOCTYPE"}},
		{name: "entity expansion", raw: func(b []byte) []byte {
			lol := `<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>`
			return bytes.Replace(append([]byte(lol), b...), []byte(">alice<"), []byte(">&c;<"), 1)
		}, want: []string{"DOCTYPE"}},
		{name: "undeclared entity", raw: func(b []byte) []byte { return bytes.Replace(b, []byte(">alice<"), []byte(">&evil;<"), 1) },
			want: []string{"not well-formed"}},
		{name: "deep nesting", attack: func(e *samlEnv, m *samlMint) {
			m.AttributesXML += `<saml:Attribute Name="deep"><saml:AttributeValue>` + strings.Repeat("<d>", 200) + strings.Repeat("</d>", 200) + `</saml:AttributeValue></saml:Attribute>`
		}, want: []string{"nests elements more than 32 deep"}},
		{name: "username attribute missing", configure: func(c *Config, conn *store.SSOConnection) { conn.UsernameFrom = "attribute:uid" },
			base: func(e *samlEnv, m *samlMint) { m.AttributesXML = samlAttribute("uid", "alice") },
			attack: func(e *samlEnv, m *samlMint) {
				m.NameIDXML = `<saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient">_t1</saml:NameID>`
				m.AttributesXML = ""
			}, want: []string{`no attribute "uid"`}},
		{name: "username attribute with two values", configure: func(c *Config, conn *store.SSOConnection) { conn.UsernameFrom = "attribute:uid" },
			base:   func(e *samlEnv, m *samlMint) { m.AttributesXML = samlAttribute("uid", "alice") },
			attack: func(e *samlEnv, m *samlMint) { m.AttributesXML = samlAttribute("uid", "alice", "admin") },
			want:   []string{"2 values"}},
		{name: "username attribute empty", configure: func(c *Config, conn *store.SSOConnection) { conn.UsernameFrom = "attribute:uid" },
			base:   func(e *samlEnv, m *samlMint) { m.AttributesXML = samlAttribute("uid", "alice") },
			attack: func(e *samlEnv, m *samlMint) { m.AttributesXML = samlAttribute("uid", "") },
			want:   []string{`attribute "uid" is empty`}},
		{name: "no AuthnStatement", attack: func(e *samlEnv, m *samlMint) { m.AuthnXML = "" }, want: []string{"no AuthnStatement"}},
	}
	cases = append(cases, samlXSWCases()...)
	keys := samlTestKeys(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newSAMLEnv(t, samlSQLite(t), "org-a", keys.idpA, tc.configure)
			build := func(id string, attack bool) []byte {
				m := e.mint(id)
				if tc.base != nil {
					tc.base(e, m)
				}
				if !attack {
					return m.bytes()
				}
				if tc.attack != nil {
					tc.attack(e, m)
				}
				d := m.build()
				if tc.tamper != nil {
					tc.tamper(e, d)
				}
				b := samlDocBytes(d)
				if tc.raw != nil {
					b = tc.raw(b)
				}
				return b
			}
			// The control: the same builder, unmodified, is accepted.
			controlID := e.start("b1")
			id, req, err := e.finish(build(controlID, false), "b1")
			if err != nil {
				t.Fatalf("control refused: %v", err)
			}
			if id.Username != "alice" || req.ID != controlID {
				t.Fatalf("control: %+v %+v", id, req)
			}
			attackID := e.start("b1")
			if tc.reuse {
				attackID = controlID
			}
			browser := tc.browser
			if browser == "" {
				browser = "b1"
			}
			id, _, err = e.finish(build(attackID, true), browser)
			if err == nil {
				t.Fatalf("attack accepted: %+v", id)
			}
			samlWantRefused(t, err, tc.want...)
		})
	}
}

// The XSW documents again, straight through crewjam and verifier
// (below the element counting of inspect): the signature layer on its
// own either refuses them or has verified only the genuine content.
func TestSAMLXSWSignatureLayer(t *testing.T) {
	keys := samlTestKeys(t)
	e := newSAMLEnv(t, samlSQLite(t), "org-a", keys.idpA, nil)
	for _, tc := range samlXSWCases() {
		t.Run(tc.name, func(t *testing.T) {
			reqID := e.start("b1")
			m := e.mint(reqID)
			if tc.base != nil {
				tc.base(e, m)
			}
			d := m.build()
			tc.tamper(e, d)
			v := &verifier{c: e.c, now: time.Now()}
			sp := e.c.crew
			sp.SignatureVerifier = v
			acs, _ := url.Parse(e.c.sp.acsURL)
			got, err := sp.ParseXMLResponse(samlDocBytes(d), []string{reqID}, *acs)
			if err == nil && (got.Subject == nil || got.Subject.NameID == nil || got.Subject.NameID.Value != "alice") {
				t.Fatalf("crewjam returned the evil assertion: %+v", got.Subject)
			}
			for _, ver := range v.verified {
				for _, n := range ver.el.FindElements(".//NameID") {
					if txt, _ := textOf(n); txt != "alice" {
						t.Fatalf("the signature layer verified NameID %q", txt)
					}
				}
			}
			t.Logf("crewjam+verifier: err=%v, verified %d element(s)", err, len(v.verified))
		})
	}
}

// Comment injection must not cut the NameID or an attribute at the
// comment: the IdP signed alice@example.com.evil.test, and that is what
// comes out (or the response is refused) — never alice@example.com.
func TestSAMLCommentInjection(t *testing.T) {
	keys := samlTestKeys(t)
	for _, from := range []string{"nameid", "attribute:username"} {
		for _, signResponse := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/signResponse=%v", from, signResponse), func(t *testing.T) {
				e := newSAMLEnv(t, samlSQLite(t), "org-a", keys.idpA, func(c *Config, conn *store.SSOConnection) { conn.UsernameFrom = from })
				m := e.mint(e.start("b1"))
				m.SignResponse, m.SignAssertion = signResponse, !signResponse
				m.NameIDXML = samlNameID("alice@example.com.evil.test")
				m.AttributesXML = samlAttribute("username", "alice@example.com.evil.test")
				d := m.build()
				for _, el := range []*etree.Element{samlAssertionOf(d).FindElement("./Subject/NameID"),
					samlAssertionOf(d).FindElement("./AttributeStatement/Attribute/AttributeValue")} {
					el.Child = nil
					el.AddChild(etree.NewText("alice@example.com"))
					el.AddChild(etree.NewComment(""))
					el.AddChild(etree.NewText(".evil.test"))
				}
				b := samlDocBytes(d)
				if !bytes.Contains(b, []byte("alice@example.com<!---->.evil.test")) {
					t.Fatalf("the comment was not injected: %s", b)
				}
				id, _, err := e.finish(b, "b1")
				if err != nil {
					samlWantRefused(t, err) // refusing is fine too
					return
				}
				if id.Username != "alice@example.com.evil.test" || id.Subject != "alice@example.com.evil.test" {
					t.Fatalf("comment injection yielded username %q, subject %q", id.Username, id.Subject)
				}
			})
		}
	}
}

// The username is returned exactly as sent: spaces, case, entities.
func TestSAMLUsernameByteExact(t *testing.T) {
	keys := samlTestKeys(t)
	for _, v := range []string{"  Alice ", "Alice", "a&b <c>", "ünïcødé\t"} {
		for _, from := range []string{"nameid", "attribute:username"} {
			e := newSAMLEnv(t, samlSQLite(t), "org-a", keys.idpA, func(c *Config, conn *store.SSOConnection) { conn.UsernameFrom = from })
			m := e.mint(e.start("b1"))
			m.NameIDXML = samlNameID(v)
			m.AttributesXML = samlAttribute("username", v)
			id, _, err := e.finish(m.bytes(), "b1")
			if err != nil {
				t.Fatalf("%q from %s: %v", v, from, err)
			}
			if id.Username != v {
				t.Fatalf("%q from %s came back as %q", v, from, id.Username)
			}
		}
	}
}

func TestSAMLReplay(t *testing.T) {
	keys := samlTestKeys(t)
	e := newSAMLEnv(t, samlSQLite(t), "org-a", keys.idpA, func(c *Config, conn *store.SSOConnection) { c.AllowIdPInitiated = true })
	resp := e.mint(e.start("b1")).bytes()
	if _, _, err := e.finish(resp, "b1"); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.finish(resp, "b1")
	samlWantRefused(t, err, "already used")

	// IdP-initiated: no request to use up; the replay cache refuses.
	resp = e.mint("").bytes()
	if _, req, err := e.finish(resp, "b1"); err != nil || req.ID != "" {
		t.Fatalf("IdP-initiated: %+v %v", req, err)
	}
	_, _, err = e.finish(resp, "b2")
	samlWantRefused(t, err, "already used (replayed response)")
}

// Replays across two gatehouse instances (two store.SQL) on one
// PostgreSQL database: the request and the replay cache are shared.
func TestSAMLReplayAcrossInstancesPostgres(t *testing.T) {
	keys := samlTestKeys(t)
	dsn := storetest.PostgresURL(t)
	st1, st2 := samlOpenStore(t, dsn), samlOpenStore(t, dsn)
	a := newSAMLEnv(t, st1, "org-a", keys.idpA, func(c *Config, conn *store.SSOConnection) { c.AllowIdPInitiated = true })
	b := *a // the second instance: the same connection, its own store and connector
	b.st = st2
	conn, err := st2.SSOConnectionByID(context.Background(), a.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b.c, err = newConnector(conn, st2, samlSealer, a.base, nil); err != nil {
		t.Fatal(err)
	}
	for _, idpInitiated := range []bool{false, true} {
		reqID := ""
		if !idpInitiated {
			reqID = a.start("b1")
		}
		resp := a.mint(reqID).bytes()
		// Both instances at once: exactly one accepts.
		errs := make(chan error, 2)
		for _, env := range []*samlEnv{a, &b} {
			go func() { _, _, err := env.finish(resp, "b1"); errs <- err }()
		}
		e1, e2 := <-errs, <-errs
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("idpInitiated=%v: concurrent posts on two instances: %v / %v", idpInitiated, e1, e2)
		}
		refused := e1
		if refused == nil {
			refused = e2
		}
		samlWantRefused(t, refused, "already used")
		// And afterwards on either instance.
		_, _, err := b.finish(resp, "b1")
		samlWantRefused(t, err, "already used")
	}
}

func samlOpenStore(t testing.TB, dsn string) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Organization B's genuine response, posted to organization A's ACS, is
// refused — both as B's answer to B's request and as a response B's IdP
// minted for A's request, audience and ACS.
func TestSAMLOtherOrganizationsResponse(t *testing.T) {
	keys := samlTestKeys(t)
	st := samlSQLite(t)
	a := newSAMLEnv(t, st, "org-a", keys.idpA, nil)
	b := newSAMLEnv(t, st, "org-b", keys.idpB, nil)

	bResp := b.mint(b.start("b1")).bytes()
	_, _, err := a.finish(bResp, "b1")
	samlWantRefused(t, err, "names no sign-in request of this connection")
	if _, _, err := b.finish(bResp, "b1"); err != nil { // control: B accepts its own
		t.Fatal(err)
	}

	// B's IdP answers A's request, for A's audience and ACS.
	m := a.mint(a.start("b1"))
	m.Signer, m.Issuer = keys.idpB, b.idpID
	_, _, err = a.finish(m.bytes(), "b1")
	samlWantRefused(t, err, "Issuer does not match")
	m = a.mint(a.start("b1"))
	m.Signer = keys.idpB
	_, _, err = a.finish(m.bytes(), "b1")
	samlWantRefused(t, err, "CN=IdP B", "not a signing certificate in the IdP metadata")
	// ... and with A's issuer and no KeyInfo: the signature fails.
	m = a.mint(a.start("b1"))
	m.Signer, m.NoKeyInfo = keys.idpB, true
	_, _, err = a.finish(m.bytes(), "b1")
	samlWantRefused(t, err, "does not verify")
}

func TestSAMLBodyLimit(t *testing.T) {
	keys := samlTestKeys(t)
	e := newSAMLEnv(t, samlSQLite(t), "org-a", keys.idpA, nil)
	big := url.Values{"SAMLResponse": {strings.Repeat("A", protocol.MaxAnswerBody)}}.Encode()
	r := httptest.NewRequest("POST", ACSPath(e.conn.ID), strings.NewReader(big))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, _, err := e.c.Finish(context.Background(), r, samlBrowser("b1"))
	samlWantRefused(t, err, "more than the 1048576 allowed")

	// A body of unknown length is cut at 1 MB.
	reader := &samlCountingReader{r: strings.NewReader(big)}
	r = httptest.NewRequest("POST", ACSPath(e.conn.ID), reader)
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, _, err = e.c.Finish(context.Background(), r, samlBrowser("b1"))
	samlWantRefused(t, err, "larger than the 1048576 bytes allowed")
	if reader.n > protocol.MaxAnswerBody+64<<10 {
		t.Fatalf("read %d bytes of an oversized body", reader.n)
	}

	// A declared length over the limit is refused without reading.
	reader = &samlCountingReader{r: strings.NewReader(big)}
	r = httptest.NewRequest("POST", ACSPath(e.conn.ID), reader)
	r.ContentLength = int64(len(big))
	_, _, err = e.c.Finish(context.Background(), r, samlBrowser("b1"))
	samlWantRefused(t, err, "more than the 1048576 allowed")
	if reader.n != 0 {
		t.Fatalf("read %d bytes of a body declared too large", reader.n)
	}

	_, _, err = e.finishForm(url.Values{"SAMLResponse": {"%%%not base64"}}, "b1")
	samlWantRefused(t, err, "not base64")
	_, _, err = e.finishForm(url.Values{}, "b1")
	samlWantRefused(t, err, "no SAMLResponse")
}

type samlCountingReader struct {
	r *strings.Reader
	n int
}

func (c *samlCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
