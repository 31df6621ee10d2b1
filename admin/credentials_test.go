package admin_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestLoginSuccess(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		e := newSignInEnv(t, s)
		before, _ := s.Administrator(ctx, e.org.ID, e.owner.ID)
		r := e.mustLogin(t, "jdoe", goodPassword, "")
		if r.Stage != store.SessionActive || r.Administrator.ID != e.owner.ID || r.Token == "" {
			t.Fatalf("login = %+v", r)
		}
		if r.Administrator.LastLoginAt == nil || !r.Administrator.LastLoginAt.Equal(e.clock.Now()) || r.Administrator.Version != before.Version+1 {
			t.Fatalf("last login not recorded: %+v (before %+v)", r.Administrator, before)
		}
		if !r.Session.ExpiresAt.Equal(e.clock.Now().Add(admin.DefaultSessionIdle)) {
			t.Fatalf("session expires %v", r.Session.ExpiresAt)
		}
		hist, _ := s.LoginHistory(ctx, e.org.ID, e.owner.ID, 10, 0)
		if len(hist) != 1 || hist[0].Result != store.LoginSuccess || hist[0].IP != "192.0.2.1" || hist[0].UserAgent != "Mozilla/5.0 (test)" ||
			hist[0].Method != store.SignInPassword || !hist[0].At.Equal(e.clock.Now()) {
			t.Fatalf("history = %+v", hist)
		}
		es, _ := s.AuditLog(ctx, e.org.ID, store.AuditQuery{Action: store.AuditSignInSuccess})
		if len(es) != 1 || es[0].ActorID != e.owner.ID || es[0].TargetID != e.owner.ID || !strings.Contains(string(es[0].After), "lastLoginAt") {
			t.Fatalf("success audit = %+v", es)
		}
		// The cookie's secret is stored only as its hash; so is the password.
		assertNotStored(t, s, r.Token, decodeSecret(t, r.Token))
		assertNotStored(t, s, goodPassword, []byte(goodPassword))

		ss, a, err := e.si.Authenticate(ctx, r.Token)
		if err != nil || a.ID != e.owner.ID || ss.AdministratorID != e.owner.ID {
			t.Fatalf("Authenticate = %+v, %+v, %v", ss, a, err)
		}
		for _, bad := range []string{"", "x", r.Token + "x", strings.Repeat("a", 1000)} {
			_, _, err := e.si.Authenticate(ctx, bad)
			assertCode(t, err, admin.CodeInvalidSession)
		}
		if err := e.si.Logout(ctx, r.Token); err != nil {
			t.Fatal(err)
		}
		_, _, err = e.si.Authenticate(ctx, r.Token)
		assertCode(t, err, admin.CodeInvalidSession)
		if err := e.si.Logout(ctx, r.Token); err != nil {
			t.Fatalf("second logout: %v", err)
		}
		if auditCount(t, s, e.org.ID, store.AuditSignOut) != 1 {
			t.Fatal("logout not audited")
		}
	})
}

func TestLoginUsernameIsExact(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		e := newSignInEnv(t, s)
		snap := storetest.TakeSnapshot(t, s)
		for _, name := range []string{"JDoe", "JDOE", "jdoe ", " jdoe", "jdoe\x00", "jdo", "jdoe\u200b"} {
			_, err := e.login(name, goodPassword, "", "192.0.2.50")
			assertCode(t, err, admin.CodeInvalidCredentials)
		}
		// Only the throttle counted them: no history, audit or session.
		for _, table := range []string{"login_history", "audit_log", "sessions", "credentials", "administrators"} {
			if got := storetest.TakeSnapshot(t, s)[table]; fmt.Sprint(got) != fmt.Sprint(snap[table]) {
				t.Errorf("an unknown username changed %s", table)
			}
		}
		e.mustLogin(t, "jdoe", goodPassword, "")
	})
}

func TestLockout(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		e := newSignInEnv(t, s)
		for i := 1; i <= admin.DefaultLockAfter; i++ {
			_, err := e.login("jdoe", "wrong password number "+fmt.Sprint(i), "", fmt.Sprintf("192.0.2.%d", i))
			assertCode(t, err, admin.CodeInvalidCredentials)
		}
		// Locked: the right password is refused, and writes no session.
		snapSessions := count(t, s, "sessions", "")
		_, err := e.login("jdoe", goodPassword, "", "192.0.2.99")
		assertCode(t, err, admin.CodeAccountLocked)
		e.clock.Add(admin.DefaultLockFor - time.Second)
		_, err = e.login("jdoe", goodPassword, "", "192.0.2.99")
		assertCode(t, err, admin.CodeAccountLocked)
		if count(t, s, "sessions", "") != snapSessions {
			t.Fatal("a locked account got a session")
		}
		// The refusals while locked write nothing: an unknown name's cost
		// the same.
		if n := auditCount(t, s, e.org.ID, store.AuditSignInFailure); n != admin.DefaultLockAfter {
			t.Fatalf("%d signin.failure entries, want %d", n, admin.DefaultLockAfter)
		}
		if n := auditCount(t, s, e.org.ID, store.AuditSignInLockout); n != 1 {
			t.Fatalf("%d signin.lockout entries, want 1", n)
		}
		hist, _ := s.LoginHistory(ctx, e.org.ID, e.owner.ID, 10, 0)
		if len(hist) != admin.DefaultLockAfter || hist[0].Result != store.LoginInvalidPassword {
			t.Fatalf("history = %+v", hist)
		}
		// Unlocked by time.
		e.clock.Add(time.Second)
		r := e.mustLogin(t, "jdoe", goodPassword, "")
		// A success restarts the count: four failures do not lock.
		for range admin.DefaultLockAfter - 1 {
			_, err := e.login("jdoe", "wrong again wrong again", "", "192.0.2.77")
			assertCode(t, err, admin.CodeInvalidCredentials)
		}
		e.mustLogin(t, "jdoe", goodPassword, "")
		// The operator unlocks early.
		for range admin.DefaultLockAfter {
			e.login("jdoe", "wrong again wrong again", "", "192.0.2.78")
		}
		_, err = e.login("jdoe", goodPassword, "", "192.0.2.78")
		assertCode(t, err, admin.CodeAccountLocked)
		if err := e.si.Unlock(store.WithActor(ctx, store.Actor{Kind: store.ActorOperator}), e.org.ID, e.owner.ID); err != nil {
			t.Fatal(err)
		}
		e.mustLogin(t, "jdoe", goodPassword, "")
		_ = r
	})
}

// A username that does not exist answers and locks exactly like one that
// does, so the lockout does not reveal which usernames exist.
func TestUnknownUsernameLockoutIndistinguishable(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		e := newSignInEnv(t, s)
		answers := func(username, ip string) []string {
			var codes []string
			try := func() {
				_, err := e.login(username, "not the password at all", "", ip)
				var ae *admin.Error
				if !errors.As(err, &ae) {
					t.Fatalf("login(%s) = %v", username, err)
				}
				codes = append(codes, ae.Code+"|"+ae.Message)
			}
			for range admin.DefaultLockAfter + 2 {
				try()
			}
			e.clock.Add(admin.DefaultLockFor)
			for range admin.DefaultLockAfter + 1 {
				try()
			}
			return codes
		}
		known := answers("jdoe", "198.51.100.1")
		unknown := answers("ghost", "198.51.100.2")
		if fmt.Sprint(known) != fmt.Sprint(unknown) {
			t.Fatalf("known username answers\n%v\nunknown username answers\n%v", known, unknown)
		}
		want := []string{admin.CodeInvalidCredentials, admin.CodeInvalidCredentials, admin.CodeInvalidCredentials,
			admin.CodeInvalidCredentials, admin.CodeInvalidCredentials, admin.CodeAccountLocked, admin.CodeAccountLocked,
			admin.CodeInvalidCredentials, admin.CodeInvalidCredentials, admin.CodeInvalidCredentials, admin.CodeInvalidCredentials,
			admin.CodeInvalidCredentials, admin.CodeAccountLocked}
		for i, w := range want {
			if !strings.HasPrefix(known[i], w+"|") {
				t.Fatalf("answer %d = %s, want %s (all: %v)", i, known[i], w, known)
			}
		}
		// The throttle table does not keep the typed username.
		d := storetest.Dump(t, s)
		if strings.Contains(fmt.Sprint(d["login_throttle"]), "ghost") {
			t.Fatal("login_throttle stores a typed username")
		}
	})
}

func TestTooManyAttemptsFromOneAddress(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		e := newSignInEnv(t, s)
		for i := range admin.DefaultIPLimit {
			_, err := e.login(fmt.Sprintf("guess%d", i), "wrong password guess", "", "203.0.113.9")
			assertCode(t, err, admin.CodeInvalidCredentials)
		}
		snap := storetest.TakeSnapshot(t, s)
		_, err := e.login("jdoe", goodPassword, "", "203.0.113.9")
		assertCode(t, err, admin.CodeTooManyAttempts)
		storetest.AssertUnchanged(t, s, snap)
		// Another address is not affected; the address is free again after
		// the window.
		e.mustLogin(t, "jdoe", goodPassword, "")
		e.clock.Add(admin.DefaultIPWindow)
		if _, err := e.login("jdoe", goodPassword, "", "203.0.113.9"); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})
}

func TestPendingAndDeactivatedCannotSignIn(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		e := newSignInEnv(t, s)
		e.addAdmin(t, "pending", store.StatusPending)
		_, err := e.login("pending", "wrong password here", "", "192.0.2.1")
		assertCode(t, err, admin.CodeInvalidCredentials)
		_, err = e.login("pending", goodPassword, "", "192.0.2.1")
		assertCode(t, err, admin.CodeAccountPending)

		b := e.addAdmin(t, "bob", store.StatusActive)
		r := e.mustLogin(t, "bob", goodPassword, "")
		if _, err := s.UpdateAdministrator(ctx, e.org.ID, b.ID, store.FlagMissingSuper, func(a *store.Administrator) error {
			a.Status = store.StatusDeactivated
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		_, _, err = e.si.Authenticate(ctx, r.Token)
		assertCode(t, err, admin.CodeInvalidSession)
		_, err = e.login("bob", "wrong password here", "", "192.0.2.1")
		assertCode(t, err, admin.CodeInvalidCredentials)
		sessions := count(t, s, "sessions", "")
		_, err = e.login("bob", goodPassword, "", "192.0.2.1")
		assertCode(t, err, admin.CodeAccountDeactivated)
		if count(t, s, "sessions", "") != sessions {
			t.Fatal("a deactivated administrator got a session")
		}
		hist, _ := s.LoginHistory(ctx, e.org.ID, b.ID, 1, 0)
		if len(hist) != 1 || hist[0].Result != store.LoginDeactivated {
			t.Fatalf("history = %+v", hist)
		}

		// A deleted administrator's session ends with it.
		c := e.addAdmin(t, "carol", store.StatusActive)
		r = e.mustLogin(t, "carol", goodPassword, "")
		if err := s.DeleteAdministrator(ctx, e.org.ID, c.ID, store.FlagMissingSuper, nil); err != nil {
			t.Fatal(err)
		}
		_, _, err = e.si.Authenticate(ctx, r.Token)
		assertCode(t, err, admin.CodeInvalidSession)
	})
}

// Sign-in is organization-scoped: without an organization, or with one
// that does not exist, it is a wrong password; "username@slug" names the
// organization, split at the last '@'.
func TestLoginOrganizationScoped(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		e := newSignInEnv(t, s)
		login := func(slug, user string) (admin.LoginResult, error) {
			return e.si.Login(ctx, admin.LoginRequest{OrgSlug: slug, Username: user, Password: goodPassword, IP: "192.0.2.3"})
		}
		_, err := login("", "jdoe")
		assertCode(t, err, admin.CodeInvalidCredentials)
		if r, err := login("", "jdoe@acme"); err != nil || r.Administrator.OrgID != e.org.ID {
			t.Fatalf("login as jdoe@acme = %+v, %v", r, err)
		}
		token := e.createOrg(t, "other", "jdoe")
		if _, err := e.si.Activate(ctx, token, goodPassword, "", ""); err != nil {
			t.Fatal(err)
		}
		if r, err := login("other", "jdoe"); err != nil || r.Administrator.OrgID == e.org.ID {
			t.Fatalf("login to other = %+v, %v", r, err)
		}
		if r, err := login("", "jdoe@other"); err != nil || r.Administrator.OrgID == e.org.ID {
			t.Fatalf("login as jdoe@other = %+v, %v", r, err)
		}
		// Slugs are lower case: a typed one's ASCII capitals are lowered,
		// and nothing else (no Unicode folding: a Kelvin sign is no k).
		for _, c := range [][2]string{{"ACME", "jdoe"}, {"", "jdoe@AcMe"}} {
			if r, err := login(c[0], c[1]); err != nil || r.Administrator.OrgID != e.org.ID {
				t.Fatalf("login %q in %q = %+v, %v", c[1], c[0], r, err)
			}
		}
		if got := admin.SlugOf("\u212Acme-ACME"); got != "\u212Acme-acme" {
			t.Fatalf("SlugOf folds beyond ASCII: %q", got)
		}
		for _, c := range [][2]string{{"", "jdoe"}, {"nope", "jdoe"}, {"", "jdoe@nope"}, {"", "jdoe@"}, {"acme", "jdoe@acme"}, {"\xff", "jdoe"}, {"\u0430cme", "jdoe"}} {
			_, err = login(c[0], c[1])
			assertCode(t, err, admin.CodeInvalidCredentials)
		}
		// An email username: split at the last '@'.
		a, err := s.CreateAdministrator(ctx, store.Administrator{OrgID: e.org.ID, UserName: "jane@acme.com", Email: "jane@acme.com",
			GivenName: "Jane", FamilyName: "Roe", Role: store.RoleAdministrator, Status: store.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.si.SetPassword(ctx, e.org.ID, a.ID, goodPassword, false); err != nil {
			t.Fatal(err)
		}
		if r, err := login("", "jane@acme.com@acme"); err != nil || r.Administrator.ID != a.ID {
			t.Fatalf("login as jane@acme.com@acme = %+v, %v", r, err)
		}
	})
}

func TestMustChangePassword(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		e := newSignInEnv(t, s)
		other := e.mustLogin(t, "jdoe", goodPassword, "")
		if err := e.si.SetPassword(ctx, e.org.ID, e.owner.ID, "temporary password 1", true); err != nil {
			t.Fatal(err)
		}
		_, _, err := e.si.Authenticate(ctx, other.Token)
		assertCode(t, err, admin.CodeInvalidSession) // setting a password ends the sessions
		r := e.mustLogin(t, "jdoe", "temporary password 1", "")
		if r.Stage != store.SessionChangePassword {
			t.Fatalf("stage = %s", r.Stage)
		}
		ss, a, err := e.si.Authenticate(ctx, r.Token)
		assertCode(t, err, admin.CodePasswordChangeRequired)
		if ss.Stage != store.SessionChangePassword || a.ID != e.owner.ID {
			t.Fatalf("refused Authenticate gave %+v %+v", ss, a)
		}
		_, err = e.si.BeginTOTP(ctx, r.Token)
		assertCode(t, err, admin.CodePasswordChangeRequired)

		second := e.mustLogin(t, "jdoe", "temporary password 1", "")
		snap := storetest.TakeSnapshot(t, s)
		_, err = e.si.ChangePassword(ctx, r.Token, "temporary password 1", "short")
		assertCode(t, err, admin.CodeWeakPassword)
		_, err = e.si.ChangePassword(ctx, r.Token, "temporary password 1", "temporary password 1")
		assertCode(t, err, admin.CodeWeakPassword)
		_, err = e.si.ChangePassword(ctx, r.Token, "temporary password 1", "jdoe")
		assertCode(t, err, admin.CodeWeakPassword)
		storetest.AssertUnchanged(t, s, snap)
		_, err = e.si.ChangePassword(ctx, r.Token, "not the current one", "a brand new password")
		assertCode(t, err, admin.CodeInvalidCredentials)
		if hist, _ := s.LoginHistory(ctx, e.org.ID, e.owner.ID, 1, 0); len(hist) != 1 || hist[0].Result != store.LoginInvalidPassword {
			t.Fatalf("a wrong current password was not recorded: %+v", hist)
		}

		ss, err = e.si.ChangePassword(ctx, r.Token, "temporary password 1", "a brand new password")
		if err != nil || ss.Stage != store.SessionActive {
			t.Fatalf("ChangePassword = %+v, %v", ss, err)
		}
		if _, _, err := e.si.Authenticate(ctx, r.Token); err != nil {
			t.Fatalf("after the change: %v", err)
		}
		_, _, err = e.si.Authenticate(ctx, second.Token)
		assertCode(t, err, admin.CodeInvalidSession) // other sessions ended
		if n := auditCount(t, s, e.org.ID, store.AuditPasswordChange); n != 1 {
			t.Fatalf("%d password_change entries", n)
		}
		_, err = e.login("jdoe", "temporary password 1", "", "192.0.2.1")
		assertCode(t, err, admin.CodeInvalidCredentials)
		if r := e.mustLogin(t, "jdoe", "a brand new password", ""); r.Stage != store.SessionActive {
			t.Fatalf("stage after change = %s", r.Stage)
		}
		assertNotStored(t, s, "a brand new password", []byte("a brand new password"))
	})
}

func TestTamperedHashRefused(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		e := newSignInEnv(t, s)
		c, _ := s.Credentials(ctx, e.org.ID, e.owner.ID)
		tampered := strings.Replace(c.PasswordHash, "m=19456", "m=4194304", 1)
		if _, err := s.UpdateCredentials(ctx, e.org.ID, e.owner.ID, store.CredentialsChange{Update: func(c *store.Credentials) error {
			c.PasswordHash = tampered
			return nil
		}}); err != nil {
			t.Fatal(err)
		}
		_, err := e.login("jdoe", goodPassword, "", "192.0.2.1")
		assertCode(t, err, admin.CodeInvalidCredentials)
	})
}
