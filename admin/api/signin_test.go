package api

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// outbox returns the bodies of the queued emails to one recipient.
func (e *env) outbox(to string) []string {
	e.t.Helper()
	msgs, err := e.s.ClaimEmails(context.Background(), time.Now().Add(time.Minute), time.Millisecond, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		if m.Recipient != to {
			continue
		}
		body, err := e.sealer.Open(m.Body, "outbox:"+m.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, body)
	}
	return out
}

var tokenInLink = regexp.MustCompile(`/activate\?token=([A-Za-z0-9_-]+)`)

func TestSignInFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		_, a := e.do("POST", "/api/v1/administrators", e.adminKey, invite)
		id := a["id"].(string)
		mails := e.outbox("jane@acme.test")
		if len(mails) != 1 || !strings.Contains(mails[0], "JDoe") {
			t.Fatalf("invitation emails: %q", mails)
		}
		m := tokenInLink.FindStringSubmatch(mails[0])
		if m == nil {
			t.Fatalf("no activation link in %q", mails[0])
		}
		token := m[1]
		// The link is stored only as a hash.
		for table, rows := range storetest.Dump(t, e.s) {
			for _, row := range rows {
				for _, v := range row {
					if b, ok := v.([]byte); ok && strings.Contains(string(b), token) || v == token {
						t.Fatalf("the activation secret is stored in %s", table)
					}
				}
			}
		}

		st, info, _ := e.send("GET", "/api/v1/activation?token="+token, "", "", nil)
		if st != 200 || info["username"] != "JDoe" || info["totpRequired"] != false {
			t.Fatalf("activation info = %d %v", st, info)
		}
		e.refused("POST", "/api/v1/activation", "", `{"token":"`+token+`","password":"short"}`, 400, admin.CodeWeakPassword)
		const password = "correct horse battery staple"
		st, act, _ := e.send("POST", "/api/v1/activation", "", `{"token":"`+token+`","password":"`+password+`"}`, nil)
		if st != 200 || act["status"] != "Active" {
			t.Fatalf("activate = %d %v", st, act)
		}
		e.refused("POST", "/api/v1/activation", "", `{"token":"`+token+`","password":"`+password+`"}`, 400, admin.CodeInvalidToken)

		// Usernames are exact, and sign-in names its organization. (A
		// failed sign-in is recorded: it counts toward the limits.)
		for _, body := range []string{`{"organization":"acme","username":"jdoe"`, `{"username":"JDoe"`, `{"username":"jdoe@acme"`} {
			if st, out, ck := e.send("POST", "/api/v1/session", "", body+`,"password":"`+password+`"}`, nil); st != 401 ||
				out["code"] != admin.CodeInvalidCredentials || len(ck) != 0 {
				t.Fatalf("%s = %d %v %v", body, st, out, ck)
			}
		}
		ua := map[string]string{"User-Agent": "TestBrowser/1.0"}
		st, in, cookies := e.send("POST", "/api/v1/session", "", `{"username":"JDoe@acme","password":"`+password+`"}`, ua)
		if st != 200 || in["stage"] != "active" || len(cookies) != 1 {
			t.Fatalf("sign in = %d %v %v", st, in, cookies)
		}
		ck := cookies[0]
		if ck.Name != SessionCookie || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
			t.Fatalf("session cookie %+v: want HttpOnly, Secure (https base URL), SameSite=Lax", ck)
		}
		st, me, _ := e.send("GET", "/api/v1/me", ck.Value, "", nil)
		if st != 200 || me["administrator"].(map[string]any)["username"] != "JDoe" || me["role"] != "Administrator" {
			t.Fatalf("me = %d %v", st, me)
		}
		if la := me["administrator"].(map[string]any)["lastLogin"]; la == nil {
			t.Fatal("last login not recorded")
		}

		// CSRF: a cookie-authenticated write from another origin is refused
		// and writes nothing; the same origin passes.
		before := storetest.TakeSnapshot(t, e.s)
		st, out, _ := e.send("POST", "/api/v1/administrators", ck.Value, strings.Replace(invite, "JDoe", "csrf", 1),
			map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
		if st != 403 || out["code"] != admin.CodeForbidden {
			t.Fatalf("cross-site write = %d %v", st, out)
		}
		storetest.AssertUnchanged(t, e.s, before)
		st, out, _ = e.send("POST", "/api/v1/administrators", ck.Value, strings.Replace(strings.Replace(invite, "JDoe", "sameorigin", 1), "jane@", "so@", 1),
			map[string]string{"Sec-Fetch-Site": "same-origin"})
		if st != 201 {
			t.Fatalf("same-origin write = %d %v", st, out)
		}
		// An Administrator's session is not a Super Administrator's.
		st, out, _ = e.send("POST", "/api/v1/api-keys", ck.Value, `{"name":"x"}`, map[string]string{"Sec-Fetch-Site": "same-origin"})
		if st != 403 {
			t.Fatalf("administrator creating a key = %d %v", st, out)
		}

		// Login history: time, method, IP, browser, result.
		st, hist := e.do("GET", "/api/v1/administrators/"+id+"/login-history", e.adminKey, "")
		items, _ := hist["items"].([]any)
		if st != 200 || len(items) != 1 {
			t.Fatalf("login history = %d %v", st, hist)
		}
		ev := items[0].(map[string]any)
		if ev["method"] != "password" || ev["ip"] != "127.0.0.1" || ev["browser"] != "TestBrowser/1.0" || ev["result"] != "success" {
			t.Fatalf("login event %v", ev)
		}

		// Sign out: the cookie no longer works.
		if st, _, cookies = e.send("DELETE", "/api/v1/session", ck.Value, "", nil); st != 204 || len(cookies) != 1 || cookies[0].MaxAge >= 0 {
			t.Fatalf("sign out = %d %v", st, cookies)
		}
		if st, _, _ = e.send("GET", "/api/v1/me", ck.Value, "", nil); st != 401 {
			t.Fatalf("me after sign out = %d", st)
		}
	})
}

// TestBruteForce: repeated bad passwords lock the account for a while and
// are audited; the right password is refused while it is locked.
func TestBruteForce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		const password = "a long enough password"
		signIn := &admin.SignIn{Store: e.s, Sealer: e.sealer}
		if err := signIn.SetPassword(storetest.Context(context.Background()), e.org.ID, e.owner.ID, password, false); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < admin.DefaultLockAfter; i++ {
			st, out, _ := e.send("POST", "/api/v1/session", "", `{"organization":"acme","username":"owner","password":"wrong password `+string(rune('a'+i))+`"}`, nil)
			if st != 401 || out["code"] != admin.CodeInvalidCredentials {
				t.Fatalf("attempt %d = %d %v", i, st, out)
			}
		}
		st, out, cookies := e.send("POST", "/api/v1/session", "", `{"organization":"acme","username":"owner","password":"`+password+`"}`, nil)
		if st != 403 || out["code"] != admin.CodeAccountLocked || len(cookies) != 0 {
			t.Fatalf("right password while locked = %d %v %v", st, out, cookies)
		}
		entries, err := e.s.AuditLog(context.Background(), e.org.ID, store.AuditQuery{TargetID: e.owner.ID, Action: "signin."})
		if err != nil {
			t.Fatal(err)
		}
		var failures, lockouts int
		for _, en := range entries {
			switch en.Action {
			case "signin.failure":
				failures++
			case "signin.lockout":
				lockouts++
			}
		}
		if failures < admin.DefaultLockAfter || lockouts != 1 {
			t.Fatalf("audit: %d failures, %d lockouts in %+v", failures, lockouts, entries)
		}
	})
}

// TestRequireSSO: with SSO required, passwords are refused except for the
// break-glass Super Administrators the organization names.
func TestRequireSSO(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := storetest.Context(context.Background())
		const password = "a long enough password"
		signIn := &admin.SignIn{Store: e.s, Sealer: e.sealer}
		jane, err := e.s.CreateAdministrator(ctx, store.Administrator{OrgID: e.org.ID, UserName: "jane", Email: "jane@acme.test",
			GivenName: "J", FamilyName: "D", Role: store.RoleAdministrator, Status: store.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{e.owner.ID, jane.ID} {
			if err := signIn.SetPassword(ctx, e.org.ID, id, password, false); err != nil {
				t.Fatal(err)
			}
		}
		e.refused("PATCH", "/api/v1/organization", e.superKey, `{"requireSso":true}`, 409, admin.CodeSSONotConfigured)
		if _, err := e.s.CreateSSOConnection(ctx, store.SSOConnection{OrgID: e.org.ID, Kind: store.SSOSAML, Name: "IdP", Enabled: true,
			UsernameFrom: "nameid", Config: store.RawJSON(`{}`)}); err != nil {
			t.Fatal(err)
		}
		e.refused("PATCH", "/api/v1/organization", e.adminKey, `{"requireSso":true}`, 403, admin.CodeForbidden)
		if st, o := e.do("PATCH", "/api/v1/organization", e.superKey, `{"requireSso":true}`); st != 200 || o["requireSso"] != true {
			t.Fatalf("require SSO = %d %v", st, o)
		}
		login := func(user string) (int, map[string]any) {
			st, out, _ := e.send("POST", "/api/v1/session", "", `{"organization":"acme","username":"`+user+`","password":"`+password+`"}`, nil)
			return st, out
		}
		for _, u := range []string{"owner", "jane"} {
			if st, out := login(u); st != 403 || out["code"] != admin.CodeSSORequired {
				t.Fatalf("%s with SSO required = %d %v", u, st, out)
			}
		}
		e.refused("PUT", "/api/v1/administrators/"+jane.ID+"/break-glass", e.superKey, `{"enabled":true}`, 400, admin.CodeInvalidRole)
		e.refused("PUT", "/api/v1/administrators/"+e.owner.ID+"/break-glass", e.adminKey, `{"enabled":true}`, 403, admin.CodeForbidden)
		if st, _ := e.do("PUT", "/api/v1/administrators/"+e.owner.ID+"/break-glass", e.superKey, `{"enabled":true}`); st != 200 {
			t.Fatalf("break glass: %d", st)
		}
		if st, out := login("owner"); st != 200 {
			t.Fatalf("break-glass owner = %d %v", st, out)
		}
		if st, _ := login("jane"); st != 403 {
			t.Fatalf("jane = %d", st)
		}
	})
}
