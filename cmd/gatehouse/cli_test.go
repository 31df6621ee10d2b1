package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestMain(m *testing.M) {
	// The durability test runs `gatehouse serve` as a child process it can
	// kill -9: the test binary itself, told so by this variable.
	if os.Getenv("GATEHOUSE_TEST_CHILD_SERVE") == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(storetest.Main(m))
}

type result struct {
	code           int
	stdout, stderr string
}

// gatehouse runs the command line in-process with the given environment
// (nothing else of the real one).
func gatehouse(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, args, &stdout, &stderr, func(k string) string { return env[k] })
	return result{code, stdout.String(), stderr.String()}
}

// oneErrorLine fails unless stderr is exactly one line "gatehouse: ..."
// containing want.
// assertRefused checks a refused command: its exit code, one error line
// containing want, nothing on stdout, and the store exactly as before.
func assertRefused(t *testing.T, r result, code int, want string, s *store.SQL, before storetest.Snapshot) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d; stderr %q", r.code, code, r.stderr)
	}
	oneErrorLine(t, r, want)
	if r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}
	storetest.AssertUnchanged(t, s, before)
}

func oneErrorLine(t *testing.T, r result, want string) {
	t.Helper()
	if !strings.HasPrefix(r.stderr, "gatehouse: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr is not one line starting with \"gatehouse: \": %q", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not contain %q", r.stderr, want)
	}
}

// database is a backend for the CLI: a DSN per test.
type database struct {
	name string
	dsn  func(t *testing.T) string
}

var databases = []database{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db") }},
	{"postgres", func(t *testing.T) string { return storetest.PostgresURL(t) }},
}

func forEachDatabase(t *testing.T, fn func(t *testing.T, dsn string, s *store.SQL)) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			dsn := db.dsn(t)
			fn(t, dsn, inspect(t, dsn))
		})
	}
}

// inspect opens the database the commands write, to check what they wrote.
func inspect(t *testing.T, dsn string) *store.SQL {
	t.Helper()
	s, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// createdOrg is what org create prints.
type createdOrg struct{ orgID, adminID, link string }

func parseOrgCreate(t *testing.T, stdout string) createdOrg {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	var c createdOrg
	for _, l := range lines {
		switch k, v, _ := strings.Cut(l, ": "); k {
		case "organization id":
			c.orgID = v
		case "administrator id":
			c.adminID = v
		case "activation link":
			c.link = v
		}
	}
	if len(lines) != 3 || c.orgID == "" || c.adminID == "" || c.link == "" {
		t.Fatalf("org create printed %q", stdout)
	}
	return c
}

// orgArgs are the arguments of org create with a base URL (the command
// refuses to guess one); a later --base-url wins.
func orgArgs(slug string, extra ...string) []string {
	return append([]string{"org", "create", "--base-url", "http://127.0.0.1:8080"}, bareOrgArgs(slug, extra...)[2:]...)
}

// bareOrgArgs are orgArgs without a base URL.
func bareOrgArgs(slug string, extra ...string) []string {
	return append([]string{"org", "create", slug, "--name", "Acme", "--admin-username", "Jane.Doe",
		"--admin-email", "jane@example.com", "--admin-first-name", "Jane", "--admin-last-name", "Doe"}, extra...)
}

func TestOrgCreate(t *testing.T) {
	tests := []struct {
		name     string
		args     func(dsn string) []string
		env      func(dsn string) map[string]string
		slug     string
		domains  []string
		username string
		phone    string
		linkBase string
	}{
		{
			name: "repeated and comma-separated domains",
			args: func(dsn string) []string {
				return orgArgs("acme", "--db", dsn, "--domain", "example.com", "--domain", "Example.ORG, example.net")
			},
			slug:     "acme",
			domains:  []string{"example.com", "example.net", "example.org"},
			username: "Jane.Doe",
			linkBase: "http://127.0.0.1:8080/activate?token=",
		},
		{
			name: "flags before the slug, phone, base URL with trailing slash",
			args: func(dsn string) []string {
				return []string{"org", "create", "--db", dsn, "--name", "Beta", "--admin-username", "bob", "--admin-email", "Bob@Beta.test",
					"--admin-first-name", "Bob", "--admin-last-name", "Builder", "--admin-phone", "+1 555 0100",
					"--base-url", "https://id.beta.test/", "beta", "--domain", "beta.test"}
			},
			slug:     "beta",
			domains:  []string{"beta.test"},
			username: "bob",
			phone:    "+1 555 0100",
			linkBase: "https://id.beta.test/activate?token=",
		},
		{
			name: "database and base URL from the environment",
			args: func(string) []string { return bareOrgArgs("gamma") },
			env: func(dsn string) map[string]string {
				return map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_BASE_URL": "https://gh.example"}
			},
			slug:     "gamma",
			username: "Jane.Doe",
			linkBase: "https://gh.example/activate?token=",
		},
		{
			name: "flags win over the environment",
			args: func(dsn string) []string { return orgArgs("delta", "--db", dsn, "--base-url", "https://flag.example") },
			env: func(string) map[string]string {
				return map[string]string{"GATEHOUSE_DB": "postgres://127.0.0.1:1/unreachable", "GATEHOUSE_BASE_URL": "https://env.example"}
			},
			slug:     "delta",
			username: "Jane.Doe",
			linkBase: "https://flag.example/activate?token=",
		},
	}
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var env map[string]string
				if tt.env != nil {
					env = tt.env(dsn)
				}
				r := gatehouse(t, env, tt.args(dsn)...)
				if r.code != 0 {
					t.Fatalf("exit %d: %s", r.code, r.stderr)
				}
				out := parseOrgCreate(t, r.stdout)
				if !strings.Contains(r.stderr, "will not be shown again") {
					t.Errorf("stderr does not warn that the link is shown once: %q", r.stderr)
				}

				org, err := s.OrgBySlug(ctx, tt.slug)
				if err != nil || org.ID != out.orgID || org.SCIMEnabled {
					t.Fatalf("stored org %+v, %v; printed id %s", org, err, out.orgID)
				}
				ds, err := s.RegisteredDomains(ctx, org.ID)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, d := range ds {
					got = append(got, d.Domain)
				}
				if !slices.Equal(got, tt.domains) {
					t.Errorf("domains %v, want %v", got, tt.domains)
				}
				a, err := s.AdministratorByUsername(ctx, org.ID, tt.username)
				if err != nil || a.ID != out.adminID || a.Role != store.RoleSuperAdministrator || a.Status != store.StatusPending || a.Phone != tt.phone {
					t.Fatalf("stored administrator %+v, %v; printed id %s", a, err, out.adminID)
				}
				secret, ok := strings.CutPrefix(out.link, tt.linkBase)
				if !ok {
					t.Fatalf("activation link %q does not start with %q", out.link, tt.linkBase)
				}
				if u, err := url.Parse(out.link); err != nil || u.Query().Get("token") != secret {
					t.Fatalf("activation link %q does not carry the token as a query parameter", out.link)
				}
				inv, err := s.InvitationByHash(ctx, admin.HashSecret(secret))
				if err != nil || inv.AdministratorID != a.ID {
					t.Fatalf("no invitation for the printed link: %+v, %v", inv, err)
				}
			})
		}
	})
}

func TestOrgCreateRefused(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"invalid slug", orgArgs("Acme!"), 1, `invalid organization slug "Acme!"`},
		{"email outside the domains", orgArgs("acme", "--domain", "other.test"), 1, `not in a registered domain of the organization (other.test)`},
		{"invalid email", append(orgArgs("acme"), "--admin-email", "Jane <jane@example.com>"), 1, "invalid administrator email"},
		{"invalid domain", orgArgs("acme", "--domain", "example.com,not_a_domain"), 1, `invalid domain "not_a_domain"`},
		{"domain twice", orgArgs("acme", "--domain", "example.com", "--domain", "EXAMPLE.COM"), 1, `domain "example.com" is given twice`},
		{"username with trailing space", append(orgArgs("acme"), "--admin-username", "jane "), 1, "starts or ends with white space"},
		{"blank name", append(orgArgs("acme"), "--name", " "), 1, "organization name is required"},
		{"slug taken", orgArgs("taken"), 1, `organization "taken" already exists`},
		{"missing slug", orgArgs("")[:2], 2, "org create: missing SLUG argument"},
		{"two slugs", orgArgs("acme", "extra"), 2, `unexpected argument "extra"`},
		{"missing --name", []string{"org", "create", "acme", "--admin-username", "u"}, 2, "--name is required"},
		{"missing --admin-last-name", orgArgs("acme")[:13], 2, "--admin-last-name is required"},
		{"unknown flag", orgArgs("acme", "--admin-role", "x"), 2, "flag provided but not defined: -admin-role"},
		{"empty --domain", orgArgs("acme", "--domain", ","), 2, "empty domain"},
		{"bad --base-url", orgArgs("acme", "--base-url", "id.example.com"), 2, "--base-url"},
	}
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		if r := gatehouse(t, nil, orgArgs("taken", "--db", dsn)...); r.code != 0 {
			t.Fatalf("setup: exit %d: %s", r.code, r.stderr)
		}
		taken, err := s.OrgBySlug(context.Background(), "taken")
		if err != nil {
			t.Fatal(err)
		}
		before := storetest.TakeSnapshot(t, s)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := gatehouse(t, map[string]string{"GATEHOUSE_DB": dsn}, tt.args...)
				assertRefused(t, r, tt.code, tt.want, s, before)
			})
		}
		after, err := s.OrgBySlug(context.Background(), "taken")
		if err != nil || after != taken {
			t.Errorf("the taken organization changed: %+v, %v", after, err)
		}
	})
}

func TestSCIMCommands(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		env := map[string]string{"GATEHOUSE_DB": dsn}
		if r := gatehouse(t, env, orgArgs("acme")...); r.code != 0 {
			t.Fatalf("setup: exit %d: %s", r.code, r.stderr)
		}
		org, err := s.OrgBySlug(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}

		t.Run("token create", func(t *testing.T) {
			tests := []struct {
				name        string
				args        []string
				description string
				lifetime    time.Duration
			}{
				{"no expiry", nil, "", 0},
				{"days", []string{"--expires", "90d", "--description", "Okta"}, "Okta", 90 * 24 * time.Hour},
				{"Go duration", []string{"--expires", "720h"}, "", 720 * time.Hour},
				{"zero", []string{"--expires", "0", "--db", dsn}, "", 0},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					before := time.Now()
					r := gatehouse(t, env, append([]string{"scim", "token", "create", "--org", "acme"}, tt.args...)...)
					if r.code != 0 {
						t.Fatalf("exit %d: %s", r.code, r.stderr)
					}
					token := strings.TrimSuffix(r.stdout, "\n")
					if !strings.HasPrefix(token, "gh_scim_") || strings.ContainsAny(token, " \n") {
						t.Fatalf("stdout is not just the token: %q", r.stdout)
					}
					if !strings.Contains(r.stderr, "will not be shown again") {
						t.Errorf("stderr does not say the token is shown once: %q", r.stderr)
					}
					tok, err := s.SCIMTokenByHash(ctx, admin.HashSecret(token))
					if err != nil {
						t.Fatalf("printed token is not stored: %v", err)
					}
					if tok.OrgID != org.ID || tok.Description != tt.description || tok.Prefix != token[:16] || !strings.Contains(r.stderr, tok.ID) {
						t.Errorf("stored %+v; stderr %q", tok, r.stderr)
					}
					switch {
					case tt.lifetime == 0 && tok.ExpiresAt != nil:
						t.Errorf("expires %v, want never", tok.ExpiresAt)
					case tt.lifetime != 0 && (tok.ExpiresAt == nil || tok.ExpiresAt.Before(before.Add(tt.lifetime).Add(-time.Second)) ||
						tok.ExpiresAt.After(time.Now().Add(tt.lifetime))):
						t.Errorf("expires %v, want about %v", tok.ExpiresAt, before.Add(tt.lifetime))
					}
				})
			}
		})

		t.Run("enable and disable", func(t *testing.T) {
			for _, step := range []struct {
				cmd  string
				want bool
			}{{"enable", true}, {"enable", true}, {"disable", false}, {"enable", true}, {"disable", false}} {
				r := gatehouse(t, env, "scim", step.cmd, "--org", "acme")
				if r.code != 0 {
					t.Fatalf("scim %s: exit %d: %s", step.cmd, r.code, r.stderr)
				}
				state := map[bool]string{true: "enabled", false: "disabled"}[step.want]
				if r.stdout != `SCIM `+state+` for organization "acme"`+"\n" {
					t.Errorf("scim %s printed %q", step.cmd, r.stdout)
				}
				got, err := s.OrgBySlug(ctx, "acme")
				if err != nil || got.SCIMEnabled != step.want {
					t.Fatalf("after scim %s: SCIMEnabled %v, %v", step.cmd, got.SCIMEnabled, err)
				}
			}
		})

		t.Run("super-admin-group", func(t *testing.T) {
			for _, step := range []struct {
				args []string
				want string
			}{{[]string{"--group", "IdP Super Admins"}, "IdP Super Admins"}, {[]string{"--none"}, ""}} {
				r := gatehouse(t, env, append([]string{"scim", "super-admin-group", "--org", "acme"}, step.args...)...)
				if r.code != 0 {
					t.Fatalf("%v: exit %d: %s", step.args, r.code, r.stderr)
				}
				got, err := s.OrgBySlug(ctx, "acme")
				if err != nil || got.SuperAdminGroup != step.want {
					t.Fatalf("%v: SuperAdminGroup %q, %v", step.args, got.SuperAdminGroup, err)
				}
			}
		})

		t.Run("refused", func(t *testing.T) {
			tests := []struct {
				name string
				args []string
				code int
				want string
			}{
				{"super-admin-group without a choice", []string{"scim", "super-admin-group", "--org", "acme"}, 2, "one of --group or --none"},
				{"super-admin-group with both", []string{"scim", "super-admin-group", "--org", "acme", "--group", "g", "--none"}, 2, "one of --group or --none"},
				{"super-admin-group control character", []string{"scim", "super-admin-group", "--org", "acme", "--group", "a\x01"}, 1, "control characters"},
				{"token for unknown org", []string{"scim", "token", "create", "--org", "x"}, 1, `organization "x" not found`},
				{"enable unknown org", []string{"scim", "enable", "--org", "x"}, 1, `organization "x" not found`},
				{"disable unknown org", []string{"scim", "disable", "--org", "x"}, 1, `organization "x" not found`},
				{"token description with newline", []string{"scim", "token", "create", "--org", "acme", "--description", "a\nb"}, 1, "token description"},
				{"token without --org", []string{"scim", "token", "create"}, 2, "--org is required"},
				{"enable without --org", []string{"scim", "enable"}, 2, "--org is required"},
				{"--org without value", []string{"scim", "disable", "--org"}, 2, "flag needs an argument: -org"},
				{"negative days", []string{"scim", "token", "create", "--org", "acme", "--expires", "-5d"}, 2, "invalid value"},
				{"negative duration", []string{"scim", "token", "create", "--org", "acme", "--expires", "-1h"}, 2, "negative"},
				{"unknown unit", []string{"scim", "token", "create", "--org", "acme", "--expires", "5x"}, 2, `invalid value "5x" for flag -expires`},
				{"positional argument", []string{"scim", "enable", "acme"}, 2, `unexpected argument "acme"`},
			}
			before := storetest.TakeSnapshot(t, s)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					r := gatehouse(t, env, tt.args...)
					// The snapshot covers orgs.scim_enabled: a refused
					// command cannot flip the switch unnoticed.
					assertRefused(t, r, tt.code, tt.want, s, before)
				})
			}
		})
	})
}

func TestHelp(t *testing.T) {
	tests := [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"serve", "--help"}, {"serve", "-h"},
		{"org", "--help"}, {"org", "create", "--help"}, {"org", "create", "acme", "--name", "x", "--help"},
		{"scim", "--help"}, {"scim", "token", "--help"}, {"scim", "token", "create", "--help"},
		{"scim", "enable", "--help"}, {"scim", "disable", "-help"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			// Help never opens the database: point it somewhere that fails.
			r := gatehouse(t, map[string]string{"GATEHOUSE_DB": "postgres://127.0.0.1:1/x"}, args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if !strings.HasPrefix(r.stdout, "Usage: gatehouse") {
				t.Errorf("stdout %q", r.stdout)
			}
		})
	}
	r := gatehouse(t, nil, "serve", "--help")
	for _, flag := range []string{"--addr", "GATEHOUSE_ADDR", "--db", "GATEHOUSE_DB", "--base-url", "GATEHOUSE_BASE_URL",
		"--log-format", "GATEHOUSE_LOG_FORMAT", "--sqlite-synchronous", "GATEHOUSE_SQLITE_SYNCHRONOUS"} {
		if !strings.Contains(r.stdout, flag) {
			t.Errorf("serve --help does not mention %s", flag)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "gatehouse: missing command (see 'gatehouse --help')"},
		{[]string{"bogus"}, nil, `gatehouse: unknown command "bogus"`},
		{[]string{"--bogus"}, nil, `gatehouse: unknown command "--bogus"`},
		{[]string{"org"}, nil, "gatehouse: org: missing command (see 'gatehouse org --help')"},
		{[]string{"org", "delete"}, nil, `gatehouse: org: unknown command "delete"`},
		{[]string{"scim", "token"}, nil, "gatehouse: scim token: missing command"},
		{[]string{"scim", "token", "revoke"}, nil, `unknown command "revoke"`},
		{[]string{"serve", "--bogus"}, nil, "serve: flag provided but not defined: -bogus"},
		{[]string{"serve", "now"}, nil, `serve: unexpected argument "now"`},
		{[]string{"serve", "--addr"}, nil, "flag needs an argument: -addr"},
		{[]string{"serve", "--addr", "8080"}, nil, `--addr: "8080" is not HOST:PORT`},
		{[]string{"serve", "--log-format", "xml"}, nil, `--log-format: "xml"`},
		{[]string{"serve"}, map[string]string{"GATEHOUSE_LOG_FORMAT": "xml"}, `--log-format: "xml"`},
		{[]string{"serve", "--sqlite-synchronous", "OFF"}, nil, `--sqlite-synchronous: "OFF"`},
		{[]string{"serve"}, map[string]string{"GATEHOUSE_SQLITE_SYNCHRONOUS": "off"}, `--sqlite-synchronous: "off"`},
		{[]string{"serve", "--base-url", "ftp://files.example"}, nil, "--base-url"},
		{[]string{"serve", "--db", "mysql://root:hunter2@db/gatehouse"}, nil, `unsupported database "mysql://"`},
		{[]string{"scim", "enable", "--org", "acme", "--db", "mysql://root:hunter2@db/gatehouse"}, nil, `unsupported database "mysql://"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			r := gatehouse(t, tt.env, tt.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", r.code, r.stderr)
			}
			oneErrorLine(t, r, tt.want)
			if strings.Contains(r.stderr, "hunter2") {
				t.Error("the error shows a database password")
			}
			if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
		})
	}
}

func TestUnreachableDatabase(t *testing.T) {
	const dsn = "postgres://gatehouse@127.0.0.1:1/gatehouse?connect_timeout=5"
	tests := [][]string{
		orgArgs("acme", "--db", dsn),
		{"scim", "token", "create", "--org", "acme", "--db", dsn},
		{"scim", "enable", "--org", "acme", "--db", dsn},
		{"scim", "disable", "--org", "acme", "--db", dsn},
		{"serve", "--addr", "127.0.0.1:0", "--db", dsn},
	}
	for _, args := range tests {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := gatehouse(t, nil, args...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", r.code, r.stderr)
			}
			oneErrorLine(t, r, "gatehouse: open database:")
			if d := time.Since(start); d > openTimeout {
				t.Errorf("took %v", d)
			}
		})
	}
}
