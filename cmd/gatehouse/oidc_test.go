package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// newSecretKey is a server key as GATEHOUSE_SECRET_KEY takes it.
func newSecretKey(t *testing.T) (string, *admin.Sealer) {
	t.Helper()
	key := make([]byte, admin.SecretKeySize)
	rand.Read(key)
	sealer, err := admin.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(key), sealer
}

// assertNoPrivateKey fails if any form of the signing key's private key
// appears in text (command output, logs).
func assertNoPrivateKey(t *testing.T, what, text string, k *rsa.PrivateKey) {
	t.Helper()
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	for name, form := range map[string]string{
		"pkcs8 base64":    base64.StdEncoding.EncodeToString(pkcs8),
		"pkcs8 base64url": base64.RawURLEncoding.EncodeToString(pkcs8),
		"pkcs1 base64":    base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(k)),
		"d base64url":     base64.RawURLEncoding.EncodeToString(k.D.Bytes()),
		"d decimal":       k.D.String(),
		"raw pkcs8":       string(pkcs8),
	} {
		if strings.Contains(text, form) {
			t.Errorf("%s shows the private key (%s)", what, name)
		}
	}
}

func keyLines(t *testing.T, stdout string) [][]string {
	t.Helper()
	var out [][]string
	for l := range strings.SplitSeq(strings.TrimSuffix(stdout, "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 5 || f[1] != "RS256" {
			t.Fatalf("key line %q is not kid, RS256, created, state, retires", l)
		}
		if _, err := time.Parse(time.RFC3339, f[2]); err != nil {
			t.Fatalf("created %q: %v", f[2], err)
		}
		out = append(out, f)
	}
	return out
}

func TestOIDCKeysCLI(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		key, sealer := newSecretKey(t)
		env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": key, "GATEHOUSE_OPERATOR": "ops-alice"}

		if r := gatehouse(t, env, "oidc", "keys", "list"); r.code != 0 || r.stdout != "" {
			t.Fatalf("list on a new database: %+v", r)
		}
		// No server key given, and no key file where serve keeps it: the
		// command does not make one up (no server could open the key).
		before := storetest.TakeSnapshot(t, s)
		noKey := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY_FILE": t.TempDir() + "/secret.key"}
		assertRefused(t, gatehouse(t, noKey, "oidc", "keys", "rotate"), 2, "secret key file", s, before)

		var outputs strings.Builder
		r := gatehouse(t, env, "oidc", "keys", "rotate")
		if r.code != 0 {
			t.Fatalf("rotate: %+v", r)
		}
		outputs.WriteString(r.stdout + r.stderr)
		first := keyLines(t, r.stdout)
		if len(first) != 1 || first[0][3] != admin.KeySigning || first[0][4] != "-" {
			t.Fatalf("rotate printed %q", r.stdout)
		}
		r = gatehouse(t, env, "oidc", "keys", "rotate")
		outputs.WriteString(r.stdout + r.stderr)
		second := keyLines(t, r.stdout)
		if r.code != 0 || len(second) != 1 || second[0][0] == first[0][0] {
			t.Fatalf("second rotate: %+v", r)
		}
		r = gatehouse(t, env, "oidc", "keys", "list")
		outputs.WriteString(r.stdout + r.stderr)
		list := keyLines(t, r.stdout)
		if r.code != 0 || len(list) != 2 || list[0][0] != second[0][0] || list[0][3] != admin.KeySigning ||
			list[1][0] != first[0][0] || list[1][3] != admin.KeyPublished || list[1][4] == "-" {
			t.Fatalf("list after two rotations: %q", r.stdout)
		}
		retires, err := time.Parse(time.RFC3339, list[1][4])
		if err != nil || retires.Before(time.Now().Add(admin.MaxSignedTokenLifetime)) {
			t.Fatalf("the replaced key retires at %q, before its tokens expire", list[1][4])
		}

		// Another server key: the keys would no longer open; refused
		// before anything is written.
		otherKey, _ := newSecretKey(t)
		before = storetest.TakeSnapshot(t, s)
		wrong := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": otherKey}
		assertRefused(t, gatehouse(t, wrong, "oidc", "keys", "rotate"), 1, "does not open with the server key", s, before)

		// Audited as the operator in the server's log.
		log, err := s.AuditLog(context.Background(), store.ServerAudit, store.AuditQuery{Action: store.AuditSigningKeyCreate})
		if err != nil || len(log) != 2 || log[0].ActorKind != store.ActorOperator || log[0].ActorName != "ops-alice" || log[0].TargetID != second[0][0] {
			t.Fatalf("audit %+v, %v", log, err)
		}

		active, err := (&admin.SigningKeys{Store: s, Sealer: sealer}).Active(context.Background())
		if err != nil || active.ID != second[0][0] {
			t.Fatalf("active %s, %v", active.ID, err)
		}
		assertNoPrivateKey(t, "the command output", outputs.String(), active.Key)
		if r := gatehouse(t, env, "oidc", "keys", "list", "extra"); r.code != 2 {
			t.Errorf("an extra argument: %+v", r)
		}
	})
}

// TestServeMakesOneSigningKey starts two gatehouse serve on one database at
// the same moment: exactly one first signing key, sealed with the server
// key they share, and neither log shows it.
func TestServeMakesOneSigningKey(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		key, sealer := newSecretKey(t)
		env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": key, "GATEHOUSE_LOG_FORMAT": "json"}
		type instance struct {
			addr   string
			stderr *syncBuffer
			done   chan int
		}
		ctx, cancel := context.WithCancel(context.Background())
		var instances []instance
		for range 2 {
			in := instance{addr: freeAddr(t), stderr: &syncBuffer{}, done: make(chan int, 1)}
			go func() {
				in.done <- run(ctx, []string{"serve", "--addr", in.addr}, &syncBuffer{}, in.stderr, func(k string) string { return env[k] })
			}()
			instances = append(instances, in)
		}
		stop := func() {
			cancel()
			for _, in := range instances {
				select {
				case code := <-in.done:
					in.done <- code
				case <-time.After(20 * time.Second):
					t.Error("serve did not stop")
				}
			}
		}
		defer stop()
		for _, in := range instances {
			deadline := time.Now().Add(20 * time.Second)
			for {
				select {
				case code := <-in.done:
					in.done <- code
					t.Fatalf("serve exited %d: %s", code, in.stderr.String())
				default:
				}
				resp, err := http.Get("http://" + in.addr + "/healthz")
				if err == nil {
					resp.Body.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("serve did not start: %s", in.stderr.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		stop() // the logs are flushed
		keys, err := s.SigningKeys(context.Background())
		if err != nil || len(keys) != 1 {
			t.Fatalf("%d signing keys after two instances started, want 1 (%v)", len(keys), err)
		}
		created := 0
		for _, in := range instances {
			created += strings.Count(in.stderr.String(), "created the OpenID Provider's first signing key")
		}
		if created != 1 {
			t.Errorf("%d instances say they made the first key, want 1", created)
		}
		active, err := (&admin.SigningKeys{Store: s, Sealer: sealer}).Active(context.Background())
		if err != nil {
			t.Fatalf("the key does not open with the servers' key: %v", err)
		}
		for _, in := range instances {
			assertNoPrivateKey(t, "serve's log", in.stderr.String(), active.Key)
		}
		log, _ := s.AuditLog(context.Background(), store.ServerAudit, store.AuditQuery{})
		if len(log) != 1 || log[0].ActorKind != store.ActorSystem {
			t.Fatalf("audit %+v", log)
		}
		for _, in := range instances {
			if strings.Contains(in.stderr.String(), "does not open") {
				t.Errorf("an instance with the right key warns: %s", in.stderr.String())
			}
		}

		// A third instance with another secret key says so at start.
		otherKey, _ := newSecretKey(t)
		addr := freeAddr(t)
		third := startServe(t, addr, map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": otherKey, "GATEHOUSE_LOG_FORMAT": "json"}, "--addr", addr)
		if code := third.shutdown(t); code != 0 {
			t.Fatalf("serve exited %d", code)
		}
		if !strings.Contains(third.stderr.String(), "signing key does not open") {
			t.Errorf("serve with another secret key did not warn: %s", third.stderr.String())
		}
		if keys, _ := s.SigningKeys(context.Background()); len(keys) != 1 {
			t.Errorf("%d keys after the third instance, want 1", len(keys))
		}
	})
}

func TestOIDCClientCLI(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_OPERATOR": "ops-bob", "GATEHOUSE_BASE_URL": "https://gatehouse.example"}
		for _, slug := range []string{"acme", "globex"} {
			if r := gatehouse(t, env, orgArgs(slug)...); r.code != 0 {
				t.Fatalf("org create: %+v", r)
			}
		}
		before := storetest.TakeSnapshot(t, s)
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"--name", "A", "--redirect-uri", "http://app.example/cb"}, 1, "loopback"},
			{[]string{"--name", "A", "--redirect-uri", "https://app.example/cb#x"}, 1, "fragment"},
			{[]string{"--name", "A", "--redirect-uri", "https://*.app.example/cb"}, 1, "wildcard"},
			{[]string{"--name", "A", "--redirect-uri", "cb"}, 1, "not an absolute URL"},
			{[]string{"--name", "A", "--redirect-uri", "https://app.example/cb", "--redirect-uri", "http://127.0.0.2/cb"}, 1, "loopback"},
			{[]string{"--name", "A", "--redirect-uri", "https://app.example/cb", "--org", "acme", "--org", "nope"}, 1, `organization "nope" not found`},
			{[]string{"--name", "A", "--redirect-uri", "https://app.example/cb", "--backchannel-logout-uri", "http://app.example/bcl"}, 1, "back-channel logout URI"},
			{[]string{"--name", "A"}, 1, "at least one redirect URI"},
			{[]string{"--name", "A", "--redirect-uri", "https://app.example/cb", "--post-logout-redirect-uri", "https://app.example/bye#x"}, 1, "post-logout redirect URI"},
			{[]string{"--name", "A", "--redirect-uri", "https://app.example/cb", "--post-logout-redirect-uri", "http://app.example/bye"}, 1, "post-logout redirect URI"},
			{[]string{"--redirect-uri", "https://app.example/cb"}, 1, "client name is required"},
			{[]string{"--name", "A", "--redirect-uri", "https://app.example/cb", "--secret", "x"}, 2, "flag provided but not defined"},
		} {
			assertRefused(t, gatehouse(t, env, append([]string{"oidc", "client", "create"}, tc.args...)...), tc.code, tc.want, s, before)
		}

		r := gatehouse(t, env, "oidc", "client", "create", "--name", "Billing", "--redirect-uri", "https://billing.example/cb",
			"--redirect-uri", "http://127.0.0.1:8000/cb", "--backchannel-logout-uri", "https://billing.example/bcl", "--org", "acme", "--first-party",
			"--post-logout-redirect-uri", "https://billing.example/bye", "--post-logout-redirect-uri", "https://billing.example/bye?lang=ru")
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], admin.OIDCClientSecretPrefix) || !strings.Contains(r.stderr, "will not be shown again") {
			t.Fatalf("create confidential: %+v", r)
		}
		confID, secret := lines[0], lines[1]
		if err := (&admin.OIDCClients{Store: s}).Authenticate(context.Background(), confID, secret); err != nil {
			t.Fatalf("the printed secret does not authenticate: %v", err)
		}
		for table, rows := range storetest.Dump(t, s) {
			for _, row := range rows {
				for _, v := range row {
					if b, ok := v.([]byte); ok && bytes.Contains(b, []byte(secret)) || strings.Contains(toString(v), secret) {
						t.Errorf("table %s stores the client secret in clear", table)
					}
				}
			}
		}

		r = gatehouse(t, env, "oidc", "client", "create", "--name", "SPA", "--public", "--redirect-uri", "http://[::1]:5173/cb")
		if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || strings.Contains(r.stdout, admin.OIDCClientSecretPrefix) {
			t.Fatalf("create public: %+v", r)
		}
		pubID := strings.TrimSpace(r.stdout)

		r = gatehouse(t, env, "oidc", "client", "list")
		want := []string{
			confID + "\tBilling\tconfidential\tfirst-party=true\torgs=acme\tdisabled=false\thttps://billing.example/cb http://127.0.0.1:8000/cb\tpost-logout=https://billing.example/bye https://billing.example/bye?lang=ru",
			pubID + "\tSPA\tpublic\tfirst-party=false\torgs=all\tdisabled=false\thttp://[::1]:5173/cb\tpost-logout=-",
		}
		if r.code != 0 || r.stdout != strings.Join(want, "\n")+"\n" {
			t.Fatalf("list:\n%s\nwant:\n%s", r.stdout, strings.Join(want, "\n"))
		}
		if strings.Contains(r.stdout, secret) {
			t.Error("list shows the secret")
		}

		// update: refusals write nothing; the flags given change, the rest stays.
		before = storetest.TakeSnapshot(t, s)
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{confID}, 2, "nothing to change"},
			{[]string{confID, "--redirect-uri", "https://billing.example/cb#f"}, 1, "fragment"},
			{[]string{confID, "--post-logout-redirect-uri", "https://*.billing.example/"}, 1, "wildcard"},
			{[]string{confID, "--org", "nope"}, 1, `organization "nope" not found`},
			{[]string{confID, "--org", "acme", "--all-orgs"}, 2, "not both"},
			{[]string{confID, "--name", ""}, 1, "client name is required"},
			{[]string{"no-such-client", "--name", "X"}, 1, "not found"},
		} {
			assertRefused(t, gatehouse(t, env, append([]string{"oidc", "client", "update"}, tc.args...)...), tc.code, tc.want, s, before)
		}
		if r := gatehouse(t, env, "oidc", "client", "update", confID, "--name", "Billing 2", "--post-logout-redirect-uri=", "--org", "globex",
			"--org", "acme", "--first-party=false"); r.code != 0 || r.stdout != "OIDC client "+confID+" updated\n" {
			t.Fatalf("update: %+v", r)
		}
		if r := gatehouse(t, env, "oidc", "client", "list"); !strings.HasPrefix(r.stdout, confID+"\tBilling 2\tconfidential\tfirst-party=false\torgs=globex,acme\tdisabled=false\thttps://billing.example/cb http://127.0.0.1:8000/cb\tpost-logout=-\n") {
			t.Fatalf("list after update: %q", r.stdout)
		}
		if r := gatehouse(t, env, "oidc", "client", "update", confID, "--all-orgs", "--post-logout-redirect-uri", "https://billing.example/bye"); r.code != 0 {
			t.Fatalf("update to every organization: %+v", r)
		}
		if c, _ := s.OIDCClient(context.Background(), confID); !c.AllOrgs || len(c.OrgIDs) != 0 || !slices.Equal(c.PostLogoutRedirectURIs, []string{"https://billing.example/bye"}) || c.Name != "Billing 2" {
			t.Fatalf("after update: %+v", c)
		}

		// secret rotate: printed once, the old secret stops at once.
		before = storetest.TakeSnapshot(t, s)
		assertRefused(t, gatehouse(t, env, "oidc", "client", "secret", "rotate", pubID), 1, "public", s, before)
		assertRefused(t, gatehouse(t, env, "oidc", "client", "secret", "rotate", "no-such-client"), 1, "not found", s, before)
		r = gatehouse(t, env, "oidc", "client", "secret", "rotate", confID)
		newSecret := strings.TrimSpace(r.stdout)
		if r.code != 0 || !strings.HasPrefix(newSecret, admin.OIDCClientSecretPrefix) || newSecret == secret || !strings.Contains(r.stderr, "will not be shown again") {
			t.Fatalf("rotate: %+v", r)
		}
		if err := (&admin.OIDCClients{Store: s}).Authenticate(context.Background(), confID, secret); err == nil {
			t.Fatal("the old secret still authenticates after rotation")
		}
		if err := (&admin.OIDCClients{Store: s}).Authenticate(context.Background(), confID, newSecret); err != nil {
			t.Fatalf("the new secret does not authenticate: %v", err)
		}
		secret = newSecret

		if r := gatehouse(t, env, "oidc", "client", "disable", confID); r.code != 0 || r.stdout != "OIDC client "+confID+": disabled=true\n" {
			t.Fatalf("disable: %+v", r)
		}
		if err := (&admin.OIDCClients{Store: s}).Authenticate(context.Background(), confID, secret); err == nil {
			t.Fatal("a disabled client authenticates")
		}
		if r := gatehouse(t, env, "oidc", "client", "list"); !strings.Contains(r.stdout, "disabled=true") {
			t.Fatalf("list after disable: %q", r.stdout)
		}
		if r := gatehouse(t, env, "oidc", "client", "enable", confID); r.code != 0 || r.stdout != "OIDC client "+confID+": disabled=false\n" {
			t.Fatalf("enable: %+v", r)
		}
		if err := (&admin.OIDCClients{Store: s}).Authenticate(context.Background(), confID, secret); err != nil {
			t.Fatalf("an enabled client does not authenticate: %v", err)
		}
		before = storetest.TakeSnapshot(t, s)
		assertRefused(t, gatehouse(t, env, "oidc", "client", "disable", "no-such-client"), 1, "not found", s, before)
		if r := gatehouse(t, env, "oidc", "client", "delete", confID); r.code != 0 {
			t.Fatalf("delete: %+v", r)
		}
		before = storetest.TakeSnapshot(t, s)
		assertRefused(t, gatehouse(t, env, "oidc", "client", "delete", confID), 1, "not found", s, before)
		assertRefused(t, gatehouse(t, env, "oidc", "client", "delete"), 2, "usage", s, before)

		log, err := s.AuditLog(context.Background(), store.ServerAudit, store.AuditQuery{TargetID: confID})
		if err != nil || len(log) != 7 || log[0].Action != store.AuditOIDCClientDelete || log[1].Action != store.AuditOIDCClientUpdate ||
			log[6].Action != store.AuditOIDCClientCreate || log[6].ActorKind != store.ActorOperator || log[6].ActorName != "ops-bob" ||
			log[3].ActorName != "ops-bob" || string(log[3].After) != `{"secret":"new"}` {
			t.Fatalf("audit %+v, %v", log, err)
		}
	})
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}
