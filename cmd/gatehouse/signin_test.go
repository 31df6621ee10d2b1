package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
)

// Sign-in from outside, through gatehouse serve: the limits under
// concurrency on two instances, organization-scoped sign-in, /login
// discovery and the password reset (issue #11, items 4 to 7).

const signinPassword = "correct horse battery staple"

var signinKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))

// childServe runs gatehouse serve on db as a process of its own (the test
// binary, told so by GATEHOUSE_TEST_CHILD_SERVE) and returns its base URL.
// It takes the client's address from X-Forwarded-For.
func childServe(t *testing.T, db string) string {
	t.Helper()
	addr := freeAddr(t)
	child := exec.Command(os.Args[0], "serve", "--addr", addr, "--db", db, "--trust-forwarded-for", "--log-format", "json")
	child.Env = append(os.Environ(), "GATEHOUSE_TEST_CHILD_SERVE=1", "GATEHOUSE_SECRET_KEY="+signinKey)
	logs := &syncBuffer{}
	child.Stdout, child.Stderr = logs, logs
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	base := "http://" + addr
	for i := 0; ; i++ {
		if res, err := http.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return base
			}
		}
		if i > 300 {
			t.Fatalf("gatehouse did not start: %s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// answer is a JSON reply of the API.
type answer struct {
	status int
	body   map[string]any
	took   time.Duration
}

func (a answer) code() string { s, _ := a.body["code"].(string); return s }

// same reports whether two refusals read the same to a client.
func (a answer) same(b answer) bool {
	return a.status == b.status && a.code() == b.code() && fmt.Sprint(a.body["detail"]) == fmt.Sprint(b.body["detail"])
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func postJSON(t *testing.T, url, body, from string) answer {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if from != "" {
		req.Header.Set("X-Forwarded-For", from)
	}
	start := time.Now()
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Error(err)
		return answer{}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, took: time.Since(start)}
	json.Unmarshal(b, &a.body)
	return a
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// signinOrg creates the organization slug with its Super Administrator
// username (Pending) and returns the activation token.
func signinOrg(t *testing.T, env map[string]string, slug, username string, extra ...string) string {
	t.Helper()
	r := gatehouse(t, env, append([]string{"org", "create", slug, "--base-url", "http://127.0.0.1:8080", "--name", "Org " + slug, "--admin-username", username,
		"--admin-email", username + "@" + slug + ".test", "--admin-first-name", "Jane", "--admin-last-name", "Doe"}, extra...)...)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	u, err := url.Parse(parseOrgCreate(t, r.stdout).link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

func activate(t *testing.T, base, token string) {
	t.Helper()
	if a := postJSON(t, base+"/api/v1/activation", `{"token":"`+token+`","password":"`+signinPassword+`"}`, ""); a.status != 200 {
		t.Fatalf("activate: %d %v", a.status, a.body)
	}
}

// verified counts the password checks of an administrator: its login
// history (a refusal while locked writes none).
func verified(t *testing.T, s *store.SQL, org, id string) int {
	t.Helper()
	hist, err := s.LoginHistory(t.Context(), org, id, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(hist)
}

// Item 4: 40 concurrent sign-ins, split over two instances on one
// database, get at most LockAfter password checks per account and
// IPLimit per address; the right password among them, once the account is
// locked, is answered as the wrong ones are.
func TestSignInLimitsHoldAcrossInstances(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		env := map[string]string{"GATEHOUSE_DB": dsn}
		token := signinOrg(t, env, "acme", "jdoe")
		bases := []string{childServe(t, dsn), childServe(t, dsn)}
		activate(t, bases[0], token)
		org, _ := s.OrgBySlug(t.Context(), "acme")
		jdoe, _ := s.AdministratorByUsername(t.Context(), org.ID, "jdoe")

		burst := func(body func(i int) string, from string) []answer {
			out := make([]answer, 40)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range out {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					out[i] = postJSON(t, bases[i%2]+"/api/v1/session", body(i), from)
				}()
			}
			close(start)
			wg.Wait()
			return out
		}
		tally := func(as []answer) map[string]int {
			m := map[string]int{}
			for _, a := range as {
				m[fmt.Sprintf("%d %s", a.status, a.code())]++
			}
			return m
		}

		// One account, one address; the right password is the 18th.
		const right = 17
		as := burst(func(i int) string {
			pw := fmt.Sprintf("wrong password %02d", i)
			if i == right {
				pw = signinPassword
			}
			return `{"organization":"acme","username":"jdoe","password":"` + pw + `"}`
		}, "198.51.100.1")
		checks := verified(t, s, org.ID, jdoe.ID)
		t.Logf("one account: answers %v; %d password checks", tally(as), checks)
		if checks > admin.DefaultLockAfter {
			t.Errorf("%d password checks of one account, limit %d", checks, admin.DefaultLockAfter)
		}
		answered := 0
		for _, a := range as {
			if a.status == 200 || a.code() == admin.CodeInvalidCredentials {
				answered++
			}
		}
		if answered != checks {
			t.Errorf("%d answers after a password check, %d checks in the login history", answered, checks)
		}
		if a := as[right]; a.status != 200 {
			alike := 0
			for _, b := range as {
				if b.same(a) {
					alike++
				}
			}
			if alike < 2 {
				t.Errorf("the right password alone was answered %d %v", a.status, a.body)
			}
		}
		// Locked now: the right password reads as a wrong one.
		rightAns := postJSON(t, bases[1]+"/api/v1/session", `{"username":"jdoe@acme","password":"`+signinPassword+`"}`, "198.51.100.9")
		wrongAns := postJSON(t, bases[0]+"/api/v1/session", `{"username":"jdoe@acme","password":"not it at all"}`, "198.51.100.9")
		if !rightAns.same(wrongAns) || rightAns.code() != admin.CodeAccountLocked {
			t.Errorf("locked: right password %d %v, wrong password %d %v", rightAns.status, rightAns.body, wrongAns.status, wrongAns.body)
		}

		// One address, ten names (four attempts each, under the name's
		// limit): at most IPLimit are checked.
		as = burst(func(i int) string {
			return fmt.Sprintf(`{"organization":"acme","username":"ghost%d","password":"wrong password"}`, i%10)
		}, "198.51.100.2")
		m := tally(as)
		t.Logf("one address: answers %v", m)
		if n := m["401 "+admin.CodeInvalidCredentials]; n > admin.DefaultIPLimit || n == 0 {
			t.Errorf("%d password checks from one address, limit %d", n, admin.DefaultIPLimit)
		}
		if m["429 "+admin.CodeTooManyAttempts] < 40-admin.DefaultIPLimit {
			t.Errorf("only %d attempts refused for the address", m["429 "+admin.CodeTooManyAttempts])
		}
	})
}

// Item 5: sign-in is organization-scoped. A username that exists in two
// organizations, given without one, is a wrong password — the same
// answer, counted against the address — never organization_required.
func TestSignInOrganizationScoped(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": signinKey}
		acme := signinOrg(t, env, "acme", "jdoe")
		signinOrg(t, env, "other", "jdoe")
		addr := freeAddr(t)
		srv := startServe(t, addr, env, "--addr", addr, "--trust-forwarded-for")
		activate(t, srv.base, acme)
		session := srv.base + "/api/v1/session"

		wrong := postJSON(t, session, `{"organization":"other","username":"jdoe","password":"not the password"}`, "192.0.2.1")
		if wrong.status != 401 || wrong.code() != admin.CodeInvalidCredentials {
			t.Fatalf("wrong password: %d %v", wrong.status, wrong.body)
		}
		// The time: four checked attempts of each (the account's fifth
		// locks it), then nine refused as locked.
		var noOrg, wrongPw, noOrgLocked, wrongPwLocked []time.Duration
		for i := range 13 {
			a := postJSON(t, session, `{"username":"jdoe","password":"x"}`, "192.0.2.2")
			b := postJSON(t, session, `{"organization":"acme","username":"jdoe","password":"x"}`, "192.0.2.3")
			if !a.same(b) {
				t.Errorf("attempt %d: without an organization %d %v, wrong password %d %v", i, a.status, a.body, b.status, b.body)
			}
			if i < 4 {
				noOrg, wrongPw = append(noOrg, a.took), append(wrongPw, b.took)
			} else {
				noOrgLocked, wrongPwLocked = append(noOrgLocked, a.took), append(wrongPwLocked, b.took)
			}
		}
		t.Logf("median answer: no organization %v, wrong password %v; once locked: %v and %v",
			median(noOrg), median(wrongPw), median(noOrgLocked), median(wrongPwLocked))
		for i, body := range []string{
			`{"username":"jdoe","password":"not the password"}`,
			`{"username":"jdoe","password":"` + signinPassword + `"}`,
			`{"organization":"nope","username":"jdoe","password":"` + signinPassword + `"}`,
			`{"username":"jdoe@nope","password":"` + signinPassword + `"}`,
			`{"organization":"other","username":"jdoe@acme","password":"` + signinPassword + `"}`,
		} {
			a := postJSON(t, session, body, fmt.Sprintf("192.0.2.%d", 10+i))
			if !a.same(wrong) && (i > 1 || a.code() != admin.CodeAccountLocked) {
				t.Errorf("%s: %d %v, want the wrong password's answer %d %v", body, a.status, a.body, wrong.status, wrong.body)
			}
		}
		// Counted like a failure: the address's limit holds.
		for range admin.DefaultIPLimit - 13 {
			postJSON(t, session, `{"username":"jdoe","password":"x"}`, "192.0.2.2")
		}
		if a := postJSON(t, session, `{"username":"jdoe@acme","password":"`+signinPassword+`"}`, "192.0.2.2"); a.code() != admin.CodeTooManyAttempts {
			t.Errorf("after %d attempts without an organization: %d %v", admin.DefaultIPLimit, a.status, a.body)
		}
		// Unlocked by the operator, the account signs in with the
		// organization named in the body or after the last '@'.
		if r := gatehouse(t, env, "administrator", "unlock", "--org", "acme", "jdoe"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		// The organization named: in the body, or after the last '@'.
		for _, body := range []string{`{"organization":"acme","username":"jdoe"`, `{"username":"jdoe@acme"`} {
			if a := postJSON(t, session, body+`,"password":"`+signinPassword+`"}`, "192.0.2.4"); a.status != 200 {
				t.Errorf("%s: %d %v", body, a.status, a.body)
			}
		}
	})
}

// Item 6: /login finds the organization from public facts only (its slug,
// its registered email domain); in an organization with SSO every
// username goes to the IdP, and a bare username is never looked up.
func TestLoginPageDiscovery(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": signinKey}
		signinOrg(t, env, "acme", "jdoe", "--domain", "acme.test")
		signinOrg(t, env, "plain", "pat", "--domain", "plain.test")
		md := filepath.Join(t.TempDir(), "idp.xml")
		os.WriteFile(md, []byte(idpMetadata(t)), 0o600)
		if r := gatehouse(t, env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", "Okta", "--metadata-file", md, "--base-url", "http://127.0.0.1:8080"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		addr := freeAddr(t)
		srv := startServe(t, addr, env, "--addr", addr)
		login := func(path string, form url.Values) (int, string, string) {
			t.Helper()
			var res *http.Response
			var err error
			if form == nil {
				res, err = noRedirect.Get(srv.base + path)
			} else {
				res, err = noRedirect.PostForm(srv.base+path, form)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			loc, _ := url.Parse(res.Header.Get("Location"))
			return res.StatusCode, loc.Host + loc.Path, string(b)
		}
		const askOrg, fixedAcme, fixedPlain = `<label for="o">Organization</label>`,
			`<input type="hidden" name="organization" value="acme">`, `<input type="hidden" name="organization" value="plain">`
		// A bare username, existing or not: the same page, asking for the
		// organization.
		for _, name := range []string{"jdoe", "ghost", "pat"} {
			st, _, body := login("/login", url.Values{"username": {name}})
			if st != 200 || !strings.Contains(body, askOrg) || !strings.Contains(body, `value="`+name+`"`) {
				t.Errorf("%s: %d %s", name, st, body)
			}
		}
		// The SSO organization by slug or domain: the IdP, whoever it is.
		for _, name := range []string{"jdoe@acme", "ghost@acme", "jdoe@acme.test", "ghost@ACME.test"} {
			if st, loc, _ := login("/login", url.Values{"username": {name}}); st/100 != 3 || loc != "idp.test/sso" {
				t.Errorf("%s: %d %s, want the IdP", name, st, loc)
			}
		}
		if st, loc, _ := login("/login", url.Values{"username": {"ghost"}, "organization": {"acme"}}); st/100 != 3 || loc != "idp.test/sso" {
			t.Errorf("?org=acme: %d %s, want the IdP", st, loc)
		}
		// An organization without SSO: the password form, the organization
		// fixed, whoever it is.
		for _, name := range []string{"pat@plain", "ghost@plain", "pat@plain.test"} {
			if st, _, body := login("/login", url.Values{"username": {name}}); st != 200 || !strings.Contains(body, fixedPlain) || strings.Contains(body, askOrg) {
				t.Errorf("%s: %d %s", name, st, body)
			}
		}
		// Nothing found: the same form, asking.
		for _, name := range []string{"x@nope", "x@elsewhere.test"} {
			if st, _, body := login("/login", url.Values{"username": {name}}); st != 200 || !strings.Contains(body, askOrg) {
				t.Errorf("%s: %d %s", name, st, body)
			}
		}
		// The break-glass way to a password in an SSO organization.
		if st, _, body := login("/login?org=acme", nil); st != 200 || !strings.Contains(body, `href="/login/password?org=acme&amp;next=%2f"`) {
			t.Errorf("/login?org=acme: %d %s", st, body)
		}
		if st, _, body := login("/login/password?org=acme", nil); st != 200 || !strings.Contains(body, fixedAcme) || strings.Contains(body, askOrg) {
			t.Errorf("/login/password?org=acme: %d %s", st, body)
		}
	})
}

// Item 7: a reset request for a name without an account does the same
// store work as one for an account: the same throttle row write.
func TestPasswordResetSameWork(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": signinKey}
		activateToken := signinOrg(t, env, "acme", "jdoe")
		addr := freeAddr(t)
		srv := startServe(t, addr, env, "--addr", addr)
		activate(t, srv.base, activateToken)
		reader, _ := s.DB()
		resetRows := func() int {
			var n int
			if err := reader.QueryRow(`SELECT COUNT(*) FROM login_throttle WHERE key LIKE 'reset:%'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		var known, unknown []time.Duration
		for i := range 15 {
			for _, name := range []string{"jdoe", fmt.Sprintf("ghost%d", i)} {
				before := resetRows()
				a := postJSON(t, srv.base+"/api/v1/password-reset", `{"organization":"acme","username":"`+name+`"}`, "")
				if a.status != 202 {
					t.Fatalf("reset %s: %d %v", name, a.status, a.body)
				}
				if name == "jdoe" {
					known = append(known, a.took)
					if i == 0 && resetRows() != before+1 {
						t.Errorf("reset for an account wrote %d throttle rows", resetRows()-before)
					}
				} else {
					unknown = append(unknown, a.took)
					if resetRows() != before+1 {
						t.Errorf("reset for an unknown name wrote %d throttle rows, an account's writes 1", resetRows()-before)
					}
				}
			}
		}
		t.Logf("median reset answer: account %v (first %d with a link), unknown name %v", median(known), admin.DefaultResetLimit, median(unknown))
	})
}
