package admin_test

import (
	"context"
	"fmt"
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
