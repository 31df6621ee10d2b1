package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/admin/directory/slapdtest"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func ldapSpec(srv *slapdtest.Server) admin.LDAPSpec {
	c := srv.Config()
	return admin.LDAPSpec{URL: c.URL, CACertificate: c.CAPEM, BindDN: c.BindDN, BindPassword: c.BindPassword, BaseDN: c.BaseDN,
		UserFilter: c.UserFilter, UsernameAttribute: c.UsernameAttribute}
}

func ldapOperator(org store.Org) admin.Principal {
	return admin.Principal{OrgID: org.ID, Role: store.RoleSuperAdministrator, Actor: store.Actor{Kind: store.ActorOperator, Name: "test"}, Operator: true}
}

// ldapAdmin creates an Active administrator marked as an LDAP user.
func (e *signInEnv) ldapAdmin(t *testing.T, l *admin.LDAP, username string) store.Administrator {
	t.Helper()
	a, err := e.s.CreateAdministrator(storetest.Context(context.Background()), store.Administrator{OrgID: e.org.ID, UserName: username,
		Email: "x@acme.example", Role: store.RoleAdministrator, Status: store.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetUser(context.Background(), ldapOperator(e.org), a.ID, true); err != nil {
		t.Fatal(err)
	}
	return a
}

// ldapSignInEnv is newSignInEnv with a running slapd as the
// organization's LDAP connection.
func ldapSignInEnv(t *testing.T, s *store.SQL) (*slapdtest.Server, *signInEnv, *admin.LDAP) {
	t.Helper()
	srv := slapdtest.Start(t)
	e := newSignInEnv(t, s)
	l := &admin.LDAP{Store: s, Sealer: e.sealer}
	if _, err := l.Set(context.Background(), ldapOperator(e.org), ldapSpec(srv)); err != nil {
		t.Fatal(err)
	}
	return srv, e, l
}

func TestLDAPConnectionSettings(t *testing.T) {
	srv := slapdtest.Start(t)
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
		e := newSignInEnv(t, s)
		l := &admin.LDAP{Store: s, Sealer: e.sealer}
		p := ldapOperator(e.org)
		_, err := l.Get(ctx, p)
		assertCode(t, err, admin.CodeLDAPNotConfigured)
		// A plain Administrator may not.
		_, err = l.Set(ctx, admin.Principal{OrgID: e.org.ID, Role: store.RoleAdministrator}, ldapSpec(srv))
		assertCode(t, err, admin.CodeForbidden)
		// Refused settings write nothing.
		for name, change := range map[string]func(*admin.LDAPSpec){
			"plain ldap":  func(s *admin.LDAPSpec) { s.URL = strings.Replace(s.URL, "ldaps:", "ldap:", 1) },
			"no CA":       func(s *admin.LDAPSpec) { s.CACertificate = "" },
			"printf":      func(s *admin.LDAPSpec) { s.UserFilter = "(uid=%s)" },
			"no password": func(s *admin.LDAPSpec) { s.BindPassword = "" },
		} {
			spec := ldapSpec(srv)
			change(&spec)
			_, err := l.Set(ctx, p, spec)
			if err == nil {
				t.Fatalf("%s: accepted", name)
			}
			assertCode(t, err, admin.CodeInvalidLDAP)
		}
		_, err = l.Get(ctx, p)
		assertCode(t, err, admin.CodeLDAPNotConfigured)
		v, err := l.Set(ctx, p, ldapSpec(srv))
		if err != nil || !v.Enabled || !v.BindPasswordSet || v.Timeout != "5s" || v.Version != 1 {
			t.Fatalf("set: %+v %v", v, err)
		}
		// A change without the password keeps it; the password is sealed.
		off := false
		d := 2 * time.Second
		if v, err = l.Set(ctx, p, admin.LDAPSpec{Enabled: &off, Timeout: &d}); err != nil || v.Enabled || v.Timeout != "2s" || !v.BindPasswordSet {
			t.Fatalf("change: %+v %v", v, err)
		}
		assertNotStored(t, s, slapdtest.ServicePass, []byte(slapdtest.ServicePass))
		if r, err := l.Test(ctx, p, "Mixed"); err != nil || !r.Connected || r.DN == "" {
			t.Fatalf("test: %+v %v", r, err)
		}
		if _, err := l.Set(ctx, p, admin.LDAPSpec{CACertificate: srv.OtherCA}); err != nil {
			t.Fatal(err)
		}
		_, err = l.Test(ctx, p, "")
		assertCode(t, err, admin.CodeLDAPTestFailed)
		if !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("the wrong CA's test says %q", err)
		}
		if n := auditCount(t, s, e.org.ID, store.AuditLDAPConnectionUpdate); n != 2 {
			t.Fatalf("%d ldap_connection.update entries", n)
		}
		if err := l.Delete(ctx, p); err != nil {
			t.Fatal(err)
		}
		assertCode(t, l.Delete(ctx, p), admin.CodeLDAPNotConfigured)
		assertCode(t, l.SetUser(ctx, p, e.owner.ID, true), admin.CodeLDAPNotConfigured)
	})
}

func TestLDAPSignIn(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		srv, e, l := ldapSignInEnv(t, s)
		ctx := storetest.Context(context.Background())
		p := ldapOperator(e.org)
		// alice had a local password; marked, it is gone and the
		// directory's is the one.
		alice := e.addAdmin(t, "alice", store.StatusActive)
		if err := l.SetUser(ctx, p, alice.ID, true); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Credentials(ctx, e.org.ID, alice.ID); c.PasswordHash != "" || !c.LDAPUser {
			t.Fatalf("credentials after marking: %+v", c)
		}
		e.mustLogin(t, "alice", "alice-password", "")
		_, err := e.login("alice", goodPassword, "", "192.0.2.10")
		assertCode(t, err, admin.CodeInvalidCredentials)
		// A local hash left on an LDAP user is never checked.
		if _, err := s.UpdateCredentials(ctx, e.org.ID, alice.ID, store.CredentialsChange{Action: store.AuditCredentialsUpdate,
			Update: func(c *store.Credentials) error {
				h, _ := admin.HashPassword(goodPassword)
				c.PasswordHash = h
				return nil
			}}); err != nil {
			t.Fatal(err)
		}
		_, err = e.login("alice", goodPassword, "", "192.0.2.10")
		assertCode(t, err, admin.CodeInvalidCredentials)
		_, err = e.login("alice", "", "", "192.0.2.10")
		assertCode(t, err, admin.CodeInvalidCredentials)
		if err := e.si.Unlock(ctx, e.org.ID, alice.ID); err != nil {
			t.Fatal(err)
		}

		// Usernames are exact: gatehouse's "mixed" is not the directory's "Mixed".
		e.ldapAdmin(t, l, "mixed")
		_, err = e.login("mixed", "mixed-password", "", "192.0.2.11")
		assertCode(t, err, admin.CodeInvalidCredentials)

		// Injection: administrators whose usernames are filter syntax
		// match no entry, with any password of the directory.
		for i, name := range []string{"*", ")(uid=*", "alice)(|(uid=*", `\61lice`, "al*", "*)(objectClass=*"} {
			e.ldapAdmin(t, l, name)
			for _, pw := range []string{"alice-password", "bob-password"} {
				_, err := e.login(name, pw, "", fmt.Sprintf("192.0.2.%d", 20+i))
				assertCode(t, err, admin.CodeInvalidCredentials)
			}
		}

		// No local password for an LDAP user: not set, changed or reset.
		assertCode(t, e.si.SetPassword(ctx, e.org.ID, alice.ID, "a brand new local password", false), admin.CodeLDAPUser)
		r := e.mustLogin(t, "alice", "alice-password", "")
		_, err = e.si.ChangePassword(ctx, r.Token, "alice-password", "a brand new local password")
		assertCode(t, err, admin.CodeLDAPUser)
		before := count(t, s, "outbox", "")
		if err := e.si.RequestPasswordReset(ctx, e.org.Slug, "alice"); err != nil {
			t.Fatal(err)
		}
		if count(t, s, "outbox", "") != before {
			t.Fatal("a reset email was queued for an LDAP user")
		}

		// The user moved out of the base, or deleted: refused.
		bob := e.ldapAdmin(t, l, "bob")
		e.mustLogin(t, "bob", "bob-password", "")
		srv.Delete("bob")
		_, err = e.login("bob", "bob-password", "", "192.0.2.30")
		assertCode(t, err, admin.CodeInvalidCredentials)
		narrow := admin.LDAPSpec{BaseDN: slapdtest.PeopleDN}
		if _, err := l.Set(ctx, p, narrow); err != nil {
			t.Fatal(err)
		}
		srv.Add("bob", "bob-password", slapdtest.PeopleDN)
		e.mustLogin(t, "bob", "bob-password", "")
		srv.Move("bob")
		_, err = e.login("bob", "bob-password", "", "192.0.2.31")
		assertCode(t, err, admin.CodeInvalidCredentials)
		if err := e.si.Unlock(ctx, e.org.ID, bob.ID); err != nil {
			t.Fatal(err)
		}

		// The directory down: directory_unavailable, recorded, no local
		// fallback (alice's leftover hash), and no lockout count taken.
		srv.Stop()
		for i := range admin.DefaultLockAfter + 2 {
			for _, pw := range []string{"alice-password", goodPassword} {
				_, err = e.login("alice", pw, "", fmt.Sprintf("192.0.2.%d", 40+i))
				assertCode(t, err, admin.CodeDirectoryUnavailable)
			}
		}
		hist, _ := s.LoginHistory(ctx, e.org.ID, alice.ID, 1, 0)
		if len(hist) != 1 || hist[0].Result != store.LoginDirectoryUnavailable {
			t.Fatalf("history %+v", hist)
		}
		srv.Start()
		e.mustLogin(t, "alice", "alice-password", "")

		// The wrong CA, a disabled or deleted connection: unavailable.
		if _, err := l.Set(ctx, p, admin.LDAPSpec{CACertificate: srv.OtherCA}); err != nil {
			t.Fatal(err)
		}
		_, err = e.login("alice", "alice-password", "", "192.0.2.50")
		assertCode(t, err, admin.CodeDirectoryUnavailable)
		off := false
		if _, err := l.Set(ctx, p, admin.LDAPSpec{CACertificate: srv.CAPEM, Enabled: &off}); err != nil {
			t.Fatal(err)
		}
		_, err = e.login("alice", "alice-password", "", "192.0.2.50")
		assertCode(t, err, admin.CodeDirectoryUnavailable)
		on := true
		if _, err := l.Set(ctx, p, admin.LDAPSpec{Enabled: &on}); err != nil {
			t.Fatal(err)
		}
		e.mustLogin(t, "alice", "alice-password", "")

		// Unmarked: no password at all until one is set.
		if err := l.SetUser(ctx, p, alice.ID, false); err != nil {
			t.Fatal(err)
		}
		_, err = e.login("alice", "alice-password", "", "192.0.2.51")
		assertCode(t, err, admin.CodeInvalidCredentials)
		if err := l.SetUser(ctx, p, alice.ID, true); err != nil {
			t.Fatal(err)
		}
		if err := e.si.Unlock(ctx, e.org.ID, alice.ID); err != nil {
			t.Fatal(err)
		}
		if err := l.Delete(ctx, p); err != nil {
			t.Fatal(err)
		}
		_, err = e.login("alice", "alice-password", "", "192.0.2.52")
		assertCode(t, err, admin.CodeDirectoryUnavailable)
	})
}

// LDAP failures count against gatehouse's lockout, also when 40 guesses
// race: exactly LockAfter binds are judged, then the name is locked and
// the right password is refused.
func TestLDAPLockout(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		_, e, l := ldapSignInEnv(t, s)
		ctx := storetest.Context(context.Background())
		alice := e.ldapAdmin(t, l, "alice")
		for i := 1; i <= admin.DefaultLockAfter; i++ {
			_, err := e.login("alice", fmt.Sprint("wrong ", i), "", fmt.Sprintf("192.0.2.%d", i))
			assertCode(t, err, admin.CodeInvalidCredentials)
		}
		_, err := e.login("alice", "alice-password", "", "192.0.2.99")
		assertCode(t, err, admin.CodeAccountLocked)
		if n := auditCount(t, s, e.org.ID, store.AuditSignInLockout); n != 1 {
			t.Fatalf("%d lockouts", n)
		}
		if err := e.si.Unlock(ctx, e.org.ID, alice.ID); err != nil {
			t.Fatal(err)
		}
		e.mustLogin(t, "alice", "alice-password", "")

		bob := e.ldapAdmin(t, l, "bob")
		const guesses = 40
		var mu sync.Mutex
		codes := map[string]int{}
		var wg sync.WaitGroup
		for i := range guesses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.login("bob", fmt.Sprint("guess ", i), "", fmt.Sprintf("198.51.100.%d", i))
				var ae *admin.Error
				code := "success"
				if err != nil {
					code = err.Error()
					if errors.As(err, &ae) {
						code = ae.Code
					}
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if codes[admin.CodeInvalidCredentials] != admin.DefaultLockAfter || codes[admin.CodeAccountLocked] != guesses-admin.DefaultLockAfter {
			t.Fatalf("40 racing guesses: %v", codes)
		}
		hist, _ := s.LoginHistory(ctx, e.org.ID, bob.ID, 100, 0)
		if len(hist) != admin.DefaultLockAfter {
			t.Fatalf("%d history rows, want %d", len(hist), admin.DefaultLockAfter)
		}
		_, err = e.login("bob", "bob-password", "", "198.51.100.200")
		assertCode(t, err, admin.CodeAccountLocked)
	})
}

// A Pending LDAP user activates with their directory password: checked
// by a bind, counted like a sign-in, and no local password is kept.
func TestLDAPActivation(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		srv := slapdtest.Start(t)
		ctx := storetest.Context(context.Background())
		e := newPendingEnv(t, s, "")
		token := e.createOrg(t, "acme", "alice")
		l := &admin.LDAP{Store: s, Sealer: e.sealer}
		p := ldapOperator(e.org)
		if _, err := l.Set(ctx, p, ldapSpec(srv)); err != nil {
			t.Fatal(err)
		}
		if err := l.SetUser(ctx, p, e.owner.ID, true); err != nil {
			t.Fatal(err)
		}
		if info, err := e.si.ActivationInfo(ctx, token); err != nil || !info.LDAPUser {
			t.Fatalf("activation info %+v %v", info, err)
		}
		_, err := e.si.Activate(ctx, token, "not alice's password", "", "")
		assertCode(t, err, admin.CodeInvalidCredentials)
		a, err := e.si.Activate(ctx, token, "alice-password", "", "")
		if err != nil || a.Status != store.StatusActive {
			t.Fatalf("activate: %+v %v", a, err)
		}
		if c, _ := s.Credentials(ctx, e.org.ID, a.ID); c.PasswordHash != "" {
			t.Fatal("a local password was kept for an LDAP user")
		}
		e.mustLogin(t, "alice", "alice-password", "")
		u, _ := url.Parse("https://x/?token=" + token)
		_, err = e.si.Activate(ctx, u.Query().Get("token"), "alice-password", "", "")
		assertCode(t, err, admin.CodeInvalidToken)
	})
}
