package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFetchAddrRule(t *testing.T) {
	tests := []struct {
		addr          string
		allowLoopback bool
		https         bool
		want          string // a substring of the rule; "" for allowed
	}{
		// Allowed: public unicast over https.
		{"8.8.8.8", false, true, ""},
		{"100.63.255.255", false, true, ""},
		{"100.128.0.0", false, true, ""},
		{"172.15.255.255", false, true, ""},
		{"172.32.0.1", false, true, ""},
		{"2606:4700:4700::1111", false, true, ""},
		{"::ffff:8.8.8.8", false, true, ""},
		{"64:ff9b::808:808", false, true, ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", false, true, ""},  // 6to4 of 8.8.8.8
		// Public over plain http: refused.
		{"8.8.8.8", true, false, "plain http"},
		{"2606:4700:4700::1111", true, false, "plain http"},
		// Loopback: only when allowed, then over http and https.
		{"127.0.0.1", false, true, "loopback is not allowed"},
		{"127.0.0.1", false, false, "loopback is not allowed"},
		{"127.1.2.3", true, false, ""},
		{"127.0.0.1", true, true, ""},
		{"::1", true, false, ""},
		{"::1", false, true, "loopback is not allowed"},
		{"::ffff:127.0.0.1", true, false, ""},
		{"::ffff:127.0.0.1", false, true, "loopback is not allowed"},
		// RFC 1918.
		{"10.0.0.1", true, true, "RFC 1918"},
		{"10.255.255.255", true, true, "RFC 1918"},
		{"172.16.0.1", true, true, "RFC 1918"},
		{"172.31.255.255", true, true, "RFC 1918"},
		{"192.168.0.1", true, true, "RFC 1918"},
		// CGNAT.
		{"100.64.0.1", true, true, "CGNAT"},
		{"100.127.255.254", true, true, "CGNAT"},
		// Link-local and metadata services.
		{"169.254.169.254", true, true, "link-local"},
		{"169.254.0.1", true, true, "link-local"},
		{"fe80::1", true, true, "link-local"},
		{"fd00:ec2::254", true, true, "unique local"},
		{"fc00::1", true, true, "unique local"},
		// Unspecified, multicast, broadcast, reserved.
		{"0.0.0.0", true, true, "this network"},
		{"::", true, true, "unspecified"},
		{"224.0.0.1", true, true, "multicast"},
		{"239.255.255.250", true, true, "multicast"},
		{"ff02::1", true, true, "multicast"},
		{"255.255.255.255", true, true, "broadcast"},
		{"240.0.0.1", true, true, "reserved"},
		{"192.0.2.1", true, true, "documentation"},
		{"2001:db8::1", true, true, "documentation"},
		{"198.18.0.1", true, true, "benchmarking"},
		// IPv4-mapped IPv6 forms.
		{"::ffff:10.0.0.1", true, true, "RFC 1918"},
		{"::ffff:169.254.169.254", true, true, "link-local"},
		{"::ffff:100.64.0.1", true, true, "CGNAT"},
		{"::ffff:0.0.0.0", true, true, "this network"},
		// NAT64 (64:ff9b::/96) embedding them.
		{"64:ff9b::a9fe:a9fe", true, true, "NAT64 address embedding 169.254.169.254"},
		{"64:ff9b::a00:1", true, true, "NAT64 address embedding 10.0.0.1"},
		{"64:ff9b::c0a8:101", true, true, "NAT64 address embedding 192.168.1.1"},
		{"64:ff9b::7f00:1", true, true, "NAT64 address embedding loopback"},
		{"64:ff9b:1::1", true, true, "local-use NAT64"},
		// 6to4 embedding them, IPv4-compatible, other non-global IPv6.
		{"2002:a9fe:a9fe::1", true, true, "6to4 address embedding 169.254.169.254"},
		{"2002:7f00:1::1", true, true, "6to4 address embedding loopback"},
		{"::a00:1", true, true, "IPv4-compatible"},
		{"2001:0::1", true, true, "Teredo"},
		{"100::1", true, true, "discard-only"},
		{"4000::1", true, true, "not a global unicast"},
		{"fe80::1%eth0", true, true, "zone"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/loopback=%v/https=%v", tt.addr, tt.allowLoopback, tt.https), func(t *testing.T) {
			got := addrRule(netip.MustParseAddr(tt.addr), tt.allowLoopback, tt.https)
			switch {
			case tt.want == "" && got != "":
				t.Fatalf("refused (%s), want allowed", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Fatalf("rule = %q, want one containing %q", got, tt.want)
			}
		})
	}
}

func TestCheckMetadataURL(t *testing.T) {
	tests := []struct {
		url  string
		want string // a substring of the error; "" for accepted
	}{
		{"https://idp.example.com/metadata", ""},
		{"https://idp.example.com:8443/saml/metadata?tenant=1", ""},
		{"http://127.0.0.1:8080/metadata", ""},
		{"https://[::1]/metadata", ""},
		{"https://8.8.8.8/metadata", ""},
		{"http://idp.example.com/metadata", ""}, // a name: what it resolves to decides when fetched
		{"ftp://idp.example.com/metadata", "scheme"},
		{"file:///etc/passwd", "scheme"},
		{"gopher://idp.example.com", "scheme"},
		{"idp.example.com/metadata", "scheme"},
		{"https:///metadata", "no host"},
		{"https:idp.example.com", "no host"},
		{"https://user:pass@idp.example.com/metadata", "credentials"},
		{"https://user@idp.example.com/metadata", "credentials"},
		{"https://idp.example.com:0/", "port"},
		{"https://idp.example.com:65536/", "port"},
		{"https://idp.example.com:0443/", "port"},
		{"https://idp.example.com:/", "port"},
		{"https://[fe80::1%25eth0]/", "zone"},
		{"https://idp.example.com/metadata#x", "fragment"},
		{"http://8.8.8.8/metadata", "plain http"},
		{"https://10.0.0.1/metadata", "RFC 1918"},
		{"https://169.254.169.254/latest/meta-data/", "link-local"},
		{"https://[fd00:ec2::254]/", "unique local"},
		{"https://[::ffff:192.168.0.1]/", "RFC 1918"},
		{"https://100.64.1.1/", "CGNAT"},
		{"https://0.0.0.0/", "this network"},
		{"%zz", "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := CheckURL(tt.url)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			case tt.want != "" && !errors.Is(err, ErrRefused):
				t.Fatalf("err = %v is not ErrRefused", err)
			}
		})
	}
}

// fetchResolver maps host names to addresses; a name with several
// answers gives them in turn, one per lookup (the last one repeats).
type fetchResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	lookups map[string]int
}

func newFetchResolver() *fetchResolver {
	return &fetchResolver{answers: map[string][][]netip.Addr{}, lookups: map[string]int{}}
}

func (r *fetchResolver) set(host string, answers ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers[host] = nil
	for _, a := range answers {
		var addrs []netip.Addr
		for _, s := range strings.Split(a, ",") {
			addrs = append(addrs, netip.MustParseAddr(s))
		}
		r.answers[host] = append(r.answers[host], addrs)
	}
}

func (r *fetchResolver) resolve(_ context.Context, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	as, ok := r.answers[host]
	if !ok {
		return nil, fmt.Errorf("no such host %s", host)
	}
	n := r.lookups[host]
	r.lookups[host]++
	return as[min(n, len(as)-1)], nil
}

func (r *fetchResolver) count(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups[host]
}

// fetchTestClient is a client with small limits so a broken rule fails
// fast instead of waiting on an unreachable address.
func fetchTestClient(r *fetchResolver, loopback bool) *http.Client {
	return NewClient(Options{AllowLoopback: loopback, Resolve: r.resolve,
		DialTimeout: 500 * time.Millisecond, Timeout: 2 * time.Second})
}

func fetchServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func fetchOK(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "<EntityDescriptor/>") }

// fetchPort is the ":port" of a test server.
func fetchPort(srv *httptest.Server) string {
	return ":" + strings.TrimPrefix(srv.URL[strings.LastIndex(srv.URL, ":"):], ":")
}

func wantRefused(t *testing.T, err error, rule string) {
	t.Helper()
	var refused *RefusedError
	if !errors.As(err, &refused) || !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want a *RefusedError", err)
	}
	if !strings.Contains(err.Error(), rule) {
		t.Fatalf("err = %v, want one naming %q", err, rule)
	}
}

// Every refused class, reached by name (the resolver) and by literal
// address, over https — and the dial never happens: an attempt to these
// addresses would time out or fail with a network error instead.
func TestFetchRefusesAddresses(t *testing.T) {
	for addr, rule := range map[string]string{
		"10.0.0.1":               "RFC 1918",
		"172.16.5.4":             "RFC 1918",
		"192.168.1.1":            "RFC 1918",
		"100.64.0.1":             "CGNAT",
		"169.254.169.254":        "link-local",
		"fe80::1":                "link-local",
		"fd00:ec2::254":          "unique local",
		"fc00::1":                "unique local",
		"0.0.0.0":                "this network",
		"::":                     "unspecified",
		"224.0.0.251":            "multicast",
		"ff02::1":                "multicast",
		"255.255.255.255":        "broadcast",
		"::ffff:10.0.0.1":        "RFC 1918",
		"::ffff:169.254.169.254": "link-local",
		"64:ff9b::a9fe:a9fe":     "NAT64",
		"64:ff9b::a00:1":         "NAT64",
		"127.0.0.1":              "loopback is not allowed",
		"::1":                    "loopback is not allowed",
	} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			r := newFetchResolver()
			r.set("idp.test", addr)
			client := fetchTestClient(r, false)
			_, err := Get(context.Background(), client, "https://idp.test/metadata")
			wantRefused(t, err, rule)
			if r.count("idp.test") != 1 {
				t.Fatalf("%d lookups, want 1", r.count("idp.test"))
			}
			host := addr
			if strings.Contains(addr, ":") {
				host = "[" + addr + "]"
			}
			_, err = Get(context.Background(), client, "https://"+host+"/metadata")
			wantRefused(t, err, rule)
		})
	}
}

func TestFetchLoopback(t *testing.T) {
	srv := fetchServer(t, fetchOK)
	r := newFetchResolver()
	r.set("idp.test", "127.0.0.1")

	for _, u := range []string{srv.URL + "/metadata", "http://idp.test" + fetchPort(srv) + "/metadata"} {
		body, err := Get(context.Background(), fetchTestClient(r, true), u)
		if err != nil || string(body) != "<EntityDescriptor/>" {
			t.Fatalf("%s with AllowLoopback: %q, %v", u, body, err)
		}
		_, err = Get(context.Background(), fetchTestClient(r, false), u)
		wantRefused(t, err, "loopback is not allowed")
	}
}

// Plain http to anything but loopback is refused before any connection:
// the resolver's answer is checked with the scheme's rule.
func TestFetchPlainHTTPToPublicRefused(t *testing.T) {
	r := newFetchResolver()
	r.set("idp.test", "8.8.8.8")
	_, err := Get(context.Background(), fetchTestClient(r, true), "http://idp.test/metadata")
	wantRefused(t, err, "plain http is allowed only to loopback")
	// A name answering loopback and a public address is refused too.
	r.set("mixed.test", "127.0.0.1,8.8.8.8")
	_, err = Get(context.Background(), fetchTestClient(r, true), "http://mixed.test/metadata")
	wantRefused(t, err, "plain http")
}

func TestFetchURLRules(t *testing.T) {
	srv := fetchServer(t, fetchOK)
	client := fetchTestClient(newFetchResolver(), true)
	for u, rule := range map[string]string{
		"ftp://127.0.0.1/metadata":                                 "scheme",
		"file:///etc/passwd":                                       "scheme",
		strings.Replace(srv.URL, "http://", "http://u:p@", 1):      "credentials",
		strings.Replace(srv.URL, "http://", "http://token@", 1):    "credentials",
		"http://127.0.0.1:99999/":                                  "port",
		"http:///nohost":                                           "no host",
		"javascript:alert(1)":                                      "scheme",
		"https://127.0.0.1:0/":                                     "port",
		strings.Replace(srv.URL, "127.0.0.1", "[fe80::1%25lo]", 1): "zone",
	} {
		_, err := Get(context.Background(), client, u)
		wantRefused(t, err, rule)
	}
}

func TestFetchHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(fetchOK))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	r := newFetchResolver()
	r.set("example.com", "127.0.0.1") // httptest's certificate names example.com

	client := NewClient(Options{AllowLoopback: true, RootCAs: pool, Resolve: r.resolve})
	for _, u := range []string{srv.URL + "/metadata", "https://example.com" + fetchPort(srv) + "/metadata"} {
		body, err := Get(context.Background(), client, u)
		if err != nil || string(body) != "<EntityDescriptor/>" {
			t.Fatalf("%s: %q, %v", u, body, err)
		}
	}

	// The certificate is verified: another name, or the system roots,
	// fail (not a rule of ours: a TLS error).
	r.set("other.test", "127.0.0.1")
	if _, err := Get(context.Background(), client, "https://other.test"+fetchPort(srv)+"/"); err == nil ||
		errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("wrong name: err = %v, want a certificate error", err)
	}
	system := NewClient(Options{AllowLoopback: true})
	if _, err := Get(context.Background(), system, srv.URL); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: err = %v, want a certificate error", err)
	}
}

// DNS rebinding: each connection resolves the name anew and checks what
// it got; an answer that changes to a private address after a good one is
// refused, and so is an answer mixing a good and a private address.
func TestFetchDNSRebinding(t *testing.T) {
	srv := fetchServer(t, fetchOK)
	r := newFetchResolver()
	r.set("rebind.test", "127.0.0.1", "10.0.0.1")
	client := fetchTestClient(r, true)
	u := "http://rebind.test" + fetchPort(srv) + "/metadata"
	if _, err := Get(context.Background(), client, u); err != nil {
		t.Fatalf("first fetch: %v", err)
	}
	_, err := Get(context.Background(), client, u)
	wantRefused(t, err, "rebind.test resolves to 10.0.0.1: private network")
	if n := r.count("rebind.test"); n != 2 {
		t.Fatalf("%d lookups, want 2 (one per connection)", n)
	}

	r.set("both.test", "127.0.0.1,169.254.169.254")
	_, err = Get(context.Background(), client, "http://both.test"+fetchPort(srv)+"/metadata")
	wantRefused(t, err, "169.254.169.254: link-local")
}

func TestFetchRedirects(t *testing.T) {
	r := newFetchResolver()
	r.set("private.test", "192.168.0.10")
	r.set("loop.test", "127.0.0.1")
	target := fetchServer(t, fetchOK)

	redirect := func(to string) *httptest.Server {
		return fetchServer(t, func(w http.ResponseWriter, req *http.Request) { http.Redirect(w, req, to, http.StatusFound) })
	}
	for name, tc := range map[string]struct{ to, rule string }{
		"literal private": {"http://10.1.1.1/metadata", "RFC 1918"},
		"metadata":        {"http://169.254.169.254/latest/meta-data/", "link-local"},
		"metadata v6":     {"https://[fd00:ec2::254]/latest/meta-data/", "unique local"},
		"name private":    {"https://private.test/metadata", "private.test resolves to 192.168.0.10"},
		"credentials":     {"http://u:p@loop.test" + fetchPort(target) + "/", "credentials"},
		"scheme":          {"file:///etc/passwd", "scheme"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Get(context.Background(), fetchTestClient(r, true), redirect(tc.to).URL)
			wantRefused(t, err, tc.rule)
		})
	}

	t.Run("three followed, four refused", func(t *testing.T) {
		chain := func(n int) string {
			u := target.URL + "/metadata"
			for range n {
				u = redirect(u).URL
			}
			return u
		}
		if body, err := Get(context.Background(), fetchTestClient(r, true), chain(3)); err != nil || len(body) == 0 {
			t.Fatalf("3 redirects: %q, %v", body, err)
		}
		_, err := Get(context.Background(), fetchTestClient(r, true), chain(4))
		wantRefused(t, err, "more than 3 redirects")
	})

	t.Run("https to http refused", func(t *testing.T) {
		tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			http.Redirect(w, req, target.URL+"/metadata", http.StatusMovedPermanently)
		}))
		t.Cleanup(tlsSrv.Close)
		pool := x509.NewCertPool()
		pool.AddCert(tlsSrv.Certificate())
		client := NewClient(Options{AllowLoopback: true, RootCAs: pool})
		_, err := Get(context.Background(), client, tlsSrv.URL)
		wantRefused(t, err, "redirect from https to http")
	})
}

func TestFetchSizeLimit(t *testing.T) {
	const limit = 1000
	big := strings.Repeat("x", limit+1)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Repeat("x", 10*DefaultMaxBytes)))
	zw.Close()

	srv := fetchServer(t, func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/exact":
			io.WriteString(w, big[:limit])
		case "/length": // Content-Length announces too much
			io.WriteString(w, big)
		case "/chunked": // no Content-Length: refused while reading
			w.(http.Flusher).Flush()
			io.WriteString(w, big)
		case "/gzip": // a small deflate bomb: the limit counts decompressed bytes
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(gz.Bytes())
		case "/default": // just over the default limit
			w.(http.Flusher).Flush()
			io.WriteString(w, strings.Repeat("x", DefaultMaxBytes+1))
		}
	})
	client := NewClient(Options{AllowLoopback: true, MaxBytes: limit})
	if body, err := Get(context.Background(), client, srv.URL+"/exact"); err != nil || len(body) != limit {
		t.Fatalf("exactly the limit: %d bytes, %v", len(body), err)
	}
	for _, p := range []string{"/length", "/chunked"} {
		_, err := Get(context.Background(), client, srv.URL+p)
		wantRefused(t, err, "larger than 1000 bytes")
	}
	for _, p := range []string{"/gzip", "/default"} {
		_, err := Get(context.Background(), NewClient(Options{AllowLoopback: true}), srv.URL+p)
		wantRefused(t, err, "larger than 1048576 bytes")
	}
}

func TestFetchTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := fetchServer(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/slow-body" {
			io.WriteString(w, "<EntityDescriptor")
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-req.Context().Done():
		}
	})
	client := NewClient(Options{AllowLoopback: true, Timeout: 200 * time.Millisecond})
	for _, p := range []string{"/slow-headers", "/slow-body"} {
		start := time.Now()
		_, err := Get(context.Background(), client, srv.URL+p)
		if msg := strings.ToLower(fmt.Sprint(err)); err == nil || !strings.Contains(msg, "timeout") && !strings.Contains(msg, "deadline") {
			t.Fatalf("%s: err = %v, want a timeout", p, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s: took %v", p, d)
		}
	}
	// The caller's context bounds it too.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Get(ctx, NewClient(Options{AllowLoopback: true}), srv.URL+"/slow-headers"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("context deadline: err = %v", err)
	}
}

func TestFetchStatusAndProxy(t *testing.T) {
	// The environment's proxy is never used: it would be reached instead
	// of the checked address.
	t.Setenv("HTTP_PROXY", "http://10.9.9.9:3128")
	t.Setenv("HTTPS_PROXY", "http://10.9.9.9:3128")
	t.Setenv("NO_PROXY", "")
	srv := fetchServer(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/metadata" {
			http.NotFound(w, req)
			return
		}
		fetchOK(w, req)
	})
	r := newFetchResolver()
	r.set("idp.test", "127.0.0.1")
	client := fetchTestClient(r, true)
	if _, err := Get(context.Background(), client, "http://idp.test"+fetchPort(srv)+"/metadata"); err != nil {
		t.Fatalf("with a proxy in the environment: %v", err)
	}
	_, err := Get(context.Background(), client, srv.URL+"/missing?secret=1")
	if err == nil || !strings.Contains(err.Error(), "404") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("404: err = %v, want the status without the query", err)
	}
}

// What CheckURL accepts is an http(s) URL with a host and no
// credentials, whose literal IP (if any) the fetch rules allow.
func FuzzCheckMetadataURL(f *testing.F) {
	for _, s := range []string{"https://idp.example.com/metadata", "http://127.0.0.1:8080/x", "https://[::ffff:10.0.0.1]/",
		"https://u@h/", "https://h:0/", "javascript:alert(1)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if CheckURL(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.User != nil {
			t.Fatalf("accepted %q", raw)
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && addrRule(ip, true, u.Scheme == "https") != "" {
			t.Fatalf("accepted %q with a refused address", raw)
		}
	})
}
