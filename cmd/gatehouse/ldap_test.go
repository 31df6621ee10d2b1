package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/admin"
	"gatehouse/admin/directory/slapdtest"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// apiCall sends a management API request with an API key.
func apiCall(t *testing.T, method, url, key, body string) (int, http.Header, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return res.StatusCode, res.Header, m, string(b)
}

// LDAP sign-in through gatehouse serve and the command line, on both
// databases, against a real slapd: the connection set by the CLI and the
// API, administrators marked by both, a password sign-in bound to the
// directory, its refusals, and the directory down.
func TestLDAPThroughServe(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		srv := slapdtest.Start(t) // one per database: the test stops it
		cfg := srv.Config()
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(caFile, []byte(srv.CAPEM), 0o600); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": signinKey, "LDAP_PW": slapdtest.ServicePass}
		token := signinOrg(t, env, "acme", "jdoe")
		addr := freeAddr(t)
		base := startServe(t, addr, env, "--addr", addr).base
		activate(t, base, token)
		key := strings.TrimSpace(gatehouse(t, env, "api-key", "create", "--org", "acme", "--name", "ldap-test").stdout)
		ctx := storetest.Context(t.Context())
		org, _ := s.OrgBySlug(ctx, "acme")
		var ids = map[string]string{}
		for _, name := range []string{"alice", "bob", "mixed"} {
			a, err := s.CreateAdministrator(ctx, store.Administrator{OrgID: org.ID, UserName: name, Email: name + "@acme.test",
				Role: store.RoleAdministrator, Status: store.StatusActive})
			if err != nil {
				t.Fatal(err)
			}
			ids[name] = a.ID
		}

		// No connection yet: nobody can be marked.
		if st, _, m, _ := apiCall(t, "PUT", base+"/api/v1/administrators/"+ids["alice"]+"/ldap", key, `{"enabled":true}`); st != 409 ||
			m["code"] != admin.CodeLDAPNotConfigured {
			t.Fatalf("mark without a connection: %d %v", st, m)
		}
		// A refused setting writes nothing and says why on one line.
		before := storetest.TakeSnapshot(t, s)
		r := gatehouse(t, env, "ldap", "set", "--org", "acme", "--url", strings.Replace(cfg.URL, "ldaps:", "ldap:", 1), "--ca-file", caFile,
			"--bind-dn", cfg.BindDN, "--bind-password-env", "LDAP_PW", "--base-dn", cfg.BaseDN)
		assertRefused(t, r, r.code, "StartTLS", s, before)
		if r.code == 0 {
			t.Fatal("plain ldap:// accepted")
		}
		r = gatehouse(t, env, "ldap", "set", "--org", "acme", "--url", cfg.URL, "--ca-file", caFile, "--bind-dn", cfg.BindDN,
			"--bind-password-env", "LDAP_PW", "--base-dn", cfg.BaseDN, "--filter", cfg.UserFilter)
		if r.code != 0 {
			t.Fatalf("ldap set: %d %s", r.code, r.stderr)
		}
		r = gatehouse(t, env, "ldap", "show", "--org", "acme")
		if r.code != 0 || !strings.Contains(r.stdout, `"bindPasswordSet": true`) || strings.Contains(r.stdout, slapdtest.ServicePass) {
			t.Fatalf("ldap show: %d %s %s", r.code, r.stdout, r.stderr)
		}
		if r = gatehouse(t, env, "ldap", "test", "--org", "acme", "--username", "alice"); r.code != 0 || !strings.Contains(r.stdout, "uid=alice,") {
			t.Fatalf("ldap test: %d %s %s", r.code, r.stdout, r.stderr)
		}
		if r = gatehouse(t, env, "ldap", "user", "--org", "acme", "bob"); r.code != 0 {
			t.Fatalf("ldap user: %s", r.stderr)
		}

		// Super Administrators only.
		plain := strings.TrimSpace(gatehouse(t, env, "api-key", "create", "--org", "acme", "--name", "plain", "--role", "Administrator").stdout)
		for _, c := range [][3]string{{"GET", "/ldap", ""}, {"PUT", "/ldap", `{"enabled":false}`}, {"DELETE", "/ldap", ""},
			{"POST", "/ldap/test", `{}`}, {"PUT", "/administrators/" + ids["mixed"] + "/ldap", `{"enabled":true}`}} {
			if st, _, m, _ := apiCall(t, c[0], base+"/api/v1"+c[1], plain, c[2]); st != 403 {
				t.Fatalf("%s %s as an Administrator: %d %v", c[0], c[1], st, m)
			}
		}

		// The API: read (no password), a refused change, the test, marking.
		st, _, m, body := apiCall(t, "GET", base+"/api/v1/ldap", key, "")
		if st != 200 || m["bindPasswordSet"] != true || m["ldapUsers"] != float64(1) || strings.Contains(body, slapdtest.ServicePass) {
			t.Fatalf("GET /ldap: %d %s", st, body)
		}
		if st, _, m, _ := apiCall(t, "PUT", base+"/api/v1/ldap", key, `{"userFilter":"(uid=%s)"}`); st != 400 || m["code"] != admin.CodeInvalidLDAP {
			t.Fatalf("PUT a printf filter: %d %v", st, m)
		}
		if st, _, m, _ := apiCall(t, "POST", base+"/api/v1/ldap/test", key, `{"username":"alice"}`); st != 200 || m["connected"] != true ||
			!strings.HasPrefix(m["dn"].(string), "uid=alice,") {
			t.Fatalf("POST /ldap/test: %d %v", st, m)
		}
		for _, name := range []string{"alice", "mixed"} {
			if st, _, m, _ := apiCall(t, "PUT", base+"/api/v1/administrators/"+ids[name]+"/ldap", key, `{"enabled":true}`); st != 200 {
				t.Fatalf("mark %s: %d %v", name, st, m)
			}
		}
		if st, _, m, _ := apiCall(t, "GET", base+"/api/v1/ldap/users", key, ""); st != 200 || m["total"] != float64(3) {
			t.Fatalf("GET /ldap/users: %d %v", st, m)
		}

		// Password sign-in: bound to the directory.
		login := func(user, pw, from string) answer {
			return postJSON(t, base+"/api/v1/session", `{"organization":"acme","username":"`+user+`","password":"`+pw+`"}`, from)
		}
		if a := login("alice", "alice-password", "203.0.113.1"); a.status != 200 {
			t.Fatalf("alice: %d %v", a.status, a.body)
		}
		if a := login("bob", "bob-password", "203.0.113.1"); a.status != 200 {
			t.Fatalf("bob: %d %v", a.status, a.body)
		}
		for _, c := range [][2]string{{"alice", "bob-password"}, {"alice", ""}, {"mixed", "mixed-password"}, {"*", "alice-password"}} {
			if a := login(c[0], c[1], "203.0.113.2"); a.status != 401 || a.code() != admin.CodeInvalidCredentials {
				t.Fatalf("%q/%q: %d %v", c[0], c[1], a.status, a.body)
			}
		}
		// An LDAP user's local password cannot be set.
		if st, _, m, _ := apiCall(t, "PUT", base+"/api/v1/administrators/"+ids["alice"]+"/password", key,
			`{"password":"a brand new local password"}`); st != 409 || m["code"] != admin.CodeLDAPUser {
			t.Fatalf("set an LDAP user's password: %d %v", st, m)
		}
		// The directory down: 503 with Retry-After, no fallback.
		srv.Stop()
		a := login("alice", "alice-password", "203.0.113.3")
		if a.status != 503 || a.code() != admin.CodeDirectoryUnavailable {
			t.Fatalf("directory down: %d %v", a.status, a.body)
		}
		srv.Start()
		if a := login("alice", "alice-password", "203.0.113.3"); a.status != 200 {
			t.Fatalf("directory back: %d %v", a.status, a.body)
		}
		// The audit log names the changes and never the bind password.
		log, _ := s.AuditLog(ctx, org.ID, store.AuditQuery{Limit: 1000})
		seen := map[string]bool{}
		for _, e := range log {
			seen[e.Action] = true
			if strings.Contains(string(e.Before)+string(e.After), slapdtest.ServicePass) {
				t.Fatalf("the bind password is in the audit log: %+v", e)
			}
		}
		if !seen[store.AuditLDAPConnectionCreate] || !seen[store.AuditCredentialsUpdate] {
			t.Fatalf("audit actions %v", seen)
		}
		if r := gatehouse(t, env, "ldap", "delete", "--org", "acme"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		if a := login("alice", "alice-password", "203.0.113.4"); a.status != 503 || a.code() != admin.CodeDirectoryUnavailable {
			t.Fatalf("no connection: %d %v", a.status, a.body)
		}
	})
}
