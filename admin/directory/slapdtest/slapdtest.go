// Package slapdtest runs a real OpenLDAP slapd (Debian's) for tests, on
// loopback, with ldaps and StartTLS listeners, a CA and server
// certificate made for it, and a small directory seeded with an LDIF. A
// test without slapd skips, and fails when CI=true.
package slapdtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/admin/directory"
)

// The directory's names.
const (
	BaseDN       = "dc=example,dc=org"
	PeopleDN     = "ou=people," + BaseDN
	FormerDN     = "ou=former," + BaseDN
	ServiceDN    = "cn=gatehouse,ou=services," + BaseDN
	ServicePass  = "service-secret"
	rootDN       = "cn=admin," + BaseDN
	rootPassword = "root-secret"
)

// Users seeded in PeopleDN: uid → password. "Mixed" has uid "Mixed" only
// (a sign-in as "mixed" must not match it).
var Users = map[string]string{
	"alice": "alice-password",
	"bob":   "bob-password",
	"Mixed": "mixed-password",
}

// Server is a running slapd.
type Server struct {
	t        testing.TB
	dir      string
	cmd      *exec.Cmd
	LDAPS    string // ldaps://127.0.0.1:port
	LDAP     string // ldap://127.0.0.1:port (StartTLS)
	CAPEM    string // the CA that signed the server's certificate
	OtherCA  string // a CA that did not
	ldapsArg string
}

func bin(t testing.TB) string {
	for _, p := range []string{"/usr/sbin/slapd", "/usr/local/sbin/slapd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("slapd"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("slapd is not installed (Debian: apt-get install slapd ldap-utils; .ci/deps installs it)")
	}
	t.Skip("slapd is not installed (Debian: apt-get install slapd); the LDAP tests skip")
	return ""
}

// Start runs a seeded slapd until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	slapd := bin(t)
	dir := t.TempDir()
	s := &Server{t: t, dir: dir}
	s.writeTLS()
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key
database mdb
maxsize 16777216
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
`, dir, BaseDN, rootDN, rootPassword)
	must(t, os.WriteFile(filepath.Join(dir, "slapd.conf"), []byte(conf), 0o600))
	must(t, os.MkdirAll(filepath.Join(dir, "db"), 0o700))
	var ldif strings.Builder
	fmt.Fprintf(&ldif, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n", BaseDN)
	for _, ou := range []string{"people", "former", "services"} {
		fmt.Fprintf(&ldif, "dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n", ou, BaseDN, ou)
	}
	fmt.Fprintf(&ldif, "dn: %s\nobjectClass: person\ncn: gatehouse\nsn: service\nuserPassword: %s\n\n", ServiceDN, ServicePass)
	for uid, pw := range Users {
		fmt.Fprintf(&ldif, "dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n\n", uid, PeopleDN, uid, uid, uid, pw)
	}
	must(t, os.WriteFile(filepath.Join(dir, "seed.ldif"), []byte(ldif.String()), 0o600))
	if out, err := exec.Command(filepath.Join(filepath.Dir(slapd), "slapadd"), "-f", filepath.Join(dir, "slapd.conf"), "-l",
		filepath.Join(dir, "seed.ldif")).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	s.LDAPS, s.LDAP = "ldaps://127.0.0.1:"+freePort(t), "ldap://127.0.0.1:"+freePort(t)
	s.ldapsArg = slapd
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the stopped server again, on the same ports and data.
func (s *Server) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.ldapsArg, "-d", "0", "-f", filepath.Join(s.dir, "slapd.conf"), "-h", s.LDAPS+"/ "+s.LDAP+"/")
	log, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("slapd-%d.log", time.Now().UnixNano())))
	must(s.t, err)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	must(s.t, s.cmd.Start())
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := ldap.DialURL(s.LDAPS, ldap.DialWithTLSConfig(&tls.Config{RootCAs: s.pool()}))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			b, _ := os.ReadFile(log.Name())
			s.t.Fatalf("slapd did not start: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the server and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// Config is a directory.Config for this server over ldaps, filtering
// inetOrgPerson entries by uid.
func (s *Server) Config() directory.Config {
	return directory.Config{URL: s.LDAPS, CAPEM: s.CAPEM, BindDN: ServiceDN, BindPassword: ServicePass, BaseDN: BaseDN,
		UserFilter: "(&(objectClass=inetOrgPerson)(uid={username}))", UsernameAttribute: "uid", Timeout: 5 * time.Second}
}

// Root runs fn with a connection bound as the directory's root, to
// change the directory under a test.
func (s *Server) Root(fn func(c *ldap.Conn) error) {
	s.t.Helper()
	c, err := ldap.DialURL(s.LDAPS, ldap.DialWithTLSConfig(&tls.Config{RootCAs: s.pool()}))
	must(s.t, err)
	defer c.Close()
	must(s.t, c.Bind(rootDN, rootPassword))
	must(s.t, fn(c))
}

// Move moves uid=NAME from PeopleDN to FormerDN.
func (s *Server) Move(uid string) {
	s.Root(func(c *ldap.Conn) error {
		return c.ModifyDN(ldap.NewModifyDNRequest("uid="+uid+","+PeopleDN, "uid="+uid, true, FormerDN))
	})
}

// Delete deletes uid=NAME from PeopleDN.
func (s *Server) Delete(uid string) {
	s.Root(func(c *ldap.Conn) error { return c.Del(ldap.NewDelRequest("uid="+uid+","+PeopleDN, nil)) })
}

// Add adds uid=NAME with password under parent (PeopleDN or FormerDN).
func (s *Server) Add(uid, password, parent string) {
	s.Root(func(c *ldap.Conn) error {
		r := ldap.NewAddRequest("uid="+uid+","+parent, nil)
		r.Attribute("objectClass", []string{"inetOrgPerson"})
		r.Attribute("uid", []string{uid})
		r.Attribute("cn", []string{uid})
		r.Attribute("sn", []string{uid})
		r.Attribute("userPassword", []string{password})
		return c.Add(r)
	})
}

func (s *Server) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM([]byte(s.CAPEM))
	return p
}

func (s *Server) writeTLS() {
	ca, caKey, caPEM := newCA(s.t, "gatehouse test LDAP CA")
	_, _, s.OtherCA = newCA(s.t, "another CA")
	s.CAPEM = caPEM
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(s.t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	must(s.t, err)
	k8, err := x509.MarshalPKCS8PrivateKey(key)
	must(s.t, err)
	must(s.t, os.WriteFile(filepath.Join(s.dir, "ca.pem"), []byte(caPEM), 0o600))
	must(s.t, os.WriteFile(filepath.Join(s.dir, "server.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	must(s.t, os.WriteFile(filepath.Join(s.dir, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k8}), 0o600))
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	return cert, key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// Context is a context for the test's directory calls.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
