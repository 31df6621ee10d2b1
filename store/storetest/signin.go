package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"gatehouse/store"
)

// testSignIn covers credentials, invitations used for sign-in, sessions,
// login history and the login throttle.
func testSignIn(t *testing.T, s store.Store) {
	t.Run("Credentials", func(t *testing.T) { testCredentials(t, s) })
	t.Run("UseInvitation", func(t *testing.T) { testUseInvitation(t, s) })
	t.Run("RecordSignIn", func(t *testing.T) { testRecordSignIn(t, s) })
	t.Run("LoginLocation", func(t *testing.T) { testLoginLocation(t, s) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, s) })
	t.Run("LoginThrottle", func(t *testing.T) { testLoginThrottle(t, s) })
	t.Run("SignInSlots", func(t *testing.T) { testSignInSlots(t, s) })
	t.Run("SignInSlotsConcurrent", func(t *testing.T) { testSignInSlotsConcurrent(t, s) })
	t.Run("Prune", func(t *testing.T) { testPrune(t, s) })
}

// testPrune: expired sessions, old throttle windows and long-sent emails
// go; what a rule may still read stays.
func testPrune(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "prune")
	a := mustCreate(t, s, admin(o.ID, "pruned"))
	t0 := time.Now().UTC().Truncate(time.Second).Add(24 * time.Hour) // after every other case's rows
	signedIn(t, s, a, "short", t0)                                   // expires t0+1h
	if _, err := s.RecordSignIn(ctx, store.SignInAttempt{OrgID: o.ID, AdministratorID: a.ID, At: t0, Method: store.SignInPassword,
		Result: store.LoginSuccess, Session: &store.Session{Hash: []byte("long"), Stage: store.SessionActive, ExpiresAt: t0.Add(72 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	// One attempt locks a name for an hour: a second one in the window is
	// refused unless Prune removed the window.
	throttle := func(key string, at time.Time, want store.SlotVerdict) {
		t.Helper()
		v, _, err := s.TakeSignInSlot(ctx, store.SignInSlot{At: at, Name: key, LockAfter: 1, LockFor: time.Hour})
		if err != nil || v != want {
			t.Fatalf("TakeSignInSlot(%s) = %d, %v; want %d", key, v, err, want)
		}
	}
	throttle("name:prune-old", t0, store.SlotGranted)
	throttle("name:prune-new", t0.Add(47*time.Hour), store.SlotGranted)
	sent, err := s.EnqueueEmail(ctx, store.OutboxMessage{OrgID: o.ID, Recipient: "a@example.com", Subject: "s", Body: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkEmailSent(ctx, sent.ID, t0); err != nil {
		t.Fatal(err)
	}
	queued, err := s.EnqueueEmail(ctx, store.OutboxMessage{OrgID: o.ID, Recipient: "b@example.com", Subject: "s", Body: "b"})
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(48 * time.Hour)
	if _, err := s.Prune(ctx, at, 24*time.Hour, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, []byte("short"), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired session kept: %v", err)
	}
	throttle("name:prune-old", t0.Add(30*time.Minute), store.SlotGranted) // its window went
	throttle("name:prune-new", at.Add(-30*time.Minute), store.SlotLocked) // its window stayed
	if _, err := outboxEmail(t, s, sent.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("long-sent email kept: %v", err)
	}
	if _, err := outboxEmail(t, s, queued.ID); err != nil {
		t.Fatalf("unsent email pruned: %v", err)
	}
	if _, err := s.Session(ctx, []byte("long"), at); err != nil {
		t.Fatalf("unexpired session pruned: %v", err)
	}
}

func auditActions(t *testing.T, s store.Store, org, target string) []store.AuditEntry {
	t.Helper()
	es, err := s.AuditLog(ctx, org, store.AuditQuery{TargetID: target})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func hasAction(es []store.AuditEntry, action string) (store.AuditEntry, bool) {
	for _, e := range es {
		if e.Action == action {
			return e, true
		}
	}
	return store.AuditEntry{}, false
}

// signedIn records a successful sign-in of a with a new session whose
// hash is hash.
func signedIn(t *testing.T, s store.Store, a store.Administrator, hash string, at time.Time) store.Session {
	t.Helper()
	_, err := s.RecordSignIn(ctx, store.SignInAttempt{OrgID: a.OrgID, AdministratorID: a.ID, At: at, Method: store.SignInPassword,
		IP: "192.0.2.1", UserAgent: "test", Result: store.LoginSuccess,
		Session: &store.Session{Hash: []byte(hash), Stage: store.SessionActive, ExpiresAt: at.Add(time.Hour)}})
	if err != nil {
		t.Fatalf("RecordSignIn: %v", err)
	}
	ss, err := s.Session(ctx, []byte(hash), at)
	if err != nil {
		t.Fatalf("Session after sign-in: %v", err)
	}
	return ss
}

func testCredentials(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "creds")
	a := mustCreate(t, s, admin(o.ID, "jdoe"))
	c, err := s.Credentials(ctx, o.ID, a.ID)
	if err != nil || c.AdministratorID != a.ID || c.PasswordHash != "" || c.TOTPEnabled || c.TOTPLastStep != 0 {
		t.Fatalf("credentials of a new administrator = %+v, %v; want zero", c, err)
	}
	other, _ := newOrg(t, s, "creds-other")
	_, err = s.Credentials(ctx, other.ID, a.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UpdateCredentials(ctx, other.ID, a.ID, store.CredentialsChange{Update: func(*store.Credentials) error { return nil }})
	wantErr(t, err, store.ErrNotFound)

	const secretHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	// Two sessions; the change keeps one and moves its stage.
	keep := signedIn(t, s, a, "keep", time.Now())
	signedIn(t, s, a, "other", time.Now())
	up, err := s.UpdateCredentials(ctx, o.ID, a.ID, store.CredentialsChange{
		Action: store.AuditPasswordChange,
		Update: func(c *store.Credentials) error {
			c.PasswordHash, c.MustChangePassword = secretHash, true
			c.AdministratorID = "someone-else" // restored
			return nil
		},
		EndSessions: true, KeepSession: keep.Hash, KeepStage: store.SessionChangePassword,
	})
	if err != nil || up.PasswordHash != secretHash || !up.MustChangePassword || up.PasswordChangedAt == nil || up.AdministratorID != a.ID {
		t.Fatalf("UpdateCredentials = %+v, %v", up, err)
	}
	got, _ := s.Credentials(ctx, o.ID, a.ID)
	if got.PasswordHash != secretHash || !got.MustChangePassword || !got.PasswordChangedAt.Equal(*up.PasswordChangedAt) {
		t.Fatalf("read back %+v, want %+v", got, up)
	}
	if ss, err := s.Session(ctx, []byte("keep"), time.Now()); err != nil || ss.Stage != store.SessionChangePassword {
		t.Fatalf("kept session = %+v, %v", ss, err)
	}
	_, err = s.Session(ctx, []byte("other"), time.Now())
	wantErr(t, err, store.ErrNotFound)

	es := auditActions(t, s, o.ID, a.ID)
	e, ok := hasAction(es, store.AuditPasswordChange)
	if !ok {
		t.Fatalf("no %s entry in %+v", store.AuditPasswordChange, es)
	}
	if !strings.Contains(string(e.After), `"passwordSet":true`) || !strings.Contains(string(e.After), `"mustChangePassword":true`) {
		t.Fatalf("audit after = %s", e.After)
	}
	if _, ok := hasAction(es, store.AuditSessionsEnd); !ok {
		t.Fatalf("ending sessions is not audited: %+v", es)
	}
	for _, e := range es {
		if bytes.Contains(e.Before, []byte("argon2id")) || bytes.Contains(e.After, []byte("argon2id")) {
			t.Fatalf("audit entry %s shows the hash: %s %s", e.Action, e.Before, e.After)
		}
	}

	// A refusing fn writes nothing; a change that changes nothing is not
	// audited.
	boom := errors.New("boom")
	_, err = s.UpdateCredentials(ctx, o.ID, a.ID, store.CredentialsChange{Update: func(c *store.Credentials) error {
		c.PasswordHash = ""
		return boom
	}, EndSessions: true})
	wantErr(t, err, boom)
	if got, _ := s.Credentials(ctx, o.ID, a.ID); got.PasswordHash != secretHash {
		t.Fatal("a refused update wrote")
	}
	if _, err := s.Session(ctx, []byte("keep"), time.Now()); err != nil {
		t.Fatalf("a refused update ended sessions: %v", err)
	}
	n := len(auditActions(t, s, o.ID, a.ID))
	if _, err := s.UpdateCredentials(ctx, o.ID, a.ID, store.CredentialsChange{}); err != nil {
		t.Fatal(err)
	}
	if m := len(auditActions(t, s, o.ID, a.ID)); m != n {
		t.Fatalf("a change of nothing wrote %d audit entries", m-n)
	}
	// A new TOTP secret is audited without showing it.
	for _, secret := range []string{"v1.sealed-one", "v1.sealed-two"} {
		if _, err := s.UpdateCredentials(ctx, o.ID, a.ID, store.CredentialsChange{Action: store.AuditTOTPEnrol,
			Update: func(c *store.Credentials) error { c.TOTPSecret, c.TOTPEnabled = secret, true; return nil }}); err != nil {
			t.Fatal(err)
		}
	}
	es = auditActions(t, s, o.ID, a.ID)
	if es[0].Action != store.AuditTOTPEnrol || !strings.Contains(string(es[0].After), `"totpSecret":"replaced"`) ||
		strings.Contains(string(es[0].After), "sealed") {
		t.Fatalf("second enrolment audited as %s %s", es[0].Action, es[0].After)
	}
	// Credentials go with their administrator.
	if err := s.DeleteAdministrator(ctx, o.ID, a.ID, store.FlagMissingSuper, nil); err != nil {
		t.Fatal(err)
	}
	_, err = s.Credentials(ctx, o.ID, a.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Session(ctx, []byte("keep"), time.Now())
	wantErr(t, err, store.ErrNotFound)
}

func testUseInvitation(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "use-inv")
	now := time.Now()
	activate := func(a *store.Administrator, c *store.Credentials) error {
		a.Status = store.StatusActive
		a.UserName = "renamed" // only the status may change
		c.PasswordHash = "$argon2id$fake"
		return nil
	}
	// Wrong purpose, then a refusing fn: nothing is used.
	_, err := s.UseInvitation(ctx, []byte("hash-use-inv"), store.PurposePasswordReset, now, activate)
	wantErr(t, err, store.ErrNotFound)
	boom := errors.New("boom")
	_, err = s.UseInvitation(ctx, []byte("hash-use-inv"), store.PurposeActivation, now,
		func(*store.Administrator, *store.Credentials) error { return boom })
	wantErr(t, err, boom)
	if inv, _ := s.InvitationByHash(ctx, []byte("hash-use-inv")); inv.UsedAt != nil {
		t.Fatal("a refused use marked the invitation used")
	}
	// Expired at the time given.
	_, err = s.UseInvitation(ctx, []byte("hash-use-inv"), store.PurposeActivation, now.Add(2*time.Hour), activate)
	wantErr(t, err, store.ErrNotFound)

	signedIn(t, s, owner, "owner-session", now)
	a, err := s.UseInvitation(ctx, []byte("hash-use-inv"), store.PurposeActivation, now, activate)
	if err != nil || a.Status != store.StatusActive || a.UserName != "owner" || a.Version != owner.Version+2 {
		// +1 for the sign-in's last login, +1 for the activation
		t.Fatalf("UseInvitation = %+v, %v", a, err)
	}
	if got, _ := s.Administrator(ctx, o.ID, owner.ID); got.Status != store.StatusActive || got.Version != a.Version {
		t.Fatalf("administrator after use = %+v", got)
	}
	if c, _ := s.Credentials(ctx, o.ID, owner.ID); c.PasswordHash != "$argon2id$fake" || c.PasswordChangedAt == nil {
		t.Fatalf("credentials after use = %+v", c)
	}
	if inv, _ := s.InvitationByHash(ctx, []byte("hash-use-inv")); inv.UsedAt == nil {
		t.Fatal("invitation not marked used")
	}
	_, err = s.Session(ctx, []byte("owner-session"), now)
	wantErr(t, err, store.ErrNotFound) // a used invitation ends the sessions
	es := auditActions(t, s, o.ID, owner.ID)
	if e, ok := hasAction(es, store.AuditInvitationUse); !ok || strings.Contains(string(e.After), "argon2id") ||
		!strings.Contains(string(e.After), `"passwordSet":true`) {
		t.Fatalf("invitation.use entry missing or showing the hash: %+v", es)
	}
	if _, ok := hasAction(es, store.AuditAdministratorUpdate); !ok {
		t.Fatalf("status change not audited: %+v", es)
	}
	// Used: never again.
	_, err = s.UseInvitation(ctx, []byte("hash-use-inv"), store.PurposeActivation, now, activate)
	wantErr(t, err, store.ErrNotFound)

	// Concurrent uses of one invitation: exactly one wins.
	b := mustCreate(t, s, admin(o.ID, "racer"))
	if err := s.CreateInvitation(ctx, store.Invitation{Hash: []byte("race"), OrgID: o.ID, AdministratorID: b.ID,
		Purpose: store.PurposePasswordReset, ExpiresAt: now.Add(time.Hour)}, nil); err != nil {
		t.Fatal(err)
	}
	var wins, losses atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UseInvitation(ctx, []byte("race"), store.PurposePasswordReset, now, func(_ *store.Administrator, c *store.Credentials) error {
				c.TOTPLastStep++
				return nil
			})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, store.ErrNotFound):
				losses.Add(1)
			default:
				t.Errorf("concurrent use: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || losses.Load() != 7 {
		t.Fatalf("concurrent uses: %d won, %d lost; want 1 and 7", wins.Load(), losses.Load())
	}
	if c, _ := s.Credentials(ctx, o.ID, b.ID); c.TOTPLastStep != 1 {
		t.Fatalf("fn applied %d times", c.TOTPLastStep)
	}
}

func testRecordSignIn(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "record")
	a := mustCreate(t, s, admin(o.ID, "jdoe"))
	now := time.Now().UTC().Truncate(time.Second)
	fail := func(at time.Time, result string, lockedUntil *time.Time) {
		t.Helper()
		_, err := s.RecordSignIn(ctx, store.SignInAttempt{OrgID: o.ID, AdministratorID: a.ID, At: at, Method: store.SignInPassword,
			IP: "198.51.100.7", UserAgent: "agent\x00\xff" + strings.Repeat("x", 1000), Result: result, LockedUntil: lockedUntil})
		if err != nil {
			t.Fatalf("RecordSignIn(%s): %v", result, err)
		}
	}
	fail(now, store.LoginInvalidPassword, nil)
	fail(now, store.LoginPending, nil)
	fail(now, store.LoginInvalidTOTP, nil)
	if _, ok := hasAction(auditActions(t, s, o.ID, a.ID), store.AuditSignInLockout); ok {
		t.Fatal("a lockout entry without a lock")
	}
	until := now.Add(time.Minute)
	fail(now, store.LoginInvalidPassword, &until)
	es := auditActions(t, s, o.ID, a.ID)
	if e, ok := hasAction(es, store.AuditSignInLockout); !ok || !strings.Contains(string(e.After), "lockedUntil") {
		t.Fatalf("no lockout entry: %+v", es)
	}
	if e, ok := hasAction(es, store.AuditSignInFailure); !ok || !strings.Contains(string(e.After), "198.51.100.7") {
		t.Fatalf("no failure entry: %+v", es)
	}
	before, _ := s.Administrator(ctx, o.ID, a.ID)

	// After the lock: success with a TOTP step.
	at := now.Add(2 * time.Minute)
	success := func(hash string, step int64) error {
		_, err := s.RecordSignIn(ctx, store.SignInAttempt{OrgID: o.ID, AdministratorID: a.ID, At: at, Method: store.SignInPassword,
			IP: "198.51.100.7", Result: store.LoginSuccess, TOTPStep: step,
			Session: &store.Session{Hash: []byte(hash), Stage: store.SessionEnrolTOTP, ExpiresAt: at.Add(time.Hour)}})
		return err
	}
	if err := success("s1", 100); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Administrator(ctx, o.ID, a.ID)
	if after.LastLoginAt == nil || !after.LastLoginAt.Equal(at) || after.Version != before.Version+1 || !after.UpdatedAt.After(before.UpdatedAt) {
		t.Fatalf("administrator after sign-in = %+v (before %+v)", after, before)
	}
	c, _ := s.Credentials(ctx, o.ID, a.ID)
	if c.TOTPLastStep != 100 {
		t.Fatalf("credentials after success = %+v", c)
	}
	ss, err := s.Session(ctx, []byte("s1"), at)
	if err != nil || ss.Stage != store.SessionEnrolTOTP || ss.IP != "198.51.100.7" || !ss.CreatedAt.Equal(at) || ss.Method != store.SignInPassword {
		t.Fatalf("session = %+v, %v", ss, err)
	}
	// The same step again (a replayed code) writes nothing.
	for _, step := range []int64{100, 99} {
		wantErr(t, success("s2", step), store.ErrConflict)
	}
	_, err = s.Session(ctx, []byte("s2"), at)
	wantErr(t, err, store.ErrNotFound)
	if got, _ := s.Administrator(ctx, o.ID, a.ID); got.Version != after.Version {
		t.Fatal("a replayed step moved the version")
	}

	hist, err := s.LoginHistory(ctx, o.ID, a.ID, 0, 0)
	if err != nil || len(hist) != 5 {
		t.Fatalf("history = %+v, %v; want 5 events", hist, err)
	}
	wantResults := []string{store.LoginSuccess, store.LoginInvalidPassword, store.LoginInvalidTOTP, store.LoginPending, store.LoginInvalidPassword}
	for i, e := range hist {
		if e.Result != wantResults[i] || e.Method != store.SignInPassword || e.AdministratorID != a.ID {
			t.Fatalf("history[%d] = %+v, want result %s", i, e, wantResults[i])
		}
	}
	if ua := hist[1].UserAgent; len(ua) > 512 || strings.ContainsRune(ua, 0) || !strings.HasPrefix(ua, "agent") {
		t.Fatalf("user agent stored as %q", ua)
	}
	page, _ := s.LoginHistory(ctx, o.ID, a.ID, 2, hist[1].Seq)
	if len(page) != 2 || page[0].Seq != hist[2].Seq || page[1].Seq != hist[3].Seq {
		t.Fatalf("second page = %+v", page)
	}
	other, _ := newOrg(t, s, "record-other")
	if h, _ := s.LoginHistory(ctx, other.ID, a.ID, 10, 0); len(h) != 0 {
		t.Fatalf("history visible from another organization: %+v", h)
	}
	_, err = s.LoginHistory(ctx, o.ID, a.ID, 5000, 0)
	wantErr(t, err, store.ErrInvalidQuery)
	_, err = s.RecordSignIn(ctx, store.SignInAttempt{OrgID: other.ID, AdministratorID: a.ID, At: at, Method: "password", Result: store.LoginInvalidPassword})
	wantErr(t, err, store.ErrNotFound)
}

func testSessions(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "sessions")
	a := mustCreate(t, s, admin(o.ID, "jdoe"))
	t0 := time.Now().UTC().Truncate(time.Second)
	ss := signedIn(t, s, a, "one", t0)
	if !ss.ExpiresAt.Equal(t0.Add(time.Hour)) || !ss.LastSeenAt.Equal(t0) {
		t.Fatalf("session = %+v", ss)
	}
	// Expired at its expiry.
	_, err := s.Session(ctx, []byte("one"), t0.Add(time.Hour))
	wantErr(t, err, store.ErrNotFound)
	// A touch within the minute writes nothing; after it, it slides.
	if wrote, err := s.TouchSession(ctx, []byte("one"), t0.Add(30*time.Second), t0.Add(2*time.Hour)); err != nil || wrote {
		t.Fatalf("touch within a minute = %v, %v", wrote, err)
	}
	if wrote, err := s.TouchSession(ctx, []byte("one"), t0.Add(time.Minute), t0.Add(2*time.Hour)); err != nil || !wrote {
		t.Fatalf("touch after a minute = %v, %v", wrote, err)
	}
	if got, err := s.Session(ctx, []byte("one"), t0.Add(90*time.Minute)); err != nil || !got.LastSeenAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after touch = %+v, %v", got, err)
	}
	// An expired session is not revived by a touch.
	if wrote, _ := s.TouchSession(ctx, []byte("one"), t0.Add(3*time.Hour), t0.Add(4*time.Hour)); wrote {
		t.Fatal("an expired session was touched")
	}
	// A session's stage changes with the credentials (KeepStage), and
	// not at all when the session is gone.
	if _, err := s.UpdateCredentials(ctx, o.ID, a.ID, store.CredentialsChange{KeepSession: []byte("one"),
		KeepStage: store.SessionChangePassword}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Session(ctx, []byte("one"), t0); got.Stage != store.SessionChangePassword {
		t.Fatalf("stage = %q", got.Stage)
	}
	_, err = s.UpdateCredentials(ctx, o.ID, a.ID, store.CredentialsChange{KeepSession: []byte("nope"), KeepStage: store.SessionActive})
	wantErr(t, err, store.ErrNotFound)

	signedIn(t, s, a, "two", t0)
	signedIn(t, s, a, "three", t0)
	if err := s.DeleteSession(ctx, []byte("one")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.DeleteSession(ctx, []byte("one")), store.ErrNotFound)
	if _, ok := hasAction(auditActions(t, s, o.ID, a.ID), store.AuditSignOut); !ok {
		t.Fatal("logout not audited")
	}
	// Ending every session is scoped to the organization.
	other, _ := newOrg(t, s, "sessions-other")
	_, err = s.UpdateCredentials(ctx, other.ID, a.ID, store.CredentialsChange{EndSessions: true})
	wantErr(t, err, store.ErrNotFound)
	if _, err := s.Session(ctx, []byte("two"), t0); err != nil {
		t.Fatalf("a session ended from another organization: %v", err)
	}
	if _, err := s.UpdateCredentials(ctx, o.ID, a.ID, store.CredentialsChange{EndSessions: true}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"two", "three"} {
		_, err = s.Session(ctx, []byte(h), t0)
		wantErr(t, err, store.ErrNotFound)
	}
}

// testLoginThrottle: the attempts a key may make in a fixed window
// (RequestReset's Limit; TakeSignInSlot counts in the same way): the
// window lasts Window from its first attempt, keys are counted apart, and
// concurrent attempts are all counted.
func testLoginThrottle(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "throttle")
	a := mustCreate(t, s, admin(o.ID, "throttled"))
	t0 := time.Now().UTC().Truncate(time.Second)
	w := 15 * time.Minute
	var links atomic.Int32
	reset := func(key string, at time.Time) bool {
		t.Helper()
		inv := store.Invitation{Hash: fmt.Appendf(nil, "throttle-%d", links.Add(1)), OrgID: o.ID, AdministratorID: a.ID,
			Purpose: store.PurposePasswordReset, ExpiresAt: at.Add(time.Hour)}
		created, err := s.RequestReset(ctx, store.ResetRequest{Key: key, At: at, Window: w, Limit: 3, Invitation: &inv})
		if err != nil {
			t.Errorf("RequestReset(%s): %v", key, err)
		}
		return created
	}
	for i := 1; i <= 3; i++ {
		if !reset("reset:a", t0.Add(time.Duration(i)*time.Minute)) {
			t.Fatalf("request %d refused", i)
		}
	}
	// The window is fixed from its first request (t0+1m).
	if reset("reset:a", t0.Add(15*time.Minute)) {
		t.Fatal("a fourth request in the window created a link")
	}
	if !reset("reset:a", t0.Add(16*time.Minute)) {
		t.Fatal("the first request of a new window was refused")
	}
	if !reset("reset:other", t0.Add(2*time.Minute)) {
		t.Fatal("keys are not separate")
	}
	// Concurrent requests are all counted: exactly Limit create a link.
	var wg sync.WaitGroup
	var created atomic.Int32
	for range 20 {
		wg.Go(func() {
			if reset("reset:flood", t0) {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if n := created.Load(); n != 3 {
		t.Fatalf("20 concurrent requests created %d links, want 3", n)
	}
}

// testSignInSlots: the name's and the address's counts of attempts taken
// before their passwords are checked.
func testSignInSlots(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "slots")
	a := mustCreate(t, s, admin(o.ID, "jdoe"))
	t0 := time.Now().UTC().Truncate(time.Second)
	slot := func(at time.Time, name, addr string) store.SignInSlot {
		return store.SignInSlot{At: at, Name: name, LockAfter: 3, LockFor: 10 * time.Minute,
			Address: addr, AddressLimit: 4, AddressWindow: 15 * time.Minute}
	}
	take := func(sl store.SignInSlot, want store.SlotVerdict, wantN int) {
		t.Helper()
		v, n, err := s.TakeSignInSlot(ctx, sl)
		if err != nil || v != want || n != wantN {
			t.Fatalf("TakeSignInSlot(%s, %s at %v) = %d, %d, %v; want %d, %d", sl.Name, sl.Address, sl.At.Sub(t0), v, n, err, want, wantN)
		}
	}
	// Three attempts of a name, the third at t0+2m: locked until t0+12m.
	for i := 1; i <= 3; i++ {
		take(slot(t0.Add(time.Duration(i-1)*time.Minute), "name:a", "ip:1"), store.SlotGranted, i)
	}
	take(slot(t0.Add(11*time.Minute), "name:a", "ip:1"), store.SlotLocked, 0)
	hist, _ := s.LoginHistory(ctx, o.ID, a.ID, 0, 0)
	if len(hist) != 0 {
		t.Fatalf("history after a locked attempt = %+v, want none (a locked name writes nothing)", hist)
	}
	take(slot(t0.Add(12*time.Minute), "name:a", "ip:2"), store.SlotGranted, 1)
	// The address: four attempts (the locked one included), then refused
	// without counting the name.
	take(slot(t0.Add(12*time.Minute), "name:b", "ip:1"), store.SlotAddressLimited, 0)
	take(slot(t0.Add(12*time.Minute), "name:b", "ip:9"), store.SlotGranted, 1) // the refused one was not counted
	// A returned slot frees its address count; a success restarts the
	// name.
	sl := slot(t0.Add(12*time.Minute), "name:a", "ip:2")
	take(sl, store.SlotGranted, 2)
	sl.Number = 2
	// A success racing a later attempt does not restart the name.
	racer := slot(t0.Add(12*time.Minute), "name:a", "")
	take(racer, store.SlotGranted, 3)
	if err := s.ReturnSignInSlot(ctx, sl, true); err != nil {
		t.Fatal(err)
	}
	take(slot(t0.Add(12*time.Minute), "name:a", ""), store.SlotLocked, 0)
	// Given back, the racer's success restarts it.
	racer.Number = 3
	if err := s.ReturnSignInSlot(ctx, store.SignInSlot{At: racer.At, Name: "name:a"}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.ReturnSignInSlot(ctx, racer, true); err != nil {
		t.Fatal(err)
	}
	addressCount := func(addr string, at time.Time, want int) {
		t.Helper()
		// The address has AddressLimit-want attempts left.
		for i := want; i < 4; i++ {
			take(slot(at, fmt.Sprintf("name:%s-%d", addr, i), addr), store.SlotGranted, 1)
		}
		take(slot(at, "name:"+addr+"-over", addr), store.SlotAddressLimited, 0)
	}
	addressCount("ip:2", sl.At, 1) // the returned slot's attempt was given back
	take(slot(t0.Add(12*time.Minute), "name:a", ""), store.SlotGranted, 1)
	// A slot taken in an address window that has since started again
	// gives nothing back to the new one.
	old := slot(t0, "name:c", "ip:3")
	take(old, store.SlotGranted, 1)
	take(slot(t0.Add(20*time.Minute), "name:d", "ip:3"), store.SlotGranted, 1)
	if err := s.ReturnSignInSlot(ctx, old, false); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordNameFailure(ctx, "name:d"); err != nil {
		t.Fatal(err)
	}
	take(slot(t0.Add(20*time.Minute), "name:d", ""), store.SlotGranted, 2) // RecordNameFailure changed no count
	addressCount("ip:3", t0.Add(20*time.Minute), 1)                        // a stale return changed nothing in the new window
}

// testSignInSlotsConcurrent: however many attempts race, at most LockAfter
// of one name and AddressLimit of one address are granted.
func testSignInSlotsConcurrent(t *testing.T, s store.Store) {
	t0 := time.Now().UTC().Truncate(time.Second)
	var granted, locked, limited atomic.Int32
	perName := make([]atomic.Int32, 8)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := i % len(perName)
			v, _, err := s.TakeSignInSlot(ctx, store.SignInSlot{At: t0, Name: "race:" + string(rune('a'+name)), LockAfter: 3, LockFor: time.Hour,
				Address: "ip:race", AddressLimit: 20, AddressWindow: time.Hour})
			switch {
			case err != nil:
				t.Error(err)
			case v == store.SlotGranted:
				granted.Add(1)
				perName[name].Add(1)
			case v == store.SlotLocked:
				locked.Add(1)
			default:
				limited.Add(1)
			}
		}()
	}
	wg.Wait()
	// 8 names x 3 = 24 slots, but the address allows 20 attempts, locked
	// ones included.
	if granted.Load()+locked.Load() != 20 || limited.Load() != 20 || granted.Load() > 20 {
		t.Fatalf("40 racing attempts: %d granted, %d locked, %d address-limited; want 20 counted, 20 limited",
			granted.Load(), locked.Load(), limited.Load())
	}
	for i := range perName {
		if n := perName[i].Load(); n > 3 {
			t.Fatalf("name %d granted %d attempts, limit 3", i, n)
		}
	}
}

// testLoginLocation: the location given with a sign-in is stored with its
// history entry, names in every language, within its bounds; none stays
// none.
func testLoginLocation(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "location")
	a := mustCreate(t, s, admin(o.ID, "traveller"))
	at := time.Now().UTC().Truncate(time.Second)
	berlin := store.Location{CountryCode: "DE", Country: map[string]string{"en": "Germany", "ru": "Германия"},
		City: map[string]string{"en": "Berlin", "ru": "Берлин"}}
	long := store.Location{CountryCode: "XX" + strings.Repeat("Y", 100), Country: map[string]string{"en": strings.Repeat("é", 200) + "\x00\xff"}}
	for i, l := range []store.Location{{}, berlin, long} {
		l := l
		if _, err := s.RecordSignIn(ctx, store.SignInAttempt{OrgID: o.ID, AdministratorID: a.ID, At: at.Add(time.Duration(i) * time.Second),
			Method: store.SignInPassword, IP: "203.0.113.9", Result: store.LoginInvalidPassword, Location: l}); err != nil {
			t.Fatalf("RecordSignIn(%+v): %v", l, err)
		}
	}
	hist, err := s.LoginHistory(ctx, o.ID, a.ID, 0, 0)
	if err != nil || len(hist) != 3 {
		t.Fatalf("history = %+v, %v; want 3 events", hist, err)
	}
	if got := hist[2].Location; !got.IsZero() {
		t.Fatalf("a sign-in without a location has %+v", got)
	}
	if got := hist[1].Location; got.CountryCode != "DE" || got.CountryName("ru") != "Германия" || got.CityName("ru") != "Берлин" ||
		got.CountryName("en") != "Germany" || got.CityName("fr") != "Berlin" {
		t.Fatalf("location stored as %+v", got)
	}
	got := hist[0].Location
	if len(got.CountryCode) > 16 || len(got.CountryName("en")) > 128 || !utf8.ValidString(got.CountryName("en")) ||
		strings.ContainsRune(got.CountryName("en"), 0) {
		t.Fatalf("an oversized location stored as %+v", got)
	}
}
