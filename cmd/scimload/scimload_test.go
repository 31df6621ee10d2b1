package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

const stubToken = "stub-token"

// stubSCIM is just enough of a SCIM service provider (RFC 7644) for the
// scenarios, over memory: list with startIndex/count and userName or
// displayName eq filters, get, create, and group member PATCH. It counts
// every request by kind so the tests can hold the tool's counts to it.
type stubSCIM struct {
	url string

	mu         sync.Mutex
	users      []stubUser // in creation order
	byID       map[string]int
	groups     map[string]map[string]bool // group id -> member ids
	groupNames map[string]string          // display name -> id
	counts     map[string]int             // "list", "sample", "filter", "get", "create", "patch", "groups"
	starts     []int                      // startIndex of every sample request
	pageStarts []int                      // startIndex of every other list request

	failGet    func(n int) bool // answer the n-th get (from 1) with a 500
	failed     int
	wrongTotal bool          // filter answers totalResults 2
	listDelay  time.Duration // every list request waits this long
}

type stubUser struct{ ID, UserName string }

// newStub serves n load users and the groups load-big (first big users),
// load-small (first small users) and load-add (first small users).
func newStub(t *testing.T, n, big, small int) *stubSCIM {
	s := &stubSCIM{byID: map[string]int{}, groups: map[string]map[string]bool{}, groupNames: map[string]string{}, counts: map[string]int{}}
	for i := 1; i <= n; i++ {
		s.addUser(loadUserName(i))
	}
	for name, m := range map[string]int{bigGroup: big, smallGroup: small, addGroup: small} {
		id := uuid.NewString()
		s.groupNames[name] = id
		s.groups[id] = map[string]bool{}
		for _, u := range s.users[:m] {
			s.groups[id][u.ID] = true
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /scim/v2/Users", s.list)
	mux.HandleFunc("GET /scim/v2/Users/{id}", s.get)
	mux.HandleFunc("POST /scim/v2/Users", s.create)
	mux.HandleFunc("GET /scim/v2/Groups", s.listGroups)
	mux.HandleFunc("PATCH /scim/v2/Groups/{id}", s.patch)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+stubToken {
			scimError(w, http.StatusUnauthorized, "bad token")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *stubSCIM) addUser(name string) stubUser {
	u := stubUser{ID: uuid.NewString(), UserName: name}
	s.byID[u.ID] = len(s.users)
	s.users = append(s.users, u)
	return u
}

func (s *stubSCIM) count(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[kind]
}

func scimError(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", scimType)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"}, "status": strconv.Itoa(status), "detail": detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", scimType)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// eqFilter parses `attr eq "value"`.
func eqFilter(filter, attr string) (string, bool) {
	quoted, ok := strings.CutPrefix(filter, attr+" eq ")
	var v string
	return v, ok && json.Unmarshal([]byte(quoted), &v) == nil
}

func listOf(total int, users []stubUser) map[string]any {
	rs := []map[string]string{}
	for _, u := range users {
		rs = append(rs, map[string]string{"id": u.ID, "userName": u.UserName})
	}
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:ListResponse"},
		"totalResults": total, "itemsPerPage": len(rs), "Resources": rs}
}

func (s *stubSCIM) list(w http.ResponseWriter, r *http.Request) {
	time.Sleep(s.listDelay)
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	if f := q.Get("filter"); f != "" {
		s.counts["filter"]++
		name, ok := eqFilter(f, "userName")
		if !ok {
			scimError(w, http.StatusBadRequest, "invalid filter "+f)
			return
		}
		var found []stubUser
		for _, u := range s.users {
			if u.UserName == name {
				found = append(found, u)
			}
		}
		total := len(found)
		if s.wrongTotal {
			total = 2
		}
		writeJSON(w, http.StatusOK, listOf(total, found))
		return
	}
	start, err1 := strconv.Atoi(q.Get("startIndex"))
	count, err2 := strconv.Atoi(q.Get("count"))
	if err1 != nil || err2 != nil || start < 1 || count < 0 {
		scimError(w, http.StatusBadRequest, "bad startIndex or count")
		return
	}
	switch q.Get("attributes") {
	case "userName":
		s.counts["sample"]++
		s.starts = append(s.starts, start)
	case "id,userName":
		s.counts["all"]++
	default:
		s.counts["list"]++
		s.pageStarts = append(s.pageStarts, start)
	}
	lo := min(start-1, len(s.users))
	writeJSON(w, http.StatusOK, listOf(len(s.users), s.users[lo:min(lo+count, len(s.users))]))
}

func (s *stubSCIM) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts["get"]++
	if s.failGet != nil && s.failGet(s.counts["get"]) {
		s.failed++
		scimError(w, http.StatusInternalServerError, "injected failure")
		return
	}
	i, ok := s.byID[r.PathValue("id")]
	if !ok {
		scimError(w, http.StatusNotFound, "no such user")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": s.users[i].ID, "userName": s.users[i].UserName})
}

func (s *stubSCIM) create(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts["create"]++
	var body struct {
		Schemas  []string `json:"schemas"`
		UserName string   `json:"userName"`
		Active   bool     `json:"active"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.UserName == "" || len(body.Schemas) != 1 || !body.Active {
		scimError(w, http.StatusBadRequest, "invalid user")
		return
	}
	for _, u := range s.users {
		if u.UserName == body.UserName {
			scimError(w, http.StatusConflict, "userName taken")
			return
		}
	}
	u := s.addUser(body.UserName)
	writeJSON(w, http.StatusCreated, map[string]string{"id": u.ID, "userName": u.UserName})
}

func (s *stubSCIM) listGroups(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts["groups"]++
	name, ok := eqFilter(r.URL.Query().Get("filter"), "displayName")
	if !ok || r.URL.Query().Get("excludedAttributes") != "members" {
		scimError(w, http.StatusBadRequest, "want a displayName eq filter without members")
		return
	}
	var found []stubUser
	if id, ok := s.groupNames[name]; ok {
		found = append(found, stubUser{ID: id})
	}
	writeJSON(w, http.StatusOK, listOf(len(found), found))
}

func (s *stubSCIM) patch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts["patch"]++
	members, ok := s.groups[r.PathValue("id")]
	if !ok {
		scimError(w, http.StatusNotFound, "no such group")
		return
	}
	var body struct {
		Schemas    []string `json:"schemas"`
		Operations []struct {
			Op    string `json:"op"`
			Path  string `json:"path"`
			Value []struct {
				Value string `json:"value"`
			} `json:"value"`
		} `json:"Operations"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Operations) != 1 ||
		!slices.Equal(body.Schemas, []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}) {
		scimError(w, http.StatusBadRequest, "invalid PatchOp")
		return
	}
	op := body.Operations[0]
	switch {
	case op.Op == "add" && op.Path == "members" && len(op.Value) == 1:
		if _, ok := s.byID[op.Value[0].Value]; !ok {
			scimError(w, http.StatusBadRequest, "no such user")
			return
		}
		members[op.Value[0].Value] = true
	case op.Op == "remove" && strings.HasSuffix(op.Path, "]"):
		id, ok := eqFilter(strings.TrimSuffix(strings.TrimPrefix(op.Path, "members["), "]"), "value")
		if !ok {
			scimError(w, http.StatusBadRequest, "invalid path "+op.Path)
			return
		}
		delete(members, id)
	default:
		scimError(w, http.StatusBadRequest, "unsupported operation")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// scimload runs the command line in-process.
func scimload(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code = run(ctx, args, &out, &errs)
	return code, out.String(), errs.String()
}

// load runs scenarios against the stub for 300 ms each and returns the
// JSON report.
func (s *stubSCIM) load(t *testing.T, scenarios string, extra ...string) (int, report, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "results.json")
	args := append([]string{"run", "--base", s.url, "--token", stubToken, "--duration", "300ms", "--concurrency", "3",
		"--scenario", scenarios, "--json", path}, extra...)
	code, stdout, stderr := scimload(t, args...)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no JSON results (exit %d): %v\nstdout:\n%s\nstderr: %s", code, err, stdout, stderr)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if code != 0 && !oneLineError(stderr) {
		t.Errorf("stderr is not one line starting \"scimload: \": %q", stderr)
	}
	return code, rep, stdout
}

func oneLineError(stderr string) bool {
	return strings.HasPrefix(stderr, "scimload: ") && strings.Count(stderr, "\n") == 1 && strings.HasSuffix(stderr, "\n")
}

// checkFigures checks what every measured scenario reports.
func checkFigures(t *testing.T, res result) {
	t.Helper()
	if res.Requests == 0 || res.Seconds <= 0 || res.P50Ms <= 0 || res.P99Ms < res.P50Ms || res.Failure != "" {
		t.Fatalf("figures not computed: %+v", res)
	}
	if want := float64(res.Requests) / res.Seconds; math.Abs(res.PerSecond-want) > 1e-6*want {
		t.Errorf("requests/s %f, want requests/seconds = %f", res.PerSecond, want)
	}
}

func only(t *testing.T, rep report, name string) result {
	t.Helper()
	for _, res := range rep.Scenarios {
		if res.Scenario == name {
			return res
		}
	}
	t.Fatalf("no %s in %+v", name, rep.Scenarios)
	return result{}
}

const stubUsers = 1234 // more than sampleSize: the sample is drawn by tenths

func TestScenariosCountEveryRequest(t *testing.T) {
	for _, tc := range []struct {
		scenario, kind string // kind: the stub's counter of the scenario's requests
		extra          []string
	}{
		{"get", "get", nil},
		{"get-hot", "get", nil},
		{"filter", "filter", nil},
		{"filter", "filter", []string{"--users", strconv.Itoa(stubUsers)}},
		{"filter-hot", "filter", nil},
		{"member-add", "patch", []string{"--add-group-members", "100"}},
		{"create", "create", nil},
		{"member-big", "patch", nil},
		{"member-small", "patch", nil},
	} {
		t.Run(strings.Join(append([]string{tc.scenario}, tc.extra...), " "), func(t *testing.T) {
			t.Parallel()
			s := newStub(t, stubUsers, 1000, 100)
			code, rep, stdout := s.load(t, tc.scenario, tc.extra...)
			if code != 0 || len(rep.Scenarios) != 1 {
				t.Fatalf("exit %d, %+v\n%s", code, rep, stdout)
			}
			res := only(t, rep, tc.scenario)
			checkFigures(t, res)
			if res.Errors != 0 || res.CeilingRatio != 0 {
				t.Errorf("errors %d, ceiling ratio %f without a ceiling", res.Errors, res.CeilingRatio)
			}
			answered := s.count(tc.kind)
			if tc.scenario == "member-add" {
				answered /= 2 // each add is removed afterwards, unmeasured
			}
			if answered != res.Requests {
				t.Errorf("reported %d requests, the server answered %d", res.Requests, answered)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			switch tc.scenario {
			case "create":
				if len(s.users) != stubUsers+res.Requests {
					t.Errorf("%d users after %d creates", len(s.users), res.Requests)
				}
			case "member-big", "member-small":
				// One user created to be added and removed; the group ends
				// as it began.
				m := map[string]int{"member-big": 1000, "member-small": 100}[tc.scenario]
				g := s.groups[s.groupNames[map[string]string{"member-big": bigGroup, "member-small": smallGroup}[tc.scenario]]]
				if res.Requests%2 != 0 || s.counts["create"] != 1 || len(g) != m {
					t.Errorf("%d patches, %d creates, %d members after, want even, 1, %d", res.Requests, s.counts["create"], len(g), m)
				}
			case "member-add":
				// Every add a new member (a load user after the group's),
				// each removed again: the group ends as it began.
				g := s.groups[s.groupNames[addGroup]]
				if s.counts["patch"] != 2*res.Requests || s.counts["all"] != 2 || len(g) != 100 {
					t.Errorf("%d patches for %d adds, %d list pages, %d members after, want 100", s.counts["patch"], res.Requests, s.counts["all"], len(g))
				}
			case "get", "filter":
				// Every user listed, 1,000 a page (unless filter knows the
				// load users' names: --users), and no sample.
				pages := 2
				if len(tc.extra) > 0 {
					pages = 0
				}
				if s.counts["all"] != pages || len(s.starts) != 0 {
					t.Errorf("%d pages of every user, %d sample pages", s.counts["all"], len(s.starts))
				}
			case "get-hot", "filter-hot":
				// The sample: the first page, then one page inside each
				// following tenth of the list.
				if len(s.starts) != 10 || s.starts[0] != 1 {
					t.Fatalf("sample pages at %v", s.starts)
				}
				for k, start := range s.starts[1:] {
					lo, hi := 1+(k+1)*stubUsers/10, (k+2)*stubUsers/10-pageSize+1
					if start < lo || start > hi {
						t.Errorf("sample page %d at %d, want within [%d, %d]", k+1, start, lo, hi)
					}
				}
			}
		})
	}
}

// TestMain lets the test binary stand in for scimload when the
// bare-process scenario runs it as "bare-serve".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "bare-serve" {
		if err := bareServe(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestCeilingRatio(t *testing.T) {
	s := newStub(t, stubUsers, 1000, 100)
	code, rep, stdout := s.load(t, "get,ceiling,create,bare-process")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
	var names []string
	for _, res := range rep.Scenarios {
		names = append(names, res.Scenario)
	}
	if !slices.Equal(names, []string{"ceiling", "bare-process", "get", "create"}) {
		t.Errorf("scenarios ran in order %v", names)
	}
	ceiling := only(t, rep, "ceiling")
	checkFigures(t, ceiling)
	if ceiling.CeilingRatio != 0 {
		t.Errorf("ceiling has a ratio to itself: %+v", ceiling)
	}
	for _, name := range []string{"bare-process", "get", "create"} {
		res := only(t, rep, name)
		checkFigures(t, res)
		if want := res.PerSecond / ceiling.PerSecond; math.Abs(res.CeilingRatio-want) > 1e-9 {
			t.Errorf("%s ratio %f, want %f", name, res.CeilingRatio, want)
		}
		if !strings.Contains(stdout, fmt.Sprintf("%.2f", res.CeilingRatio)) {
			t.Errorf("%s ratio %.2f not printed:\n%s", name, res.CeilingRatio, stdout)
		}
	}
}

func TestErrorsCounted(t *testing.T) {
	s := newStub(t, stubUsers, 1000, 100)
	s.failGet = func(n int) bool { return n%4 == 0 }
	code, rep, stdout := s.load(t, "get")
	res := only(t, rep, "get")
	if code != 1 || res.Errors == 0 || res.Errors != s.failed || res.Requests != s.count("get") {
		t.Errorf("exit %d, %d errors of %d requests; the server failed %d of %d", code, res.Errors, res.Requests, s.failed, s.count("get"))
	}
	if len(rep.FirstErrors) != errorsShown || !strings.Contains(rep.FirstErrors[0], "status 500") ||
		!strings.Contains(stdout, "injected failure") {
		t.Errorf("first errors %q not reported:\n%s", rep.FirstErrors, stdout)
	}
}

func TestFilterChecksTotalResults(t *testing.T) {
	s := newStub(t, stubUsers, 1000, 100)
	s.wrongTotal = true
	code, rep, _ := s.load(t, "filter")
	res := only(t, rep, "filter")
	// One response in verifyEvery is decoded and checked.
	if code != 1 || res.Errors == 0 || res.Errors > res.Requests/verifyEvery+3 ||
		!strings.Contains(rep.FirstErrors[0], "totalResults 2, want 1") {
		t.Errorf("exit %d, %d errors of %d requests, first errors %q", code, res.Errors, res.Requests, rep.FirstErrors)
	}
}

func TestPage(t *testing.T) {
	s := newStub(t, stubUsers, 1000, 100)
	code, rep, stdout := s.load(t, "page")
	res := only(t, rep, "page")
	checkFigures(t, res)
	if want := (stubUsers + pageSize - 1) / pageSize; code != 0 || res.Requests != want || s.count("list") != want {
		t.Errorf("exit %d, %d pages reported, %d served, want %d", code, res.Requests, s.count("list"), want)
	}
	for i, start := range s.pageStarts {
		if start != 1+i*pageSize {
			t.Fatalf("pages at %v", s.pageStarts)
		}
	}
	if !strings.Contains(stdout, "every user in") {
		t.Errorf("no wall time printed:\n%s", stdout)
	}

	s.listDelay = 50 * time.Millisecond
	code, rep, _ = s.load(t, "page", "--page-timeout", "120ms")
	if res := only(t, rep, "page"); code != 1 || !strings.Contains(res.Failure, "did not list every user within 120ms") {
		t.Errorf("exit %d, %+v", code, res)
	}
}

func TestMissingGroupFailsScenario(t *testing.T) {
	s := newStub(t, stubUsers, 1000, 100)
	delete(s.groupNames, smallGroup)
	code, rep, _ := s.load(t, "member-big,member-small")
	if code != 1 || only(t, rep, "member-big").Failure != "" ||
		!strings.Contains(only(t, rep, "member-small").Failure, "0 groups named load-small") {
		t.Errorf("exit %d, %+v", code, rep.Scenarios)
	}
}

func TestPeakMemory(t *testing.T) {
	s := newStub(t, stubUsers, 1000, 100)
	code, rep, stdout := s.load(t, "get", "--pid", strconv.Itoa(os.Getpid()))
	if code != 0 || rep.RSSMaxBytes < 1<<20 || !strings.Contains(stdout, "peak resident memory") {
		t.Errorf("exit %d, peak %d bytes\n%s", code, rep.RSSMaxBytes, stdout)
	}
	code, _, stderr := scimload(t, "run", "--base", s.url, "--token", stubToken, "--pid", "999999999")
	if code != 1 || !oneLineError(stderr) || !strings.Contains(stderr, "--pid 999999999") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr, or in stdout for help
	}{
		{[]string{"--help"}, 0, "Commands:"},
		{[]string{"run", "--help"}, 0, "--page-timeout"},
		{[]string{"seed", "--help"}, 0, "--group-members"},
		{nil, 2, "missing command"},
		{[]string{"bench"}, 2, `unknown command "bench"`},
		{[]string{"run", "--base", "http://10.0.0.7:8080", "--token", "x"}, 2, `host "10.0.0.7" is not this machine`},
		{[]string{"run", "--base", "http://example.com", "--token", "x"}, 2, "is not this machine"},
		{[]string{"run", "--base", "http://127.0.0.1.nip.io:8080", "--token", "x"}, 2, "is not this machine"},
		{[]string{"run", "--base", "ftp://127.0.0.1", "--token", "x"}, 2, "is not an http://"},
		{[]string{"run", "--base", "http://127.0.0.1:1", "--token", "x", "--scenario", "get,sleep"}, 2, `unknown scenario "sleep"`},
		{[]string{"run", "--base", "http://[::1]:1"}, 2, "--token is required"},
		{[]string{"run", "--base", "http://localhost:1", "--token", "x", "--concurrency", "0"}, 2, "--concurrency"},
		{[]string{"run", "--base", "http://localhost:1", "--token", "x", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"run", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"seed", "--org", "x", "--users", "1"}, 2, "--db is required"},
		{[]string{"seed", "--db", "x.db", "--org", "x", "--users", "0"}, 2, "--users must be from 1"},
		{[]string{"op", "--help"}, 0, "--codes"},
		{[]string{"logout", "--help"}, 0, "--administrators"},
		{[]string{"op", "--base", "http://10.0.0.7:8080", "--db", "x.db", "--org", "x"}, 2, "is not this machine"},
		{[]string{"op", "--base", "http://127.0.0.1:1", "--org", "x"}, 2, "--db and --org are required"},
		{[]string{"op", "--base", "http://127.0.0.1:1", "--db", "x.db", "--org", "x", "--rounds", "0"}, 2, "must be positive"},
		{[]string{"logout", "--base", "http://127.0.0.1:1,http://example.com", "--db", "x.db", "--org", "x", "--token", "t"}, 2, "is not this machine"},
		{[]string{"logout", "--base", "http://127.0.0.1:1", "--db", "x.db", "--org", "x"}, 2, "--token are required"},
		{[]string{"logout", "--base", "http://127.0.0.1:1", "--db", "x.db", "--org", "x", "--token", "t", "--administrators", "0"}, 2, "--administrators must be from 1"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := scimload(t, tc.args...)
			got := stderr
			if tc.code == 0 {
				got = stdout
			} else if !oneLineError(stderr) {
				t.Errorf("stderr %q is not one line", stderr)
			}
			if code != tc.code || !strings.Contains(got, tc.want) {
				t.Errorf("exit %d, want %d; output %q does not contain %q", code, tc.code, got, tc.want)
			}
		})
	}
}

func TestLoopbackSCIMBase(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":           "http://127.0.0.1:8080/scim/v2",
		"http://localhost:8080/":          "http://localhost:8080/scim/v2",
		"https://[::1]:8443/scim/v2/":     "https://[::1]:8443/scim/v2",
		"http://127.0.0.1:8080/gatehouse": "http://127.0.0.1:8080/gatehouse/scim/v2",
	} {
		if got, err := loopbackSCIMBase(in); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", in, got, err, want)
		}
	}
}

// openOrg opens a new SQLite database with organization slug and returns
// its DSN.
func openOrg(t *testing.T, slug string) (string, *store.SQL, store.Org) {
	t.Helper()
	ctx := storetest.Context(context.Background())
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	org, _, _, err := (&admin.Orgs{Store: s, BaseURL: "http://127.0.0.1:8080"}).Create(ctx, admin.OrgSpec{Slug: slug, Name: "Load",
		Owner: admin.OwnerSpec{UserName: "owner@example.com", Email: "owner@example.com", GivenName: "Olive", FamilyName: "Owner"}})
	if err != nil {
		t.Fatal(err)
	}
	return dsn, s, org
}

// checkSeeded checks the load users and both groups, and that the
// organization holds nothing else but its owner.
func checkSeeded(t *testing.T, s *store.SQL, org string, users, big, small int) {
	t.Helper()
	ctx := storetest.Context(context.Background())
	res, err := s.QueryAdministrators(ctx, org, store.Query{Page: store.Page{Limit: users + 10}})
	as, total := res.Items, res.Total
	if err != nil || total != users+1 || len(as) != users+1 {
		t.Fatalf("%d administrators (%v), want %d load users and the owner", total, err, users)
	}
	for i, a := range as[1:] {
		emails := store.Emails{{Value: a.UserName, Type: "work", Primary: true}}
		if a.UserName != loadUserName(i+1) || a.Email != a.UserName || !slices.Equal(a.Emails, emails) || a.ExternalID != fmt.Sprintf("ext-%07d", i+1) ||
			a.Status != store.StatusActive || a.Role != store.RoleAdministrator || !a.SCIMManaged || !json.Valid(a.Attributes) {
			t.Fatalf("administrator %d: %+v", i+1, a)
		}
	}
	groups, err := s.QueryGroups(ctx, org, store.Query{Page: store.Page{Limit: 10}})
	gs := groups.Items
	if err != nil || len(gs) != 3 {
		t.Fatalf("groups %+v, %v", gs, err)
	}
	for _, g := range gs {
		want := map[string]int{bigGroup: big, smallGroup: small, addGroup: users}[g.DisplayName] // --add-group-members 10,000
		ms, _, err := s.GroupMembers(ctx, org, g.ID, store.Page{Limit: users + 10})
		if err != nil || len(ms) != want {
			t.Fatalf("group %s: %d members (%v), want %d", g.DisplayName, len(ms), err, want)
		}
		for i, m := range ms {
			if m.UserName != loadUserName(i+1) {
				t.Fatalf("group %s member %d is %s", g.DisplayName, i+1, m.UserName)
			}
		}
	}
}

func TestSeed(t *testing.T) {
	dsn, s, org := openOrg(t, "load")
	seed := func(users, big, small int) string {
		t.Helper()
		code, stdout, stderr := scimload(t, "seed", "--db", dsn, "--org", "load", "--users", strconv.Itoa(users),
			"--group-members", strconv.Itoa(big), "--small-group", strconv.Itoa(small))
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		return stdout
	}
	out := seed(12, 8, 3)
	checkSeeded(t, s, org.ID, 12, 8, 3)
	if !strings.Contains(out, "inserted 12 load users (0 already present)") || !strings.Contains(out, "group load-big: 8 members added") {
		t.Errorf("output:\n%s", out)
	}
	out = seed(12, 8, 3)
	checkSeeded(t, s, org.ID, 12, 8, 3)
	if strings.Count(out, "already present") != 4 {
		t.Errorf("second seed did something:\n%s", out)
	}
	// A larger seed completes the earlier one.
	out = seed(20, 15, 3)
	checkSeeded(t, s, org.ID, 20, 15, 3)
	if !strings.Contains(out, "inserted 8 load users (12 already present)") || !strings.Contains(out, "group load-big: 7 members added (now 15)") {
		t.Errorf("output:\n%s", out)
	}

	code, _, stderr := scimload(t, "seed", "--db", dsn, "--org", "nope", "--users", "1")
	if code != 1 || !oneLineError(stderr) || !strings.Contains(stderr, `organization "nope" does not exist`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// TestSeedBatches resumes an interrupted seed with batches smaller than the
// data, so that inserts and member reads span several.
func TestSeedBatches(t *testing.T) {
	ctx := storetest.Context(context.Background())
	_, s, org := openOrg(t, "batches")
	var out bytes.Buffer
	sd := seeder{store: s, org: org.ID, batch: 5, out: &out}
	if err := sd.users(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := sd.users(ctx, 23); err != nil {
		t.Fatal(err)
	}
	if err := sd.group(ctx, bigGroup, 17); err != nil {
		t.Fatal(err)
	}
	if err := sd.group(ctx, smallGroup, 4); err != nil {
		t.Fatal(err)
	}
	if err := sd.group(ctx, addGroup, 23); err != nil {
		t.Fatal(err)
	}
	checkSeeded(t, s, org.ID, 23, 17, 4)
	if !strings.Contains(out.String(), "inserted 16 load users (7 already present)") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestLoadUserNumber(t *testing.T) {
	for name, want := range map[string]int{
		loadUserName(1): 1, loadUserName(9_999_999): 9_999_999,
		"load-user-1@example.com": 0, "owner@example.com": 0, "load-user-0000000@example.com": 0, "load-user-0000001@example.org": 0,
	} {
		if got := loadUserNumber(name); got != want {
			t.Errorf("%s: %d, want %d", name, got, want)
		}
	}
}

func TestMedianResults(t *testing.T) {
	rounds := [][]result{
		{{Scenario: "ceiling", PerSecond: 100}, {Scenario: "introspect", PerSecond: 30, CeilingRatio: 0.30, ServerCPUMs: 0.5}},
		{{Scenario: "ceiling", PerSecond: 300}, {Scenario: "introspect", PerSecond: 10, CeilingRatio: 0.03, ServerCPUMs: 0.9}},
		{{Scenario: "ceiling", PerSecond: 200}, {Scenario: "introspect", PerSecond: 50, CeilingRatio: 0.25, ServerCPUMs: 0.4}},
	}
	m := medianResults(rounds)
	if len(m) != 2 || m[0].Scenario != "ceiling" || m[0].PerSecond != 200 ||
		m[1].PerSecond != 30 || m[1].CeilingRatio != 0.25 || m[1].ServerCPUMs != 0.5 {
		t.Fatalf("medians: %+v", m)
	}
	if m := medianResults(rounds[:2]); m[0].PerSecond != 200 {
		t.Fatalf("median of two: %v, want their mean 200", m[0].PerSecond)
	}
}

// logoutToken is a logout token's shape (unsigned: the receiver does not
// verify).
func logoutToken(sub string, event bool) string {
	claims := map[string]any{"sub": sub, "events": map[string]any{}}
	if event {
		claims["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}
	}
	b, _ := json.Marshal(claims)
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(b) + ".c2ln"
}

// TestLogoutReceiver: every logout is matched by sub; a missing, repeated,
// foreign or unreadable one is counted, and the delays are from each
// administrator's deactivation.
func TestLogoutReceiver(t *testing.T) {
	rcv, err := startLogoutReceiver()
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.close()
	start := time.Now()
	deactivated := map[string]time.Time{"a": start, "b": start, "c": start, "d": start}
	for _, tok := range []string{logoutToken("a", true), logoutToken("b", true), logoutToken("b", true), logoutToken("z", true),
		logoutToken("c", false), "not-a-jwt"} {
		res, err := http.PostForm(rcv.url, url.Values{"logout_token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if n := rcv.count([]string{"a", "b", "c", "d"}); n != 2 {
		t.Fatalf("count %d, want 2 (a and b)", n)
	}
	rep := rcv.report(deactivated)
	if rep.Received != 2 || rep.Missing != 2 || rep.Repeated != 1 || rep.Unexpected != 3 {
		t.Fatalf("report %+v: want 2 received, 2 missing (c's token has no logout event), 1 repeated, 3 unexpected", rep)
	}
	if took := float64(time.Since(start)) / float64(time.Millisecond); rep.MaxMs <= 0 || rep.MaxMs > took {
		t.Fatalf("max delay %.1f ms, not within the %.1f ms the test took", rep.MaxMs, took)
	}
}

// TestCPUTime: this process's CPU time read from /proc agrees with
// getrusage's (within the 10 ms clock tick and a little more).
func TestCPUTime(t *testing.T) {
	rusage := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	from := rusage()
	for rusage()-from < 200*time.Millisecond { // spin until 200 ms of CPU
	}
	got, err := cpuTime(os.Getpid())
	want := rusage()
	if err != nil || got < want-50*time.Millisecond || got > want+50*time.Millisecond {
		t.Fatalf("cpuTime %v, getrusage %v (%v)", got, want, err)
	}
	if _, err := cpuTime(1 << 30); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}
