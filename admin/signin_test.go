package admin_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"gatehouse/admin"
	"gatehouse/admin/outbox"
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
	e.si = &admin.SignIn{Store: s, Sealer: sealer, Mail: &outbox.Queue{Store: s, Sealer: sealer}, BaseURL: "https://gatehouse.example",
		Now: c.Now}
	e.orgs = &admin.Orgs{Store: s, BaseURL: "https://gatehouse.example", Now: c.Now}
	return e
}

// createOrg creates an organization with a Pending owner and returns the
// activation token.
func (e *signInEnv) createOrg(t *testing.T, slug, owner string) string {
	t.Helper()
	org, a, link, err := e.orgs.Create(storetest.Context(context.Background()), admin.OrgSpec{Slug: slug, Name: "Org " + slug,
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
	a, err := e.s.CreateAdministrator(storetest.Context(context.Background()), store.Administrator{OrgID: e.org.ID, UserName: username,
		Email: username + "@acme.example", GivenName: "Given", FamilyName: "Family", Role: store.RoleAdministrator, Status: status})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.si.SetPassword(storetest.Context(context.Background()), e.org.ID, a.ID, goodPassword, false); err != nil {
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

func TestNoSecretInAuditLog(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
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

// locator places every address of 203.0.113.0/24 in Berlin and records
// the addresses it was asked about.
type locator struct {
	mu    sync.Mutex
	asked []string
}

func (l *locator) Locate(ip string) store.Location {
	l.mu.Lock()
	l.asked = append(l.asked, ip)
	l.mu.Unlock()
	if !strings.HasPrefix(ip, "203.0.113.") {
		return store.Location{}
	}
	return store.Location{CountryCode: "DE", Country: map[string]string{"en": "Germany"}, City: map[string]string{"en": "Berlin"}}
}

// TestSignInLocation: every way of signing in (a password, right or
// wrong; SSO, admitted or refused) asks the Locator about its address and
// stores the answer with the history entry.
func TestSignInLocation(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
		e := newSignInEnv(t, s)
		loc := &locator{}
		e.si.Locator = loc
		if _, err := e.si.Login(ctx, admin.LoginRequest{OrgSlug: "acme", Username: "jdoe", Password: "wrong", IP: "203.0.113.1"}); err == nil {
			t.Fatal("a wrong password signed in")
		}
		if _, err := e.si.Login(ctx, admin.LoginRequest{OrgSlug: "acme", Username: "jdoe", Password: goodPassword, IP: "203.0.113.2"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.si.SSO(ctx, e.owner, store.SignInSAML, "203.0.113.3", "agent"); err != nil {
			t.Fatal(err)
		}
		gone := e.addAdmin(t, "gone", store.StatusDeactivated)
		if _, err := e.si.SSO(ctx, gone, store.SignInOIDC, "198.51.100.4", "agent"); err == nil {
			t.Fatal("a deactivated administrator signed in")
		}
		hist, err := s.LoginHistory(ctx, e.org.ID, e.owner.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hist {
			got = append(got, h.IP+" "+h.Location.CityName("en"))
		}
		if want := []string{"203.0.113.3 Berlin", "203.0.113.2 Berlin", "203.0.113.1 Berlin"}; !slices.Equal(got[:min(3, len(got))], want) {
			t.Errorf("owner's history %q, want %q first", got, want)
		}
		if hist, _ := s.LoginHistory(ctx, e.org.ID, gone.ID, 0, 0); len(hist) != 1 || !hist[0].Location.IsZero() || hist[0].Result != store.LoginDeactivated {
			t.Errorf("the refused SSO sign-in: %+v", hist)
		}
		if !slices.Contains(loc.asked, "198.51.100.4") {
			t.Errorf("the refused SSO sign-in was not placed: asked %q", loc.asked)
		}
	})
}
