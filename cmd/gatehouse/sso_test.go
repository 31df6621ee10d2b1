package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
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
		ctx := storetest.Context(context.Background())
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

// TestSSOUpdateCommand: sso update changes a connection named by id or
// name — a disabled one starts no sign-in on the running server — and
// audits it as the operator; bad changes are refused whole. Disabling an
// OIDC connection works while its provider is down.
func TestSSOUpdateCommand(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32)),
			"GATEHOUSE_BASE_URL": "https://gh.example", "OIDC_SECRET": "s3cret"}
		if r := gatehouse(t, env, orgArgs("acme")...); r.code != 0 {
			t.Fatal(r.stderr)
		}
		org, _ := s.OrgBySlug(ctx, "acme")
		md := filepath.Join(t.TempDir(), "idp.xml")
		os.WriteFile(md, []byte(idpMetadata(t)), 0o600)
		create := func(name string) string {
			t.Helper()
			r := gatehouse(t, env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", name, "--metadata-file", md)
			if r.code != 0 {
				t.Fatalf("create %s: %s", name, r.stderr)
			}
			return strings.TrimSpace(r.stdout)
		}
		okta := create("Okta")
		create("Entra")
		create("Twin")
		create("Twin")
		op := newOIDCProvider(t)
		r := gatehouse(t, env, "sso", "create", "--org", "acme", "--kind", "oidc", "--name", "Auth0", "--issuer", op.URL,
			"--client-id", "gh", "--client-secret-env", "OIDC_SECRET")
		if r.code != 0 {
			t.Fatalf("create oidc: %s", r.stderr)
		}
		auth0 := strings.TrimSpace(r.stdout)

		addr := freeAddr(t)
		srv := startServe(t, addr, env, "--addr", addr)
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		startStatus := func(id string) int {
			t.Helper()
			resp, err := noRedirect.Get(srv.base + "/sso/start/" + id)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := startStatus(okta); got != http.StatusSeeOther {
			t.Fatalf("start of the enabled connection: %d", got)
		}

		// By name: disabled; sign-ins through it stop.
		r = gatehouse(t, env, "sso", "update", "--org", "acme", "Okta", "--disable")
		if r.code != 0 || r.stdout != okta+"\tsaml\tOkta\tenabled=false\tnameid\n" {
			t.Fatalf("disable: %d %q %q", r.code, r.stdout, r.stderr)
		}
		if got := startStatus(okta); got != http.StatusNotFound {
			t.Fatalf("start of the disabled connection: %d, want 404", got)
		}
		// By id: enabled again, renamed, username source, IdP-initiated,
		// skew.
		r = gatehouse(t, env, "sso", "update", "--org", "acme", okta, "--enable", "--name", "Okta EU", "--username-from", "attribute:uid",
			"--allow-idp-initiated", "--clock-skew", "2m")
		if r.code != 0 || r.stdout != okta+"\tsaml\tOkta EU\tenabled=true\tattribute:uid\n" {
			t.Fatalf("update: %d %q %q", r.code, r.stdout, r.stderr)
		}
		if got := startStatus(okta); got != http.StatusSeeOther {
			t.Fatalf("start of the enabled connection: %d", got)
		}
		conn, _ := s.SSOConnection(ctx, org.ID, okta)
		var cfg struct {
			AllowIdPInitiated bool `json:"allowIdpInitiated"`
			ClockSkew         int  `json:"clockSkew"`
		}
		json.Unmarshal(conn.Config, &cfg)
		if !conn.Enabled || conn.Name != "Okta EU" || conn.UsernameFrom != "attribute:uid" || !cfg.AllowIdPInitiated || cfg.ClockSkew != 120 {
			t.Fatalf("stored %q %t %q %+v", conn.Name, conn.Enabled, conn.UsernameFrom, cfg)
		}
		if r := gatehouse(t, env, "sso", "update", "--org", "acme", okta, "--allow-idp-initiated=false"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		conn, _ = s.SSOConnection(ctx, org.ID, okta)
		cfg.AllowIdPInitiated, cfg.ClockSkew = false, 0
		json.Unmarshal(conn.Config, &cfg)
		if cfg.AllowIdPInitiated || cfg.ClockSkew != 120 || conn.Name != "Okta EU" {
			t.Fatalf("after --allow-idp-initiated=false: %q %+v", conn.Name, cfg)
		}
		log, _ := s.AuditLog(ctx, org.ID, store.AuditQuery{TargetID: okta})
		if len(log) != 4 || log[0].Action != store.AuditSSOConnectionUpdate || log[0].ActorKind != store.ActorOperator {
			t.Fatalf("audit: %+v", log)
		}

		// The provider is down: disabling its connection needs it not.
		op.Close()
		if r := gatehouse(t, env, "sso", "update", "--org", "acme", "Auth0", "--disable"); r.code != 0 || !strings.HasPrefix(r.stdout, auth0+"\toidc\tAuth0\tenabled=false") {
			t.Fatalf("disable OIDC with its provider down: %d %q %q", r.code, r.stdout, r.stderr)
		}

		before := storetest.TakeSnapshot(t, s)
		update := func(args ...string) result {
			return gatehouse(t, env, append([]string{"sso", "update", "--org", "acme"}, args...)...)
		}
		assertRefused(t, update(okta), 2, "nothing to change", s, before)
		assertRefused(t, update(okta, "--enable", "--disable"), 2, "exclude each other", s, before)
		assertRefused(t, update(okta, "--clock-skew", "1.5s"), 2, "whole seconds", s, before)
		assertRefused(t, update(okta, "--allow-idp-initiated=maybe"), 2, "true or false", s, before)
		assertRefused(t, update(okta, "--clock-skew", "20m"), 1, "clock skew must be between", s, before)
		assertRefused(t, update(okta, "--username-from", "claim:sub"), 1, "usernameFrom", s, before)
		assertRefused(t, update(okta, "--name", "two\nlines"), 1, "name", s, before)
		assertRefused(t, update("Nope", "--disable"), 1, `no SSO connection with the id or name "Nope"`, s, before)
		assertRefused(t, update("Twin", "--disable"), 1, `2 SSO connections of organization "acme" are named "Twin": give the id`, s, before)
		assertRefused(t, gatehouse(t, env, "sso", "update", "--org", "other", okta, "--disable"), 1, "other", s, before)
		// The last enabled connection of an organization that requires
		// SSO stays enabled.
		cs, _ := s.SSOConnections(ctx, org.ID)
		for _, c := range cs {
			if c.ID != okta && c.Enabled {
				if r := update(c.ID, "--disable"); r.code != 0 {
					t.Fatal(r.stderr)
				}
			}
		}
		if r := gatehouse(t, env, "sso", "require", "--org", "acme"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		before = storetest.TakeSnapshot(t, s)
		assertRefused(t, update(okta, "--disable"), 1, "turn that off", s, before)
	})
}

// newOIDCProvider is an OpenID provider's discovery document on loopback:
// enough for a connection to be created.
func newOIDCProvider(t *testing.T) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize",
			"token_endpoint": srv.URL + "/token", "jwks_uri": srv.URL + "/jwks", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"}})
	}))
	t.Cleanup(srv.Close)
	return srv
}
