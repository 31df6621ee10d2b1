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

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

const goodPassword = "correct horse battery staple"

// clock is the injected time of a test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// signInEnv is an organization "acme" whose owner jdoe is activated with
// goodPassword.
type signInEnv struct {
	s      *store.SQL
	si     *admin.SignIn
	sealer *admin.Sealer
	clock  *testClock
	org    store.Org
	owner  store.Administrator
	orgs   *admin.Orgs
}

func newSignInEnv(t *testing.T, s *store.SQL) *signInEnv {
	t.Helper()
	e := newPendingEnv(t, s, "acme")
	token := e.createOrg(t, "acme", "jdoe")
	var err error
	if e.owner, err = e.si.Activate(context.Background(), token, goodPassword, "", ""); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	return e
}

// newPendingEnv is the SignIn of a test with no organization yet.
func newPendingEnv(t *testing.T, s *store.SQL, _ string) *signInEnv {
	t.Helper()
	key := make([]byte, admin.SecretKeySize)
	for i := range key {
		key[i] = byte(i)
	}
	sealer, err := admin.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	e := &signInEnv{s: s, sealer: sealer, clock: c}
	e.si = &admin.SignIn{Store: s, Sealer: sealer, Mail: &admin.Mail{Store: s, Sealer: sealer}, BaseURL: "https://gatehouse.example",
		Now: c.Now}
	e.orgs = &admin.Orgs{Store: s, BaseURL: "https://gatehouse.example", Now: c.Now}
	return e
}

// createOrg creates an organization with a Pending owner and returns the
// activation token.
func (e *signInEnv) createOrg(t *testing.T, slug, owner string) string {
	t.Helper()
	org, a, link, err := e.orgs.Create(context.Background(), admin.OrgSpec{Slug: slug, Name: "Org " + slug,
		Owner: admin.OwnerSpec{UserName: owner, Email: owner + "@" + slug + ".example", GivenName: "Jane", FamilyName: "Doe"}})
	if err != nil {
		t.Fatalf("create org: %v", err)
	}
	if e.org.ID == "" {
		e.org, e.owner = org, a
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

// addAdmin creates an Active administrator with a password.
func (e *signInEnv) addAdmin(t *testing.T, username string, status store.Status) store.Administrator {
	t.Helper()
	a, err := e.s.CreateAdministrator(context.Background(), store.Administrator{OrgID: e.org.ID, UserName: username,
		Email: username + "@acme.example", GivenName: "Given", FamilyName: "Family", Role: store.RoleAdministrator, Status: status})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.si.SetPassword(context.Background(), e.org.ID, a.ID, goodPassword, false); err != nil {
		t.Fatal(err)
	}
	return a
}

func (e *signInEnv) login(username, password, code, ip string) (admin.LoginResult, error) {
	return e.si.Login(context.Background(), admin.LoginRequest{OrgSlug: e.org.Slug, Username: username, Password: password,
		TOTPCode: code, IP: ip, UserAgent: "Mozilla/5.0 (test)"})
}

func (e *signInEnv) mustLogin(t *testing.T, username, password, code string) admin.LoginResult {
	t.Helper()
	r, err := e.login(username, password, code, "192.0.2.1")
	if err != nil {
		t.Fatalf("Login(%s): %v", username, err)
	}
	return r
}

func (e *signInEnv) code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrolTOTP sets up TOTP for the administrator of session token and
// returns the secret.
func (e *signInEnv) enrolTOTP(t *testing.T, token string) string {
	t.Helper()
	en, err := e.si.BeginTOTP(context.Background(), token)
	if err != nil {
		t.Fatalf("BeginTOTP: %v", err)
	}
	if _, err := e.si.ConfirmTOTP(context.Background(), token, en.Ticket, e.code(t, en.Secret, e.clock.Now())); err != nil {
		t.Fatalf("ConfirmTOTP: %v", err)
	}
	return en.Secret
}

func count(t *testing.T, s *store.SQL, table, where string, args ...any) int {
	t.Helper()
	r, _ := s.DB()
	var n int
	q := `SELECT COUNT(*) FROM ` + table
	if where != "" {
		q += ` WHERE ` + where
	}
	if s.Dialect() == "postgres" {
		for i := range args {
			q = strings.Replace(q, "?", fmt.Sprintf("$%d", i+1), 1)
		}
	}
	if err := r.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func auditCount(t *testing.T, s *store.SQL, org, action string) int {
	t.Helper()
	es, err := s.AuditLog(context.Background(), org, store.AuditQuery{Action: action, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestLoginSuccess(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
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
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
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
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
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
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
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
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
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
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
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
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
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
		for _, c := range [][2]string{{"", "jdoe"}, {"nope", "jdoe"}, {"", "jdoe@nope"}, {"", "jdoe@"}, {"acme", "jdoe@acme"}, {"\xff", "jdoe"}} {
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

func TestSessionExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
		e := newSignInEnv(t, s)
		// Idle: used every 29 minutes it lives on; left 30 minutes it ends.
		r := e.mustLogin(t, "jdoe", goodPassword, "")
		for range 3 {
			e.clock.Add(29 * time.Minute)
			if _, _, err := e.si.Authenticate(ctx, r.Token); err != nil {
				t.Fatalf("within the idle timeout: %v", err)
			}
		}
		e.clock.Add(admin.DefaultSessionIdle)
		_, _, err := e.si.Authenticate(ctx, r.Token)
		assertCode(t, err, admin.CodeInvalidSession)

		// Absolute: used every 20 minutes, it still ends 12 hours after
		// sign-in.
		r = e.mustLogin(t, "jdoe", goodPassword, "")
		start := e.clock.Now()
		for e.clock.Now().Before(start.Add(admin.DefaultSessionAbsolute - 20*time.Minute)) {
			e.clock.Add(20 * time.Minute)
			if _, _, err := e.si.Authenticate(ctx, r.Token); err != nil {
				t.Fatalf("at %v after sign-in: %v", e.clock.Now().Sub(start), err)
			}
		}
		e.clock.Add(start.Add(admin.DefaultSessionAbsolute).Sub(e.clock.Now()))
		_, _, err = e.si.Authenticate(ctx, r.Token)
		assertCode(t, err, admin.CodeInvalidSession)
	})
}

func TestMustChangePassword(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
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

func TestActivation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
		e := newPendingEnv(t, s, "acme")
		token := e.createOrg(t, "acme", "jdoe")
		info, err := e.si.ActivationInfo(ctx, token)
		if err != nil || info.Administrator.UserName != "jdoe" || info.Org.Slug != "acme" || info.TOTPRequired {
			t.Fatalf("ActivationInfo = %+v, %v", info, err)
		}
		// Pending cannot sign in: it has no password yet.
		_, err = e.login("jdoe", goodPassword, "", "192.0.2.1")
		assertCode(t, err, admin.CodeInvalidCredentials)

		snap := storetest.TakeSnapshot(t, s)
		_, err = e.si.Activate(ctx, token, "too short", "", "")
		assertCode(t, err, admin.CodeWeakPassword)
		_, err = e.si.Activate(ctx, token, goodPassword, "v1.forged", "123456")
		assertCode(t, err, admin.CodeInvalidTOTP)
		for _, bad := range []string{"", "nope", token + "x"} {
			_, err = e.si.Activate(ctx, bad, goodPassword, "", "")
			assertCode(t, err, admin.CodeInvalidToken)
		}
		storetest.AssertUnchanged(t, s, snap)

		a, err := e.si.Activate(ctx, token, goodPassword, "", "")
		if err != nil || a.Status != store.StatusActive {
			t.Fatalf("Activate = %+v, %v", a, err)
		}
		if es, _ := s.AuditLog(ctx, a.OrgID, store.AuditQuery{Action: store.AuditInvitationUse}); len(es) != 1 || es[0].ActorID != a.ID {
			t.Fatalf("invitation.use entries = %+v", es)
		}
		snap = storetest.TakeSnapshot(t, s)
		_, err = e.si.Activate(ctx, token, "another good password", "", "")
		assertCode(t, err, admin.CodeInvalidToken)
		_, err = e.si.ActivationInfo(ctx, token)
		assertCode(t, err, admin.CodeInvalidToken)
		storetest.AssertUnchanged(t, s, snap)
		e.mustLogin(t, "jdoe", goodPassword, "")

		// Expiry.
		late := e.createOrg(t, "late", "lee")
		e.clock.Add(admin.DefaultInvitationTTL)
		_, err = e.si.Activate(ctx, late, goodPassword, "", "")
		assertCode(t, err, admin.CodeInvalidToken)
		_, err = e.si.ActivationInfo(ctx, late)
		assertCode(t, err, admin.CodeInvalidToken)

		// Concurrent activations: exactly one.
		race := e.createOrg(t, "race", "rae")
		var mu sync.Mutex
		results := map[string]int{}
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.si.Activate(ctx, race, fmt.Sprintf("password of racer %d", i), "", "")
				code := "ok"
				if ae := (*admin.Error)(nil); errors.As(err, &ae) {
					code = ae.Code
				} else if err != nil {
					code = err.Error()
				}
				mu.Lock()
				results[code]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if results["ok"] != 1 || results[admin.CodeInvalidToken] != 5 {
			t.Fatalf("concurrent activations: %v", results)
		}
	})
}

func TestActivationWithRequiredTOTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
		e := newPendingEnv(t, s, "acme")
		token := e.createOrg(t, "acme", "jdoe")
		if _, err := s.UpdateOrg(ctx, e.org.ID, func(o *store.Org) error { o.RequireTOTP = true; return nil }); err != nil {
			t.Fatal(err)
		}
		info, err := e.si.ActivationInfo(ctx, token)
		if err != nil || !info.TOTPRequired || info.TOTP.Secret == "" || info.TOTP.Ticket == "" {
			t.Fatalf("ActivationInfo = %+v, %v", info, err)
		}
		u, err := url.Parse(info.TOTP.URL)
		if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/gatehouse:acme:jdoe" ||
			u.Query().Get("issuer") != "gatehouse" || u.Query().Get("digits") != "6" || u.Query().Get("period") != "30" ||
			u.Query().Get("algorithm") != "SHA1" || u.Query().Get("secret") != info.TOTP.Secret {
			t.Fatalf("otpauth URL = %q", info.TOTP.URL)
		}
		other := e.createOrg(t, "other", "odd")
		oinfo, _ := e.si.ActivationInfo(ctx, other)
		snap := storetest.TakeSnapshot(t, s)
		_, err = e.si.Activate(ctx, token, goodPassword, "", "")
		assertCode(t, err, admin.CodeInvalidTOTP)
		_, err = e.si.Activate(ctx, token, goodPassword, info.TOTP.Ticket, "000000")
		assertCode(t, err, admin.CodeInvalidTOTP)
		// A ticket of another administrator does not open for this one.
		_, err = e.si.Activate(ctx, token, goodPassword, oinfo.TOTP.Ticket, e.code(t, oinfo.TOTP.Secret, e.clock.Now()))
		assertCode(t, err, admin.CodeInvalidTOTP)
		storetest.AssertUnchanged(t, s, snap)

		code := e.code(t, info.TOTP.Secret, e.clock.Now())
		if _, err := e.si.Activate(ctx, token, goodPassword, info.TOTP.Ticket, code); err != nil {
			t.Fatal(err)
		}
		assertNotStored(t, s, info.TOTP.Secret, []byte(info.TOTP.Secret))
		// The code used to activate does not sign in.
		_, err = e.login("jdoe", goodPassword, "", "192.0.2.1")
		assertCode(t, err, admin.CodeTOTPRequired)
		_, err = e.login("jdoe", goodPassword, code, "192.0.2.1")
		assertCode(t, err, admin.CodeInvalidTOTP)
		e.clock.Add(30 * time.Second)
		if r := e.mustLogin(t, "jdoe", goodPassword, e.code(t, info.TOTP.Secret, e.clock.Now())); r.Stage != store.SessionActive {
			t.Fatalf("stage = %s", r.Stage)
		}
	})
}

func TestPasswordReset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
		e := newSignInEnv(t, s)
		// Unknown accounts: the same answer, nothing queued.
		for _, name := range []string{"ghost", "JDoe", "ghost@acme.example", ""} {
			if err := e.si.RequestPasswordReset(ctx, "acme", name); err != nil {
				t.Fatalf("reset for %q: %v", name, err)
			}
		}
		if err := e.si.RequestPasswordReset(ctx, "no-such-org", "jdoe"); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.PendingEmails(ctx); n != 0 {
			t.Fatalf("%d emails queued for unknown accounts", n)
		}
		pending := e.addAdmin(t, "pending", store.StatusPending)
		if err := e.si.RequestPasswordReset(ctx, "acme", "pending"); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.PendingEmails(ctx); n != 0 {
			t.Fatalf("a Pending administrator (%s) got a reset email", pending.UserName)
		}

		session := e.mustLogin(t, "jdoe", goodPassword, "")
		for range admin.DefaultLockAfter {
			e.login("jdoe", "wrong password guess", "", "192.0.2.4")
		}
		// By email address, case-insensitively.
		if err := e.si.RequestPasswordReset(ctx, "acme", "JDOE@acme.example"); err != nil {
			t.Fatal(err)
		}
		token := resetToken(t, e)
		if err := e.si.ResetPassword(ctx, token, "short"); err == nil {
			t.Fatal("weak password accepted")
		} else {
			assertCode(t, err, admin.CodeWeakPassword)
		}
		if err := e.si.ResetPassword(ctx, token, "my new long password"); err != nil {
			t.Fatal(err)
		}
		_, _, err := e.si.Authenticate(ctx, session.Token)
		assertCode(t, err, admin.CodeInvalidSession)       // sessions ended
		e.mustLogin(t, "jdoe", "my new long password", "") // lockout cleared
		assertCode(t, e.si.ResetPassword(ctx, token, "yet another password"), admin.CodeInvalidToken)

		// Expiry, and a newer link replaces the older.
		e.si.RequestPasswordReset(ctx, "", "jdoe@acme") // the organization in the name
		first := resetToken(t, e)
		e.si.RequestPasswordReset(ctx, "acme", "jdoe")
		second := resetToken(t, e)
		assertCode(t, e.si.ResetPassword(ctx, first, "yet another password"), admin.CodeInvalidToken)
		e.clock.Add(admin.DefaultResetTTL)
		assertCode(t, e.si.ResetPassword(ctx, second, "yet another password"), admin.CodeInvalidToken)

		// At most ResetLimit emails per window.
		e.clock.Add(admin.DefaultResetWindow)
		for range admin.DefaultResetLimit + 3 {
			e.si.RequestPasswordReset(ctx, "acme", "jdoe")
		}
		if n, _ := s.PendingEmails(ctx); n != admin.DefaultResetLimit {
			t.Fatalf("%d reset emails queued, want %d", n, admin.DefaultResetLimit)
		}
	})
}

// resetToken claims the queued reset emails and returns the token of the
// last one.
func resetToken(t *testing.T, e *signInEnv) string {
	t.Helper()
	ms, err := e.s.ClaimEmails(context.Background(), time.Now().Add(time.Hour), time.Minute, 100)
	if err != nil || len(ms) == 0 {
		t.Fatalf("no reset email: %v", err)
	}
	m := ms[len(ms)-1]
	for _, m := range ms {
		e.s.MarkEmailSent(context.Background(), m.ID, time.Now())
	}
	if m.Recipient != "jdoe@acme.example" || !strings.Contains(m.Subject, "password") {
		t.Fatalf("email = %+v", m)
	}
	body, err := e.sealer.Open(m.Body, "outbox:"+m.ID)
	if err != nil {
		t.Fatalf("body does not open: %v", err)
	}
	_, after, ok := strings.Cut(body, "https://gatehouse.example/reset-password?token=")
	if !ok {
		t.Fatalf("no link in %q", body)
	}
	return strings.Fields(after)[0]
}

func TestNoSecretInAuditLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
		e := newSignInEnv(t, s)
		r := e.mustLogin(t, "jdoe", goodPassword, "")
		secret := e.enrolTOTP(t, r.Token)
		e.clock.Add(30 * time.Second)
		e.mustLogin(t, "jdoe", goodPassword, e.code(t, secret, e.clock.Now()))
		e.login("jdoe", "wrong password here", "", "192.0.2.1")
		if err := e.si.ResetTOTP(store.WithActor(ctx, store.Actor{Kind: store.ActorOperator}), e.org.ID, e.owner.ID); err != nil {
			t.Fatal(err)
		}
		es, _ := s.AuditLog(ctx, e.org.ID, store.AuditQuery{Limit: 1000})
		for _, en := range es {
			text := string(en.Before) + string(en.After)
			for _, bad := range []string{"argon2", "v1.", secret, goodPassword} {
				if strings.Contains(text, bad) {
					t.Errorf("audit %s shows %q: %s", en.Action, bad, text)
				}
			}
		}
		if auditCount(t, s, e.org.ID, store.AuditTOTPReset) != 1 || auditCount(t, s, e.org.ID, store.AuditTOTPEnrol) != 1 {
			t.Fatal("TOTP enrolment or reset not audited")
		}
		// After the reset, no code is asked.
		e.mustLogin(t, "jdoe", goodPassword, "")
		assertNotStored(t, s, secret, []byte(secret))
		assertCode(t, e.si.ResetTOTP(ctx, e.org.ID, "nope"), admin.CodeNotFound)
	})
}

func TestTamperedHashRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
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
