package saml

// A real SAML identity provider for the tests: SimpleSAMLphp 1.19 from
// Debian, served by `php -S` on loopback over a configuration rendered
// per test from testdata/simplesamlphp/. Without it installed the tests
// skip, except under CI=true where they fail (.ci/deps installs it).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"gatehouse/sso/fetch"
	"gatehouse/sso/saml/samltest"
)

// ssppRoot is where Debian installs SimpleSAMLphp.
const ssppRoot = "/usr/share/simplesamlphp"

// ssppRequire skips the test when SimpleSAMLphp, PHP or PHP's XML
// extensions are missing, and fails it instead when CI=true.
func ssppRequire(t testing.TB) string {
	t.Helper()
	missing := func(what string) {
		msg := "SimpleSAMLphp IdP unavailable (" + what + "); install it with: apt-get install -y simplesamlphp php-cli php-xml (make deps does, as root)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	php, err := exec.LookPath("php")
	if err != nil {
		missing("no php on PATH")
	}
	if _, err := os.Stat(filepath.Join(ssppRoot, "www", "module.php")); err != nil {
		missing("no " + ssppRoot)
	}
	if out, err := exec.Command(php, "-r", `foreach (["dom", "xml", "openssl", "session"] as $e) { if (!extension_loaded($e)) { echo $e; exit(1); } }`).CombinedOutput(); err != nil {
		missing("PHP extension " + strings.TrimSpace(string(out)) + " missing")
	}
	return php
}

// ssppUser is an account of the IdP.
type ssppUser struct {
	Username, Password, Email, DisplayName string
}

// Login is the "username:password" key exampleauth:UserPass wants.
func (u ssppUser) Login() string { return u.Username + ":" + u.Password }

// ssppSP is the service provider the IdP knows.
type ssppSP struct {
	EntityID, ACSURL string
	// CertData is the SP certificate's DER in base64; with it the IdP
	// requires signed AuthnRequests (ValidateAuthnRequest) and can
	// encrypt assertions.
	CertData             string
	ValidateAuthnRequest bool
	EncryptAssertion     bool
}

// ssppOptions shapes the IdP.
type ssppOptions struct {
	SP ssppSP
	// SPMetadataURL, when set, is where the IdP reads the SP's metadata
	// (SimpleSAMLphp's "xml" metadata source, at every request), exactly
	// as served; SP's entity ID, certificate and flags are then not
	// written into the IdP's configuration (SP.ACSURL is still what
	// Login expects the answer to be posted to).
	SPMetadataURL               string
	Users                       []ssppUser
	SignResponse, SignAssertion bool
	SignatureAlgorithm          string
}

// ssppUsers are the IdP's accounts unless a test says otherwise.
var ssppUsers = []ssppUser{
	{Username: "Alice", Password: "password", Email: "alice@example.com", DisplayName: "Alice Example"},
	{Username: "alice2", Password: "password2", Email: "alice2@example.com", DisplayName: "Alice Two"},
}

// ssppIdP is a running SimpleSAMLphp IdP.
type ssppIdP struct {
	BaseURL     string // http://127.0.0.1:PORT
	EntityID    string
	MetadataURL string
	Metadata    []byte
	// Certificate is the IdP's signing certificate (PEM).
	Certificate string
	SP          ssppSP

	dir    string
	mu     sync.Mutex
	stderr bytes.Buffer // php -S's request log and errors
}

// startSimpleSAMLphp starts an IdP with the default users that knows
// the SP by its entity ID, ACS URL and certificate (PEM; "" for none).
// Given a certificate it requires signed AuthnRequests. It signs the
// Response and the Assertion (SimpleSAMLphp's defaults) with rsa-sha256.
func startSimpleSAMLphp(t testing.TB, spEntityID, acsURL, spCertPEM string) *ssppIdP {
	t.Helper()
	return startSimpleSAMLphpWith(t, ssppDefaults(t, spEntityID, acsURL, spCertPEM))
}

// ssppDefaults are the options startSimpleSAMLphp uses.
func ssppDefaults(t testing.TB, spEntityID, acsURL, spCertPEM string) ssppOptions {
	t.Helper()
	sp := ssppSP{EntityID: spEntityID, ACSURL: acsURL}
	if spCertPEM != "" {
		block, _ := pem.Decode([]byte(spCertPEM))
		if block == nil || block.Type != "CERTIFICATE" {
			t.Fatalf("sspp: the SP certificate is not a PEM certificate")
		}
		sp.CertData = base64.StdEncoding.EncodeToString(block.Bytes)
		sp.ValidateAuthnRequest = true
	}
	return ssppOptions{SP: sp, Users: ssppUsers, SignResponse: true, SignAssertion: true,
		SignatureAlgorithm: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"}
}

func startSimpleSAMLphpWith(t testing.TB, opts ssppOptions) *ssppIdP {
	t.Helper()
	php := ssppRequire(t)
	dir := t.TempDir()
	for _, d := range []string{"config", "metadata", "cert", "log", "sessions", "tmp", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	certPEM, keyPEM := ssppKeyPair(t, "gatehouse test IdP")
	ssppWrite(t, filepath.Join(dir, "cert", "idp.crt"), certPEM)
	ssppWrite(t, filepath.Join(dir, "cert", "idp.key"), keyPEM)

	// A free port, then php on it; another process may take the port in
	// between, so a server that does not come up is retried elsewhere.
	var lastErr error
	for range 3 {
		idp, err := ssppLaunch(t, php, dir, opts)
		if err == nil {
			idp.Certificate = certPEM
			return idp
		}
		lastErr = err
	}
	t.Fatalf("sspp: SimpleSAMLphp did not start: %v", lastErr)
	return nil
}

func ssppLaunch(t testing.TB, php, dir string, opts ssppOptions) (*ssppIdP, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	host := "127.0.0.1:" + strconv.Itoa(port)
	idp := &ssppIdP{BaseURL: "http://" + host, dir: dir, SP: opts.SP}
	idp.MetadataURL = idp.BaseURL + "/saml2/idp/metadata.php"
	idp.EntityID = idp.MetadataURL

	salt := make([]byte, 16)
	rand.Read(salt)
	data := map[string]any{
		"BaseURL": idp.BaseURL + "/", "Host": host, "CertDir": filepath.Join(dir, "cert") + "/",
		"LogDir": filepath.Join(dir, "log") + "/", "DataDir": filepath.Join(dir, "data") + "/",
		"TempDir": filepath.Join(dir, "tmp"), "MetadataDir": filepath.Join(dir, "metadata") + "/",
		"SessionDir": filepath.Join(dir, "sessions"), "SecretSalt": hex.EncodeToString(salt),
		"AdminPassword": hex.EncodeToString(salt[:8]),
		"Users":         opts.Users, "SP": opts.SP, "SignResponse": opts.SignResponse, "SignAssertion": opts.SignAssertion,
		"SignatureAlgorithm": opts.SignatureAlgorithm, "SPMetadataURL": opts.SPMetadataURL,
	}
	for tmpl, out := range map[string]string{
		"config.php.tmpl":            "config/config.php",
		"authsources.php.tmpl":       "config/authsources.php",
		"saml20-idp-hosted.php.tmpl": "metadata/saml20-idp-hosted.php",
		"saml20-sp-remote.php.tmpl":  "metadata/saml20-sp-remote.php",
	} {
		ssppRender(t, tmpl, filepath.Join(dir, out), data)
	}

	cmd := exec.Command(php, "-S", host, "-t", filepath.Join(ssppRoot, "www"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SIMPLESAMLPHP_CONFIG_DIR="+filepath.Join(dir, "config"))
	cmd.Stdout = ssppLockedWriter{idp}
	cmd.Stderr = ssppLockedWriter{idp}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("php -S exited: %s", idp.output())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		md, err := fetch.Get(ctx, fetch.NewClient(fetch.Options{AllowLoopback: true}), idp.MetadataURL)
		cancel()
		if err == nil {
			idp.Metadata = md
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("no metadata at %s: %v\n%s", idp.MetadataURL, err, idp.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("sspp: php -S output:\n%s", samltest.Tail(idp.output(), 4000))
			log, _ := os.ReadFile(filepath.Join(dir, "log", "simplesamlphp.log"))
			t.Logf("sspp: simplesamlphp.log:\n%s", samltest.Tail(string(log), 8000))
		}
	})
	return idp, nil
}

type ssppLockedWriter struct{ idp *ssppIdP }

func (w ssppLockedWriter) Write(p []byte) (int, error) {
	w.idp.mu.Lock()
	defer w.idp.mu.Unlock()
	return w.idp.stderr.Write(p)
}

func (idp *ssppIdP) output() string {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return idp.stderr.String()
}

// ssppPHP renders a value as a PHP literal: strings single-quoted with
// \ and ' escaped, so no value can break out of the configuration.
func ssppPHP(v any) string {
	switch v := v.(type) {
	case string:
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	}
	panic(fmt.Sprintf("sspp: no PHP literal for %T", v))
}

func ssppRender(t testing.TB, name, out string, data any) {
	t.Helper()
	tmpl, err := template.New(name).Funcs(template.FuncMap{"php": ssppPHP}).
		ParseFiles(filepath.Join("..", "..", "testdata", "simplesamlphp", name))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatalf("sspp: render %s: %v", name, err)
	}
	ssppWrite(t, out, b.String())
}

func ssppWrite(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ssppKeyPair is an RSA-2048 key (PKCS#8 PEM) and a self-signed
// certificate for it.
func ssppKeyPair(t testing.TB, cn string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// Login signs user in at the IdP like a browser without JavaScript
// would: it follows authnRedirectURL (the HTTP-Redirect binding URL an
// SP's Start sent the browser to) with a cookie jar, fills in and posts
// the username/password form, and reads the self-posting form the IdP
// answers with, which must target the SP's ACS URL. It returns that
// form's SAMLResponse and RelayState.
func (idp *ssppIdP) Login(t testing.TB, authnRedirectURL, user, password string) (samlResponse, relayState string) {
	t.Helper()
	samlResponse, relayState, err := idp.login(authnRedirectURL, user, password)
	if err != nil {
		t.Fatalf("sspp: login as %q: %v", user, err)
	}
	return samlResponse, relayState
}

// ssppErrLoginRefused: the IdP showed its login form again (wrong
// username or password).
var ssppErrLoginRefused = samltest.ErrLoginRefused

func (idp *ssppIdP) login(authnRedirectURL, user, password string) (string, string, error) {
	jar, _ := cookiejar.New(nil)
	base, _ := url.Parse(idp.BaseURL)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != base.Host {
				return fmt.Errorf("redirected away from the IdP to %s", req.URL)
			}
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			return nil
		}}
	post, err := samltest.Login(client, authnRedirectURL, user, password)
	if err != nil {
		return "", "", err
	}
	if post.Action != idp.SP.ACSURL || !strings.EqualFold(post.Method, "post") {
		return "", "", fmt.Errorf("the SAMLResponse form %s to %s, not POST to the ACS %s", post.Method, post.Action, idp.SP.ACSURL)
	}
	return post.Values.Get("SAMLResponse"), post.Values.Get("RelayState"), nil
}
