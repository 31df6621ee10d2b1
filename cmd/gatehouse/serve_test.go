package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"gatehouse/store/storetest"
)

// syncBuffer is a bytes.Buffer the server's goroutines may write to while
// the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runUntilReady starts cmd (a program a test talks to), kills it when
// the test ends — logging failureLog() then if the test failed — and waits
// up to 20 s for GET ready to answer 200.
func runUntilReady(t *testing.T, name string, cmd *exec.Cmd, ready string, failureLog func() string) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s's log (tail):\n%s", name, tail(failureLog(), 8000))
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(ready)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start: %v\n%s", name, err, tail(failureLog(), 8000))
		}
	}
}

// server is gatehouse serve running in-process.
type server struct {
	base   string
	stop   context.CancelFunc
	done   chan int
	stdout *syncBuffer
	stderr *syncBuffer
}

// startServe runs serve with args and env and waits until /healthz answers.
func startServe(t *testing.T, addr string, env map[string]string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{base: "http://" + addr, stop: cancel, done: make(chan int, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	go func() {
		s.done <- run(ctx, append([]string{"serve"}, args...), s.stdout, s.stderr, func(k string) string { return env[k] })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case code := <-s.done:
			s.done <- code
			t.Fatalf("serve exited %d before answering: %s", code, s.stderr.String())
		default:
		}
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer /healthz: %v; stderr %s", err, s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shutdown cancels serve's context (as SIGINT would) and returns its exit
// status.
func (s *server) shutdown(t *testing.T) int {
	t.Helper()
	s.stop()
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup
		return code
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20s of its context ending")
		return -1
	}
}

func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	return doWith(t, http.DefaultClient, req)
}

// doWith is do with client (a cookie jar's, say).
func doWith(t *testing.T, client *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// ownerSession activates acme's owner Jane.Doe with password through the
// link org create printed, then signs her in through the management API
// at base: the cookie of her console session.
func ownerSession(t *testing.T, base, link, password string) *http.Cookie {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	post := func(path, body string) *http.Response {
		req, _ := http.NewRequest("POST", base+"/api/v1"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, text := do(t, req)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, res.StatusCode, text)
		}
		return res
	}
	post("/activation", `{"token":"`+u.Query().Get("token")+`","password":"`+password+`"}`)
	cookies := post("/session", `{"organization":"acme","username":"Jane.Doe","password":"`+password+`"}`).Cookies()
	if len(cookies) != 1 {
		t.Fatalf("session cookies: %v", cookies)
	}
	return cookies[0]
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// logLines parses serve's JSON log.
func logLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		lines = append(lines, m)
	}
	return lines
}

func TestServe(t *testing.T) {
	addr := freeAddr(t)
	dbPath := filepath.Join(t.TempDir(), "nested", "gatehouse.db")
	// The database comes from the environment; --addr wins over a bad
	// GATEHOUSE_ADDR; the log format is auto, and stderr is no terminal.
	srv := startServe(t, addr, map[string]string{"GATEHOUSE_DB": dbPath, "GATEHOUSE_ADDR": "not-an-address"}, "--addr", addr)

	if _, err := os.Stat(dbPath); err != nil {
		t.Fatalf("GATEHOUSE_DB not used: %v", err)
	}

	resp, body := get(t, srv.base+"/healthz", nil)
	if resp.StatusCode != 200 || body != "ok" {
		t.Errorf("/healthz: %d %q", resp.StatusCode, body)
	}
	healthzID := resp.Header.Get("X-Request-ID")
	if !generatedID.MatchString(healthzID) {
		t.Errorf("generated X-Request-ID %q is not 16 random bytes in hex", healthzID)
	}
	resp, body = get(t, srv.base+"/readyz", map[string]string{"X-Request-ID": "lb-check.42_A"})
	if resp.StatusCode != 200 || body != "ready" {
		t.Errorf("/readyz: %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Request-ID"); got != "lb-check.42_A" {
		t.Errorf("X-Request-ID %q, want the client's echoed", got)
	}
	resp, _ = get(t, srv.base+"/readyz", map[string]string{"X-Request-ID": "no spaces allowed"})
	if got := resp.Header.Get("X-Request-ID"); !generatedID.MatchString(got) {
		t.Errorf("invalid client X-Request-ID was kept: %q", got)
	}
	resp, _ = get(t, srv.base+"/no/such/path/12345", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("BREW", srv.base+"/healthz", nil)
	if resp, _ := do(t, req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("BREW /healthz: %d", resp.StatusCode)
	}

	resp, metrics := get(t, srv.base+"/metrics", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`gatehouse_http_requests_total{code="200",method="GET",route="GET /healthz"}`,
		"gatehouse_outbox_pending 0",
		`gatehouse_http_requests_total{code="200",method="GET",route="GET /readyz"} 2`,
		`gatehouse_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`gatehouse_http_requests_total{code="405",method="OTHER",route="unmatched"} 1`,
		`gatehouse_http_request_duration_seconds_bucket{method="GET",route="GET /healthz",le="+Inf"}`,
		`go_sql_max_open_connections{db_name="reader"}`,
		`go_sql_max_open_connections{db_name="writer"} 1`,
		`go_goroutines`,
		`process_open_fds`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, "12345") || strings.Contains(metrics, "BREW") {
		t.Error("/metrics carries a raw path or method as a label")
	}

	if code := srv.shutdown(t); code != 0 {
		t.Fatalf("serve exited %d after its context ended: %s", code, srv.stderr.String())
	}
	if srv.stdout.String() != "" {
		t.Errorf("serve wrote to stdout: %q", srv.stdout.String())
	}
	var sawHealthz, sawListening, sawStopped bool
	for _, l := range logLines(t, srv.stderr.String()) {
		switch l["msg"] {
		case "gatehouse listening":
			sawListening = l["addr"] == addr && l["base_url"] == "http://"+addr && l["database"] == "sqlite"
		case "gatehouse stopped":
			sawStopped = true
		case "http request":
			if l["request_id"] == healthzID {
				sawHealthz = l["route"] == "GET /healthz" && l["method"] == "GET" && l["status"] == float64(200) &&
					l["bytes"] == float64(2) && l["duration"] != nil
			}
		}
	}
	if !sawListening || !sawHealthz || !sawStopped {
		t.Errorf("log lacks a line (listening %v, /healthz request %v, stopped %v):\n%s", sawListening, sawHealthz, sawStopped, srv.stderr.String())
	}
}

// TestServeDefaultDatabase changes the working directory, so it must not
// run in parallel with other tests.
func TestServeDefaultDatabase(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	addr := freeAddr(t)
	srv := startServe(t, addr, nil, "--addr", addr, "--log-format", "text")
	if _, err := os.Stat(filepath.Join(dir, "data", "gatehouse.db")); err != nil {
		t.Fatalf("serve without --db did not create data/gatehouse.db: %v", err)
	}
	if code := srv.shutdown(t); code != 0 {
		t.Fatalf("exit %d: %s", code, srv.stderr.String())
	}
	if !strings.Contains(srv.stderr.String(), `msg="gatehouse listening"`) {
		t.Errorf("--log-format text: %s", srv.stderr.String())
	}
}

func TestServeAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := gatehouse(t, nil, "serve", "--addr", l.Addr().String(), "--db", filepath.Join(t.TempDir(), "gh.db"))
	if r.code != 1 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	oneErrorLine(t, r, "address already in use")
}

// testHandler is the server's handler around newMux, as serve builds it.
func testHandler(t *testing.T, d deps, mux *http.ServeMux) (http.Handler, *syncBuffer, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if d.metrics == nil {
		d.metrics = reg
	}
	if mux == nil {
		mux = newMux(d)
	}
	logs := &syncBuffer{}
	return instrument(mux, slog.New(slog.NewJSONHandler(logs, nil)), newHTTPMetrics(reg)), logs, reg
}

func TestReadyzDatabaseDown(t *testing.T) {
	s := storetest.SQLite(t)
	h, logs, _ := testHandler(t, deps{store: s}, nil)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 || rec.Body.String() != "ready" {
		t.Fatalf("store open: %d %q", rec.Code, rec.Body.String())
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "database unreachable" || rec.Header().Get("Retry-After") != "5" {
		t.Fatalf("store closed: %d %q, Retry-After %q", rec.Code, rec.Body.String(), rec.Header().Get("Retry-After"))
	}
	// The cause goes to the log, with the request ID, not to the client.
	id := rec.Header().Get("X-Request-ID")
	if !strings.Contains(logs.String(), `"msg":"readiness check failed","request_id":"`+id+`","err":"sql: database is closed"`) {
		t.Errorf("log lacks the cause: %s", logs.String())
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		name, incoming string
		kept           bool
	}{
		{"none", "", false},
		{"plain", "abc-123_X.y", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"65 characters", strings.Repeat("a", 65), false},
		{"space", "a b", false},
		{"log injection", "a\n{\"level\":\"ERROR\"}", false},
		{"non-ASCII", "ünïcode", false},
		{"slash", "a/b", false},
	}
	h, logs, _ := testHandler(t, deps{store: storetest.SQLite(t)}, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/healthz", nil)
			if tt.incoming != "" {
				req.Header["X-Request-Id"] = []string{tt.incoming}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Header().Get("X-Request-ID")
			if tt.kept && got != tt.incoming {
				t.Errorf("X-Request-ID %q, want %q kept", got, tt.incoming)
			}
			if !tt.kept && !generatedID.MatchString(got) {
				t.Errorf("X-Request-ID %q, want a generated one", got)
			}
			if !strings.Contains(logs.String(), `"request_id":"`+got+`"`) {
				t.Errorf("no log line with request_id %q", got)
			}
		})
	}
}

func TestPanicRecovery(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Secret", "do not send")
		panic("database password is hunter2")
	})
	mux.HandleFunc("GET /half", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("partial answer"))
		w.(http.Flusher).Flush()
		panic("after the header")
	})
	h, logs, reg := testHandler(t, deps{}, mux)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	id := rec.Header().Get("X-Request-ID")
	if rec.Code != 500 || rec.Body.String() != "internal server error\n" || rec.Header().Get("X-Secret") != "" ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") || id == "" {
		t.Errorf("panic answered %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
	if !strings.Contains(logs.String(), `"msg":"panic serving request","request_id":"`+id+`","panic":"database password is hunter2"`) {
		t.Errorf("panic not logged with the request ID: %s", logs.String())
	}
	want := `
# HELP gatehouse_http_requests_total HTTP requests served, by route pattern, method and status code.
# TYPE gatehouse_http_requests_total counter
gatehouse_http_requests_total{code="500",method="GET",route="GET /boom"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gatehouse_http_requests_total"); err != nil {
		t.Error(err)
	}

	// Once part of the answer is out, the connection is cut so the client
	// cannot take it for complete.
	ts := httptest.NewServer(h)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/half")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a panic after the header was written gave the client a complete answer")
	}
}

// TestServeUntilDoneDrains: ending the context stops new work but lets the
// request in flight finish, and then returns nil.
func TestServeUntilDoneDrains(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		fmt.Fprint(w, "finished")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serveUntilDone(ctx, ln, h, slog.New(slog.DiscardHandler)) }()

	type answer struct {
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- answer{string(b), err}
	}()
	<-entered
	cancel()
	select {
	case err := <-served:
		t.Fatalf("returned %v with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if a := <-answered; a.err != nil || a.body != "finished" {
		t.Errorf("in-flight request got %q, %v", a.body, a.err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serveUntilDone: %v", err)
		}
	case <-time.After(shutdownTimeout):
		t.Fatal("serveUntilDone did not return")
	}
}

// On PostgreSQL the reader and writer are one pool, reported once.
func TestRegistryPostgresPool(t *testing.T) {
	s := storetest.Postgres(t)
	reg := newRegistry(s)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		if f.GetName() != "go_sql_max_open_connections" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				names = append(names, l.GetName()+"="+l.GetValue())
			}
		}
	}
	if strings.Join(names, ",") != "db_name=main" {
		t.Errorf("pool metrics labelled %v, want only db_name=main", names)
	}
}

// serve --db postgres://... migrates that database and answers as on SQLite.
func TestServePostgres(t *testing.T) {
	url := storetest.PostgresURL(t)
	addr := freeAddr(t)
	srv := startServe(t, addr, nil, "--addr", addr, "--db", url)
	if resp, body := get(t, srv.base+"/readyz", nil); resp.StatusCode != 200 || body != "ready" {
		t.Errorf("/readyz on PostgreSQL: %d %q", resp.StatusCode, body)
	}
	if resp, metrics := get(t, srv.base+"/metrics", nil); resp.StatusCode != 200 || !strings.Contains(metrics, `go_sql_open_connections{db_name="main"}`) {
		t.Errorf("/metrics on PostgreSQL lacks the pool figures (%d)", resp.StatusCode)
	}
	if code := srv.shutdown(t); code != 0 {
		t.Fatalf("serve exited %d: %s", code, srv.stderr.String())
	}
	if !strings.Contains(srv.stderr.String(), `"database":"postgres"`) {
		t.Errorf("serve did not say it runs on PostgreSQL:\n%s", srv.stderr.String())
	}
}

// TestServeManagement runs the management path through serve's wiring: an
// API key from the command line invites an administrator; with no SMTP
// server the activation email is in the log; the link activates the
// account; the administrator signs in. The secret key file is created on
// first start and reused on the second.
func TestServeManagement(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"GATEHOUSE_DB": filepath.Join(dir, "gatehouse.db")}
	if r := gatehouse(t, env, orgArgs("acme", "--domain", "example.com")...); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := gatehouse(t, env, "api-key", "create", "--org", "acme", "--name", "test")
	key := strings.TrimSpace(r.stdout)
	addr := freeAddr(t)
	srv := startServe(t, addr, env, "--addr", addr, "--log-format", "json")
	keyFile := filepath.Join(dir, "secret.key")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret key file: %v %v", fi, err)
	}
	call := func(method, path, body string, header map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest(method, srv.base+"/api/v1"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		return do(t, req)
	}
	auth := map[string]string{"Authorization": "Bearer " + key}
	resp, body := call("POST", "/administrators", `{"username":"JDoe","firstName":"Jane","lastName":"Doe","email":"jdoe@example.com"}`, auth)
	if resp.StatusCode != 201 {
		t.Fatalf("invite: %d %s", resp.StatusCode, body)
	}
	// The sender logs the email within a poll interval.
	var token string
	for deadline := time.Now().Add(10 * time.Second); token == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := regexp.MustCompile(`activate\?token=([A-Za-z0-9_-]+)`).FindStringSubmatch(srv.stderr.String()); m != nil {
			token = m[1]
		}
	}
	if token == "" {
		t.Fatalf("no activation link in the log:\n%s", srv.stderr.String())
	}
	resp, body = call("POST", "/activation", `{"token":"`+token+`","password":"a very good passphrase"}`, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"status":"Active"`) {
		t.Fatalf("activate: %d %s", resp.StatusCode, body)
	}
	resp, body = call("POST", "/session", `{"organization":"acme","username":"JDoe","password":"a very good passphrase"}`, nil)
	cookies := resp.Cookies()
	if resp.StatusCode != 200 || len(cookies) != 1 || cookies[0].Secure {
		t.Fatalf("sign in: %d %s %v (http base URL: no Secure flag)", resp.StatusCode, body, cookies)
	}
	resp, body = call("GET", "/me", "", map[string]string{"Cookie": cookies[0].Name + "=" + cookies[0].Value})
	if resp.StatusCode != 200 || !strings.Contains(body, `"username":"JDoe"`) {
		t.Fatalf("me: %d %s", resp.StatusCode, body)
	}
	if code := srv.shutdown(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	// A second start reads the same key: the sealed emails and TOTP seeds
	// of the first still open.
	before, _ := os.ReadFile(keyFile)
	startServe(t, addr, env, "--addr", addr)
	after, _ := os.ReadFile(keyFile)
	if string(before) != string(after) || len(before) == 0 {
		t.Fatal("the secret key file changed across a restart")
	}
}
