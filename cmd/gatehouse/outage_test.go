package main

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/store/storetest"
)

// outageRequest is one kind of request of the load: what it answers while
// the database is up, and the media type of its error format.
type outageRequest struct {
	name      string
	up        int    // the status while the database is up
	errorType string // the Content-Type of its 503
	body      string // must be in the 503's body
	make      func(n int64) *http.Request
}

type outageAnswer struct {
	req        string
	status     int
	retryAfter string
	mediaType  string
	body       string
}

var retryAfterSeconds = regexp.MustCompile(`^[1-9][0-9]*$`)

// TestDatabaseOutagePostgres stops PostgreSQL (pg_ctl stop -m fast) under
// a bounded load of SCIM, management API and sign-in page requests through
// a real `gatehouse serve`: no answer is a 500; every answer while the
// database is down is a 503 with an integer Retry-After, in the protocol's
// own error format (forward auth's /auth/verify included: a 503, never a
// 401); once PostgreSQL is started again, the same server
// answers as before.
func TestDatabaseOutagePostgres(t *testing.T) {
	cluster := storetest.NewPostgresCluster(t)
	dsn := cluster.URL(t)
	env := map[string]string{"GATEHOUSE_DB": dsn}
	r := gatehouse(t, env, orgArgs("acme", "--domain", "example.com")...)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	activation, err := url.Parse(parseOrgCreate(t, r.stdout).link)
	if err != nil {
		t.Fatal(err)
	}
	if r := gatehouse(t, env, "scim", "enable", "--org", "acme"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r = gatehouse(t, env, "scim", "token", "create", "--org", "acme")
	token := strings.TrimSpace(r.stdout)
	r = gatehouse(t, env, "api-key", "create", "--org", "acme", "--name", "outage")
	key := strings.TrimSpace(r.stdout)
	if token == "" || key == "" {
		t.Fatalf("no token or key: %q %q", token, key)
	}
	addr := freeAddr(t)
	srv := startServe(t, addr, env, "--addr", addr, "--scim-rate-limit", "-1", "--log-format", "json")
	// The first administrator signs in to the console.
	cookies := []*http.Cookie{ownerSession(t, srv.base, activation.String(), "a very good passphrase")}
	requests := append(outageRequests(srv.base, token, key), outageRequest{"API GET /me (console session)", 200,
		"application/problem+json", `"code":"unavailable"`, func(int64) *http.Request {
			req, _ := http.NewRequest("GET", srv.base+"/api/v1/me", nil)
			req.AddCookie(cookies[0])
			return req
		}}, outageRequest{"GET /auth/verify (console session)", 200, "text/plain", "unavailable", func(int64) *http.Request {
		// Forward auth: an outage is not a sign-out (nginx would send
		// everyone to sign in on a 401).
		req, _ := http.NewRequest("GET", srv.base+"/auth/verify", nil)
		req.Header.Set("Accept", "text/html")
		req.AddCookie(cookies[0])
		return req
	}})

	var (
		mu      sync.Mutex
		answers = map[string][]outageAnswer{} // by phase
		sent    atomic.Int64
		phase   atomic.Value
	)
	client := &http.Client{Timeout: 20 * time.Second}
	send := func(rq outageRequest) (outageAnswer, error) {
		res, err := client.Do(rq.make(sent.Add(1)))
		if err != nil {
			return outageAnswer{}, err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		mt, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
		return outageAnswer{req: rq.name, status: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), mediaType: mt, body: string(b)}, nil
	}
	// load runs 4 clients over every kind of request for d, at most 400
	// requests in all (each client sends each kind at least once), and records the answers under the phase current
	// when each request was sent and when it was answered (a request
	// that straddles two phases is recorded under "transition").
	load := func(d time.Duration) {
		var wg sync.WaitGroup
		deadline := time.Now().Add(d)
		var budget atomic.Int64
		budget.Store(400)
		for w := range 4 {
			wg.Go(func() {
				// Every kind at least once per client, then until d is over.
				for i := w; (i < w+len(requests) || time.Now().Before(deadline)) && budget.Add(-1) >= 0; i++ {
					rq := requests[i%len(requests)]
					before := phase.Load().(string)
					a, err := send(rq)
					if err != nil {
						t.Errorf("%s: %v", rq.name, err)
						return
					}
					p := phase.Load().(string)
					if p != before {
						p = "transition"
					}
					mu.Lock()
					answers[p] = append(answers[p], a)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}

	phase.Store("up")
	load(300 * time.Millisecond)
	// The stop runs under load: the sessions in use are ended (57P01),
	// then new connections are refused.
	var loaded sync.WaitGroup
	phase.Store("stopping")
	loaded.Go(func() { load(300 * time.Millisecond) })
	cluster.Stop(t)
	loaded.Wait()
	phase.Store("down")
	load(1500 * time.Millisecond)
	if res, body := get(t, srv.base+"/readyz", nil); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with PostgreSQL down: %d %s", res.StatusCode, body)
	}
	cluster.Start(t)
	phase.Store("restarted")
	load(300 * time.Millisecond)

	byName := map[string]outageRequest{}
	for _, rq := range requests {
		byName[rq.name] = rq
	}
	for p, as := range answers {
		seen := map[string]bool{}
		wrong := map[string]int{} // one line per kind of wrong answer, with its count
		for _, a := range as {
			rq := byName[a.req]
			seen[a.req] = true
			switch {
			case a.status == http.StatusInternalServerError:
				wrong[fmt.Sprintf("%s: 500: %.300s", a.req, a.body)]++
			case (p == "up" || p == "restarted") && a.status != rq.up:
				wrong[fmt.Sprintf("%s: %d, want %d: %.300s", a.req, a.status, rq.up, a.body)]++
			case p == "down" && a.status != http.StatusServiceUnavailable:
				wrong[fmt.Sprintf("%s: %d, want 503: %.300s", a.req, a.status, a.body)]++
			}
			if a.status == http.StatusServiceUnavailable {
				if !retryAfterSeconds.MatchString(a.retryAfter) || a.mediaType != rq.errorType || !strings.Contains(a.body, rq.body) {
					wrong[fmt.Sprintf("%s: 503 with Retry-After %q, %s %.300s; want an integer Retry-After, %s with %q",
						a.req, a.retryAfter, a.mediaType, a.body, rq.errorType, rq.body)]++
				}
			}
		}
		for w, n := range wrong {
			t.Errorf("%s: %d× %s", p, n, w)
		}
		for _, rq := range requests {
			if (p == "up" || p == "down" || p == "restarted") && !seen[rq.name] {
				t.Errorf("%s: no %s was sent", p, rq.name)
			}
		}
		t.Logf("%s: %d answers", p, len(as))
	}
	if len(answers["down"]) < 2*len(requests) {
		t.Errorf("only %d answers while PostgreSQL was down: the test proves little", len(answers["down"]))
	}
	if strings.Contains(srv.stderr.String(), `"status":500`) {
		t.Error("the access log has a 500")
	}
}

// outageRequests are the requests of the load: SCIM reads and writes, the
// management API's reads and writes, and the browser's sign-in pages. Each
// write creates a new record ({n} makes it unique).
func outageRequests(base, token, key string) []outageRequest {
	const scimError = `"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"]`
	scim := func(method, path, body string) func(int64) *http.Request {
		return func(n int64) *http.Request {
			req, _ := http.NewRequest(method, base+"/scim/v2"+path, strings.NewReader(strings.ReplaceAll(body, "{n}", fmt.Sprint(n))))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/scim+json")
			return req
		}
	}
	api := func(method, path, body string) func(int64) *http.Request {
		return func(n int64) *http.Request {
			req, _ := http.NewRequest(method, base+"/api/v1"+path, strings.NewReader(strings.ReplaceAll(body, "{n}", fmt.Sprint(n))))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			return req
		}
	}
	form := func(path string, v url.Values) func(int64) *http.Request {
		return func(int64) *http.Request {
			req, _ := http.NewRequest("POST", base+path, strings.NewReader(v.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}
	}
	return []outageRequest{
		{"SCIM GET /Users?filter", 200, "application/scim+json", scimError,
			scim("GET", `/Users?filter=userName%20eq%20%22Jane.Doe%22`, "")},
		{"SCIM POST /Users", 201, "application/scim+json", scimError,
			scim("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"user-{n}@example.com"}`)},
		{"SCIM GET /Groups", 200, "application/scim+json", scimError, scim("GET", "/Groups", "")},
		{"API GET /administrators", 200, "application/problem+json", `"code":"unavailable"`, api("GET", "/administrators", "")},
		{"API POST /api-keys", 201, "application/problem+json", `"code":"unavailable"`,
			api("POST", "/api-keys", `{"name":"key-{n}"}`)},
		{"POST /login", 200, "text/html", "Try again", form("/login", url.Values{"username": {"someone@example.com"}})},
		{"POST /login/password", 401, "text/html", "Try again",
			form("/login/password", url.Values{"username": {"Jane.Doe"}, "organization": {"acme"}, "password": {"wrong password"}})},
		{"GET /sso/start/unknown", 404, "text/html", "Try again", func(int64) *http.Request {
			req, _ := http.NewRequest("GET", base+"/sso/start/unknown", nil)
			return req
		}},
	}
}

// TestDatabaseBusySQLite holds SQLite's write lock from another connection
// (as another process would) past the busy timeout: a SCIM create through
// `gatehouse serve` answers 503 with Retry-After, a read still answers,
// and the create succeeds once the lock is gone.
func TestDatabaseBusySQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	env := map[string]string{"GATEHOUSE_DB": path}
	for _, args := range [][]string{orgArgs("acme"), {"scim", "enable", "--org", "acme"}} {
		if r := gatehouse(t, env, args...); r.code != 0 {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}
	token := strings.TrimSpace(gatehouse(t, env, "scim", "token", "create", "--org", "acme").stdout)
	addr := freeAddr(t)
	srv := startServe(t, addr, env, "--addr", addr)
	requests := outageRequests(srv.base, token, "")
	create, list := requests[1], requests[0]
	// Authenticate once, so the token's last-use write is not what meets
	// the lock.
	if res, body := do(t, list.make(0)); res.StatusCode != 200 {
		t.Fatalf("list: %d %s", res.StatusCode, body)
	}

	other, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	res, body := do(t, create.make(1))
	if res.StatusCode != http.StatusServiceUnavailable || !retryAfterSeconds.MatchString(res.Header.Get("Retry-After")) ||
		!strings.Contains(body, `"status":"503"`) {
		t.Errorf("create with the database locked: %d, Retry-After %q: %s", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
	if res, body := do(t, list.make(0)); res.StatusCode != 200 {
		t.Errorf("list with the database locked: %d %s", res.StatusCode, body)
	}
	tx.Rollback()
	if res, body := do(t, create.make(1)); res.StatusCode != http.StatusCreated {
		t.Errorf("create after the lock: %d %s", res.StatusCode, body)
	}
}
