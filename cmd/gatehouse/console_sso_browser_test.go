package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The console's Single sign-on tab in a real browser, against a real
// gatehouse serve and a real SAML identity provider: SimpleSAMLphp from
// Debian on loopback (the harness of sso/saml, in short), and for OpenID
// Connect the certified oidc-provider of testdata/oidc-provider when its
// npm install is there.

// consoleIdP is a running SimpleSAMLphp whose users are Alice/password
// and alice2/password2 (its uid, sent as the NameID).
type consoleIdP struct {
	base, metadataURL string
	dir               string
	data              map[string]any
	out               *bytes.Buffer
}

var consoleIdPUsers = []map[string]string{
	{"Login": "Alice:password", "Username": "Alice", "Email": "alice@example.com", "DisplayName": "Alice Example"},
	{"Login": "alice2:password2", "Username": "alice2", "Email": "alice2@example.com", "DisplayName": "Alice Two"},
}

// startConsoleIdP starts SimpleSAMLphp knowing no service provider yet:
// knowSP points it at gatehouse's SP metadata once the console made the
// connection (php -S reads the configuration at every request).
func startConsoleIdP(t *testing.T) *consoleIdP {
	t.Helper()
	const root = "/usr/share/simplesamlphp"
	php, err := exec.LookPath("php")
	if _, serr := os.Stat(filepath.Join(root, "www", "module.php")); err != nil || serr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("SimpleSAMLphp is required in CI (apt-get install simplesamlphp php-cli php-xml)")
		}
		t.Skip("SimpleSAMLphp is not installed (apt-get install simplesamlphp php-cli php-xml); CI=true makes this a failure")
	}
	dir := t.TempDir()
	for _, d := range []string{"config", "metadata", "cert", "log", "sessions", "tmp", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cert, key := consoleKeyPair(t)
	os.WriteFile(filepath.Join(dir, "cert", "idp.crt"), []byte(cert), 0o600)
	os.WriteFile(filepath.Join(dir, "cert", "idp.key"), []byte(key), 0o600)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	salt := make([]byte, 16)
	rand.Read(salt)
	idp := &consoleIdP{base: "http://" + host, dir: dir, out: &bytes.Buffer{}}
	idp.metadataURL = idp.base + "/saml2/idp/metadata.php"
	idp.data = map[string]any{
		"BaseURL": idp.base + "/", "Host": host, "CertDir": filepath.Join(dir, "cert") + "/",
		"LogDir": filepath.Join(dir, "log") + "/", "DataDir": filepath.Join(dir, "data") + "/",
		"TempDir": filepath.Join(dir, "tmp"), "MetadataDir": filepath.Join(dir, "metadata") + "/",
		"SessionDir": filepath.Join(dir, "sessions"), "SecretSalt": hex.EncodeToString(salt), "AdminPassword": hex.EncodeToString(salt[:8]),
		"Users": consoleIdPUsers, "SP": map[string]any{"EntityID": "urn:nobody-yet", "ACSURL": "http://127.0.0.1:1/acs", "CertData": ""},
		"SignResponse": true, "SignAssertion": true, "SignatureAlgorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
		"SPMetadataURL": "",
	}
	idp.render(t)
	// No opcode cache: knowSP rewrites the configuration, which PHP's
	// cache would keep for up to opcache.revalidate_freq seconds.
	cmd := exec.Command(php, "-d", "opcache.enable=0", "-S", host, "-t", filepath.Join(root, "www"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SIMPLESAMLPHP_CONFIG_DIR="+filepath.Join(dir, "config"))
	cmd.Stdout, cmd.Stderr = idp.out, idp.out
	runUntilReady(t, "SimpleSAMLphp", cmd, idp.metadataURL, func() string {
		log, _ := os.ReadFile(filepath.Join(dir, "log", "simplesamlphp.log"))
		return string(log)
	})
	return idp
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// knowSP has the IdP read the SP's metadata from gatehouse's URL.
func (idp *consoleIdP) knowSP(t *testing.T, spMetadataURL string) {
	t.Helper()
	idp.data["SPMetadataURL"] = spMetadataURL
	idp.render(t)
}

func (idp *consoleIdP) render(t *testing.T) {
	t.Helper()
	php := func(v any) string {
		switch v := v.(type) {
		case string:
			return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
		case bool:
			return strconv.FormatBool(v)
		}
		panic(fmt.Sprintf("no PHP literal for %T", v))
	}
	for name, out := range map[string]string{"config.php.tmpl": "config/config.php", "authsources.php.tmpl": "config/authsources.php",
		"saml20-idp-hosted.php.tmpl": "metadata/saml20-idp-hosted.php", "saml20-sp-remote.php.tmpl": "metadata/saml20-sp-remote.php"} {
		tmpl, err := template.New(name).Funcs(template.FuncMap{"php": php}).ParseFiles(filepath.Join("..", "..", "testdata", "simplesamlphp", name))
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, idp.data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(idp.dir, out), b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func consoleKeyPair(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "console test IdP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// startConsoleOIDCProvider runs testdata/oidc-provider/provider.mjs and
// returns its issuer, or "" when its npm install is missing (an error
// under CI=true).
func startConsoleOIDCProvider(t *testing.T) string {
	t.Helper()
	missing := func(why string) string {
		if os.Getenv("CI") == "true" {
			t.Fatalf("oidc-provider is required in CI: %s", why)
		}
		t.Logf("no oidc-provider (%s): the OIDC connection is checked at the form only", why)
		return ""
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return missing("no node")
	}
	cache := os.Getenv("GATEHOUSE_OIDC_PROVIDER_CACHE")
	if cache == "" {
		d, _ := os.UserCacheDir()
		cache = filepath.Join(d, "gatehouse-oidc-provider")
	}
	want, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "oidc-provider", "package-lock.json"))
	got, err := os.ReadFile(filepath.Join(cache, "installed-lock.json"))
	if err != nil || !bytes.Equal(got, want) {
		return missing(cache + " does not hold the install of testdata/oidc-provider")
	}
	dir := t.TempDir()
	script, err := os.ReadFile(filepath.Join("..", "..", "testdata", "oidc-provider", "provider.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "provider.mjs"), script, 0o644)
	if err := os.Symlink(filepath.Join(cache, "node_modules"), filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "provider.mjs")
	cmd.Dir = dir
	// The redirect URI is registered before the connection exists: the
	// test creates the connection (discovery) and does not sign in.
	cmd.Env = append(os.Environ(), "OIDC_CLIENT_ID=gatehouse", "OIDC_CLIENT_SECRET=s3cret-of-the-client", "OIDC_REDIRECT_URI=http://127.0.0.1:1/callback")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		io.Copy(io.Discard, out)
	}()
	select {
	case s := <-line:
		var started struct{ Issuer string }
		if json.Unmarshal([]byte(s), &started) != nil || started.Issuer == "" {
			t.Fatalf("provider.mjs printed %q", s)
		}
		return started.Issuer
	case <-time.After(30 * time.Second):
		t.Fatal("provider.mjs did not start")
	}
	return ""
}

// ssoConnections lists the organization's connections over the API.
func ssoConnections(t *testing.T, f *serveFixture) []map[string]any {
	t.Helper()
	resp, body := f.call(t, "GET", "/api/v1/sso/connections", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("list connections: %d %s", resp.StatusCode, body)
	}
	var out struct{ Items []map[string]any }
	json.Unmarshal([]byte(body), &out)
	return out.Items
}

// idpSignIn signs in at SimpleSAMLphp's form, after forgetting its
// session (its cookies share 127.0.0.1 with gatehouse's), and waits to be
// back at gatehouse under path.
func (p *page) idpSignIn(idp *consoleIdP, user, password, backAt string) {
	p.t.Helper()
	p.do("wait for the IdP's form", chromedp.WaitVisible(chromedp.CSS("#username")))
	if loc := p.location(); !strings.HasPrefix(loc, idp.base) {
		p.t.Fatalf("not at the IdP: %s", loc)
	}
	p.do("sign in at the IdP", chromedp.SendKeys(chromedp.CSS("#username"), user), chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#password").form.submit()`))
	for deadline := time.Now().Add(20 * time.Second); !strings.HasPrefix(p.location(), backAt); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			p.t.Fatalf("the IdP sign-in did not come back to %s: at %s\n%s", backAt, p.location(), p.text("body"))
		}
	}
	p.do("wait for the page", chromedp.WaitReady(chromedp.CSS("body")))
}

// forgetIdP deletes SimpleSAMLphp's session cookies.
func (p *page) forgetIdP() {
	p.t.Helper()
	var steps []chromedp.Action[chromedp.Void]
	for _, name := range []string{"SimpleSAML", "SimpleSAMLSessionID", "SimpleSAMLAuthToken"} {
		steps = append(steps, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, network.DeleteCookies, network.DeleteCookiesParams{Name: name, Domain: "127.0.0.1"})
			return err
		}))
	}
	p.do("forget the IdP's session", steps...)
}

// TestConsoleSSO: a Super Administrator sets up single sign-on in the
// console: bad input refused at its field and nothing created; a SAML
// connection from SimpleSAMLphp's metadata URL, with what to give the
// IdP; Test connection showing a near miss (the IdP's "Alice" against
// gatehouse's "alice") and a success; a real sign-in through it landing
// signed in; an Administrator who can neither see nor post SSO changes;
// an OIDC connection; enable/disable and the username source; require
// SSO with a break-glass Super Administrator; deletion after a
// confirmation.
func TestConsoleSSO(t *testing.T) {
	ctx := browser(t)
	idp := startConsoleIdP(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	bg := context.Background()

	// Jane (the owner, Super Administrator) is active; "alice" (whom the
	// IdP's "Alice" nearly matches) and "alice2" (Administrator, active)
	// are invited.
	activate := func(link string) {
		t.Helper()
		token := link[strings.Index(link, "token=")+len("token="):]
		if a := postJSON(t, f.srv.base+"/api/v1/activation", `{"token":"`+token+`","password":"`+consolePassword+`"}`, ""); a.status != 200 {
			t.Fatalf("activation: %d %v", a.status, a.body)
		}
	}
	activate(f.link)
	prev := ""
	for _, u := range []string{"alice", "alice2"} {
		if resp, body := f.call(t, "POST", "/api/v1/administrators", `{"username":"`+u+`","firstName":"Alice","lastName":"`+u+`","email":"`+u+`@example.com"}`, nil); resp.StatusCode != 201 {
			t.Fatalf("invite %s: %d %s", u, resp.StatusCode, body)
		}
		// The email goes out in the background: wait for this one's link.
		link := lastLink(t, f.srv, "/activate")
		for deadline := time.Now().Add(10 * time.Second); link == prev && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			link = lastLink(t, f.srv, "/activate")
		}
		activate(link)
		prev = link
	}

	p.open(f.srv.base + "/login/password?org=acme")
	p.submit("form", map[string]string{"#u": "Jane.Doe", "#p": consolePassword})
	p.open(f.srv.base + "/preferences/sso")
	p.expect("h1", "Preferences")
	p.expect("#conns-h", "Connections")
	p.expect("main", "No connection yet")
	p.shot("sso")

	// Bad input: each refused at its field, nothing created.
	p.open(f.srv.base + "/preferences/sso/new/saml")
	p.shot("sso-new-saml")
	p.submit("#new-saml form", map[string]string{"#name": "Unreachable", "#metadata_url": "http://127.0.0.1:1/metadata.xml"})
	p.expect("#metadata_url-error", "Fetching the IdP metadata")
	if v := p.text("#metadata_url-error"); strings.Contains(v, "sso:") {
		t.Errorf("the refusal shows the package prefix: %q", v)
	}
	notXML := filepath.Join(t.TempDir(), "metadata.xml")
	os.WriteFile(notXML, []byte("%PDF-1.4 this is not metadata"), 0o600)
	p.do("choose a file that is not XML", chromedp.Click(chromedp.CSS("#how-file")),
		chromedp.SetUploadFiles(chromedp.CSS("#metadata_file"), []string{notXML}))
	p.submit("#new-saml form", map[string]string{"#name": "Not XML"})
	p.expect("#metadata_file-error", "not XML")
	p.shot("sso-new-saml-errors")
	huge := filepath.Join(t.TempDir(), "huge.xml")
	os.WriteFile(huge, append([]byte("<EntityDescriptor>"), bytes.Repeat([]byte("<x/>"), 300<<10)...), 0o600)
	p.do("choose a file over 1 MB", chromedp.Click(chromedp.CSS("#how-file")),
		chromedp.SetUploadFiles(chromedp.CSS("#metadata_file"), []string{huge}))
	p.submit("#new-saml form", map[string]string{"#name": "Huge"})
	p.expect("#metadata_file-error", "larger than 1 MB")
	badXML := filepath.Join(t.TempDir(), "bad.xml")
	os.WriteFile(badXML, []byte(`<?xml version="1.0"?><EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>`), 0o600)
	p.do("choose metadata without an IdP", chromedp.Click(chromedp.CSS("#how-file")),
		chromedp.SetUploadFiles(chromedp.CSS("#metadata_file"), []string{badXML}))
	p.submit("#new-saml form", map[string]string{"#name": "No IdP"})
	p.expect("#metadata_file-error", "")
	if got := p.text("#metadata_file-error"); got == "" {
		t.Fatalf("metadata without an IdP: no message at the file field: %s", p.text("main"))
	}
	if cs := ssoConnections(t, f); len(cs) != 0 {
		t.Fatalf("refused forms created connections: %v", cs)
	}

	// The SAML connection from SimpleSAMLphp's metadata URL.
	p.open(f.srv.base + "/preferences/sso/new/saml")
	p.submit("#new-saml form", map[string]string{"#name": "SimpleSAMLphp", "#metadata_url": idp.metadataURL})
	p.expect("#conn-h", "SimpleSAMLphp")
	p.expect(".note", "The connection is created")
	loc, _ := url.Parse(p.location())
	connID := strings.TrimPrefix(loc.Path, "/preferences/sso/")
	if p.text("#sp-acs") != f.srv.base+"/sso/saml/"+connID+"/acs" || p.text("#sp-metadata") != f.srv.base+"/sso/saml/"+connID+"/metadata" ||
		p.text("#sp-entity") == "" {
		t.Fatalf("what to give the IdP: entity %q ACS %q metadata %q", p.text("#sp-entity"), p.text("#sp-acs"), p.text("#sp-metadata"))
	}
	p.shot("sso-created-saml")
	cs := ssoConnections(t, f)
	if len(cs) != 1 || cs[0]["id"] != connID || cs[0]["kind"] != "saml" || cs[0]["enabled"] != true || cs[0]["usernameFrom"] != "nameid" {
		t.Fatalf("the API shows %v", cs)
	}
	idp.knowSP(t, p.text("#sp-metadata"))

	// Test connection: the IdP's "Alice" is a near miss of "alice".
	p.forgetIdP()
	p.do("test", chromedp.Click(chromedp.CSS("#test-connection")))
	p.idpSignIn(idp, "Alice", "password", f.srv.base+"/preferences/sso/"+connID+"/tests/")
	p.expect("#test-h", "Test of SimpleSAMLphp")
	p.expect(".sso-verdict", "No administrator matched exactly")
	p.expect(".sso-nearmiss", `The identity provider sent “Alice”.`)
	p.expect(".sso-nearmiss", "Usernames are case-sensitive.")
	p.expect(".sso-nearmiss", `“alice” exists in gatehouse.`)
	p.expect("main", "console test IdP") // the certificate
	p.expect("main", "Not on or after")
	p.expect(".sso-attrs", "alice@example.com")
	p.shot("sso-test-near-miss")
	if sess := p.cookie(f.srv.base+"/", "gatehouse_session"); sess == "" {
		t.Fatal("the test lost the tester's session")
	}

	// And a success, as alice2.
	p.forgetIdP()
	p.do("test again", chromedp.Click(chromedp.CSS("#test-again")))
	p.idpSignIn(idp, "alice2", "password2", f.srv.base+"/preferences/sso/"+connID+"/tests/")
	p.expect(".sso-verdict", "Matched administrator alice2")
	p.expect("main", "No session was created")
	p.shot("sso-test-success")
	p.open(f.srv.base + "/preferences/sso")
	p.expect(".sso-table", "SimpleSAMLphp")
	p.expect(".sso-table", "Matched")
	p.shot("sso-list")

	// A real sign-in through the connection, as alice2 (an Administrator).
	p.submit("header form", nil)
	p.forgetIdP()
	// The sign-in page's form, as a person uses it: its answer is a
	// redirect to the IdP's origin, which the page's CSP must let the
	// browser follow (with form-action 'self' Chromium stayed on /login).
	p.open(f.srv.base + "/login")
	p.submit("form", map[string]string{"#u": "alice2@acme"})
	p.idpSignIn(idp, "alice2", "password2", f.srv.base+"/")
	if loc := p.location(); loc != f.srv.base+"/administrators" {
		t.Fatalf("the SSO sign-in lands on %s: %s", loc, p.text("body"))
	}
	p.expect("main", "alice2")
	p.shot("sso-signed-in")

	// An Administrator reads that SSO is set up by others, and every
	// post of the tab is refused, changing nothing.
	p.open(f.srv.base + "/preferences/sso")
	p.expect("main", "Only a Super Administrator can set up single sign-on.")
	if html := p.text("main"); strings.Contains(html, "SimpleSAMLphp") || strings.Contains(html, "Test connection") {
		t.Fatalf("an Administrator sees the connections: %s", html)
	}
	p.shot("sso-administrator")
	session := p.cookie(f.srv.base+"/", "gatehouse_session")
	for path, form := range map[string]string{
		"/preferences/sso/require":               "require=on",
		"/preferences/sso/break-glass":           "break_glass=" + f.orgOwnerID(t),
		"/preferences/sso/" + connID:             "name=Mine&source=nameid",
		"/preferences/sso/" + connID + "/delete": "",
		"/preferences/sso/new/oidc":              "name=x&issuer=https://idp.example&client_id=x&secret=y&claim=sub",
		"/preferences/sso/new/saml":              "name=x&metadata_url=" + url.QueryEscape(idp.metadataURL),
	} {
		req, _ := http.NewRequest("POST", f.srv.base+path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: session})
		resp, body := do(t, req)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Super Administrator") {
			t.Errorf("an Administrator's POST %s: %d", path, resp.StatusCode)
		}
	}
	// A form posted from another site is refused too (the SAML form,
	// with its own body bound, included).
	for _, path := range []string{"/preferences/sso/require", "/preferences/sso/new/saml", "/preferences/sso/" + connID + "/delete"} {
		req, _ := http.NewRequest("POST", f.srv.base+path, strings.NewReader("require=on"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://attacker.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: session})
		if resp, body := do(t, req); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "another site") {
			t.Errorf("cross-site POST %s: %d", path, resp.StatusCode)
		}
	}
	cs = ssoConnections(t, f)
	if len(cs) != 1 || cs[0]["name"] != "SimpleSAMLphp" || cs[0]["enabled"] != true {
		t.Fatalf("after an Administrator's posts: %v", cs)
	}
	if org, _ := f.store.Org(bg, f.org.ID); org.RequireSSO {
		t.Fatal("an Administrator required SSO")
	}

	// Back as Jane: OIDC.
	p.submit("header form", nil)
	p.open(f.srv.base + "/login/password?org=acme")
	p.submit("form", map[string]string{"#u": "Jane.Doe", "#p": consolePassword})
	p.open(f.srv.base + "/preferences/sso/new/oidc")
	p.submit("#new-oidc form", map[string]string{"#name": "OIDC", "#issuer": "", "#client_id": "gatehouse", "#secret": "s3cret-of-the-client"})
	p.expect("#issuer-error", "Enter the issuer")
	p.shot("sso-new-oidc-errors")
	if cs := ssoConnections(t, f); len(cs) != 1 {
		t.Fatalf("an empty issuer created a connection: %v", cs)
	}
	if issuer := startConsoleOIDCProvider(t); issuer != "" {
		p.submit("#new-oidc form", map[string]string{"#name": "oidc-provider", "#issuer": issuer, "#client_id": "gatehouse", "#secret": "s3cret-of-the-client"})
		p.expect("#conn-h", "oidc-provider")
		if got := p.text("#redirect-uri"); !strings.HasPrefix(got, f.srv.base+"/sso/oidc/") || !strings.HasSuffix(got, "/callback") {
			t.Fatalf("redirect URI %q", got)
		}
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		if strings.Contains(html, "s3cret-of-the-client") {
			t.Fatal("the page shows the client secret")
		}
		p.shot("sso-created-oidc")
		oidcID := strings.TrimPrefix(strings.SplitN(p.location(), "?", 2)[0], f.srv.base+"/preferences/sso/")

		// Disable it and take the username from another claim.
		p.do("uncheck enabled", chromedp.Click(chromedp.CSS("#enabled")))
		p.submit("#connection form.form", map[string]string{"#claim": "email"})
		p.expect(".note", "Saved")
		resp, body := f.call(t, "GET", "/api/v1/sso/connections/"+oidcID, "", nil)
		var v map[string]any
		json.Unmarshal([]byte(body), &v)
		if resp.StatusCode != 200 || v["enabled"] != false || v["usernameFrom"] != "claim:email" {
			t.Fatalf("after the change: %d %s", resp.StatusCode, body)
		}
		// An empty claim is refused at its field, and changes nothing.
		p.submit("#connection form.form", map[string]string{"#claim": ""})
		p.expect("#username-error", "claim:NAME")
		if _, body := f.call(t, "GET", "/api/v1/sso/connections/"+oidcID, "", nil); !strings.Contains(body, `"claim:email"`) {
			t.Fatalf("a refused change changed: %s", body)
		}
		p.open(f.srv.base + "/preferences/sso")
		p.expect(".sso-table", "Disabled")

		// Deletion asks first.
		p.open(f.srv.base + "/preferences/sso/" + oidcID)
		p.do("delete…", chromedp.Click(chromedp.CSS(`a[href$="/delete"]`)))
		p.expect("#confirm-h", "Delete this connection?")
		p.shot("sso-delete-confirm")
		p.submit(".sso-confirm form", nil)
		p.expect(".note", "deleted")
		if resp, _ := f.call(t, "GET", "/api/v1/sso/connections/"+oidcID, "", nil); resp.StatusCode != 404 {
			t.Fatalf("the deleted connection answers %d", resp.StatusCode)
		}
	}

	// Require SSO, with Jane as break-glass.
	p.open(f.srv.base + "/preferences/sso")
	p.do("check Jane", chromedp.Click(chromedp.CSS(`#break-glass input[type=checkbox]`)))
	p.submit("#break-glass form", nil)
	p.expect(".note", "break-glass")
	creds, err := f.store.Credentials(bg, f.org.ID, f.orgOwnerID(t))
	if err != nil || !creds.BreakGlass {
		t.Fatalf("Jane is not break-glass: %+v %v", creds, err)
	}
	p.do("check require", chromedp.Click(chromedp.CSS("#require-sso")))
	p.submit("#require form", nil)
	p.expect("#require", "SSO is required")
	if org, _ := f.store.Org(bg, f.org.ID); !org.RequireSSO {
		t.Fatal("SSO is not required after the form")
	}
	p.shot("sso-required")
	// Jane, break-glass, still signs in with her password.
	if a := postJSON(t, f.srv.base+"/api/v1/session", `{"organization":"acme","username":"Jane.Doe","password":"`+consolePassword+`"}`, ""); a.status != 200 {
		t.Fatalf("break-glass Jane's password sign-in: %d %v", a.status, a.body)
	}
	// The last enabled connection cannot go while SSO is required: said
	// on the confirmation, and it stays.
	p.open(f.srv.base + "/preferences/sso/" + connID + "/delete")
	p.submit(".sso-confirm form", nil)
	p.expect(".alert", "requires SSO")
	if cs := ssoConnections(t, f); len(cs) != 1 {
		t.Fatalf("the last connection was deleted while SSO is required: %v", cs)
	}
}

// cookie is the value of the browser's cookie name for the URL u ("" without one).
func (p *page) cookie(u, name string) string {
	p.t.Helper()
	var value string
	p.do("read cookies", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
		for _, c := range res.Cookies {
			if c.Name == name {
				value = c.Value
			}
		}
		return err
	}))
	return value
}

// orgOwnerID is the ID of Jane.Doe, the organization's owner.
func (f *serveFixture) orgOwnerID(t *testing.T) string {
	t.Helper()
	a, err := f.store.AdministratorByUsername(context.Background(), f.org.ID, "Jane.Doe")
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}
