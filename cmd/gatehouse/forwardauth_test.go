package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"gatehouse/store"
)

// readmeNginx is the nginx configuration of the README's "Forward auth
// (nginx auth_request)" section, so that what the README shows is what
// the test runs: gatehouse (sign-in, console, API) and, under /app/, an
// application only signed-in administrators reach, with their identity
// in X-Gatehouse-* headers. Its addresses are the test's: listen for
// "listen 443 ssl", gatehouseAddr for 127.0.0.1:8080, appAddr for
// 127.0.0.1:3000.
func readmeNginx(t *testing.T, listen, gatehouseAddr, appAddr string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(b)
	if i := strings.Index(section, "### Forward auth (nginx auth_request)"); i >= 0 {
		section = section[i:]
	} else {
		t.Fatal(`README.md has no "Forward auth (nginx auth_request)" section`)
	}
	m := regexp.MustCompile("(?s)```nginx\n(.*?)```").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("README.md's forward-auth section has no nginx block")
	}
	conf := regexp.MustCompile(`listen 443 ssl;[^\n]*`).ReplaceAllString(m[1], "listen "+listen+";")
	for _, want := range []string{"listen " + listen + ";", "127.0.0.1:8080", "127.0.0.1:3000"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("README.md's nginx block has no %q", want)
		}
	}
	return strings.NewReplacer("127.0.0.1:8080", gatehouseAddr, "127.0.0.1:3000", appAddr).Replace(conf)
}

// nginxBinary is Debian's nginx, or skips the test (fails it when CI=true).
func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("nginx is not installed; CI must run the forward-auth tests (.ci/deps installs it)")
	}
	t.Skip("nginx is not installed (apt-get install nginx); CI=true makes this a failure")
	return ""
}

// startNginx runs nginx in the foreground on listen (loopback) with the
// README's configuration (readmeNginx), as the current user, everything it writes in a
// temporary directory; stopped at the end of the test.
func startNginx(t *testing.T, listen, gatehouseAddr, productAddr string) {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	user := ""
	if os.Geteuid() == 0 { // else the workers would drop to nobody, who cannot write dir
		user = "user root root;\n"
	}
	conf := user + fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
`, dir) + readmeNginx(t, listen, gatehouseAddr, productAddr) + "}\n"
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error log:\n%s", b)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s", waitErr, b)
		default:
		}
		if res, err := http.Get("http://" + listen + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx did not answer within 10s")
		}
	}
}

// productSeen is what the product behind nginx received.
type productSeen struct {
	Method  string              `json:"method"`
	URI     string              `json:"uri"`
	Body    string              `json:"body"`
	Cookie  string              `json:"cookie"`
	Headers map[string][]string `json:"headers"` // the X-Gatehouse-* ones
}

// newProduct is the product: it answers every request with what it got.
func newProduct(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		seen := productSeen{Method: r.Method, URI: r.RequestURI, Body: string(b), Cookie: r.Header.Get("Cookie"), Headers: map[string][]string{}}
		for k, v := range r.Header {
			if strings.HasPrefix(k, "X-Gatehouse") {
				seen.Headers[k] = v
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// faBrowser is a browser without JavaScript: it keeps cookies and sends
// Accept: text/html, and shows each redirect instead of following it.
type faBrowser struct {
	t      *testing.T
	client *http.Client
	cookie string // gatehouse_session
}

func newFABrowser(t *testing.T) *faBrowser {
	return &faBrowser{t: t, client: &http.Client{Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *faBrowser) send(method, u string, form url.Values, header map[string]string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.cookie != "" {
		req.Header.Set("Cookie", "theme=dark; gatehouse_session="+b.cookie+"; lang=en")
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	for _, c := range res.Cookies() {
		if c.Name == "gatehouse_session" {
			b.cookie = c.Value
		}
	}
	return res, string(out)
}

// hidden is the value of a page's hidden field name ("" without one).
func hidden(page, name string) string {
	if m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(page); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

// formNext is the value of a page's hidden next field.
func formNext(page string) string { return hidden(page, "next") }

// signIn follows a sign-in redirect as a person would: the sign-in page,
// "username@organization", then the password form, carrying the next
// field each page gives. It returns where the password form sends the
// browser.
func (b *faBrowser) signIn(loc, username, password string) string {
	b.t.Helper()
	res, page := b.send("GET", loc, nil, nil)
	if res.StatusCode != 200 {
		b.t.Fatalf("sign-in page %s: %d", loc, res.StatusCode)
	}
	base := loc[:strings.Index(loc, "/login")]
	res, page = b.send("POST", base+"/login", url.Values{"username": {username + "@acme"}, "next": {formNext(page)}}, nil)
	if res.StatusCode != 200 || !strings.Contains(page, `action="/login/password"`) {
		b.t.Fatalf("sign-in: %d %s", res.StatusCode, page)
	}
	res, page = b.send("POST", base+"/login/password", url.Values{"organization": {"acme"}, "org_fixed": {"1"}, "username": {username},
		"password": {password}, "next": {formNext(page)}}, nil)
	if res.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("password sign-in: %d %s", res.StatusCode, page)
	}
	return res.Header.Get("Location")
}

// product asks nginx for a product page and decodes what the product got;
// the zero productSeen when nginx did not pass the request on.
func (b *faBrowser) product(method, u string, header map[string]string) (*http.Response, productSeen) {
	b.t.Helper()
	var form url.Values
	if method == "POST" {
		form = url.Values{"field": {"value"}}
	}
	res, body := b.send(method, u, form, header)
	var seen productSeen
	if res.StatusCode == 200 {
		if err := json.Unmarshal([]byte(body), &seen); err != nil {
			b.t.Fatalf("%s %s: not the product's answer: %s", method, u, body)
		}
	}
	return res, seen
}

// forwardAuthEnv is gatehouse serve behind nginx, with a product under
// /app/: acme's administrator Ivan (an Administrator with a non-ASCII
// name) has a password; key is a Super Administrator's API key.
type forwardAuthEnv struct {
	env      map[string]string
	srv      *server
	base     string // nginx: gatehouse's base URL
	key      string
	ivan     store.Administrator
	org      store.Org
	password string
}

func startForwardAuth(t *testing.T, dsn string, s *store.SQL) *forwardAuthEnv {
	t.Helper()
	nginxBinary(t)
	front, gate := freeAddr(t), freeAddr(t)
	e := &forwardAuthEnv{base: "http://" + front, password: "a very good passphrase",
		env: map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32))}}
	if r := gatehouse(t, e.env, append([]string{"org", "create", "--base-url", e.base}, bareOrgArgs("acme", "--domain", "example.com")[2:]...)...); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := gatehouse(t, e.env, "api-key", "create", "--org", "acme", "--name", "forward-auth test")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	e.key = strings.TrimSpace(r.stdout)
	e.srv = startServe(t, gate, e.env, "--addr", gate, "--base-url", e.base, "--trust-forwarded-for")
	product := newProduct(t)
	startNginx(t, front, gate, strings.TrimPrefix(product.URL, "http://"))

	res, body := e.api(t, "POST", "/administrators", `{"username":"ivan","firstName":"Иван","lastName":"Петров 100%","email":"ivan@example.com"}`)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("invite: %d %s", res.StatusCode, body)
	}
	var token string
	for deadline := time.Now().Add(10 * time.Second); token == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := regexp.MustCompile(`activate\?token=([A-Za-z0-9_-]+)`).FindStringSubmatch(e.srv.stderr.String()); m != nil {
			token = m[1]
		}
	}
	if token == "" {
		t.Fatal("no activation link in the log")
	}
	if res, body := e.api(t, "POST", "/activation", `{"token":"`+token+`","password":"`+e.password+`"}`); res.StatusCode != 200 {
		t.Fatalf("activate: %d %s", res.StatusCode, body)
	}
	var err error
	if e.org, err = s.OrgBySlug(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if e.ivan, err = s.AdministratorByUsername(ctx, e.org.ID, "ivan"); err != nil {
		t.Fatal(err)
	}
	return e
}

// api calls the management API through nginx with the API key.
func (e *forwardAuthEnv) api(t *testing.T, method, path, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.base+"/api/v1"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// wantIvan fails unless the product got exactly Ivan's headers, once each.
func (e *forwardAuthEnv) wantIvan(t *testing.T, seen productSeen) {
	t.Helper()
	want := map[string]string{
		"X-Gatehouse-User":     e.ivan.ID,
		"X-Gatehouse-Username": "ivan",
		"X-Gatehouse-Email":    "ivan@example.com",
		// UTF-8, percent-encoded; '%' itself too.
		"X-Gatehouse-Name":   "%D0%98%D0%B2%D0%B0%D0%BD %D0%9F%D0%B5%D1%82%D1%80%D0%BE%D0%B2 100%25",
		"X-Gatehouse-Org":    "acme",
		"X-Gatehouse-Org-Id": e.org.ID,
		"X-Gatehouse-Role":   "Administrator",
	}
	for k, v := range want {
		if got := seen.Headers[k]; len(got) != 1 || got[0] != v {
			t.Errorf("the product got %s: %q, want %q", k, got, v)
		}
	}
	if name, err := url.PathUnescape(seen.Headers["X-Gatehouse-Name"][0]); err != nil || name != "Иван Петров 100%" {
		t.Errorf("X-Gatehouse-Name decodes to %q, %v", name, err)
	}
	if len(seen.Headers) != len(want) {
		t.Errorf("the product got other X-Gatehouse headers: %v", seen.Headers)
	}
	if strings.Contains(seen.Cookie, "gatehouse_session") || seen.Cookie != "theme=dark; lang=en" {
		t.Errorf("the product got the cookies %q; want gatehouse's session taken out", seen.Cookie)
	}
}

// refused fails unless nginx refused the product page: a browser's page
// is sent to sign in (with next, the page), a script's request gets 401.
func (e *forwardAuthEnv) refused(t *testing.T, b *faBrowser, page string) {
	t.Helper()
	res, seen := b.product("GET", e.base+page, nil)
	want := e.base + "/login?next=" + url.QueryEscape(page)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != want || seen.URI != "" {
		t.Errorf("GET %s: %d to %q, want 302 to %q", page, res.StatusCode, res.Header.Get("Location"), want)
	}
	res, _ = b.product("GET", e.base+page, map[string]string{"Accept": "application/json"})
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Location") != "" {
		t.Errorf("GET %s as a script: %d %q, want 401 without Location", page, res.StatusCode, res.Header.Get("Location"))
	}
}

// TestForwardAuthBehindNginx: a real nginx (Debian's) in front of a real
// gatehouse serve and a product, with auth_request /auth/verify, on both
// databases: a signed-out visit goes to sign-in and, once signed in with a
// password, back to the page, which gets the administrator's headers and
// never a client's own; a POST passes; the administrator deactivated
// through the API, then through SCIM, deleted through SCIM, or signed
// out, is refused at the next request; a session that must change its password or enrol TOTP
// goes through that step and back to the page, as does a sign-in with a
// TOTP code; no Host or header a client sends makes the
// sign-in return elsewhere.
func TestForwardAuthBehindNginx(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		e := startForwardAuth(t, dsn, s)
		b := newFABrowser(t)
		const page = "/app/reports/q3?year=2026&sort=name"

		// Signed out: to the sign-in page, and back after it.
		e.refused(t, b, page)
		res, _ := b.product("GET", e.base+page, nil)
		loc := b.signIn(res.Header.Get("Location"), "ivan", e.password)
		if loc != page {
			t.Fatalf("the sign-in returns to %q, want %q", loc, page)
		}
		spoofed := map[string]string{"X-Gatehouse-User": "someone-else", "X-Gatehouse-Role": "Super Administrator",
			"X-Gatehouse-Org": "other", "X-Gatehouse-Email": "x@evil.test", "X-Gatehouse-Name": "Mallory", "X-Gatehouse-Username": "admin",
			"X-Gatehouse-Org-Id": "x"}
		res, seen := b.product("GET", e.base+loc, spoofed)
		if res.StatusCode != 200 || seen.URI != page || seen.Method != "GET" {
			t.Fatalf("GET %s signed in: %d %+v", page, res.StatusCode, seen)
		}
		e.wantIvan(t, seen)
		res, seen = b.product("POST", e.base+"/app/form", nil)
		if res.StatusCode != 200 || seen.Method != "POST" || seen.Body != "field=value" {
			t.Fatalf("POST through nginx: %d %+v", res.StatusCode, seen)
		}
		e.wantIvan(t, seen)

		// Concurrent requests all pass while the session lives...
		burst := func() map[int]int {
			statuses := map[int]int{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					res, _ := b.product("GET", e.base+page, nil)
					mu.Lock()
					statuses[res.StatusCode]++
					mu.Unlock()
				})
			}
			wg.Wait()
			return statuses
		}
		if got := burst(); got[200] != 16 {
			t.Fatalf("16 concurrent requests signed in: %v", got)
		}
		// ...and none once the API's deactivation is answered.
		if res, body := e.api(t, "POST", "/administrators/"+e.ivan.ID+"/deactivate", ""); res.StatusCode != 200 {
			t.Fatalf("deactivate: %d %s", res.StatusCode, body)
		}
		if got := burst(); got[http.StatusFound] != 16 {
			t.Fatalf("16 concurrent requests after the deactivation: %v", got)
		}
		e.refused(t, b, page)

		// Reactivated, signed in again: back in; signed out: refused.
		if res, body := e.api(t, "POST", "/administrators/"+e.ivan.ID+"/reactivate", ""); res.StatusCode != 200 {
			t.Fatalf("reactivate: %d %s", res.StatusCode, body)
		}
		b.signIn(e.base+"/login?next="+url.QueryEscape(page), "ivan", e.password)
		if res, seen := b.product("GET", e.base+page, nil); res.StatusCode != 200 {
			t.Fatalf("signed in again: %d", res.StatusCode)
		} else {
			e.wantIvan(t, seen)
		}
		if res, _ := b.send("POST", e.base+"/logout", url.Values{}, nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign out: %d", res.StatusCode)
		}
		e.refused(t, b, page)

		// A password the administrator must change: the step first, then
		// the page.
		const given = "a password from the admin"
		if res, body := e.api(t, "PUT", "/administrators/"+e.ivan.ID+"/password", `{"password":"`+given+`","mustChangePassword":true}`); res.StatusCode != 204 {
			t.Fatalf("set password: %d %s", res.StatusCode, body)
		}
		if loc := b.signIn(e.base+"/login?next="+url.QueryEscape(page), "ivan", given); loc != page {
			t.Fatalf("sign-in with a password to change goes to %q", loc)
		}
		res, _ = b.product("GET", e.base+page, nil)
		if want := e.base + "/account/password?next=" + url.QueryEscape(page); res.StatusCode != http.StatusFound || res.Header.Get("Location") != want {
			t.Fatalf("a session that must change its password: %d to %q, want %q", res.StatusCode, res.Header.Get("Location"), want)
		}
		res, body := b.send("GET", res.Header.Get("Location"), nil, nil)
		if res.StatusCode != 200 || formNext(body) != page {
			t.Fatalf("the password step's page: %d, next %q", res.StatusCode, formNext(body))
		}
		res, body = b.send("POST", e.base+"/account/password", url.Values{"current": {given}, "password": {e.password},
			"confirm": {e.password}, "next": {formNext(body)}}, nil)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != page {
			t.Fatalf("password changed: %d to %q, want %q: %s", res.StatusCode, res.Header.Get("Location"), page, body)
		}
		if res, seen := b.product("GET", e.base+page, nil); res.StatusCode != 200 {
			t.Fatalf("after the password step: %d", res.StatusCode)
		} else {
			e.wantIvan(t, seen)
		}

		// The organization requires TOTP: the enrolment step, then the
		// page; the next sign-in asks for a code, and returns to the page.
		if res, body := e.api(t, "PATCH", "/organization", `{"requireTotp":true}`); res.StatusCode != 200 {
			t.Fatalf("require TOTP: %d %s", res.StatusCode, body)
		}
		b.send("POST", e.base+"/logout", url.Values{}, nil)
		if loc := b.signIn(e.base+"/login?next="+url.QueryEscape(page), "ivan", e.password); loc != page {
			t.Fatalf("sign-in that must enrol TOTP goes to %q", loc)
		}
		res, _ = b.product("GET", e.base+page, nil)
		if want := e.base + "/account/two-factor?next=" + url.QueryEscape(page); res.StatusCode != http.StatusFound || res.Header.Get("Location") != want {
			t.Fatalf("a session that must enrol TOTP: %d to %q, want %q", res.StatusCode, res.Header.Get("Location"), want)
		}
		res, body = b.send("GET", res.Header.Get("Location"), nil, nil)
		secret := hidden(body, "secret")
		if res.StatusCode != 200 || formNext(body) != page || secret == "" {
			t.Fatalf("the TOTP step's page: %d, next %q", res.StatusCode, formNext(body))
		}
		now := time.Now()
		code, _ := totp.GenerateCode(secret, now)
		res, body = b.send("POST", e.base+"/account/two-factor", url.Values{"secret": {secret}, "totp_url": {hidden(body, "totp_url")},
			"ticket": {hidden(body, "ticket")}, "code": {code}, "next": {formNext(body)}}, nil)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != page {
			t.Fatalf("TOTP enrolled: %d to %q, want %q: %s", res.StatusCode, res.Header.Get("Location"), page, body)
		}
		if res, _ := b.product("GET", e.base+page, nil); res.StatusCode != 200 {
			t.Fatalf("after the TOTP step: %d", res.StatusCode)
		}
		b.send("POST", e.base+"/logout", url.Values{}, nil)
		res, _ = b.product("GET", e.base+page, nil)
		res, body = b.send("GET", res.Header.Get("Location"), nil, nil)
		res, body = b.send("POST", e.base+"/login", url.Values{"username": {"ivan@acme"}, "next": {formNext(body)}}, nil)
		form := url.Values{"organization": {"acme"}, "org_fixed": {"1"}, "username": {"ivan"}, "password": {e.password}, "next": {formNext(body)}}
		res, body = b.send("POST", e.base+"/login/password", form, nil)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `name="totp"`) || formNext(body) != page {
			t.Fatalf("a password without its code: %d, next %q", res.StatusCode, formNext(body))
		}
		code, _ = totp.GenerateCode(secret, now.Add(30*time.Second)) // the enrolment's code is spent
		form.Set("totp", code)
		if res, body = b.send("POST", e.base+"/login/password", form, nil); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != page {
			t.Fatalf("password and code: %d to %q: %s", res.StatusCode, res.Header.Get("Location"), body)
		}
		if res, seen := b.product("GET", e.base+page, nil); res.StatusCode != 200 {
			t.Fatalf("signed in with a code: %d", res.StatusCode)
		} else {
			e.wantIvan(t, seen)
		}

		// The IdP deactivates the administrator over SCIM: refused at once.
		if r := gatehouse(t, e.env, "scim", "enable", "--org", "acme"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		token := strings.TrimSpace(gatehouse(t, e.env, "scim", "token", "create", "--org", "acme").stdout)
		req, _ := http.NewRequest("PATCH", e.base+"/scim/v2/Users/"+e.ivan.ID, strings.NewReader(
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		if res, body := do(t, req); res.StatusCode != 200 {
			t.Fatalf("SCIM deactivation: %d %s", res.StatusCode, body)
		}
		e.refused(t, b, page)

		// Open redirects: a Host of the client's choosing, or a next
		// posted to the sign-in, never sends the browser elsewhere.
		b.cookie = ""
		for _, host := range []string{"evil.test", "evil.test:" + e.base[strings.LastIndexByte(e.base, ':')+1:]} {
			req, _ := http.NewRequest("GET", e.base+page, nil)
			req.Host = host
			req.Header.Set("Accept", "text/html")
			res, err := b.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusFound || res.Header.Get("Location") != e.base+"/login" {
				t.Errorf("Host %s: %d to %q, want 302 to %s/login without next", host, res.StatusCode, res.Header.Get("Location"), e.base)
			}
		}
		for _, args := range [][]string{{"administrator", "reactivate", "--org", "acme", "--override-scim-lock", "ivan"},
			{"administrator", "reset-totp", "--org", "acme", "ivan"}} {
			if r := gatehouse(t, e.env, args...); r.code != 0 {
				t.Fatal(r.stderr)
			}
		}
		if res, body := e.api(t, "PATCH", "/organization", `{"requireTotp":false}`); res.StatusCode != 200 {
			t.Fatalf("TOTP no longer required: %d %s", res.StatusCode, body)
		}
		for _, next := range []string{"https://evil.test/x", "//evil.test/x", "/\\evil.test", "javascript:alert(1)"} {
			res, _ := b.send("POST", e.base+"/login/password", url.Values{"organization": {"acme"}, "username": {"ivan"},
				"password": {e.password}, "next": {next}}, nil)
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
				t.Errorf("sign-in with next %q: %d to %q, want 303 to /", next, res.StatusCode, res.Header.Get("Location"))
			}
		}

		// Signed in again, then deleted by the IdP: refused at once.
		if res, _ := b.product("GET", e.base+page, nil); res.StatusCode != 200 {
			t.Fatalf("signed in after the open-redirect attempts: %d", res.StatusCode)
		}
		req, _ = http.NewRequest("DELETE", e.base+"/scim/v2/Users/"+e.ivan.ID, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if res, body := do(t, req); res.StatusCode != http.StatusNoContent {
			t.Fatalf("SCIM deletion: %d %s", res.StatusCode, body)
		}
		e.refused(t, b, page)
	})
}

// TestServeForwardAuthVerify: /auth/verify through gatehouse serve alone
// (no proxy), on both databases: signed out it is a 401, with a sign-in
// Location for a page only; signed in a 200 naming the administrator;
// HEAD answers the same headers; other methods are 405; nothing is
// cacheable; an unknown, over-long or ended session is a 401; a next on
// another origin is dropped.
func TestServeForwardAuthVerify(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		env := map[string]string{"GATEHOUSE_DB": dsn}
		r := gatehouse(t, env, orgArgs("acme", "--domain", "example.com")...)
		if r.code != 0 {
			t.Fatal(r.stderr)
		}
		addr := freeAddr(t)
		base := "http://" + addr
		startServe(t, addr, env, "--addr", addr, "--base-url", base)
		session := ownerSession(t, base, parseOrgCreate(t, r.stdout).link, "a very good passphrase").Value
		org, _ := s.OrgBySlug(ctx, "acme")
		jane, _ := s.AdministratorByUsername(ctx, org.ID, "Jane.Doe")

		verify := func(method, cookie string, header map[string]string) (*http.Response, string) {
			t.Helper()
			req, _ := http.NewRequest(method, base+"/auth/verify", nil)
			if cookie != "" {
				req.Header.Set("Cookie", "gatehouse_session="+cookie)
			}
			for k, v := range header {
				req.Header.Set(k, v)
			}
			res, body := do(t, req)
			if method != "POST" && res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s %v: Cache-Control %q", method, header, res.Header.Get("Cache-Control"))
			}
			return res, body
		}
		page := map[string]string{"Accept": "text/html", "X-Original-URL": base + "/app/x?y=1"}
		for _, tc := range []struct {
			name, method, cookie string
			header               map[string]string
			status               int
			location             string
		}{
			{"signed out, a script", "GET", "", map[string]string{"Accept": "application/json", "X-Original-URL": base + "/app"}, 401, ""},
			{"signed out, a page", "GET", "", page, 401, base + "/login?next=%2Fapp%2Fx%3Fy%3D1"},
			{"signed out, a page, path only", "GET", "", map[string]string{"Accept": "text/html", "X-Original-URI": "/app/z"}, 401, base + "/login?next=%2Fapp%2Fz"},
			{"signed out, a page elsewhere", "GET", "", map[string]string{"Accept": "text/html", "X-Original-URL": "https://evil.test/app"}, 401, base + "/login"},
			{"signed out, scheme-relative", "GET", "", map[string]string{"Accept": "text/html", "X-Original-URI": "//evil.test/app"}, 401, base + "/login"},
			{"signed out, a page, no URL", "GET", "", map[string]string{"Accept": "text/html"}, 401, base + "/login"},
			{"unknown session", "GET", "x" + session[1:], page, 401, base + "/login?next=%2Fapp%2Fx%3Fy%3D1"},
			{"over-long session", "GET", strings.Repeat("a", 4000), page, 401, base + "/login?next=%2Fapp%2Fx%3Fy%3D1"},
			{"signed in", "GET", session, page, 200, ""},
			{"signed in, HEAD", "HEAD", session, page, 200, ""},
			{"POST", "POST", session, page, 405, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res, body := verify(tc.method, tc.cookie, tc.header)
				if res.StatusCode != tc.status || res.Header.Get("Location") != tc.location {
					t.Fatalf("%d %q, want %d %q: %s", res.StatusCode, res.Header.Get("Location"), tc.status, tc.location, body)
				}
				if tc.status != 200 {
					if res.Header.Get("X-Gatehouse-User") != "" {
						t.Errorf("a refusal names a user: %v", res.Header)
					}
					return
				}
				for k, v := range map[string]string{"X-Gatehouse-User": jane.ID, "X-Gatehouse-Username": "Jane.Doe", "X-Gatehouse-Email": "jane@example.com",
					"X-Gatehouse-Name": "Jane Doe", "X-Gatehouse-Org": "acme", "X-Gatehouse-Org-Id": org.ID, "X-Gatehouse-Role": "Super Administrator"} {
					if got := res.Header.Values(k); len(got) != 1 || got[0] != v {
						t.Errorf("%s: %q, want %q", k, got, v)
					}
				}
				if tc.method == "HEAD" && body != "" {
					t.Errorf("HEAD has a body: %q", body)
				}
			})
		}
		// The session ended (signed out through the API): refused at once.
		req, _ := http.NewRequest("DELETE", base+"/api/v1/session", nil)
		req.Header.Set("Cookie", "gatehouse_session="+session)
		if res, body := do(t, req); res.StatusCode != 204 {
			t.Fatalf("sign out: %d %s", res.StatusCode, body)
		}
		if res, _ := verify("GET", session, nil); res.StatusCode != 401 {
			t.Errorf("after sign-out: %d", res.StatusCode)
		}
	})
}
