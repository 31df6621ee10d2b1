package main

import (
	"context"
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

// TestCommandLinksPointAtTheServer: org create and sso create print links
// to the URL gatehouse serve really runs at (recorded in the database when
// it starts, given or derived), never to a guessed http://127.0.0.1:8080;
// before any server has run, and without --base-url, they refuse and
// create nothing.
func TestCommandLinksPointAtTheServer(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32)),
			"GATEHOUSE_ADDR": "127.0.0.1:8080"}
		md := filepath.Join(t.TempDir(), "idp.xml")
		os.WriteFile(md, []byte(idpMetadata(t)), 0o600)

		// No server has run: no link can be known.
		before := storetest.TakeSnapshot(t, s)
		assertRefused(t, gatehouse(t, env, bareOrgArgs("acme")...), 2, "start gatehouse serve once", s, before)

		// A server with an explicit public URL records it.
		addr := freeAddr(t)
		srv := startServe(t, addr, env, "--addr", addr, "--base-url", "https://id.example.test/gh")
		r := gatehouse(t, env, bareOrgArgs("acme")...)
		if link := parseOrgCreate(t, r.stdout).link; r.code != 0 || !strings.HasPrefix(link, "https://id.example.test/gh/activate?token=") {
			t.Fatalf("org create after serve --base-url: %d %q %q", r.code, r.stdout, r.stderr)
		}
		r = gatehouse(t, env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", "Okta", "--metadata-file", md)
		if r.code != 0 || !strings.Contains(r.stderr, "acsUrl: https://id.example.test/gh/sso/saml/"+strings.TrimSpace(r.stdout)+"/acs") {
			t.Fatalf("sso create after serve --base-url: %d %q %q", r.code, r.stdout, r.stderr)
		}
		if code := srv.shutdown(t); code != 0 {
			t.Fatalf("serve exited %d", code)
		}

		// A server without one records the URL it derives from its
		// address, and the printed link opens on that server.
		addr = freeAddr(t)
		srv = startServe(t, addr, env, "--addr", addr)
		r = gatehouse(t, env, bareOrgArgs("beta")...)
		link := parseOrgCreate(t, r.stdout).link
		if r.code != 0 || !strings.HasPrefix(link, srv.base+"/activate?token=") {
			t.Fatalf("org create after serve: %d %q, want a link under %s", r.code, r.stdout, srv.base)
		}
		u, _ := url.Parse(link)
		if resp, body := get(t, srv.base+"/api/v1/activation?token="+u.Query().Get("token"), nil); resp.StatusCode != 200 ||
			!strings.Contains(body, "Jane.Doe") {
			t.Fatalf("the printed link's token on its server: %d %s", resp.StatusCode, body)
		}

		// The flag and the environment still win over the record.
		r = gatehouse(t, map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_BASE_URL": "https://env.example"}, bareOrgArgs("gamma")...)
		if link := parseOrgCreate(t, r.stdout).link; !strings.HasPrefix(link, "https://env.example/activate?token=") {
			t.Fatalf("org create with GATEHOUSE_BASE_URL: %q", link)
		}
		if got, err := s.BaseURL(ctx); err != nil || got != srv.base {
			t.Fatalf("recorded base URL %q, %v; want %q", got, err, srv.base)
		}
	})
}
