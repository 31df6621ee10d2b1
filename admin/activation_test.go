package admin_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestActivation(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
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
				mu.Lock()
				results[codeOf(err)]++
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
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
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
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
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

// TestActivateAndSignIn: the console's activation opens an active
// session recorded as a password sign-in; in an organization that
// requires SSO it activates but opens none.
func TestActivateAndSignIn(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		e := newPendingEnv(t, s, "acme")
		token := e.createOrg(t, "acme", "jdoe")
		act, err := e.si.ActivateAndSignIn(ctx, token, goodPassword, "", "", "192.0.2.7", "test agent")
		if err != nil || act.SSORequired || act.Session.Token == "" || act.Administrator.Status != store.StatusActive {
			t.Fatalf("ActivateAndSignIn = %+v, %v", act, err)
		}
		ss, a, err := e.si.Authenticate(ctx, act.Session.Token)
		if err != nil || a.ID != act.Administrator.ID || ss.Stage != store.SessionActive {
			t.Fatalf("the session: %+v %+v %v", ss, a, err)
		}
		hist, err := s.LoginHistory(ctx, a.OrgID, a.ID, 10, 0)
		if err != nil || len(hist) != 1 || hist[0].Result != store.LoginSuccess || hist[0].Method != store.SignInPassword || hist[0].IP != "192.0.2.7" {
			t.Fatalf("login history = %+v, %v", hist, err)
		}

		sso := e.createOrg(t, "ssoonly", "sam")
		org, err := s.OrgBySlug(ctx, "ssoonly")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateOrg(ctx, org.ID, func(o *store.Org) error { o.RequireSSO = true; return nil }); err != nil {
			t.Fatal(err)
		}
		act, err = e.si.ActivateAndSignIn(ctx, sso, goodPassword, "", "", "192.0.2.7", "test agent")
		if err != nil || !act.SSORequired || act.Session.Token != "" || act.Administrator.Status != store.StatusActive {
			t.Fatalf("ActivateAndSignIn with SSO required = %+v, %v", act, err)
		}
		if hist, _ := s.LoginHistory(ctx, org.ID, act.Administrator.ID, 10, 0); len(hist) != 0 {
			t.Fatalf("a session was recorded: %+v", hist)
		}
	})
}
