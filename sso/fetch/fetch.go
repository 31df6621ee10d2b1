// Package fetch is the SSRF-guarded HTTP client with which gatehouse
// fetches what an identity provider publishes (SAML metadata, OIDC
// discovery documents and JWKS): NewClient and its Options, CheckURL (the
// URL rules, before any request), Get (one GET of a document), ShowURL
// (a URL as shown in errors and logs), and RefusedError / ErrRefused for
// what the rules refuse.
//
// Such a fetch is a request the server makes to a URL an organization's
// administrator typed: a server-side request forgery vector. The client
// NewClient returns therefore decides at dial time, on the addresses the
// name resolved to, whether it may connect — a check made earlier on the
// name (or on an earlier resolution) would be undone by DNS rebinding.
// Only https to globally routable unicast addresses is allowed, and http
// or https to loopback when Options.AllowLoopback says so (an IdP on the
// same machine).
package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options configures NewClient. The zero value is safe: https
// only, public addresses only, the default limits, the system roots.
type Options struct {
	// AllowLoopback lets plain http and https reach 127.0.0.0/8 and ::1
	// (and names resolving only there).
	AllowLoopback bool
	// DialTimeout bounds each connection attempt; 0 means 5 seconds.
	DialTimeout time.Duration
	// Timeout bounds a whole request, redirects and body included; 0
	// means 10 seconds.
	Timeout time.Duration
	// MaxBytes is the largest response body accepted; a bigger one is an
	// error, never truncated. 0 means 1 MiB.
	MaxBytes int64
	// RootCAs verifies servers' certificates; nil means the system roots.
	RootCAs *x509.CertPool
	// Resolve returns the addresses of a host name; nil means the
	// system resolver. Literal IP addresses are not passed to it.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Defaults of Options.
const (
	DefaultDialTimeout = 5 * time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultMaxBytes    = 1 << 20
	// maxRedirects is how many redirects a fetch follows.
	maxRedirects = 3
)

// ErrRefused marks every URL, address or response the fetch rules
// refuse, for errors.Is.
var ErrRefused = errors.New("sso: fetch refused")

// RefusedError says which rule refused a fetch.
type RefusedError struct {
	// URL is the address asked for (without query), or "" when the
	// refusal happened at dial time.
	URL string
	// Host and Addr are the name and the resolved address refused at
	// dial time; Addr is invalid for a URL refused before any dial.
	Host string
	Addr netip.Addr
	// Rule is the reason, for the administrator.
	Rule string
}

func (e *RefusedError) Error() string {
	switch {
	case e.Addr.IsValid() && e.Host != "" && e.Host != e.Addr.String():
		return fmt.Sprintf("sso: fetch refused: %s resolves to %s: %s", e.Host, e.Addr, e.Rule)
	case e.Addr.IsValid():
		return fmt.Sprintf("sso: fetch refused: address %s: %s", e.Addr, e.Rule)
	case e.URL != "":
		return fmt.Sprintf("sso: fetch refused: %s: %s", e.URL, e.Rule)
	}
	return "sso: fetch refused: " + e.Rule
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// NewClient returns an http.Client that connects only where
// Options allow, follows at most three redirects under the same
// rules (never from https down to http), ignores proxy settings from the
// environment, sends no cookies, and fails a response bigger than
// MaxBytes while it is being read.
func NewClient(opts Options) *http.Client {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	d := &dialer{opts: opts}
	tr := &http.Transport{
		Proxy: nil, // never HTTP(S)_PROXY: the proxy would make the connection we checked
		// Plain http is dialled here, https by DialTLSContext: the
		// scheme's rule is enforced on the address actually dialled.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.dial(ctx, network, addr, false)
		},
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.dialTLS(ctx, network, addr)
		},
		DisableKeepAlives:      true, // every fetch resolves and checks anew
		TLSHandshakeTimeout:    opts.DialTimeout,
		ResponseHeaderTimeout:  opts.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport:     &limitTransport{next: tr, max: opts.MaxBytes},
		Timeout:       opts.Timeout,
		CheckRedirect: checkRedirect,
	}
}

// checkRedirect applies the URL rules to each redirect; the dialer
// applies the address rules to wherever it leads.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return &RefusedError{URL: ShowURL(req.URL), Rule: fmt.Sprintf("more than %d redirects", maxRedirects)}
	}
	if err := checkURL(req.URL); err != nil {
		return err
	}
	if prev := via[len(via)-1].URL; prev.Scheme == "https" && req.URL.Scheme != "https" {
		return &RefusedError{URL: ShowURL(req.URL), Rule: "redirect from https to http"}
	}
	return nil
}

// CheckURL validates a metadata (or discovery) URL when a
// connection is saved: an absolute http or https URL with a host, no user
// name or password, a port in 1–65535 if any, no fragment, and — for a
// literal IP address — an address the fetch rules allow (loopback
// included; plain http is then only for loopback). Host names are not
// resolved here: what they resolve to is checked when they are fetched.
func CheckURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return &RefusedError{Rule: "not a URL"}
	}
	if err := checkURL(u); err != nil {
		return err
	}
	if u.Fragment != "" {
		return &RefusedError{URL: ShowURL(u), Rule: "a metadata URL has no #fragment"}
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
		if rule := addrRule(ip, true, u.Scheme == "https"); rule != "" {
			return &RefusedError{URL: ShowURL(u), Addr: ip, Rule: rule}
		}
	}
	return nil
}

// checkURL is the part of the URL rules every request and redirect
// must pass.
func checkURL(u *url.URL) error {
	refuse := func(rule string) error { return &RefusedError{URL: ShowURL(u), Rule: rule} }
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return refuse("the scheme must be https (or http to loopback)")
	case u.Opaque != "" || u.Host == "":
		return refuse("the URL has no host")
	case u.User != nil:
		return refuse("credentials in a URL are not accepted")
	case u.Hostname() == "":
		return refuse("the URL has no host")
	case strings.Contains(u.Hostname(), "%"):
		return refuse("IPv6 zones are not accepted")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || p[0] == '0' {
			return refuse("the port must be a number from 1 to 65535")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return refuse("empty port")
	}
	return nil
}

// ShowURL is a URL for messages and logs: no credentials, no query.
func ShowURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

type dialer struct{ opts Options }

// resolve returns the addresses of host after checking all of them: one
// refused address refuses the name, so that no address order or retry
// can reach it.
func (d *dialer) resolve(ctx context.Context, host string, useTLS bool) ([]netip.Addr, error) {
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		resolve := d.opts.Resolve
		if resolve == nil {
			resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		if addrs, err = resolve(ctx, host); err != nil {
			return nil, fmt.Errorf("sso: fetch: resolve %s: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("sso: fetch: %s has no address", host)
		}
	}
	for _, ip := range addrs {
		if rule := addrRule(ip, d.opts.AllowLoopback, useTLS); rule != "" {
			return nil, &RefusedError{Host: host, Addr: ip, Rule: rule}
		}
	}
	return addrs, nil
}

// dial connects to one of the checked addresses of addr's host. useTLS says
// whether TLS will run over the connection (https).
func (d *dialer) dial(ctx context.Context, network, addr string, useTLS bool) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := d.resolve(ctx, host, useTLS)
	if err != nil {
		return nil, err
	}
	nd := &net.Dialer{
		Timeout: d.opts.DialTimeout,
		// A second check on the address the socket connects to: nothing
		// between resolve and connect may substitute another.
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &RefusedError{Rule: "unparsable dial address " + address}
			}
			if rule := addrRule(ap.Addr(), d.opts.AllowLoopback, useTLS); rule != "" {
				return &RefusedError{Host: host, Addr: ap.Addr(), Rule: rule}
			}
			return nil
		},
	}
	var errs []error
	for _, ip := range ips {
		c, err := nd.DialContext(ctx, ipNetwork(network, ip), net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// ipNetwork narrows "tcp" to the family of ip.
func ipNetwork(network string, ip netip.Addr) string {
	if network != "tcp" {
		return network
	}
	if ip.Unmap().Is4() {
		return "tcp4"
	}
	return "tcp6"
}

func (d *dialer) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	conn, err := d.dial(ctx, network, addr, true)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(conn, &tls.Config{
		ServerName: host,
		RootCAs:    d.opts.RootCAs,
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
	})
	hctx, cancel := context.WithTimeout(ctx, d.opts.DialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// Address blocks the fetch rules refuse, with the rule's wording. Checked
// in order; IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 addresses
// are judged by the IPv4 address they carry as well.
var blocked = []struct {
	prefix netip.Prefix
	rule   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" address (0.0.0.0/8, includes unspecified)`},
	{netip.MustParsePrefix("10.0.0.0/8"), "private network (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT, RFC 6598)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (includes the cloud metadata service 169.254.169.254)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private network (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment (RFC 6890)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation address (RFC 5737)"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast (RFC 7526)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private network (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking network (RFC 2544)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation address (RFC 5737)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation address (RFC 5737)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (240.0.0.0/4)"},

	{netip.MustParsePrefix("::/128"), "unspecified address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (RFC 8215)"},
	{netip.MustParsePrefix("100::/64"), "discard-only (RFC 6666)"},
	{netip.MustParsePrefix("2001::/32"), "Teredo (RFC 4380)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation address (RFC 3849)"},
	{netip.MustParsePrefix("fc00::/7"), "unique local address (includes the cloud metadata service fd00:ec2::254)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var (
	nat64        = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	compat6      = netip.MustParsePrefix("::/96")
	global6      = netip.MustParsePrefix("2000::/3")
	loopbackNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
)

// addrRule returns why ip may not be dialled, or "" if it may:
// loopback only with allowLoopback (http or https), any other address
// only if globally routable unicast and useTLS (https).
func addrRule(ip netip.Addr, allowLoopback, useTLS bool) string {
	if !ip.IsValid() {
		return "invalid address"
	}
	if ip.Zone() != "" {
		return "addresses with an IPv6 zone are not dialled"
	}
	if ip == netip.IPv6Loopback() || ip.Unmap().Is4() && loopbackNets[0].Contains(ip.Unmap()) {
		// Only ::1 and 127.0.0.0/8 themselves (or ::ffff:127.x, which
		// the kernel treats as 127.x): loopback embedded in NAT64 or
		// 6to4 is not loopback and is refused below.
		if allowLoopback {
			return ""
		}
		return "loopback is not allowed"
	}
	if rule := blockedRule(ip); rule != "" {
		return rule
	}
	if !useTLS {
		return "plain http is allowed only to loopback; use https"
	}
	return ""
}

// blockedRule judges a non-loopback address.
func blockedRule(ip netip.Addr) string {
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	for _, b := range blocked {
		if b.prefix.Contains(ip) {
			return b.rule
		}
	}
	if ip.Is4() {
		return ""
	}
	a := ip.As16()
	switch {
	case nat64.Contains(ip):
		v4 := netip.AddrFrom4([4]byte(a[12:16]))
		if loopbackNets[0].Contains(v4) {
			return "NAT64 address embedding loopback " + v4.String()
		}
		if rule := blockedRule(v4); rule != "" {
			return "NAT64 address embedding " + v4.String() + ": " + rule
		}
		return ""
	case sixToFour.Contains(ip):
		v4 := netip.AddrFrom4([4]byte(a[2:6]))
		if loopbackNets[0].Contains(v4) {
			return "6to4 address embedding loopback " + v4.String()
		}
		if rule := blockedRule(v4); rule != "" {
			return "6to4 address embedding " + v4.String() + ": " + rule
		}
		return ""
	case compat6.Contains(ip):
		return "IPv4-compatible IPv6 address (deprecated)"
	case !global6.Contains(ip):
		return "not a global unicast IPv6 address"
	}
	return ""
}

// limitTransport refuses response bodies bigger than max: at once
// when Content-Length says so, otherwise with an error from Read once
// more than max bytes arrived (after decompression).
type limitTransport struct {
	next http.RoundTripper
	max  int64
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkURL(req.URL); err != nil {
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, tooLarge(req.URL, t.max)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max, err: tooLarge(req.URL, t.max)}
	return resp, nil
}

func tooLarge(u *url.URL, max int64) error {
	return &RefusedError{URL: ShowURL(u), Rule: fmt.Sprintf("the response is larger than %d bytes", max)}
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64 // bytes still allowed
	err  error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, b.err
	}
	// Read one byte past the limit to tell "exactly max" from "more".
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, b.err
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// Get GETs rawURL with client (a NewClient) and returns
// the body of a 200 answer. Refusals by the fetch rules are
// *RefusedError (errors.Is ErrRefused).
func Get(ctx context.Context, client *http.Client, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &RefusedError{Rule: "not a URL"}
	}
	if err := checkURL(u); err != nil {
		return nil, err
	}
	shown := ShowURL(u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("sso: fetch %s: %w", shown, err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml, application/json;q=0.9, */*;q=0.1")
	resp, err := client.Do(req)
	if err != nil {
		var refused *RefusedError
		if errors.As(err, &refused) {
			if refused.URL == "" {
				refused.URL = shown
			}
			return nil, fmt.Errorf("sso: fetch %s: %w", shown, refused)
		}
		return nil, fmt.Errorf("sso: fetch %s: %w", shown, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sso: fetch %s: status %s", shown, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("sso: fetch %s: %w", shown, err)
	}
	return body, nil
}

// unwrapURLError drops the *url.Error layer, whose text repeats the
// URL with its query.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
