package admin_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestTOTPLogin(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		e := newSignInEnv(t, s)
		r := e.mustLogin(t, "jdoe", goodPassword, "")
		en, err := e.si.BeginTOTP(ctx, r.Token)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.si.ConfirmTOTP(ctx, r.Token, en.Ticket, "12345")
		assertCode(t, err, admin.CodeInvalidTOTP)
		e.clock.Add(2 * time.Hour) // the offer expired
		_, err = e.si.ConfirmTOTP(ctx, r.Token, en.Ticket, e.code(t, en.Secret, e.clock.Now()))
		assertCode(t, err, admin.CodeInvalidSession) // and so did the session
		r = e.mustLogin(t, "jdoe", goodPassword, "")
		_, err = e.si.ConfirmTOTP(ctx, r.Token, en.Ticket, e.code(t, en.Secret, e.clock.Now()))
		assertCode(t, err, admin.CodeInvalidTOTP)

		secret := e.enrolTOTP(t, r.Token)
		_, err = e.si.BeginTOTP(ctx, r.Token)
		assertCode(t, err, admin.CodeTOTPAlreadyEnabled)
		confirmCode := e.code(t, secret, e.clock.Now())

		// Right password, no code: asked for one, nothing written but the
		// attempt's counts, given back.
		snap := storetest.TakeSnapshot(t, s)
		_, err = e.login("jdoe", goodPassword, "", "192.0.2.1")
		assertCode(t, err, admin.CodeTOTPRequired)
		for _, table := range []string{"login_history", "audit_log", "sessions", "credentials"} {
			if fmt.Sprint(storetest.TakeSnapshot(t, s)[table]) != fmt.Sprint(snap[table]) {
				t.Errorf("totp_required changed %s", table)
			}
		}
		// Wrong password with a code: the password's answer.
		_, err = e.login("jdoe", "wrong password here", confirmCode, "192.0.2.1")
		assertCode(t, err, admin.CodeInvalidCredentials)
		// The code that confirmed the enrolment is spent.
		_, err = e.login("jdoe", goodPassword, confirmCode, "192.0.2.1")
		assertCode(t, err, admin.CodeInvalidTOTP)
		for _, bad := range []string{"000000", "abcdef"} {
			_, err = e.login("jdoe", goodPassword, bad, "192.0.2.1")
			assertCode(t, err, admin.CodeInvalidTOTP)
		}
		// The fifth failure, a wrong code, locks like a wrong password.
		_, err = e.login("jdoe", goodPassword, "1234567", "192.0.2.1")
		assertCode(t, err, admin.CodeInvalidTOTP)
		_, err = e.login("jdoe", goodPassword, " "+e.code(t, secret, e.clock.Now().Add(30*time.Second)), "192.0.2.1")
		assertCode(t, err, admin.CodeAccountLocked)
		e.clock.Add(admin.DefaultLockFor)
		e.clock.Add(30 * time.Second)
		code := e.code(t, secret, e.clock.Now())
		e.mustLogin(t, "jdoe", goodPassword, code)
		// Replay of the code just used, within its validity: refused.
		_, err = e.login("jdoe", goodPassword, code, "192.0.2.1")
		assertCode(t, err, admin.CodeInvalidTOTP)
		// Skew: the previous step's code is accepted once if never used;
		// two steps back is not.
		e.clock.Add(60 * time.Second)
		_, err = e.login("jdoe", goodPassword, e.code(t, secret, e.clock.Now().Add(-60*time.Second)), "192.0.2.1")
		assertCode(t, err, admin.CodeInvalidTOTP)
		e.mustLogin(t, "jdoe", goodPassword, e.code(t, secret, e.clock.Now().Add(-30*time.Second)))
		// A later code (the phone's clock ahead) works, and then the
		// current one, older, is a replay.
		e.clock.Add(30 * time.Second)
		e.mustLogin(t, "jdoe", goodPassword, e.code(t, secret, e.clock.Now().Add(30*time.Second)))
		_, err = e.login("jdoe", goodPassword, e.code(t, secret, e.clock.Now()), "192.0.2.1")
		assertCode(t, err, admin.CodeInvalidTOTP)
	})
}

func TestRequiredTOTPEnrolmentStage(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		e := newSignInEnv(t, s)
		if _, err := s.UpdateOrg(ctx, e.org.ID, func(o *store.Org) error { o.RequireTOTP = true; return nil }); err != nil {
			t.Fatal(err)
		}
		other := e.mustLogin(t, "jdoe", goodPassword, "")
		r := e.mustLogin(t, "jdoe", goodPassword, "")
		if r.Stage != store.SessionEnrolTOTP {
			t.Fatalf("stage = %s, want %s", r.Stage, store.SessionEnrolTOTP)
		}
		_, _, err := e.si.Authenticate(ctx, r.Token)
		assertCode(t, err, admin.CodeTOTPEnrolmentRequired)
		_, err = e.si.ChangePassword(ctx, r.Token, goodPassword, "some other password")
		assertCode(t, err, admin.CodeTOTPEnrolmentRequired)
		e.enrolTOTP(t, r.Token)
		if _, _, err := e.si.Authenticate(ctx, r.Token); err != nil {
			t.Fatalf("after enrolment: %v", err)
		}
		_, _, err = e.si.Authenticate(ctx, other.Token)
		assertCode(t, err, admin.CodeInvalidSession)

		// Must change password and TOTP required: change first, then enrol.
		b := e.addAdmin(t, "bob", store.StatusActive)
		if err := e.si.SetPassword(ctx, e.org.ID, b.ID, "temporary password", true); err != nil {
			t.Fatal(err)
		}
		r = e.mustLogin(t, "bob", "temporary password", "")
		if r.Stage != store.SessionChangePassword {
			t.Fatalf("stage = %s", r.Stage)
		}
		ss, err := e.si.ChangePassword(ctx, r.Token, "temporary password", "bob's own password")
		if err != nil || ss.Stage != store.SessionEnrolTOTP {
			t.Fatalf("ChangePassword = %+v, %v", ss, err)
		}
		e.enrolTOTP(t, r.Token)
		if ss, _, err := e.si.Authenticate(ctx, r.Token); err != nil || ss.Stage != store.SessionActive {
			t.Fatalf("after enrolment: %+v, %v", ss, err)
		}
	})
}

// TestReplaceTOTP: a signed-in administrator moves the second factor to a
// new app only with a code of the app in use. A wrong new code writes
// nothing; a wrong or replayed current code is refused and counts toward
// the lockout; success makes the new app the factor, ends the other
// sessions and is audited.
func TestReplaceTOTP(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		e := newSignInEnv(t, s)
		r := e.mustLogin(t, "jdoe", goodPassword, "")
		_, err := e.si.BeginTOTPReplacement(ctx, r.Token)
		assertCode(t, err, admin.CodeTOTPNotEnabled)
		old := e.enrolTOTP(t, r.Token)
		e.clock.Add(30 * time.Second)
		other := e.mustLogin(t, "jdoe", goodPassword, e.code(t, old, e.clock.Now()))
		usedAtSignIn := e.code(t, old, e.clock.Now())

		en, err := e.si.BeginTOTPReplacement(ctx, r.Token)
		if err != nil {
			t.Fatal(err)
		}
		snap := storetest.TakeSnapshot(t, s)
		_, err = e.si.ReplaceTOTP(ctx, r.Token, usedAtSignIn, en.Ticket, "000000")
		assertCode(t, err, admin.CodeInvalidTOTP)
		storetest.AssertUnchanged(t, s, snap)
		// The current code a sign-in just used is a replay.
		_, err = e.si.ReplaceTOTP(ctx, r.Token, usedAtSignIn, en.Ticket, e.code(t, en.Secret, e.clock.Now()))
		assertCode(t, err, admin.CodeInvalidCurrentTOTP)
		// A stolen session guessing codes locks the account like the form.
		for range admin.DefaultLockAfter - 1 {
			_, err = e.si.ReplaceTOTP(ctx, r.Token, "123456", en.Ticket, e.code(t, en.Secret, e.clock.Now()))
			assertCode(t, err, admin.CodeInvalidCurrentTOTP)
		}
		_, err = e.si.ReplaceTOTP(ctx, r.Token, e.code(t, old, e.clock.Now().Add(30*time.Second)), en.Ticket, e.code(t, en.Secret, e.clock.Now()))
		assertCode(t, err, admin.CodeAccountLocked)
		if auditCount(t, s, e.org.ID, store.AuditTOTPReplace) != 0 {
			t.Fatal("a refused replacement was audited")
		}

		e.clock.Add(admin.DefaultLockFor + 30*time.Second)
		r = e.mustLogin(t, "jdoe", goodPassword, e.code(t, old, e.clock.Now()))
		e.clock.Add(30 * time.Second)
		en, err = e.si.BeginTOTPReplacement(ctx, r.Token)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.si.ReplaceTOTP(ctx, r.Token, e.code(t, old, e.clock.Now()), en.Ticket, e.code(t, en.Secret, e.clock.Now())); err != nil {
			t.Fatalf("ReplaceTOTP: %v", err)
		}
		if auditCount(t, s, e.org.ID, store.AuditTOTPReplace) != 1 {
			t.Fatal("the replacement is not audited")
		}
		if _, _, err := e.si.Authenticate(ctx, r.Token); err != nil {
			t.Fatalf("the replacing session ended: %v", err)
		}
		_, _, err = e.si.Authenticate(ctx, other.Token)
		assertCode(t, err, admin.CodeInvalidSession)
		e.clock.Add(30 * time.Second)
		_, err = e.login("jdoe", goodPassword, e.code(t, old, e.clock.Now()), "192.0.2.1")
		assertCode(t, err, admin.CodeInvalidTOTP)
		e.mustLogin(t, "jdoe", goodPassword, e.code(t, en.Secret, e.clock.Now()))
	})
}

// TestReplaceTOTPGuessesInParallel: 40 parallel guesses of the current
// code from one stolen session get no more checks than the lockout
// allows.
func TestReplaceTOTPGuessesInParallel(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		e := newSignInEnv(t, s)
		r := e.mustLogin(t, "jdoe", goodPassword, "")
		e.enrolTOTP(t, r.Token)
		en, err := e.si.BeginTOTPReplacement(ctx, r.Token)
		if err != nil {
			t.Fatal(err)
		}
		newCode := e.code(t, en.Secret, e.clock.Now())
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[string]int{}
		for i := range 40 {
			wg.Go(func() {
				_, err := e.si.ReplaceTOTP(ctx, r.Token, fmt.Sprintf("%06d", i), en.Ticket, newCode)
				mu.Lock()
				codes[codeOf(err)]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if codes[admin.CodeInvalidCurrentTOTP] > admin.DefaultLockAfter || codes["ok"] != 0 ||
			codes[admin.CodeInvalidCurrentTOTP]+codes[admin.CodeAccountLocked] != 40 {
			t.Fatalf("40 parallel guesses: %v (at most %d may be checked)", codes, admin.DefaultLockAfter)
		}
	})
}

// codeOf is err's refusal code, "ok" for nil, else the error's text.
func codeOf(err error) string {
	if ae := (*admin.Error)(nil); errors.As(err, &ae) {
		return ae.Code
	} else if err != nil {
		return err.Error()
	}
	return "ok"
}
