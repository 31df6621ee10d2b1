// Package directory checks an administrator's password against their
// organization's LDAP directory (seed 002 "Is LDAP user"): a search with
// the service account for the entry whose username attribute equals the
// username exactly, then a bind as that entry with the password. It also
// validates a connection's settings and tests a connection for the
// Super Administrator who sets it up. Package admin holds the rules
// (who is an LDAP user, the lockout, the login history); this package
// only speaks LDAP, over TLS only (ldaps:// or StartTLS), trusting only
// the connection's own CA certificates.
package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Placeholder is what a user filter template names the username with; it
// is replaced by the username escaped per RFC 4515 §3 (ldap.EscapeFilter),
// so no typed character can change the filter's structure.
const Placeholder = "{username}"

// Limits of a connection's settings.
const (
	MinTimeout  = 500 * time.Millisecond
	MaxTimeout  = 60 * time.Second
	maxFieldLen = 1024
	maxCALen    = 64 << 10
)

var (
	// ErrInvalidCredentials: the directory does not vouch for this username
	// and password: no entry (or several) has the username exactly, or the
	// bind as the entry was refused. The error wraps it with the reason,
	// for the log only.
	ErrInvalidCredentials = errors.New("directory: invalid credentials")
	// ErrUnavailable: the directory could not answer for the password
	// (unreachable, TLS refused, the service account's bind refused, a
	// timeout): no password was judged. The error wraps it with the detail.
	ErrUnavailable = errors.New("directory: unavailable")
)

// Config is one LDAP connection, its bind password in clear.
type Config struct {
	URL               string // ldaps://host[:port], or ldap://host[:port] with StartTLS
	StartTLS          bool
	CAPEM             string // the CA certificates the server's chain must end at
	BindDN            string
	BindPassword      string
	BaseDN            string
	UserFilter        string // with Placeholder, e.g. (&(objectClass=inetOrgPerson)(uid={username}))
	UsernameAttribute string // e.g. uid; its value must equal the username exactly
	Timeout           time.Duration
}

// Validate says what is wrong with c, in words for the person who typed
// it, or nil.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || u.Host == "" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
		return errors.New("the URL must be ldaps://host[:port] or ldap://host[:port]")
	case u.Scheme == "ldaps" && c.StartTLS:
		return errors.New("StartTLS is for ldap:// URLs; an ldaps:// URL is TLS already")
	case u.Scheme == "ldap" && !c.StartTLS:
		return errors.New("an ldap:// URL needs StartTLS: passwords never cross the network in clear")
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		return errors.New("the URL must be ldaps://host[:port] or ldap://host[:port]")
	}
	if _, err := certPool(c.CAPEM); err != nil {
		return err
	}
	if c.BindDN == "" || c.BindPassword == "" {
		return errors.New("the service account needs a bind DN and a password (an unauthenticated bind proves nothing)")
	}
	for name, v := range map[string]string{"bind DN": c.BindDN, "base DN": c.BaseDN} {
		if _, err := ldap.ParseDN(v); err != nil || len(v) > maxFieldLen {
			return fmt.Errorf("the %s is not a valid DN", name)
		}
	}
	if err := validFilter(c.UserFilter); err != nil {
		return err
	}
	if !validAttribute(c.UsernameAttribute) {
		return errors.New("the username attribute must be an attribute name such as uid or sAMAccountName")
	}
	if c.Timeout < MinTimeout || c.Timeout > MaxTimeout {
		return fmt.Errorf("the timeout must be between %v and %v", MinTimeout, MaxTimeout)
	}
	return nil
}

func certPool(caPEM string) (*x509.CertPool, error) {
	if len(caPEM) > maxCALen {
		return nil, errors.New("the CA certificate is too long")
	}
	pool := x509.NewCertPool()
	rest, n := []byte(caPEM), 0
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errors.New("the CA certificate does not parse")
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("the CA certificate must be a PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	return pool, nil
}

// validFilter: one parenthesised filter that names the placeholder, and
// compiles with any username in it.
func validFilter(f string) error {
	if len(f) > maxFieldLen || !strings.HasPrefix(f, "(") || !strings.Contains(f, Placeholder) {
		return fmt.Errorf("the user filter must be an LDAP filter in parentheses naming %s, such as (uid=%s)", Placeholder, Placeholder)
	}
	if _, err := ldap.CompileFilter(Filter(f, "x*)(")); err != nil {
		return fmt.Errorf("the user filter is not a valid LDAP filter: %v", err)
	}
	return nil
}

func validAttribute(a string) bool {
	if a == "" || len(a) > 64 {
		return false
	}
	for i, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '-')) {
			return false
		}
	}
	return true
}

// Filter is the template with every placeholder replaced by the escaped
// username.
func Filter(template, username string) string {
	return strings.ReplaceAll(template, Placeholder, ldap.EscapeFilter(username))
}

func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnavailable}, args...)...)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidCredentials}, args...)...)
}

// dial connects over TLS (the handshake verified against CAPEM) and binds
// as the service account. The connection closes when ctx ends.
func (c Config) dial(ctx context.Context) (*ldap.Conn, func(), error) {
	pool, err := certPool(c.CAPEM)
	if err != nil {
		return nil, nil, unavailable("%v", err)
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, nil, unavailable("the URL does not parse")
	}
	tc := &tls.Config{RootCAs: pool, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = MinTimeout
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), time.Millisecond)
	}
	conn, err := ldap.DialURL(c.URL, ldap.DialWithDialer(&net.Dialer{Timeout: timeout}), ldap.DialWithTLSConfig(tc))
	if err != nil {
		return nil, nil, unavailable("cannot connect to %s: %v", u.Host, err)
	}
	conn.SetTimeout(timeout)
	// Every request of the connection answers within timeout; the whole
	// exchange is bounded too, and by the caller's context.
	ctx, cancel := context.WithTimeout(ctx, 3*timeout)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	closeAll := func() { stop(); cancel(); conn.Close() }
	if c.StartTLS {
		if err := conn.StartTLS(tc); err != nil {
			closeAll()
			return nil, nil, unavailable("StartTLS with %s failed: %v", u.Host, err)
		}
	}
	if c.BindPassword == "" { // an unauthenticated bind would succeed and prove nothing
		closeAll()
		return nil, nil, unavailable("the service account has no password")
	}
	if err := conn.Bind(c.BindDN, c.BindPassword); err != nil {
		closeAll()
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return nil, nil, unavailable("the directory refused the service account's bind (check the bind DN and password)")
		}
		return nil, nil, unavailable("the service account's bind failed: %v", err)
	}
	return conn, closeAll, nil
}

// entry finds the one entry whose username attribute has the username
// exactly (byte for byte: usernames are case-sensitive, while most
// directories match uid case-insensitively).
func (c Config) entry(conn *ldap.Conn, username string) (*ldap.Entry, error) {
	req := ldap.NewSearchRequest(c.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, int(max(c.Timeout/time.Second, 1)),
		false, Filter(c.UserFilter, username), []string{c.UsernameAttribute}, nil)
	res, err := conn.Search(req)
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) || errors.Is(err, ldap.ErrSizeLimitExceeded):
		return nil, invalid("more than one entry matches")
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return nil, invalid("the base DN %q does not exist", c.BaseDN)
	case err != nil:
		return nil, unavailable("the search failed: %v", err)
	}
	var found []*ldap.Entry
	for _, e := range res.Entries {
		for _, v := range e.GetAttributeValues(c.UsernameAttribute) {
			if v == username {
				found = append(found, e)
				break
			}
		}
	}
	switch {
	case len(found) == 0 && len(res.Entries) > 0:
		return nil, invalid("the directory's entry has %s other than %q (a difference of case?)", c.UsernameAttribute, username)
	case len(found) == 0:
		return nil, invalid("no entry matches")
	case len(res.Entries) > 1:
		return nil, invalid("more than one entry matches")
	}
	return found[0], nil
}

// Authenticate checks username and password: nil when the directory
// has exactly one entry whose username attribute is the username and a
// bind as it with the password succeeds. An empty password never reaches
// the directory (many servers take it as an unauthenticated bind, which
// succeeds). Errors wrap ErrInvalidCredentials or ErrUnavailable.
func (c Config) Authenticate(ctx context.Context, username, password string) error {
	if password == "" || username == "" {
		return invalid("empty username or password")
	}
	conn, done, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	e, err := c.entry(conn, username)
	if err != nil {
		return err
	}
	err = conn.Bind(e.DN, password)
	switch {
	case err == nil:
		return nil
	case ldap.IsErrorAnyOf(err, ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultOther, ldap.LDAPResultTimeLimitExceeded):
		return unavailable("the bind as %q failed: %v", e.DN, err)
	default: // invalid credentials, and refusals such as a locked or expired account
		return invalid("the bind as %q was refused: %v", e.DN, err)
	}
}

// TestReport is what a connection test found.
type TestReport struct {
	// Connected: TLS verified with the connection's CA and the service
	// account bound.
	Connected bool `json:"connected"`
	// Username, when given to Test, and the DN of its entry, or why none.
	Username string `json:"username,omitempty"`
	DN       string `json:"dn,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

// Test connects and binds as the service account; with a username it
// also searches for its entry as a sign-in would (no bind as the user).
// An error wraps ErrUnavailable and says what failed.
func (c Config) Test(ctx context.Context, username string) (TestReport, error) {
	conn, done, err := c.dial(ctx)
	if err != nil {
		return TestReport{}, err
	}
	defer done()
	r := TestReport{Connected: true, Username: username}
	if username == "" {
		return r, nil
	}
	e, err := c.entry(conn, username)
	if errors.Is(err, ErrUnavailable) {
		return r, err
	}
	if err != nil {
		r.Problem = strings.TrimPrefix(err.Error(), ErrInvalidCredentials.Error()+": ")
		return r, nil
	}
	r.DN = e.DN
	return r, nil
}
