package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

// idpMetadata is a minimal SAML IdP metadata document with a fresh
// signing certificate.
func idpMetadata(t *testing.T) string {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour * 24)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.test/metadata">
<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>` +
		base64.StdEncoding.EncodeToString(der) + `</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.test/sso"/>
</IDPSSODescriptor></EntityDescriptor>`
}

func TestSSOCommands(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		ctx := context.Background()
		dir := t.TempDir()
		env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32)),
			"GATEHOUSE_BASE_URL": "https://gh.example"}
		if r := gatehouse(t, env, orgArgs("acme")...); r.code != 0 {
			t.Fatal(r.stderr)
		}
		org, _ := s.OrgBySlug(ctx, "acme")
		md := filepath.Join(dir, "idp.xml")
		os.WriteFile(md, []byte(idpMetadata(t)), 0o600)

		before := storetest.TakeSnapshot(t, s)
		assertRefused(t, gatehouse(t, env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", "Okta"), 1, "needs the IdP metadata", s, before)
		assertRefused(t, gatehouse(t, env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", "Okta", "--metadata-file", md,
			"--username-from", "email"), 1, "usernameFrom", s, before)
		assertRefused(t, gatehouse(t, env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", "Okta",
			"--metadata-url", "http://169.254.169.254/latest/meta-data"), 1, "IdP metadata URL", s, before)
		assertRefused(t, gatehouse(t, env, "sso", "require", "--org", "acme"), 1, "needs an enabled SSO connection", s, before)

		r := gatehouse(t, env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", "Okta", "--metadata-file", md)
		id := strings.TrimSpace(r.stdout)
		if r.code != 0 || !strings.Contains(r.stderr, "https://gh.example/sso/saml/"+id+"/acs") {
			t.Fatalf("create: %d %q %q", r.code, r.stdout, r.stderr)
		}
		conn, err := s.SSOConnection(ctx, org.ID, id)
		if err != nil || conn.UsernameFrom != "nameid" || !strings.HasPrefix(conn.Secret, "v1.") || strings.Contains(conn.Secret, "PRIVATE KEY") {
			t.Fatalf("stored connection %+v, %v (the SP key must be sealed)", conn, err)
		}
		if r := gatehouse(t, env, "sso", "list", "--org", "acme"); !strings.Contains(r.stdout, id+"\tsaml\tOkta\tenabled=true\tnameid") {
			t.Fatalf("list: %q", r.stdout)
		}
		if r := gatehouse(t, env, "sso", "require", "--org", "acme"); r.code != 0 || !strings.Contains(r.stdout, "requires SSO: true") {
			t.Fatalf("require: %d %q %q", r.code, r.stdout, r.stderr)
		}
		before = storetest.TakeSnapshot(t, s)
		assertRefused(t, gatehouse(t, env, "sso", "delete", "--org", "acme", id), 1, "turn that off", s, before)
		if r := gatehouse(t, env, "sso", "break-glass", "--org", "acme", "Jane.Doe"); r.code != 0 || !strings.Contains(r.stdout, "break-glass: true") {
			t.Fatalf("break-glass: %d %q %q", r.code, r.stdout, r.stderr)
		}
		if r := gatehouse(t, env, "sso", "require", "--org", "acme", "--off"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		if r := gatehouse(t, env, "sso", "delete", "--org", "acme", id); r.code != 0 {
			t.Fatalf("delete: %d %q", r.code, r.stderr)
		}
		log, _ := s.AuditLog(ctx, org.ID, store.AuditQuery{TargetID: id})
		if len(log) != 2 || log[0].Action != store.AuditSSOConnectionDelete || log[1].ActorKind != store.ActorOperator {
			t.Fatalf("audit: %+v", log)
		}
	})
}
