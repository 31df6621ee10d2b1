package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gatehouse/store"
)

// oidcFlow is an organization, an active administrator, a client with a
// back-channel logout URI and one without.
func oidcFlow(t *testing.T, s store.Store, slug string) (store.Org, store.Administrator) {
	t.Helper()
	o, _ := newOrg(t, s, slug)
	a := mustCreate(t, s, admin(o.ID, "bob"))
	for _, c := range []store.OIDCClient{
		{ID: slug + "-app", Name: "App", SecretHash: []byte("h"), RedirectURIs: store.Strings{"https://app.example/cb"},
			BackchannelLogoutURI: "https://app.example/bcl", AllOrgs: true},
		{ID: slug + "-quiet", Name: "Quiet", SecretHash: []byte("h"), RedirectURIs: store.Strings{"https://quiet.example/cb"}, AllOrgs: true},
	} {
		if _, err := s.CreateOIDCClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return o, a
}

// signedInCode walks an authorization request to a code and uses it.
func signedInCode(t *testing.T, s store.Store, id, client string, a store.Administrator, sid string, now time.Time) store.OIDCAuthRequest {
	t.Helper()
	if err := s.CreateOIDCAuthRequest(ctx, store.OIDCAuthRequest{ID: id, ClientID: client, Params: `{}`, ExpiresAt: now.Add(10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOIDCAuthCode(ctx, id, []byte("code-"+id), now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a code before the sign-in: %v", err)
	}
	if err := s.SignInOIDCAuthRequest(ctx, id, a.OrgID, a.ID, sid, now, []string{"pwd"}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOIDCAuthCode(ctx, id, []byte("code-"+id), now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOIDCAuthCode(ctx, id, []byte("again-"+id), now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a second code: %v", err)
	}
	r, err := s.UseOIDCAuthCode(ctx, []byte("code-"+id), now)
	if err != nil || r.AdministratorID != a.ID || r.SID != sid || len(r.AMR) != 1 {
		t.Fatalf("use code: %+v %v", r, err)
	}
	return r
}

func grantOf(r store.OIDCAuthRequest, now time.Time) store.OIDCGrant {
	return store.OIDCGrant{ID: r.ID, ClientID: r.ClientID, OrgID: r.OrgID, AdministratorID: r.AdministratorID, SID: r.SID,
		Scopes: store.Strings{"openid"}, AuthTime: now, AMR: r.AMR, ExpiresAt: now.Add(time.Hour)}
}

// testOIDCFlow: a code is used once, and a second use revokes its grant;
// a refresh token is exchanged once, and a second exchange revokes the
// family; of concurrent uses exactly one wins.
func testOIDCFlow(t *testing.T, s store.Store) {
	_, bob := oidcFlow(t, s, "flow")
	if c, err := s.OIDCClientCredentials(ctx, "flow-app"); err != nil || string(c.SecretHash) != "h" || c.Public || c.Disabled {
		t.Fatalf("client credentials: %+v %v", c, err)
	}
	if _, err := s.OIDCClientCredentials(ctx, "no-such-client"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown client's credentials: %v", err)
	}
	now := time.Now()
	r := signedInCode(t, s, "req-1", "flow-app", bob, "sid-1", now)
	g := grantOf(r, now)
	if err := s.IssueOIDCTokens(ctx, g, "", 0, []store.OIDCToken{{ID: "at-1", Kind: store.OIDCAccessToken, ExpiresAt: now.Add(time.Minute)},
		{ID: "rt-1", Kind: store.OIDCRefreshToken, ExpiresAt: now.Add(time.Hour)}}, now); err != nil {
		t.Fatal(err)
	}
	tok, grant, err := s.OIDCToken(ctx, "at-1")
	if err != nil || tok.GrantID != "req-1" || !grant.Live(now) || grant.AdministratorID != bob.ID {
		t.Fatalf("token %+v grant %+v %v", tok, grant, err)
	}

	// Refresh: exchanged once; concurrently, one exchange wins.
	const racers = 8
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			errs[i] = s.IssueOIDCTokens(ctx, g, "rt-1", 0, []store.OIDCToken{{ID: fmt.Sprintf("rt-2-%d", i), Kind: store.OIDCRefreshToken,
				ExpiresAt: now.Add(time.Hour)}}, now)
		})
	}
	wg.Wait()
	// The first loser finds the token used and revokes the family; the
	// later ones find the grant ended.
	won, reused := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, store.ErrReused):
			reused++
		case !errors.Is(err, store.ErrNotFound):
			t.Fatalf("concurrent refresh: %v", err)
		}
	}
	if won != 1 || reused == 0 {
		t.Fatalf("concurrent refresh: %d won, %d reused", won, reused)
	}
	if _, grant, _ := s.OIDCToken(ctx, "at-1"); grant.RevokedAt == nil {
		t.Fatal("a refresh token exchanged twice left its grant live")
	}
	if err := s.IssueOIDCTokens(ctx, g, "rt-1", 0, nil, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a revoked grant refreshed: %v", err)
	}

	// A code used concurrently: one use wins; the others revoke the grant
	// it gave.
	r2 := store.OIDCAuthRequest{ID: "req-2", ClientID: "flow-app", Params: `{}`, ExpiresAt: now.Add(10 * time.Minute)}
	if err := s.CreateOIDCAuthRequest(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if err := s.SignInOIDCAuthRequest(ctx, "req-2", bob.OrgID, bob.ID, "sid-2", now, nil, now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOIDCAuthCode(ctx, "req-2", []byte("code-2"), now); err != nil {
		t.Fatal(err)
	}
	used := make([]error, racers)
	for i := range racers {
		wg.Go(func() { _, used[i] = s.UseOIDCAuthCode(ctx, []byte("code-2"), now) })
	}
	wg.Wait()
	won = 0
	for _, err := range used {
		if err == nil {
			won++
		} else if !errors.Is(err, store.ErrReused) {
			t.Fatalf("concurrent code use: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("a code used %d times", won)
	}
	r2, _ = s.OIDCAuthRequest(ctx, "req-2", now)
	if err := s.IssueOIDCTokens(ctx, grantOf(r2, now), "", 0, []store.OIDCToken{{ID: "at-2", Kind: store.OIDCAccessToken, ExpiresAt: now.Add(time.Minute)}}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseOIDCAuthCode(ctx, []byte("code-2"), now); !errors.Is(err, store.ErrReused) {
		t.Fatalf("replayed code: %v", err)
	}
	if _, grant, _ := s.OIDCToken(ctx, "at-2"); grant.RevokedAt == nil {
		t.Fatal("a replayed code left the grant it gave live")
	}
	if _, err := s.UseOIDCAuthCode(ctx, []byte("code-2"), now.Add(11*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired code: %v", err)
	}
}

// testOIDCDeprovision: deactivating or deleting an administrator revokes
// their grants and owes each client with a back-channel logout URI one
// logout per session; ending a session does the same for that session;
// logouts are claimed by one claimer at a time.
func testOIDCDeprovision(t *testing.T, s store.Store) {
	o, bob := oidcFlow(t, s, "dep")
	now := time.Now()
	var grants []store.OIDCGrant
	for i, c := range []struct{ client, sid string }{{"dep-app", "s1"}, {"dep-app", "s1"}, {"dep-app", "s2"}, {"dep-quiet", "s1"}} {
		r := signedInCode(t, s, fmt.Sprintf("dep-%d", i), c.client, bob, c.sid, now)
		g := grantOf(r, now)
		if err := s.IssueOIDCTokens(ctx, g, "", 0, []store.OIDCToken{{ID: fmt.Sprintf("dep-at-%d", i), Kind: store.OIDCAccessToken,
			ExpiresAt: now.Add(time.Minute)}}, now); err != nil {
			t.Fatal(err)
		}
		grants = append(grants, g)
	}
	// Ending session s2 ends only its grant.
	if err := s.EndOIDCSession(ctx, "s2", "", now); err != nil {
		t.Fatal(err)
	}
	ls, err := s.ClaimOIDCLogouts(ctx, time.Now(), time.Minute, 10)
	if err != nil || len(ls) != 1 || ls[0].SID != "s2" || ls[0].ClientID != "dep-app" || ls[0].AdministratorID != bob.ID {
		t.Fatalf("logouts after ending s2: %+v %v", ls, err)
	}
	if again, _ := s.ClaimOIDCLogouts(ctx, time.Now(), time.Minute, 10); len(again) != 0 {
		t.Fatalf("a claimed logout claimed again: %+v", again)
	}
	if err := s.MarkOIDCLogoutSent(ctx, ls[0].ID, now); err != nil {
		t.Fatal(err)
	}
	if _, g, _ := s.OIDCToken(ctx, "dep-at-0"); g.RevokedAt != nil {
		t.Fatal("ending s2 revoked a grant of s1")
	}

	// Deactivation: the remaining grants end; dep-app is owed one logout
	// for s1 (two grants, one session), dep-quiet none (no URI).
	if _, err := s.UpdateAdministrator(ctx, o.ID, bob.ID, store.KeepSuper, func(a *store.Administrator) error {
		a.Status = store.StatusDeactivated
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range grants {
		if _, g, _ := s.OIDCToken(ctx, fmt.Sprintf("dep-at-%d", i)); g.RevokedAt == nil {
			t.Fatalf("grant %d live after the deactivation", i)
		}
	}
	// Concurrent claimers: the logout goes to one.
	var wg sync.WaitGroup
	got := make([][]store.OIDCLogout, 6)
	for i := range got {
		wg.Go(func() {
			var err error
			got[i], err = s.ClaimOIDCLogouts(ctx, time.Now(), time.Minute, 10)
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var all []store.OIDCLogout
	for _, g := range got {
		all = append(all, g...)
	}
	if len(all) != 1 || all[0].SID != "s1" || all[0].ClientID != "dep-app" {
		t.Fatalf("logouts after the deactivation: %+v", all)
	}
	// A failed delivery comes back when due.
	if err := s.MarkOIDCLogoutFailed(ctx, all[0].ID, "connection refused", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	retry, _ := s.ClaimOIDCLogouts(ctx, time.Now(), time.Minute, 10)
	if len(retry) != 1 || retry[0].Attempts != 1 || retry[0].LastError != "connection refused" {
		t.Fatalf("retry: %+v", retry)
	}

	// Deletion of another administrator with a live grant: logout owed,
	// grant gone with the administrator.
	carol := mustCreate(t, s, admin(o.ID, "carol"))
	r := signedInCode(t, s, "dep-carol", "dep-app", carol, "s9", now)
	if err := s.IssueOIDCTokens(ctx, grantOf(r, now), "", 0, []store.OIDCToken{{ID: "dep-at-carol", Kind: store.OIDCAccessToken,
		ExpiresAt: now.Add(time.Minute)}}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAdministrator(ctx, o.ID, carol.ID, store.KeepSuper, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.OIDCToken(ctx, "dep-at-carol"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted administrator's token: %v", err)
	}
	ls, _ = s.ClaimOIDCLogouts(ctx, time.Now(), time.Minute, 10)
	if len(ls) != 1 || ls[0].AdministratorID != carol.ID || ls[0].SID != "s9" {
		t.Fatalf("logouts after the deletion: %+v", ls)
	}
}

// testOIDCRefreshGrace: within the grace a refresh token exchanged again
// gives tokens of its grant and revokes nothing; after it, a reuse
// revokes the grant.
func testOIDCRefreshGrace(t *testing.T, s store.Store) {
	_, bob := oidcFlow(t, s, "grace")
	now := time.Now()
	r := signedInCode(t, s, "grace-1", "grace-app", bob, "sid-g", now)
	g := grantOf(r, now)
	refresh := func(exchanged, id string, at time.Time) error {
		return s.IssueOIDCTokens(ctx, g, exchanged, 5*time.Second, []store.OIDCToken{{ID: id, Kind: store.OIDCRefreshToken,
			ExpiresAt: now.Add(time.Hour)}}, at)
	}
	if err := s.IssueOIDCTokens(ctx, g, "", 0, []store.OIDCToken{{ID: "g-rt-0", Kind: store.OIDCRefreshToken, ExpiresAt: now.Add(time.Hour)}}, now); err != nil {
		t.Fatal(err)
	}
	if err := refresh("g-rt-0", "g-rt-1", now); err != nil {
		t.Fatal(err)
	}
	if err := refresh("g-rt-0", "g-rt-2", now.Add(4*time.Second)); err != nil {
		t.Fatalf("a reuse within the grace: %v", err)
	}
	if _, grant, _ := s.OIDCToken(ctx, "g-rt-2"); !grant.Live(now) {
		t.Fatal("a reuse within the grace revoked the grant")
	}
	if err := refresh("g-rt-0", "g-rt-3", now.Add(6*time.Second)); !errors.Is(err, store.ErrReused) {
		t.Fatalf("a reuse after the grace: %v", err)
	}
	if _, grant, _ := s.OIDCToken(ctx, "g-rt-1"); grant.RevokedAt == nil {
		t.Fatal("a reuse after the grace left the grant live")
	}
}

// testOIDCIntrospection: one read gives the client's credentials, and the
// token with its grant, administrator and proved address only when the
// grant is the client's.
func testOIDCIntrospection(t *testing.T, s store.Store) {
	o, owner := oidcFlow(t, s, "intro")
	now := time.Now()
	// The owner proves their address by using their activation link.
	owner, err := s.UseInvitation(ctx, []byte("hash-intro"), store.PurposeActivation, now,
		func(a *store.Administrator, c *store.Credentials) error { a.Status = store.StatusActive; return nil })
	if err != nil {
		t.Fatal(err)
	}
	r := signedInCode(t, s, "intro-req", "intro-app", owner, "intro-sid", now)
	g := grantOf(r, now)
	g.AMR = store.Strings{"pwd", "otp"}
	if err := s.IssueOIDCTokens(ctx, g, "", 0, []store.OIDCToken{{ID: "intro-at", Kind: store.OIDCAccessToken, ExpiresAt: now.Add(time.Minute)},
		{ID: "intro-rt", Kind: store.OIDCRefreshToken, ExpiresAt: now.Add(time.Hour)}}, now); err != nil {
		t.Fatal(err)
	}
	in, err := s.OIDCIntrospection(ctx, "intro-app", "intro-at")
	if err != nil || !in.Found || string(in.Client.SecretHash) != "h" || in.Client.Public || in.Client.Disabled {
		t.Fatalf("introspection: %+v %v", in, err)
	}
	if in.Token.Kind != store.OIDCAccessToken || !in.Token.ExpiresAt.Equal(now.Add(time.Minute).Truncate(time.Microsecond)) ||
		in.Grant.ID != "intro-req" || in.Grant.ClientID != "intro-app" || in.Grant.OrgID != o.ID || in.Grant.SID != "intro-sid" ||
		!in.Grant.Live(now) || fmt.Sprint(in.Grant.Scopes, in.Grant.AMR) != "[openid] [pwd otp]" {
		t.Fatalf("introspection's token and grant: %+v %+v", in.Token, in.Grant)
	}
	a := in.Administrator
	if a.ID != owner.ID || a.OrgID != o.ID || a.UserName != "owner" || a.GivenName != "Olive" || a.FamilyName != "Owner" ||
		a.Email != "owner@intro.example" || a.Role != store.RoleSuperAdministrator || a.Status != store.StatusActive ||
		in.VerifiedEmail != "owner@intro.example" {
		t.Fatalf("introspection's administrator: %+v, verified %q", a, in.VerifiedEmail)
	}
	if in, err := s.OIDCIntrospection(ctx, "intro-app", "intro-rt"); err != nil || !in.Found || in.Token.Kind != store.OIDCRefreshToken {
		t.Fatalf("a refresh token: %+v %v", in, err)
	}
	// Another client's token, an unknown token: the credentials alone.
	for _, c := range [][2]string{{"intro-quiet", "intro-at"}, {"intro-app", "no-such-token"}} {
		in, err := s.OIDCIntrospection(ctx, c[0], c[1])
		if err != nil || in.Found || string(in.Client.SecretHash) != "h" || in.Grant.ID != "" || in.Administrator.ID != "" {
			t.Fatalf("introspection %v: %+v %v", c, in, err)
		}
	}
	if _, err := s.OIDCIntrospection(ctx, "no-such-client", "intro-at"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unknown client: %v", err)
	}
	// Revoked: the grant says so.
	if err := s.RevokeOIDCGrant(ctx, "intro-req", now); err != nil {
		t.Fatal(err)
	}
	if in, err := s.OIDCIntrospection(ctx, "intro-app", "intro-at"); err != nil || !in.Found || in.Grant.Live(now) {
		t.Fatalf("a revoked grant's token: %+v %v", in, err)
	}
}
