package main

import (
	"encoding/base64"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/sso"
)

// ssoServe is gatehouse serve on SQLite with one organization "acme" and
// one SAML connection.
type ssoServe struct {
	srv    *server
	env    map[string]string
	dbPath string
	connID string
}

func startSSOServe(t *testing.T, extra ...string) *ssoServe {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	dbPath := filepath.Join(dir, "gatehouse.db")
	env := map[string]string{"GATEHOUSE_DB": dbPath, "GATEHOUSE_SECRET_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"GATEHOUSE_BASE_URL": "http://" + addr}
	if r := gatehouse(t, env, orgArgs("acme", "--domain", "example.com")...); r.code != 0 {
		t.Fatal(r.stderr)
	}
	md := filepath.Join(dir, "idp.xml")
	if err := os.WriteFile(md, []byte(idpMetadata(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := gatehouse(t, env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", "Okta", "--metadata-file", md)
	if r.code != 0 {
		t.Fatalf("sso create: %s", r.stderr)
	}
	s := &ssoServe{env: env, dbPath: dbPath, connID: strings.TrimSpace(r.stdout)}
	s.srv = startServe(t, addr, env, append([]string{"--addr", addr}, extra...)...)
	return s
}

// The SP metadata as gatehouse serve serves it carries no validUntil: a
// zero expiry rendered as year 1 made SimpleSAMLphp refuse every
// AuthnRequest ("Metadata for the entity ... expired"). Read as raw XML:
// crewjam would turn year 1 back into a zero time.
func TestServeSPMetadataHasNoExpiry(t *testing.T) {
	s := startSSOServe(t)
	resp, body := get(t, s.srv.base+sso.SPMetadataPath(s.connID), nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/samlmetadata+xml" {
		t.Fatalf("metadata: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var root struct {
		XMLName    xml.Name
		EntityID   string `xml:"entityID,attr"`
		ValidUntil string `xml:"validUntil,attr"`
		Cache      string `xml:"cacheDuration,attr"`
	}
	if err := xml.Unmarshal([]byte(body), &root); err != nil {
		t.Fatal(err)
	}
	if root.XMLName.Local != "EntityDescriptor" || root.EntityID != s.srv.base+sso.SPMetadataPath(s.connID) {
		t.Fatalf("not the SP's EntityDescriptor: %+v\n%s", root, body)
	}
	if root.ValidUntil != "" {
		until, err := time.Parse(time.RFC3339, root.ValidUntil)
		t.Fatalf("the SP metadata expires: validUntil=%q (%v, %v)\n%s", root.ValidUntil, until, err, body)
	}
	if strings.Contains(body, "validUntil") || root.Cache != "" {
		t.Fatalf("the SP metadata carries an expiry or cache duration:\n%s", body)
	}
}
