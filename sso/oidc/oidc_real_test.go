package oidc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"gatehouse/sso/protocol"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// oidcRealProviderDir finds the npm install of testdata/oidc-provider that
// .ci/deps made (GATEHOUSE_OIDC_PROVIDER_CACHE, default
// ~/.cache/gatehouse-oidc-provider), or skips tb — fails it when CI=true.
func oidcRealProviderDir(tb testing.TB) (node, modules string) {
	tb.Helper()
	missing := func(format string, args ...any) {
		tb.Helper()
		if os.Getenv("CI") == "true" {
			tb.Fatalf("oidc-provider is required in CI: "+format, args...)
		}
		tb.Skipf("no oidc-provider (run make deps): "+format, args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	cache := os.Getenv("GATEHOUSE_OIDC_PROVIDER_CACHE")
	if cache == "" {
		dir, err := os.UserCacheDir() // $XDG_CACHE_HOME or ~/.cache, as .ci/deps
		if err != nil {
			missing("%v", err)
		}
		cache = filepath.Join(dir, "gatehouse-oidc-provider")
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "testdata", "oidc-provider", "package-lock.json"))
	if err != nil {
		tb.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(cache, "installed-lock.json"))
	if err != nil || !bytes.Equal(got, want) {
		missing("%s does not hold an install of testdata/oidc-provider/package-lock.json", cache)
	}
	modules = filepath.Join(cache, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "oidc-provider", "package.json")); err != nil {
		missing("%v", err)
	}
	return node, modules
}

// startOIDCRealProvider runs testdata/oidc-provider/provider.mjs and
// returns its issuer.
func startOIDCRealProvider(t *testing.T, clientID, secret, redirectURI string) string {
	t.Helper()
	node, modules := oidcRealProviderDir(t)
	dir := t.TempDir()
	script, err := os.ReadFile(filepath.Join("..", "..", "testdata", "oidc-provider", "provider.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "provider.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "provider.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OIDC_CLIENT_ID="+clientID, "OIDC_CLIENT_SECRET="+secret, "OIDC_REDIRECT_URI="+redirectURI)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("provider.mjs stderr:\n%s", stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		io.Copy(io.Discard, out)
	}()
	select {
	case s := <-line:
		var started struct{ Issuer string }
		if err := json.Unmarshal([]byte(s), &started); err != nil || started.Issuer == "" {
			t.Fatalf("provider.mjs printed %q: %v\n%s", s, err, stderr.String())
		}
		return started.Issuer
	case <-time.After(30 * time.Second):
		t.Fatalf("provider.mjs did not start in 30 s:\n%s", stderr.String())
	}
	return ""
}

var (
	oidcFormAction = regexp.MustCompile(`(?is)<form\b[^>]*\baction="([^"]*)"`)
	oidcFormInput  = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	oidcAttrName   = regexp.MustCompile(`(?is)\bname="([^"]*)"`)
	oidcAttrValue  = regexp.MustCompile(`(?is)\bvalue="([^"]*)"`)
)

// TestOIDCRealProvider signs Alice in through oidc-provider (a certified
// OpenID provider) with no browser: net/http and a cookie jar post its
// login and consent forms.
func TestOIDCRealProvider(t *testing.T) {
	ctx := storetest.Context(context.Background())
	st := storetest.SQLite(t)
	sealer := oidcTestSealer(t)
	connID := uuid.NewString()
	clientID, secret := "gatehouse", "real-op-secret-"+oidcRandomText()
	redirectURI := oidcTestBase + CallbackPath(connID)
	issuer := startOIDCRealProvider(t, clientID, secret, redirectURI)

	org, _, err := st.CreateOrg(ctx, store.NewOrg{
		Org: store.Org{Slug: "real-op", Name: "Real OP"},
		Owner: store.Administrator{UserName: "Alice", Email: "alice@example.test", GivenName: "Alice", FamilyName: "Liddell",
			Role: store.RoleSuperAdministrator, Status: store.StatusPending},
		Invitation: store.Invitation{Hash: []byte("hash-real-op"), ExpiresAt: time.Now().Add(time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(Config{Issuer: issuer, ClientID: clientID})
	conn, err := st.CreateSSOConnection(ctx, store.SSOConnection{ID: connID, OrgID: org.ID, Kind: store.SSOOIDC, Name: "oidc-provider",
		Enabled: true, UsernameFrom: "claim:preferred_username", Config: cfg, Secret: sealer.Seal(secret, protocol.SealContext(connID))})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(ctx, conn, st, sealer, oidcTestBase, &http.Client{Timeout: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &oidcEnv{t: t, st: st, sealer: sealer, org: org, conn: conn, c: c, browser: []byte("real-browser")}

	signIn := func(hint string) (protocol.Identity, store.SSORequest, error) {
		t.Helper()
		callback := oidcDriveRealProvider(t, e.start(e.browser, protocol.StartRequest{RedirectTo: "/console", LoginHint: hint}), issuer)
		return e.finish(callback, e.browser)
	}
	id, req, err := signIn("")
	if err != nil {
		t.Fatal(err)
	}
	if id.Username != "Alice" || id.Subject != "Alice" || id.Issuer != issuer || req.RedirectTo != "/console" {
		t.Fatalf("identity %+v, request %+v", id, req)
	}
	// oidc-provider's ID token carries only sub; the rest is userinfo's.
	for k, want := range map[string]string{"email": "alice@example.test", "email_verified": "true", "name": "Alice Liddell",
		"preferred_username": "Alice", "aud": clientID} {
		if got := id.Attributes[k]; len(got) != 1 || got[0] != want {
			t.Errorf("attribute %s = %q, want %q", k, got, want)
		}
	}
	// The provider's RFC 9207 iss is checked: drop it and we refuse.
	callback := oidcDriveRealProvider(t, e.start(e.browser, protocol.StartRequest{}), issuer)
	if callback.Query().Get("iss") != issuer {
		t.Fatalf("oidc-provider sent iss %q", callback.Query().Get("iss"))
	}
	_, _, err = e.finish(withParam(callback, "iss", ""), e.browser)
	refused(t, err, "has no iss")
	// A replayed callback is refused, and the real OP refuses a reused code.
	callback = oidcDriveRealProvider(t, e.start(e.browser, protocol.StartRequest{}), issuer)
	if _, _, err := e.finish(callback, e.browser); err != nil {
		t.Fatalf("control: %v", err)
	}
	_, _, err = e.finish(callback, e.browser)
	refused(t, err, "matches no sign-in in progress")
	_, _, err = e.finish(withParam(oidcDriveRealProvider(t, e.start(e.browser, protocol.StartRequest{}), issuer), "code", callback.Query().Get("code")),
		e.browser)
	refused(t, err, "refused the authorization code")
	// A code from another sign-in (another PKCE challenge) is refused by the OP.
	stolen := oidcDriveRealProvider(t, e.start([]byte("attacker"), protocol.StartRequest{}), issuer).Query().Get("code")
	_, _, err = e.finish(withParam(oidcDriveRealProvider(t, e.start(e.browser, protocol.StartRequest{}), issuer), "code", stolen), e.browser)
	refused(t, err, "refused the authorization code")
}

// oidcDriveRealProvider plays a browser from the authorization URL until
// the provider redirects to our callback, posting devInteractions' login
// form as Alice and its consent form. Each call is a fresh browser.
func oidcDriveRealProvider(t *testing.T, authURL, issuer string) *url.URL {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if !strings.HasPrefix(r.URL.String(), issuer+"/") {
			return http.ErrUseLastResponse // the callback: stop there
		}
		return nil
	}}
	resp, err := client.Get(authURL)
	for step := 0; step < 6; step++ {
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 {
			u, err := resp.Request.URL.Parse(loc)
			if err != nil || !strings.HasPrefix(u.String(), oidcTestBase+"/") {
				t.Fatalf("redirect to %q", loc)
			}
			return u
		}
		m := oidcFormAction.FindSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("step %d: %d without a form:\n%s", step, resp.StatusCode, body)
		}
		action, err := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{}
		for _, input := range oidcFormInput.FindAll(body, -1) {
			name := oidcAttrName.FindSubmatch(input)
			if name == nil {
				continue
			}
			value := ""
			if v := oidcAttrValue.FindSubmatch(input); v != nil {
				value = html.UnescapeString(string(v[1]))
			}
			switch n := html.UnescapeString(string(name[1])); n {
			case "login":
				form.Set(n, "Alice")
			case "password":
				form.Set(n, "any password: devInteractions checks none")
			default:
				form.Set(n, value)
			}
		}
		resp, err = client.PostForm(action.String(), form)
	}
	t.Fatal("no redirect to the callback after 6 steps")
	return nil
}
