package directory_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"gatehouse/admin/directory"
	"gatehouse/admin/directory/slapdtest"
)

func TestValidate(t *testing.T) {
	good := directory.Config{URL: "ldaps://dir.example:636", CAPEM: testCA(t), BindDN: "cn=svc,dc=example", BindPassword: "pw",
		BaseDN: "dc=example", UserFilter: "(uid={username})", UsernameAttribute: "uid", Timeout: 5 * time.Second}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(c *directory.Config){
		"plain ldap without StartTLS": func(c *directory.Config) { c.URL = "ldap://dir.example" },
		"ldaps with StartTLS":         func(c *directory.Config) { c.StartTLS = true },
		"http URL":                    func(c *directory.Config) { c.URL = "https://dir.example" },
		"URL with path":               func(c *directory.Config) { c.URL = "ldaps://dir.example/dc=x" },
		"no CA":                       func(c *directory.Config) { c.CAPEM = "" },
		"CA not PEM":                  func(c *directory.Config) { c.CAPEM = "hello" },
		"no bind password":            func(c *directory.Config) { c.BindPassword = "" },
		"no bind DN":                  func(c *directory.Config) { c.BindDN = "" },
		"bad base DN":                 func(c *directory.Config) { c.BaseDN = "not a dn" },
		"filter without placeholder":  func(c *directory.Config) { c.UserFilter = "(uid=alice)" },
		"filter printf style":         func(c *directory.Config) { c.UserFilter = "(uid=%s)" },
		"filter unbalanced":           func(c *directory.Config) { c.UserFilter = "(&(uid={username})" },
		"filter not parenthesised":    func(c *directory.Config) { c.UserFilter = "uid={username}" },
		"attribute with space":        func(c *directory.Config) { c.UsernameAttribute = "u id" },
		"timeout too short":           func(c *directory.Config) { c.Timeout = time.Millisecond },
		"timeout too long":            func(c *directory.Config) { c.Timeout = time.Hour },
	} {
		c := good
		change(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Escaping (RFC 4515 §3): the structure of the filter never changes.
	for _, u := range []string{"*", ")(uid=*", "a\x00b", `a\2a`, "alice)(|(uid=*"} {
		f := directory.Filter("(uid={username})", u)
		if strings.Count(f, "(") != 1 || strings.Count(f, ")") != 1 || strings.Contains(f, "*") || strings.ContainsRune(f, 0) {
			t.Errorf("Filter(%q) = %q", u, f)
		}
	}
}

func TestAuthenticateAgainstSlapd(t *testing.T) {
	srv := slapdtest.Start(t)
	ctx := slapdtest.Context(t)
	c := srv.Config()
	starttls := c
	starttls.URL, starttls.StartTLS = srv.LDAP, true

	for _, cfg := range []directory.Config{c, starttls} {
		if err := cfg.Authenticate(ctx, "alice", "alice-password"); err != nil {
			t.Fatalf("%s: good bind: %v", cfg.URL, err)
		}
	}
	refused := map[string][2]string{
		"wrong password":           {"alice", "wrong"},
		"empty password":           {"alice", ""},
		"other's password":         {"alice", "bob-password"},
		"case differs (directory)": {"Alice", "alice-password"},
		"case differs (gatehouse)": {"mixed", "mixed-password"},
		"no such user":             {"carol", "x"},
		"wildcard":                 {"*", "alice-password"},
		"wildcard prefix":          {"al*", "alice-password"},
		"filter injection":         {")(uid=*", "alice-password"},
		"filter injection 2":       {"alice)(|(uid=*", "alice-password"},
		"NUL":                      {"alice\x00", "alice-password"},
		"NUL inside":               {"al\x00ice", "alice-password"},
		"backslash escape":         {`\61lice`, "alice-password"},
		"backslash":                {`alice\`, "alice-password"},
	}
	for name, up := range refused {
		err := c.Authenticate(ctx, up[0], up[1])
		if !errors.Is(err, directory.ErrInvalidCredentials) {
			t.Errorf("%s (%q): %v, want invalid credentials", name, up[0], err)
		}
	}
	if err := c.Authenticate(ctx, "Mixed", "mixed-password"); err != nil {
		t.Fatalf("exact case: %v", err)
	}

	// The user moved out of the search base: refused; back in a new place
	// under the base: found again. Deleted: refused.
	notPeople := c
	notPeople.BaseDN = slapdtest.PeopleDN
	srv.Move("bob")
	if err := notPeople.Authenticate(ctx, "bob", "bob-password"); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Fatalf("moved out of the base: %v", err)
	}
	if err := c.Authenticate(ctx, "bob", "bob-password"); err != nil {
		t.Fatalf("moved within the base: %v", err)
	}
	srv.Delete("alice")
	if err := c.Authenticate(ctx, "alice", "alice-password"); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Fatalf("deleted: %v", err)
	}
	// Two entries with the username: refused (ambiguous).
	srv.Add("alice", "alice-password", slapdtest.PeopleDN)
	srv.Add("alice", "alice-password", slapdtest.FormerDN)
	if err := c.Authenticate(ctx, "alice", "alice-password"); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Fatalf("two entries: %v", err)
	}

	// The wrong CA, a wrong service password: unavailable, no password judged.
	wrongCA := c
	wrongCA.CAPEM = srv.OtherCA
	for _, cfg := range []directory.Config{wrongCA, func() directory.Config { s := starttls; s.CAPEM = srv.OtherCA; return s }()} {
		err := cfg.Authenticate(ctx, "Mixed", "mixed-password")
		if !errors.Is(err, directory.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("%s with the wrong CA: %v", cfg.URL, err)
		}
	}
	badService := c
	badService.BindPassword = "nope"
	if err := badService.Authenticate(ctx, "Mixed", "mixed-password"); !errors.Is(err, directory.ErrUnavailable) ||
		!strings.Contains(err.Error(), "service account") {
		t.Fatalf("wrong service password: %v", err)
	}
	if r, err := c.Test(ctx, "Mixed"); err != nil || !r.Connected || r.DN != "uid=Mixed,"+slapdtest.PeopleDN {
		t.Fatalf("test: %+v %v", r, err)
	}
	if r, err := c.Test(ctx, "mixed"); err != nil || r.DN != "" || !strings.Contains(r.Problem, "case") {
		t.Fatalf("test of a case-differing name: %+v %v", r, err)
	}
	if _, err := wrongCA.Test(ctx, ""); !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("test with the wrong CA: %v", err)
	}

	// The directory down: unavailable, quickly.
	srv.Stop()
	start := time.Now()
	if err := c.Authenticate(ctx, "Mixed", "mixed-password"); !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("down: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("down took %v", time.Since(start))
	}
	srv.Start()
	if err := c.Authenticate(ctx, "Mixed", "mixed-password"); err != nil {
		t.Fatalf("back: %v", err)
	}
}

func testCA(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
