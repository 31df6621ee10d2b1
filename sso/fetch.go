package sso

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/crewjam/saml"
	xrv "github.com/mattermost/xml-roundtrip-validator"

	"gatehouse/store"
)

// Fetching what an identity provider publishes (SAML metadata, OIDC
// discovery documents and JWKS) is a request the server makes to a URL an
// organization's administrator typed: a server-side request forgery
// vector. The client NewFetchClient returns therefore decides at dial
// time, on the addresses the name resolved to, whether it may connect —
// a check made earlier on the name (or on an earlier resolution) would be
// undone by DNS rebinding. Only https to globally routable unicast
// addresses is allowed, and http or https to loopback when
// FetchOptions.AllowLoopback says so (an IdP on the same machine).

// FetchOptions configures NewFetchClient. The zero value is safe: https
// only, public addresses only, the default limits, the system roots.
type FetchOptions struct {
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

// Defaults of FetchOptions.
const (
	DefaultFetchDialTimeout = 5 * time.Second
	DefaultFetchTimeout     = 10 * time.Second
	DefaultFetchMaxBytes    = 1 << 20
	// fetchMaxRedirects is how many redirects a fetch follows.
	fetchMaxRedirects = 3
)

// ErrFetchRefused marks every URL, address or response the fetch rules
// refuse, for errors.Is.
var ErrFetchRefused = errors.New("sso: fetch refused")

// FetchRefusedError says which rule refused a fetch.
type FetchRefusedError struct {
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

func (e *FetchRefusedError) Error() string {
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

// Is makes errors.Is(err, ErrFetchRefused) true.
func (e *FetchRefusedError) Is(target error) bool { return target == ErrFetchRefused }

// NewFetchClient returns an http.Client that connects only where
// FetchOptions allow, follows at most three redirects under the same
// rules (never from https down to http), ignores proxy settings from the
// environment, sends no cookies, and fails a response bigger than
// MaxBytes while it is being read.
func NewFetchClient(opts FetchOptions) *http.Client {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultFetchDialTimeout
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultFetchTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultFetchMaxBytes
	}
	d := &fetchDialer{opts: opts}
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
		Transport:     &fetchLimitTransport{next: tr, max: opts.MaxBytes},
		Timeout:       opts.Timeout,
		CheckRedirect: fetchCheckRedirect,
	}
}

// fetchCheckRedirect applies the URL rules to each redirect; the dialer
// applies the address rules to wherever it leads.
func fetchCheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > fetchMaxRedirects {
		return &FetchRefusedError{URL: fetchShowURL(req.URL), Rule: fmt.Sprintf("more than %d redirects", fetchMaxRedirects)}
	}
	if err := fetchCheckURL(req.URL); err != nil {
		return err
	}
	if prev := via[len(via)-1].URL; prev.Scheme == "https" && req.URL.Scheme != "https" {
		return &FetchRefusedError{URL: fetchShowURL(req.URL), Rule: "redirect from https to http"}
	}
	return nil
}

// CheckMetadataURL validates a metadata (or discovery) URL when a
// connection is saved: an absolute http or https URL with a host, no user
// name or password, a port in 1–65535 if any, no fragment, and — for a
// literal IP address — an address the fetch rules allow (loopback
// included; plain http is then only for loopback). Host names are not
// resolved here: what they resolve to is checked when they are fetched.
func CheckMetadataURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return &FetchRefusedError{Rule: "not a URL"}
	}
	if err := fetchCheckURL(u); err != nil {
		return err
	}
	if u.Fragment != "" {
		return &FetchRefusedError{URL: fetchShowURL(u), Rule: "a metadata URL has no #fragment"}
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
		if rule := fetchAddrRule(ip, true, u.Scheme == "https"); rule != "" {
			return &FetchRefusedError{URL: fetchShowURL(u), Addr: ip, Rule: rule}
		}
	}
	return nil
}

// fetchCheckURL is the part of the URL rules every request and redirect
// must pass.
func fetchCheckURL(u *url.URL) error {
	refuse := func(rule string) error { return &FetchRefusedError{URL: fetchShowURL(u), Rule: rule} }
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

// fetchShowURL is a URL for messages and logs: no credentials, no query.
func fetchShowURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

type fetchDialer struct{ opts FetchOptions }

// resolve returns the addresses of host after checking all of them: one
// refused address refuses the name, so that no address order or retry
// can reach it.
func (d *fetchDialer) resolve(ctx context.Context, host string, useTLS bool) ([]netip.Addr, error) {
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
		if rule := fetchAddrRule(ip, d.opts.AllowLoopback, useTLS); rule != "" {
			return nil, &FetchRefusedError{Host: host, Addr: ip, Rule: rule}
		}
	}
	return addrs, nil
}

// dial connects to one of the checked addresses of addr's host. useTLS says
// whether TLS will run over the connection (https).
func (d *fetchDialer) dial(ctx context.Context, network, addr string, useTLS bool) (net.Conn, error) {
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
				return &FetchRefusedError{Rule: "unparsable dial address " + address}
			}
			if rule := fetchAddrRule(ap.Addr(), d.opts.AllowLoopback, useTLS); rule != "" {
				return &FetchRefusedError{Host: host, Addr: ap.Addr(), Rule: rule}
			}
			return nil
		},
	}
	var errs []error
	for _, ip := range ips {
		c, err := nd.DialContext(ctx, fetchNetwork(network, ip), net.JoinHostPort(ip.Unmap().String(), port))
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

// fetchNetwork narrows "tcp" to the family of ip.
func fetchNetwork(network string, ip netip.Addr) string {
	if network != "tcp" {
		return network
	}
	if ip.Unmap().Is4() {
		return "tcp4"
	}
	return "tcp6"
}

func (d *fetchDialer) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
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
var fetchBlocked = []struct {
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
	fetchNAT64    = netip.MustParsePrefix("64:ff9b::/96")
	fetch6to4     = netip.MustParsePrefix("2002::/16")
	fetchCompat   = netip.MustParsePrefix("::/96")
	fetchGlobal6  = netip.MustParsePrefix("2000::/3")
	fetchLoopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
)

// fetchAddrRule returns why ip may not be dialled, or "" if it may:
// loopback only with allowLoopback (http or https), any other address
// only if globally routable unicast and useTLS (https).
func fetchAddrRule(ip netip.Addr, allowLoopback, useTLS bool) string {
	if !ip.IsValid() {
		return "invalid address"
	}
	if ip.Zone() != "" {
		return "addresses with an IPv6 zone are not dialled"
	}
	if ip == netip.IPv6Loopback() || ip.Unmap().Is4() && fetchLoopback[0].Contains(ip.Unmap()) {
		// Only ::1 and 127.0.0.0/8 themselves (or ::ffff:127.x, which
		// the kernel treats as 127.x): loopback embedded in NAT64 or
		// 6to4 is not loopback and is refused below.
		if allowLoopback {
			return ""
		}
		return "loopback is not allowed"
	}
	if rule := fetchBlockedRule(ip); rule != "" {
		return rule
	}
	if !useTLS {
		return "plain http is allowed only to loopback; use https"
	}
	return ""
}

// fetchBlockedRule judges a non-loopback address.
func fetchBlockedRule(ip netip.Addr) string {
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	for _, b := range fetchBlocked {
		if b.prefix.Contains(ip) {
			return b.rule
		}
	}
	if ip.Is4() {
		return ""
	}
	a := ip.As16()
	switch {
	case fetchNAT64.Contains(ip):
		v4 := netip.AddrFrom4([4]byte(a[12:16]))
		if fetchLoopback[0].Contains(v4) {
			return "NAT64 address embedding loopback " + v4.String()
		}
		if rule := fetchBlockedRule(v4); rule != "" {
			return "NAT64 address embedding " + v4.String() + ": " + rule
		}
		return ""
	case fetch6to4.Contains(ip):
		v4 := netip.AddrFrom4([4]byte(a[2:6]))
		if fetchLoopback[0].Contains(v4) {
			return "6to4 address embedding loopback " + v4.String()
		}
		if rule := fetchBlockedRule(v4); rule != "" {
			return "6to4 address embedding " + v4.String() + ": " + rule
		}
		return ""
	case fetchCompat.Contains(ip):
		return "IPv4-compatible IPv6 address (deprecated)"
	case !fetchGlobal6.Contains(ip):
		return "not a global unicast IPv6 address"
	}
	return ""
}

// fetchLimitTransport refuses response bodies bigger than max: at once
// when Content-Length says so, otherwise with an error from Read once
// more than max bytes arrived (after decompression).
type fetchLimitTransport struct {
	next http.RoundTripper
	max  int64
}

func (t *fetchLimitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := fetchCheckURL(req.URL); err != nil {
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fetchTooLarge(req.URL, t.max)
	}
	resp.Body = &fetchLimitedBody{rc: resp.Body, left: t.max, err: fetchTooLarge(req.URL, t.max)}
	return resp, nil
}

func fetchTooLarge(u *url.URL, max int64) error {
	return &FetchRefusedError{URL: fetchShowURL(u), Rule: fmt.Sprintf("the response is larger than %d bytes", max)}
}

type fetchLimitedBody struct {
	rc   io.ReadCloser
	left int64 // bytes still allowed
	err  error
}

func (b *fetchLimitedBody) Read(p []byte) (int, error) {
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

func (b *fetchLimitedBody) Close() error { return b.rc.Close() }

// FetchMetadata GETs rawURL with client (a NewFetchClient) and returns
// the body of a 200 answer. Refusals by the fetch rules are
// *FetchRefusedError (errors.Is ErrFetchRefused).
func FetchMetadata(ctx context.Context, client *http.Client, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &FetchRefusedError{Rule: "not a URL"}
	}
	if err := fetchCheckURL(u); err != nil {
		return nil, err
	}
	shown := fetchShowURL(u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("sso: fetch %s: %w", shown, err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml, application/json;q=0.9, */*;q=0.1")
	resp, err := client.Do(req)
	if err != nil {
		var refused *FetchRefusedError
		if errors.As(err, &refused) {
			if refused.URL == "" {
				refused.URL = shown
			}
			return nil, fmt.Errorf("sso: fetch %s: %w", shown, refused)
		}
		return nil, fmt.Errorf("sso: fetch %s: %w", shown, fetchUnwrapURLError(err))
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

// fetchUnwrapURLError drops the *url.Error layer, whose text repeats the
// URL with its query.
func fetchUnwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// CheckSAMLMetadata reports whether doc is SAML 2.0 metadata of an
// identity provider with at least one signing certificate: an
// EntityDescriptor (or an EntitiesDescriptor holding exactly one IdP, as
// the SAML connector accepts) with an IDPSSODescriptor whose
// KeyDescriptor (use "signing" or unspecified) carries a parsable X.509
// certificate. Documents are round-trip checked first (crewjam's
// defence against XML parser differentials).
func CheckSAMLMetadata(doc []byte) error {
	if err := xrv.Validate(bytes.NewReader(doc)); err != nil {
		return fmt.Errorf("sso: metadata is not round-trip safe XML: %w", err)
	}
	// crewjam's EntityDescriptor decodes any root element (its custom
	// UnmarshalXML does not check the name), so look at the root first.
	var root xml.Name
	for dec := xml.NewDecoder(bytes.NewReader(doc)); root.Local == ""; {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("sso: metadata is not XML with a root element")
		}
		if se, ok := tok.(xml.StartElement); ok {
			root = se.Name
		}
	}
	var ed saml.EntityDescriptor
	switch {
	case root.Space == fetchMetadataNS && root.Local == "EntityDescriptor":
		if err := xml.Unmarshal(doc, &ed); err != nil {
			return fmt.Errorf("sso: metadata is not a SAML EntityDescriptor: %w", err)
		}
	case root.Space == fetchMetadataNS && root.Local == "EntitiesDescriptor":
		var eds saml.EntitiesDescriptor
		if err := xml.Unmarshal(doc, &eds); err != nil {
			return fmt.Errorf("sso: metadata is not a SAML EntitiesDescriptor: %w", err)
		}
		n := 0
		for _, e := range eds.EntityDescriptors {
			if len(e.IDPSSODescriptors) > 0 {
				ed, n = e, n+1
			}
		}
		if n != 1 {
			return fmt.Errorf("sso: metadata lists %d identity providers, not one", n)
		}
	default:
		return fmt.Errorf("sso: metadata is not a SAML EntityDescriptor but {%s}%s", root.Space, root.Local)
	}
	if ed.EntityID == "" {
		return errors.New("sso: metadata has no entityID")
	}
	if len(ed.IDPSSODescriptors) == 0 {
		return errors.New("sso: metadata has no IDPSSODescriptor")
	}
	for _, idp := range ed.IDPSSODescriptors {
		for _, kd := range idp.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					continue
				}
				if _, err := x509.ParseCertificate(der); err == nil {
					return nil
				}
			}
		}
	}
	return errors.New("sso: metadata has no signing certificate")
}

const fetchMetadataNS = "urn:oasis:names:tc:SAML:2.0:metadata"

// fetchSAMLFields are the keys of a SAML connection's config the
// refresher reads and writes; every other key is kept as it is.
type fetchSAMLFields struct {
	IdPMetadataXML    string `json:"idpMetadataXml"`
	IdPMetadataURL    string `json:"idpMetadataUrl"`
	MetadataFetchedAt string `json:"metadataFetchedAt"`
}

func fetchReadSAMLFields(config []byte) (fetchSAMLFields, error) {
	var f fetchSAMLFields
	if len(bytes.TrimSpace(config)) == 0 {
		return f, nil
	}
	// Decode key by key: a field of another type elsewhere in the config
	// must not stop the refresher.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(config, &m); err != nil {
		return f, err
	}
	for k, dst := range map[string]*string{"idpMetadataXml": &f.IdPMetadataXML, "idpMetadataUrl": &f.IdPMetadataURL,
		"metadataFetchedAt": &f.MetadataFetchedAt} {
		if raw, ok := m[k]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, dst); err != nil {
				return f, fmt.Errorf("config key %s: %w", k, err)
			}
		}
	}
	return f, nil
}

// fetchSetSAMLFields returns config with the metadata and its fetch time
// set, the other keys unchanged.
func fetchSetSAMLFields(config []byte, doc string, at time.Time) ([]byte, error) {
	m := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(config)) > 0 {
		if err := json.Unmarshal(config, &m); err != nil {
			return nil, err
		}
	}
	x, _ := json.Marshal(doc)
	ts, _ := json.Marshal(at.UTC().Format(time.RFC3339Nano))
	m["idpMetadataXml"], m["metadataFetchedAt"] = x, ts
	return json.Marshal(m)
}

// MetadataRefresher keeps the IdP metadata of SAML connections that name
// a metadata URL up to date: each round it fetches the documents last
// fetched more than Every ago and stores one that changed, is valid IdP
// metadata (CheckSAMLMetadata) and leaves the connection's settings valid
// (ParseSAMLConfig: what NewSAML will read). A fetch that fails, or a document that
// does not pass, is logged and leaves the stored metadata as it was; it
// is tried again next round. A document that did not change is not
// written (no audit entry); the refresher remembers, in memory, when it
// last saw it, so after a restart it is fetched once more.
//
// Several gatehouse instances may refresh the same database: a write
// happens only if the stored document still differs and the connection
// still names the URL fetched.
type MetadataRefresher struct {
	Store store.Store
	// List returns the connections to consider; those not of kind SAML or
	// without a metadata URL are skipped.
	List   func(ctx context.Context) ([]store.SSOConnection, error)
	Client *http.Client
	// Every is the age at which a document is fetched again; 0 means
	// DefaultMetadataRefresh.
	Every  time.Duration
	Now    func() time.Time // nil means time.Now
	Logger *slog.Logger     // nil means slog.Default()

	mu      sync.Mutex
	checked map[string]time.Time // connection ID -> last fetch with an unchanged document
}

// DefaultMetadataRefresh is how old fetched IdP metadata may get.
const DefaultMetadataRefresh = 24 * time.Hour

// RefreshSAMLMetadata runs a MetadataRefresher until ctx is done: one
// round at once, then rounds every every/4 (at least a second), so a
// document is at most about 1.25 × every old.
func RefreshSAMLMetadata(ctx context.Context, st store.Store, list func(ctx context.Context) ([]store.SSOConnection, error),
	client *http.Client, every time.Duration, now func() time.Time, logger *slog.Logger) {
	r := &MetadataRefresher{Store: st, List: list, Client: client, Every: every, Now: now, Logger: logger}
	r.Run(ctx)
}

// Run does rounds until ctx is done.
func (r *MetadataRefresher) Run(ctx context.Context) {
	tick := max(r.every()/4, time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		r.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RefreshStats counts what a round did.
type RefreshStats struct {
	Due, Updated, Unchanged, Failed int
}

// Round fetches the due documents once.
func (r *MetadataRefresher) Round(ctx context.Context) RefreshStats {
	var st RefreshStats
	logger := r.Logger
	if logger == nil {
		logger = slog.Default()
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	conns, err := r.List(ctx)
	if err != nil {
		logger.ErrorContext(ctx, "sso: metadata refresh: list connections", "err", err)
		return st
	}
	r.forget(conns)
	for _, c := range conns {
		if ctx.Err() != nil {
			return st
		}
		if c.Kind != store.SSOSAML {
			continue
		}
		f, err := fetchReadSAMLFields(c.Config)
		if err != nil {
			logger.WarnContext(ctx, "sso: metadata refresh: unreadable connection config", "org", c.OrgID, "connection", c.ID, "err", err)
			continue
		}
		if f.IdPMetadataURL == "" || !r.due(c.ID, f, now()) {
			continue
		}
		st.Due++
		switch updated, err := r.refresh(ctx, c, f.IdPMetadataURL, now); {
		case err != nil:
			st.Failed++
			logger.WarnContext(ctx, "sso: metadata refresh failed; keeping the stored metadata", "org", c.OrgID,
				"connection", c.ID, "err", err)
		case updated:
			st.Updated++
			logger.InfoContext(ctx, "sso: metadata refreshed", "org", c.OrgID, "connection", c.ID)
		default:
			st.Unchanged++
		}
	}
	return st
}

func (r *MetadataRefresher) due(id string, f fetchSAMLFields, now time.Time) bool {
	last, _ := time.Parse(time.RFC3339Nano, f.MetadataFetchedAt)
	if f.IdPMetadataXML == "" {
		return true
	}
	r.mu.Lock()
	if t, ok := r.checked[id]; ok && t.After(last) {
		last = t
	}
	r.mu.Unlock()
	return now.Sub(last) >= r.every()
}

func (r *MetadataRefresher) every() time.Duration {
	if r.Every <= 0 {
		return DefaultMetadataRefresh
	}
	return r.Every
}

// forget drops what it remembers of connections no longer listed.
func (r *MetadataRefresher) forget(listed []store.SSOConnection) {
	ids := make(map[string]bool, len(listed))
	for _, c := range listed {
		ids[c.ID] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.checked {
		if !ids[id] {
			delete(r.checked, id)
		}
	}
}

func (r *MetadataRefresher) markChecked(id string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.checked == nil {
		r.checked = map[string]time.Time{}
	}
	r.checked[id] = at
}

// errFetchUnchanged stops an update that has nothing to write.
var errFetchUnchanged = errors.New("unchanged")

func (r *MetadataRefresher) refresh(ctx context.Context, c store.SSOConnection, metadataURL string, now func() time.Time) (bool, error) {
	doc, err := FetchMetadata(ctx, r.Client, metadataURL)
	if err != nil {
		return false, err
	}
	fetchedAt := now()
	if f, _ := fetchReadSAMLFields(c.Config); bytes.Equal(bytes.TrimSpace(doc), bytes.TrimSpace([]byte(f.IdPMetadataXML))) {
		r.markChecked(c.ID, fetchedAt)
		return false, nil
	}
	if err := CheckSAMLMetadata(doc); err != nil {
		shown := metadataURL
		if u, perr := url.Parse(metadataURL); perr == nil {
			shown = fetchShowURL(u)
		}
		return false, fmt.Errorf("%s: %w", shown, err)
	}
	_, err = r.Store.UpdateSSOConnection(ctx, c.OrgID, c.ID, func(cur *store.SSOConnection) error {
		f, err := fetchReadSAMLFields(cur.Config)
		if err != nil {
			return err
		}
		if f.IdPMetadataURL != metadataURL || bytes.Equal(bytes.TrimSpace(doc), bytes.TrimSpace([]byte(f.IdPMetadataXML))) {
			return errFetchUnchanged // edited meanwhile, or another instance stored it
		}
		cfg, err := fetchSetSAMLFields(cur.Config, string(doc), fetchedAt)
		if err != nil {
			return err
		}
		// What the connector will parse must still parse: the new
		// document with the connection's other settings.
		if _, err := ParseSAMLConfig(cfg); err != nil {
			return err
		}
		cur.Config = cfg
		return nil
	})
	switch {
	case errors.Is(err, errFetchUnchanged):
		r.markChecked(c.ID, fetchedAt)
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store the metadata: %w", err)
	}
	r.markChecked(c.ID, fetchedAt)
	return true, nil
}
