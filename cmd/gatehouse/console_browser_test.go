package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"gatehouse/store"
)

// The web console in a real browser (headless Chromium driven over the
// DevTools protocol by chromedp) against a real gatehouse serve on
// SQLite: the first run of an organization, from the link org create
// prints or an invitation emails, to a signed-in console, and back.
//
// Each page is saved as a screenshot at 1280 and 390 pixels wide in
// screenshots/console at the repository's root (git-ignored; the
// GATEHOUSE_SCREENSHOTS directory instead when set).

// browser starts headless Chromium for one test. Without Chromium the
// test skips, and fails under CI=true: CI installs it (.ci/deps).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed; CI must run the console's browser tests (.ci/deps installs it)")
		}
		t.Skip("chromium is not installed (apt-get install chromium); CI=true makes this a failure")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// page drives one browser tab through the console, failing the test at
// the first step that does not work.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v (at %s)\n%s", what, err, p.location(), p.text("body"))
	}
}

func (p *page) open(url string) {
	p.t.Helper()
	p.do("open "+url, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("body")))
}

func (p *page) location() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

func (p *page) text(sel string) string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	return s
}

// fill types values into the fields named by CSS selector (cleared
// first) and clicks the form's submit button, then waits for the next
// page: the document at a new URL or reloaded.
func (p *page) submit(form string, values map[string]string) {
	p.t.Helper()
	var steps []chromedp.Action[chromedp.Void]
	for sel, v := range values {
		q, _ := json.Marshal(form + " " + sel)
		steps = append(steps, chromedp.WaitReady(chromedp.CSS(form+" "+sel)),
			chromedp.Evaluate[chromedp.Void](`document.querySelector(`+string(q)+`).value = ""`))
		if v != "" {
			steps = append(steps, chromedp.SendKeys(chromedp.CSS(form+" "+sel), v))
		}
	}
	// A marker on the current document: the next one does not have it.
	steps = append(steps, chromedp.Evaluate[chromedp.Void](`document.documentElement.dataset.old = "1"`),
		chromedp.Click(chromedp.CSS(form+` button:not([type=button])`)),
		chromedp.WaitReady(chromedp.CSS(`html:not([data-old])`)),
		chromedp.WaitReady(chromedp.CSS(`body`)))
	p.do("submit "+form, steps...)
}

// expect fails unless the element sel comes to hold want within a few
// seconds: a read that meets the document still being replaced (after a
// redirect, the frame's nodes are swapped under the query) is tried
// again rather than taken as the page's text.
func (p *page) expect(sel, want string) {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := p.text(sel)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s at %s reads %q, want %q", sel, p.location(), got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shot saves the page at 1280 and 390 pixels wide.
func (p *page) shot(name string) {
	p.t.Helper()
	dir := os.Getenv("GATEHOUSE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "screenshots", "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	for _, width := range []int64{1280, 390} {
		ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
		// The viewport at the width, then as tall as the page: the
		// whole page, as a person scrolling it would see it.
		err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 800))
		var png []byte
		var height int64
		if err == nil {
			height, err = chromedp.Run(ctx, chromedp.Evaluate[int64](`Math.max(document.documentElement.scrollHeight, 800)`))
		}
		if err == nil {
			err = chromedp.Do(ctx, chromedp.EmulateViewport(width, height))
		}
		if err == nil {
			png, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
		}
		cancel()
		if err != nil {
			p.t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width)), png, 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
	p.do("restore the viewport", chromedp.EmulateViewport(1280, 800))
}

// lastLink is the last link with this path in serve's log, where
// emails go without an SMTP server.
func lastLink(t *testing.T, srv *server, path string) string {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(path) + `\?token=([A-Za-z0-9_-]+)`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := re.FindAllStringSubmatch(srv.stderr.String(), -1); m != nil {
			return srv.base + path + "?token=" + m[len(m)-1][1]
		}
	}
	t.Fatalf("no %s link in serve's log:\n%s", path, srv.stderr.String())
	return ""
}

const consolePassword = "a long and calm passphrase"

// TestConsoleFirstRun: org create's activation link → bad input refused
// at its field, changing nothing → a password → signed in on the home
// page → the used link says so → sign out → sign in again → password
// reset from the "forgot" form to a new password → the console's 404,
// and a cross-site form post refused.
func TestConsoleFirstRun(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	jane, err := f.store.AdministratorByUsername(context.Background(), f.org.ID, "Jane.Doe")
	if err != nil {
		t.Fatal(err)
	}
	pending := func() {
		t.Helper()
		a, err := f.store.Administrator(context.Background(), f.org.ID, jane.ID)
		if err != nil || a.Status != store.StatusPending {
			t.Fatalf("Jane is %q (%v), want still Pending", a.Status, err)
		}
	}

	// Signed out, / is the sign-in page.
	p.open(f.srv.base + "/")
	if loc := p.location(); !strings.HasPrefix(loc, f.srv.base+"/login") {
		t.Fatalf("/ signed out lands on %s, want the sign-in page", loc)
	}
	p.shot("signin")

	p.open(f.link)
	p.expect("h1", "Activate your account")
	p.expect("main", "Jane.Doe")
	p.shot("activate")

	// Keyboard: the first Tab shows the skip link, with a visible focus
	// ring; then the brand link, then the first field.
	p.do("tab", chromedp.KeyEvent("\t"))
	focus, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const e = document.activeElement, r = e.getBoundingClientRect(), s = getComputedStyle(e);
		return e.className + " " + (r.left >= 0 && r.top >= 0) + " " + s.outlineStyle })()`))
	if err != nil || focus != "skip true solid" {
		t.Fatalf("after one Tab the focus is %q (%v), want the visible skip link with an outline", focus, err)
	}
	p.do("tab twice", chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"))
	if id, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`)); id != "password" {
		t.Fatalf("after three Tabs the focus is on %q, want the password field", id)
	}

	// Bad input: shown at the field, and nothing changes.
	p.submit("form", map[string]string{"#password": "", "#confirm": ""})
	p.expect("#password-error", "shorter than")
	pending()
	p.submit("form", map[string]string{"#password": consolePassword, "#confirm": consolePassword + "x"})
	p.expect("#confirm-error", "differ")
	pending()
	p.shot("activate-errors")

	p.submit("form", map[string]string{"#password": consolePassword, "#confirm": consolePassword})
	if loc := p.location(); loc != f.srv.base+"/administrators" {
		t.Fatalf("activation lands on %s, want /administrators", loc)
	}
	p.expect("main", "Jane.Doe")
	p.expect("h1", "Administrators")
	p.shot("home")

	// The link works once.
	p.open(f.link)
	p.expect("h1", "can no longer be used")
	p.expect("main", "resend your invitation")
	p.shot("activate-used")
	p.open(f.srv.base + "/activate?token=nonsense")
	p.expect("h1", "can no longer be used")

	// Sign out, and in again through the sign-in page.
	p.open(f.srv.base + "/")
	p.submit("header form", nil)
	if loc := p.location(); !strings.HasPrefix(loc, f.srv.base+"/login") {
		t.Fatalf("sign-out lands on %s", loc)
	}
	p.open(f.srv.base + "/")
	if loc := p.location(); !strings.HasPrefix(loc, f.srv.base+"/login") {
		t.Fatalf("after sign-out / shows %s, want the sign-in page", loc)
	}
	p.submit("form", map[string]string{"#u": "Jane.Doe@acme"})
	p.submit("form", map[string]string{"#p": consolePassword})
	if loc := p.location(); loc != f.srv.base+"/administrators" {
		t.Fatalf("sign-in lands on %s, want /administrators: %s", loc, p.text("body"))
	}
	p.expect("main", "Jane.Doe")

	// Password reset, signed out.
	p.submit("header form", nil)
	p.open(f.srv.base + "/forgot-password")
	p.shot("forgot")
	p.submit("form", map[string]string{"#organization": "acme", "#username": "Jane.Doe"})
	p.expect("h1", "Check your email")
	p.shot("forgot-sent")
	reset := lastLink(t, f.srv, "/reset-password")
	p.open(reset)
	p.expect("h1", "Choose a new password")
	p.shot("reset")
	p.submit("form", map[string]string{"#password": "another long passphrase", "#confirm": "another long passphrase!"})
	p.expect("#confirm-error", "differ")
	p.submit("form", map[string]string{"#password": "short", "#confirm": "short"})
	p.expect("#password-error", "shorter than")
	p.shot("reset-errors")
	// Nothing changed: the old password still signs in (over the API).
	if a := postJSON(t, f.srv.base+"/api/v1/session", `{"organization":"acme","username":"Jane.Doe","password":"`+consolePassword+`"}`, ""); a.status != 200 {
		t.Fatalf("after refused resets the old password: %d %v", a.status, a.body)
	}
	p.submit("form", map[string]string{"#password": "another long passphrase", "#confirm": "another long passphrase"})
	p.expect("h1", "Password changed")
	p.shot("reset-done")
	p.open(reset) // a used link says so when opened, before anything is typed
	p.expect("h1", "can no longer be used")
	p.expect("main", "Request a new link")
	p.shot("reset-used")
	p.open(f.srv.base + "/login/password?org=acme")
	p.submit("form", map[string]string{"#u": "Jane.Doe", "#p": "another long passphrase"})
	if loc := p.location(); loc != f.srv.base+"/administrators" {
		t.Fatalf("sign-in with the new password lands on %s: %s", loc, p.text("body"))
	}

	// A page that does not exist: the console's 404, with the request ID.
	p.open(f.srv.base + "/no/such/page")
	p.expect("h1", "Page not found")
	p.expect("main", "Request ID")
	p.shot("not-found")
	resp, body := get(t, f.srv.base+"/no/such/page", nil)
	if resp.StatusCode != 404 || !strings.Contains(body, resp.Header.Get("X-Request-ID")) {
		t.Fatalf("404: %d, request ID %q not in the page", resp.StatusCode, resp.Header.Get("X-Request-ID"))
	}

	// A form on another origin (another port: the same site, so the
	// browser sends the Lax session cookie) posting the sign-out: refused,
	// and the session lives on.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/logout"><button type="submit">Win a prize</button></form>`, f.srv.base)
	}))
	t.Cleanup(evil.Close)
	p.open(evil.URL)
	p.submit("form", nil)
	p.expect("h1", "Form refused")
	p.expect("main", "another site")
	p.shot("cross-site-refused")
	p.open(f.srv.base + "/")
	if loc := p.location(); loc != f.srv.base+"/administrators" {
		t.Fatalf("after the cross-site sign-out / shows %s: the session ended", loc)
	}
	p.expect("main", "Jane.Doe")
}

// TestConsoleActivationWithTOTP: in an organization that requires two
// factors, an invitation's link (from the outbox) asks for a password and
// the enrolment of an authenticator (a QR code drawn by the server, and
// the key as text), refuses a wrong code at its field, then lands on the
// console signed in (the link and the code are the proof); the code
// cannot sign in a second time.
func TestConsoleActivationWithTOTP(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	if resp, body := f.call(t, "PATCH", "/api/v1/organization", `{"requireTotp":true}`, nil); resp.StatusCode != 200 {
		t.Fatalf("require TOTP: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.call(t, "POST", "/api/v1/administrators", `{"username":"Sam.Roe","firstName":"Sam","lastName":"Roe","email":"sam@example.com"}`, nil); resp.StatusCode != 201 {
		t.Fatalf("invite: %d %s", resp.StatusCode, body)
	}
	p.open(lastLink(t, f.srv, "/activate"))
	p.expect("main", "Sam.Roe")
	p.expect("legend", "Two-factor authentication")
	qr, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelector("img.qr").naturalWidth`))
	if err != nil || qr < 100 {
		t.Fatalf("the QR code is not an image the browser draws: width %d, %v", qr, err)
	}
	secret := p.text("#totp-secret")
	if len(secret) < 16 {
		t.Fatalf("TOTP key %q", secret)
	}
	p.shot("activate-totp")

	p.submit("form", map[string]string{"#password": consolePassword, "#confirm": consolePassword, "#code": "000000"})
	p.expect("#code-error", "incorrect")
	if p.text("#totp-secret") != secret {
		t.Fatal("a refused code changed the key shown")
	}
	sam, err := f.store.AdministratorByUsername(context.Background(), f.org.ID, "Sam.Roe")
	if err != nil || sam.Status != store.StatusPending {
		t.Fatalf("after a wrong code Sam is %q (%v), want Pending", sam.Status, err)
	}
	p.shot("activate-totp-error")

	now := time.Now()
	code, _ := totp.GenerateCode(secret, now)
	p.submit("form", map[string]string{"#password": consolePassword, "#confirm": consolePassword, "#code": code})
	if loc := p.location(); loc != f.srv.base+"/administrators" {
		t.Fatalf("activating with the code lands on %s, want the console signed in: %s", loc, p.text("body"))
	}
	p.expect("main", "Sam.Roe")
	p.shot("home-totp")
	// The session is in the login history as a password sign-in.
	resp, body := f.call(t, "GET", "/api/v1/administrators/"+sam.ID+"/login-history", "", nil)
	if resp.StatusCode != 200 || strings.Count(string(body), `"success"`) != 1 || !strings.Contains(string(body), `"password"`) {
		t.Fatalf("login history after activation: %d %s", resp.StatusCode, body)
	}
	// The code the activation used cannot sign in again: a replay.
	p.submit("header form", nil)
	p.open(f.srv.base + "/login/password?org=acme")
	p.submit("form", map[string]string{"#u": "Sam.Roe", "#p": consolePassword})
	p.submit("form", map[string]string{"#p": consolePassword, "#t": code})
	if p.location() == f.srv.base+"/administrators" {
		t.Fatal("the activation's TOTP code signed in a second time")
	}
	p.expect("body", "incorrect")
}

// TestConsoleFirstSignInSteps: an administrator whose password was set by
// a Super Administrator ("must change at next sign-in"), in an
// organization that requires two factors, signs in on the sign-in page
// and is led through the console's steps: a new password (a wrong
// current password refused at its field), then the enrolment of an
// authenticator, then the home page.
func TestConsoleFirstSignInSteps(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	if resp, body := f.call(t, "POST", "/api/v1/administrators", `{"username":"Sam.Roe","firstName":"Sam","lastName":"Roe","email":"sam@example.com"}`, nil); resp.StatusCode != 201 {
		t.Fatalf("invite: %d %s", resp.StatusCode, body)
	}
	link := lastLink(t, f.srv, "/activate")
	token := link[strings.Index(link, "token=")+len("token="):]
	if a := postJSON(t, f.srv.base+"/api/v1/activation", `{"token":"`+token+`","password":"`+consolePassword+`"}`, ""); a.status != 200 {
		t.Fatalf("activation: %d %v", a.status, a.body)
	}
	sam, err := f.store.AdministratorByUsername(context.Background(), f.org.ID, "Sam.Roe")
	if err != nil {
		t.Fatal(err)
	}
	const given = "a password from the admin"
	if resp, body := f.call(t, "PUT", "/api/v1/administrators/"+sam.ID+"/password", `{"password":"`+given+`","mustChangePassword":true}`, nil); resp.StatusCode != 204 {
		t.Fatalf("set password: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.call(t, "PATCH", "/api/v1/organization", `{"requireTotp":true}`, nil); resp.StatusCode != 200 {
		t.Fatalf("require TOTP: %d %s", resp.StatusCode, body)
	}

	p.open(f.srv.base + "/login/password?org=acme")
	p.submit("form", map[string]string{"#u": "Sam.Roe", "#p": given})
	if loc := p.location(); loc != f.srv.base+"/account/password" {
		t.Fatalf("a sign-in that must change its password lands on %s: %s", loc, p.text("body"))
	}
	p.expect("h1", "Change your password")
	p.shot("must-change-password")
	p.expect("main form.aside", "Sign out") // a way out of the step
	p.submit("form", map[string]string{"#current": "not the password", "#password": consolePassword, "#confirm": consolePassword})
	p.expect("#current-error", "incorrect")
	p.shot("must-change-password-error")
	// The home page is not reachable before the step is done.
	p.open(f.srv.base + "/")
	if loc := p.location(); loc != f.srv.base+"/account/password" {
		t.Fatalf("/ before the password change shows %s", loc)
	}
	p.submit("form", map[string]string{"#current": given, "#password": consolePassword, "#confirm": consolePassword})
	if loc := p.location(); loc != f.srv.base+"/account/two-factor" {
		t.Fatalf("after the password change: %s, want the two-factor step: %s", loc, p.text("body"))
	}
	p.expect("h1", "Set up two-factor authentication")
	p.shot("enrol-totp")
	secret := p.text("#totp-secret")
	p.submit("form", map[string]string{"#code": "123"})
	p.expect("#code-error", "incorrect")
	if p.text("#totp-secret") != secret {
		t.Fatal("a refused code changed the key shown")
	}
	code, _ := totp.GenerateCode(secret, time.Now())
	p.submit("form", map[string]string{"#code": code})
	if loc := p.location(); loc != f.srv.base+"/administrators" {
		t.Fatalf("after the enrolment: %s: %s", loc, p.text("body"))
	}
	p.expect("main", "Sam.Roe")
}

// TestConsoleHeadersAndCrossSitePosts, without a browser: every console
// page is served under the strict Content-Security-Policy, not framed and
// not cached; its files come from the binary; and each of its forms
// refuses a post from another origin, changing nothing.
func TestConsoleHeadersAndCrossSitePosts(t *testing.T) {
	f := newServeFixture(t, nil)
	for _, path := range []string{"/activate?token=" + f.link[strings.Index(f.link, "token=")+6:], "/activate?token=x", "/reset-password?token=x",
		"/forgot-password", "/no/such/page"} {
		resp, body := get(t, f.srv.base+path, nil)
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") ||
			!strings.Contains(csp, "frame-ancestors 'none'") || h.Get("Cache-Control") != "no-store" ||
			h.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(body, "/assets/console.css") {
			t.Errorf("%s: %d CSP %q Cache-Control %q Referrer-Policy %q", path, resp.StatusCode, csp, h.Get("Cache-Control"), h.Get("Referrer-Policy"))
		}
	}
	// A link no longer usable says so when it is opened, not after a form.
	for _, path := range []string{"/activate?token=x", "/reset-password?token=x", "/reset-password"} {
		if resp, body := get(t, f.srv.base+path, nil); resp.StatusCode != http.StatusGone || !strings.Contains(body, "can no longer be used") {
			t.Errorf("%s: %d, want 410 and its message", path, resp.StatusCode)
		}
	}
	assets := 0
	for _, asset := range []string{"/assets/console.css", "/assets/console.js"} {
		resp, body := get(t, f.srv.base+asset, nil)
		if resp.StatusCode != 200 || len(body) < 200 {
			t.Errorf("%s: %d, %d bytes", asset, resp.StatusCode, len(body))
		}
		assets += len(body)
	}
	// A page with its stylesheet and script weighs under 100 KB.
	if _, body := get(t, f.link, nil); len(body)+assets > 100<<10 {
		t.Errorf("the activation page weighs %d bytes with its files", len(body)+assets)
	}
	token := f.link[strings.Index(f.link, "token=")+6:]
	for _, path := range []string{"/activate", "/reset-password", "/forgot-password", "/logout", "/account/password", "/account/two-factor"} {
		req, _ := http.NewRequest("POST", f.srv.base+path, strings.NewReader("token="+token+"&password="+consolePassword+"&confirm="+consolePassword+"&username=Jane.Doe&organization=acme"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://attacker.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, body := do(t, req)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "another site") {
			t.Errorf("cross-site POST %s: %d", path, resp.StatusCode)
		}
	}
	if a, err := f.store.AdministratorByUsername(context.Background(), f.org.ID, "Jane.Doe"); err != nil || a.Status != store.StatusPending {
		t.Fatalf("after the cross-site activation Jane is %q (%v), want Pending", a.Status, err)
	}
}
