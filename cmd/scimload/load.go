package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

const (
	scimPath    = "/scim/v2" // under gatehouse's base URL (DESIGN.md)
	scimType    = "application/scim+json"
	pageSize    = 100  // count= of every list request
	sampleSize  = 1000 // users whose ids and names get-hot and filter-hot draw from
	listSize    = 1000 // count= of the requests that list every user for get and filter
	verifyEvery = 10   // filter decodes every 10th response to check totalResults
	// requestTimeout is generous: a PATCH of a huge group on a slow disk is
	// a figure to report, not a reason to give up.
	requestTimeout = time.Minute
	errorsShown    = 5
	errorBodyShown = 300
	maxDecoded     = 64 << 20 // a page of 100 users is far smaller
	rssInterval    = 250 * time.Millisecond
)

// scenarios, in the order they run: the ceiling first (the others are set
// beside it), page last (it is the longest).
var scenarios = []string{"ceiling", "bare-process", "get", "get-hot", "filter", "filter-hot", "create", "member-big", "member-small",
	"member-add", "page"}

func runLoad(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("run")
	base := fs.String("base", "", "gatehouse's URL on this machine, e.g. http://127.0.0.1:8080 (SCIM is under /scim/v2); only 127.0.0.1, ::1 and localhost are accepted (required)")
	token := fs.String("token", "", "the organization's SCIM bearer token (required)")
	duration := fs.Duration("duration", 10*time.Second, "how long each scenario but page sends requests")
	concurrency := fs.Int("concurrency", 16, "parallel clients of ceiling, get, filter and create (member-* and page use one)")
	only := fs.String("scenario", strings.Join(scenarios, ","), "comma-separated scenarios to run")
	pid := fs.Int("pid", 0, "gatehouse's process id: its peak resident memory (VmRSS) over the run, and its CPU time per request of each scenario, are reported")
	users := fs.Int("users", 0, "load users seeded (scimload seed --users): filter looks up random ones among all of them by name; 0: among every user listed")
	addMembers := fs.Int("add-group-members", 10_000, "members the seed gave "+addGroup+" (scimload seed --add-group-members): member-add adds load users after them")
	pageTimeout := fs.Duration("page-timeout", 2*time.Minute, "page fails unless it has listed every user within this time")
	jsonOut := fs.String("json", "", "also write the results to this file, as JSON")
	err := parse(fs, stdout, "--base URL --token TOKEN [flags]",
		"Drives a gatehouse on this machine over SCIM with keep-alive HTTP/1.1 clients and\n"+
			"prints, per scenario, requests, errors, requests/s and latency percentiles.\n"+
			"Scenarios: ceiling (a bare net/http server of this process answering a fixed\n"+
			"User, the best any server could do here), bare-process (the same handler in a\n"+
			"process of its own, as gatehouse is), get (GET /Users/{id} of random users\n"+
			"among all of them, listed first), get-hot (the same among 1,000 sampled\n"+
			"users), filter and filter-hot (userName eq, the same two ways), create\n"+
			"(POST /Users), member-big and member-small (PATCH adding and removing one\n"+
			"member of "+bigGroup+" and "+smallGroup+", one writer), member-add (PATCH adding\n"+
			"a new member to "+addGroup+" each time, one writer; the members added are\n"+
			"removed afterwards, unmeasured), page (lists every user, 100 a page). Seed\n"+
			"the organization first with scimload seed. Exits 1 when any scenario failed\n"+
			"or counted an error.", args)
	if err != nil {
		return err
	}
	scimBase, err := loopbackSCIMBase(*base)
	if err != nil {
		return err
	}
	selected := map[string]bool{}
	for name := range strings.SplitSeq(*only, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(scenarios, name) {
			return usagef("run: unknown scenario %q: choose among %s", name, strings.Join(scenarios, ","))
		}
		selected[name] = true
	}
	switch {
	case *token == "":
		return usagef("run: --token is required (see 'scimload run --help')")
	case *duration <= 0 || *pageTimeout <= 0:
		return usagef("run: --duration and --page-timeout must be positive")
	case *concurrency < 1:
		return usagef("run: --concurrency must be at least 1")
	case *pid < 0 || *users < 0 || *addMembers < 0:
		return usagef("run: --pid, --users and --add-group-members cannot be negative")
	}

	var rss *rssSampler
	if *pid > 0 {
		if rss, err = startRSS(*pid); err != nil {
			return err
		}
	}
	r := &loadRun{
		scim:        target{base: scimBase, token: *token},
		setup:       newClient(1),
		duration:    *duration,
		concurrency: *concurrency,
		users:       *users,
		addMembers:  *addMembers,
		pageTimeout: *pageTimeout,
		runID:       strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	rep := report{Base: scimBase, Concurrency: *concurrency, DurationSeconds: duration.Seconds()}
	fmt.Fprintf(stdout, "scimload: %s, %d clients, %s per scenario\n", scimBase, *concurrency, *duration)
	fmt.Fprintf(stdout, "%-13s %9s %7s %10s %9s %9s  %s\n", "scenario", "requests", "errors", "req/s", "p50 ms", "p99 ms", "vs ceiling")
	bad := 0
	for _, name := range scenarios {
		if !selected[name] || ctx.Err() != nil {
			continue
		}
		var cpuBefore time.Duration
		measureCPU := *pid > 0 && name != "ceiling" // the ceiling does not touch gatehouse
		if measureCPU {
			if cpuBefore, err = cpuTime(*pid); err != nil {
				return fmt.Errorf("--pid %d: %w", *pid, err)
			}
		}
		res := r.scenario(ctx, name)
		if measureCPU && res.Requests > 0 {
			// What gatehouse does after answering (the provisioning
			// log's writer wakes every 500 ms) is the scenario's too.
			time.Sleep(cpuSettle)
			cpuAfter, err := cpuTime(*pid)
			if err != nil {
				return fmt.Errorf("--pid %d: %w", *pid, err)
			}
			res.ServerCPUMs = float64(cpuAfter-cpuBefore) / float64(time.Millisecond) / float64(res.Requests)
		}
		rep.Scenarios = append(rep.Scenarios, res)
		if res.Failure != "" || res.Errors > 0 {
			bad++
		}
		res.print(stdout)
	}
	if rss != nil {
		peak, err := rss.stop()
		rep.RSSMaxBytes = peak
		fmt.Fprintf(stdout, "gatehouse (pid %d) peak resident memory: %.1f MiB", *pid, float64(peak)/(1<<20))
		if err != nil {
			fmt.Fprintf(stdout, " (sampling stopped early: %v)", err)
		}
		fmt.Fprintln(stdout)
	}
	rep.FirstErrors = r.failures.first
	r.failures.print(stdout)
	if *jsonOut != "" {
		if err := writeJSONFile(*jsonOut, rep); err != nil {
			return err
		}
	}
	switch {
	case ctx.Err() != nil:
		return errors.New("interrupted")
	case bad > 0:
		return fmt.Errorf("%d of %d scenarios failed or counted errors (see above)", bad, len(rep.Scenarios))
	}
	return nil
}

// writeJSONFile writes v to the file at path, indented.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// loopbackSCIMBase checks --base and returns the SCIM base URL under it
// (a URL already ending in /scim/v2 is taken as it is). Only loopback hosts
// are accepted: pointed at a shared server, a load tool is a denial of
// service, and the ceiling it measures is only comparable on one machine.
func loopbackSCIMBase(raw string) (string, error) {
	if raw == "" {
		return "", usagef("run: --base is required (see 'scimload run --help')")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", usagef("run: --base %q is not an http:// or https:// URL without credentials, query or fragment", raw)
	}
	switch u.Hostname() {
	case "127.0.0.1", "::1", "localhost":
	default:
		return "", usagef("run: --base host %q is not this machine: scimload drives only 127.0.0.1, ::1 or localhost", u.Hostname())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(u.Path, scimPath) {
		u.Path += scimPath
	}
	return u.String(), nil
}

// loadRun is one run of scimload run.
type loadRun struct {
	scim        target
	setup       *http.Client // for the requests that prepare a scenario
	duration    time.Duration
	concurrency int
	users       int
	addMembers  int
	pageTimeout time.Duration
	runID       string // makes the usernames this run creates unique
	failures    errorLog

	ceilingRate float64 // the ceiling's requests/s; 0 until measured
	sample      []listedUser
	sampleErr   error
	sampled     bool
	all         []listedUser // every user, listed once (allUsers)
	allErr      error
	listedAll   bool
	outsiderID  string // a user in neither load group, created by the run
}

// result is one scenario's figures.
type result struct {
	Scenario  string  `json:"scenario"`
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"requests_per_second"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	// CeilingRatio is requests/s over the ceiling's (get, filter, create,
	// when the ceiling ran).
	CeilingRatio float64 `json:"ceiling_ratio,omitempty"`
	// ServerCPUMs is the CPU time (user and system) gatehouse spent per
	// request (--pid), up to cpuSettle after the scenario: unlike
	// requests/s, it hardly depends on what else the machine runs.
	ServerCPUMs float64 `json:"server_cpu_ms_per_request,omitempty"`
	Failure     string  `json:"failure,omitempty"`
}

type report struct {
	Base            string   `json:"base"`
	Concurrency     int      `json:"concurrency"`
	DurationSeconds float64  `json:"duration_seconds"`
	Scenarios       []result `json:"scenarios"`
	RSSMaxBytes     int64    `json:"target_rss_max_bytes,omitempty"`
	FirstErrors     []string `json:"first_errors,omitempty"`
}

// cpuSettle is how long run waits after a scenario before reading
// gatehouse's CPU time, so that work done after the answers (the
// provisioning log's writer) counts.
const cpuSettle = time.Second

func (res result) print(w io.Writer) {
	note := ""
	switch {
	case res.Failure != "":
		note = "FAILED: " + res.Failure
	case res.CeilingRatio > 0:
		note = fmt.Sprintf("%.2f", res.CeilingRatio)
	case res.Scenario == "page":
		note = fmt.Sprintf("(every user in %.2fs)", res.Seconds)
	}
	if res.Failure == "" && res.ServerCPUMs > 0 {
		note += fmt.Sprintf("  (gatehouse CPU %.3f ms a request)", res.ServerCPUMs)
	}
	line := fmt.Sprintf("%-13s %9d %7d %10.1f %9.3f %9.3f  %s",
		res.Scenario, res.Requests, res.Errors, res.PerSecond, res.P50Ms, res.P99Ms, note)
	fmt.Fprintln(w, strings.TrimRight(line, " "))
}

// scenario runs one scenario; a scenario that cannot start is a result
// with a Failure.
func (r *loadRun) scenario(ctx context.Context, name string) result {
	var res result
	var err error
	switch name {
	case "ceiling":
		res, err = r.ceiling(ctx)
		r.ceilingRate = res.PerSecond
	case "bare-process":
		res, err = r.bareProcess(ctx)
	case "get":
		res, err = r.get(ctx, name, r.allUsers)
	case "get-hot":
		res, err = r.get(ctx, name, r.sampleUsers)
	case "filter":
		res, err = r.filter(ctx, name, r.users, r.allUsers)
	case "filter-hot":
		res, err = r.filter(ctx, name, 0, r.sampleUsers)
	case "create":
		res = r.create(ctx)
	case "member-big":
		res, err = r.member(ctx, name, bigGroup)
	case "member-small":
		res, err = r.member(ctx, name, smallGroup)
	case "member-add":
		res, err = r.memberAdd(ctx)
	case "page":
		res, err = r.page(ctx)
	}
	res.Scenario = name
	if err != nil {
		res.Failure = oneLine(err.Error())
	}
	if r.ceilingRate > 0 && (name == "bare-process" || name == "get" || name == "get-hot" || name == "filter" || name == "filter-hot" || name == "create") {
		res.CeilingRatio = res.PerSecond / r.ceilingRate
	}
	return res
}

// ceilingUser is a typical SCIM User as gatehouse returns it (~600 bytes).
var ceilingUser = []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"2819c223-7f76-453a-919d-413861904646",` +
	`"externalId":"ext-0000001","userName":"load-user-0000001@example.com","name":{"formatted":"User 0000001",` +
	`"familyName":"0000001","givenName":"User"},"displayName":"User 0000001","title":"Engineer","active":true,` +
	`"emails":[{"value":"load-user-0000001@example.com","type":"work","primary":true}],"groups":[],` +
	`"meta":{"resourceType":"User","created":"2026-01-23T04:56:22.123456Z","lastModified":"2026-01-23T04:56:22.123456Z",` +
	`"location":"http://127.0.0.1:8080/scim/v2/Users/2819c223-7f76-453a-919d-413861904646","version":"W/\"1\""}}`)

// ceilingHandler answers every request with ceilingUser.
var ceilingHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", scimType)
	w.Write(ceilingUser)
})

// ceiling drives a bare net/http server of this process the way get drives
// gatehouse: what HTTP alone costs on this machine, with this client.
func (r *loadRun) ceiling(ctx context.Context) (result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: ceilingHandler}
	go srv.Serve(ln)
	defer srv.Close()
	return r.driveBare(ctx, "ceiling", "http://"+ln.Addr().String()), nil
}

// bareProcess drives the ceiling's handler served by a process of its own
// (this program, run as "scimload bare-serve"), as gatehouse is: the client
// and the server then no longer share one Go runtime, and the difference
// from the ceiling is what that separation costs any server here.
func (r *loadRun) bareProcess(ctx context.Context) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, self, "bare-serve")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return result{}, fmt.Errorf("bare-serve did not say its address: %w", err)
	}
	return r.driveBare(ctx, "bare-process", "http://"+strings.TrimSpace(addr)), nil
}

// bareServe serves ceilingHandler on a free loopback port, printing the
// address, until the process is killed (run by bareProcess).
func bareServe() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: ceilingHandler}
	return srv.Serve(ln)
}

// driveBare drives a server of ceilingHandler at base the way get drives
// gatehouse.
func (r *loadRun) driveBare(ctx context.Context, name, base string) result {
	t := target{base: base + scimPath, token: r.scim.token}
	ids := make([]string, sampleSize)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	return r.drive(ctx, name, r.concurrency, false, func(w *worker, _ int) error {
		return t.exchange(ctx, w.client, http.MethodGet, "/Users/"+ids[w.rng.IntN(len(ids))], nil, nil, http.StatusOK)
	})
}

// get reads random users of those users gives: every user (get) or the
// sample (get-hot).
func (r *loadRun) get(ctx context.Context, name string, users func(context.Context) ([]listedUser, error)) (result, error) {
	sample, err := users(ctx)
	if err != nil {
		return result{}, err
	}
	return r.drive(ctx, name, r.concurrency, false, func(w *worker, _ int) error {
		id := sample[w.rng.IntN(len(sample))].ID
		return r.scim.exchange(ctx, w.client, http.MethodGet, "/Users/"+url.PathEscape(id), nil, nil, http.StatusOK)
	}), nil
}

// filter looks up random users by userName eq: among load users 1..seeded
// by their names when seeded > 0, else among those users gives.
func (r *loadRun) filter(ctx context.Context, name string, seeded int, users func(context.Context) ([]listedUser, error)) (result, error) {
	var sample []listedUser
	if seeded == 0 {
		var err error
		if sample, err = users(ctx); err != nil {
			return result{}, err
		}
	}
	return r.drive(ctx, name, r.concurrency, false, func(w *worker, i int) error {
		var name string
		if seeded > 0 {
			name = loadUserName(1 + w.rng.IntN(seeded))
		} else {
			name = sample[w.rng.IntN(len(sample))].UserName
		}
		path := "/Users?filter=" + filterParam("userName eq "+jsonString(name))
		if i%verifyEvery != 0 {
			return r.scim.exchange(ctx, w.client, http.MethodGet, path, nil, nil, http.StatusOK)
		}
		var lr listResponse
		if err := r.scim.exchange(ctx, w.client, http.MethodGet, path, nil, &lr, http.StatusOK); err != nil {
			return err
		}
		if lr.TotalResults != 1 {
			return fmt.Errorf("GET %s: totalResults %d, want 1", path, lr.TotalResults)
		}
		return nil
	}), nil
}

// userBody is a POST /Users body as Okta sends it. The values put in it
// are ASCII letters, digits and punctuation that JSON needs no escape for.
func userBody(userName, externalID string) []byte {
	return fmt.Appendf(nil, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"%s",`+
		`"name":{"givenName":"Load","familyName":"Create"},"emails":[{"primary":true,"value":"%s","type":"work"}],`+
		`"displayName":"Load Create","locale":"en-US","externalId":"%s","groups":[],"password":"Lq8!vR2#tY6@wZ1","active":true}`,
		userName, userName, externalID)
}

func (r *loadRun) create(ctx context.Context) result {
	var n atomic.Int64
	return r.drive(ctx, "create", r.concurrency, false, func(w *worker, _ int) error {
		i := n.Add(1)
		body := userBody(fmt.Sprintf("load-create-%s-%d@example.com", r.runID, i), fmt.Sprintf("create-%s-%d", r.runID, i))
		return r.scim.exchange(ctx, w.client, http.MethodPost, "/Users", body, nil, http.StatusCreated)
	})
}

// member adds and removes one user in the group, alternately, with one
// writer: what an IdP pushing one membership change costs, against the
// group's size. The user is one the run created, so it is never among the
// seeded members and every request changes the group.
func (r *loadRun) member(ctx context.Context, name, group string) (result, error) {
	gid, err := r.groupID(ctx, group)
	if err != nil {
		return result{}, err
	}
	uid, err := r.outsider(ctx)
	if err != nil {
		return result{}, err
	}
	const patchOp = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`
	add := []byte(patchOp + `{"op":"add","path":"members","value":[{"value":` + jsonString(uid) + `}]}]}`)
	remove := []byte(patchOp + `{"op":"remove","path":` + jsonString("members[value eq "+jsonString(uid)+"]") + `}]}`)
	path := "/Groups/" + url.PathEscape(gid)
	// Pairs: the last add is always followed by its remove, so the group
	// ends the run as it began.
	return r.drive(ctx, name, 1, true, func(w *worker, i int) error {
		body := add
		if i%2 == 1 {
			body = remove
		}
		// RFC 7644 §3.5.2: 200 with the group, or 204.
		return r.scim.exchange(ctx, w.client, http.MethodPatch, path, body, nil, http.StatusOK, http.StatusNoContent)
	}), nil
}

func (r *loadRun) groupID(ctx context.Context, name string) (string, error) {
	var lr listResponse
	path := "/Groups?filter=" + filterParam("displayName eq "+jsonString(name)) + "&excludedAttributes=members"
	if err := r.scim.exchange(ctx, r.setup, http.MethodGet, path, nil, &lr, http.StatusOK); err != nil {
		return "", err
	}
	if len(lr.Resources) != 1 || lr.Resources[0].ID == "" {
		return "", fmt.Errorf("%d groups named %s, want 1 (run scimload seed first)", len(lr.Resources), name)
	}
	return lr.Resources[0].ID, nil
}

// outsider creates, once per run, the user member-* adds and removes.
func (r *loadRun) outsider(ctx context.Context) (string, error) {
	if r.outsiderID != "" {
		return r.outsiderID, nil
	}
	var u listedUser
	body := userBody("load-member-"+r.runID+"@example.com", "member-"+r.runID)
	if err := r.scim.exchange(ctx, r.setup, http.MethodPost, "/Users", body, &u, http.StatusCreated); err != nil {
		return "", err
	}
	if u.ID == "" {
		return "", errors.New("POST /Users: the created user has no id")
	}
	r.outsiderID = u.ID
	return u.ID, nil
}

// memberAdd adds, with one writer, a new member to the group of
// --add-group-members load users at each request: what an IdP assigning
// people to a large group costs (member-big alternates one add with its
// remove instead). The members are load users after the group's, taken at
// random; once the scenario is over they are removed again, one PATCH each
// and unmeasured, so the group keeps its size from run to run.
func (r *loadRun) memberAdd(ctx context.Context) (result, error) {
	gid, err := r.groupID(ctx, addGroup)
	if err != nil {
		return result{}, err
	}
	all, err := r.allUsers(ctx)
	if err != nil {
		return result{}, err
	}
	var candidates []string
	for _, u := range all {
		if i := loadUserNumber(u.UserName); i > r.addMembers {
			candidates = append(candidates, u.ID)
		}
	}
	if len(candidates) == 0 {
		return result{}, fmt.Errorf("no load user after the %d of %s to add (seed more users)", r.addMembers, addGroup)
	}
	rand.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	path := "/Groups/" + url.PathEscape(gid)
	const patchOp = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`
	added := 0
	res := r.drive(ctx, "member-add", 1, false, func(w *worker, i int) error {
		if i >= len(candidates) {
			return errExhausted // every load user after the group's is a member: the scenario ends early
		}
		body := []byte(patchOp + `{"op":"add","path":"members","value":[{"value":` + jsonString(candidates[i]) + `}]}]}`)
		added = i + 1 // one writer: its requests are in order
		return r.scim.exchange(ctx, w.client, http.MethodPatch, path, body, nil, http.StatusOK, http.StatusNoContent)
	})
	for _, id := range candidates[:added] {
		body := []byte(patchOp + `{"op":"remove","path":` + jsonString("members[value eq "+jsonString(id)+"]") + `}]}`)
		if err := r.scim.exchange(ctx, r.setup, http.MethodPatch, path, body, nil, http.StatusOK, http.StatusNoContent); err != nil {
			return res, fmt.Errorf("remove the members added: %w", err)
		}
	}
	return res, nil
}

// allUsers lists, once, every user (get and filter draw from them all).
func (r *loadRun) allUsers(ctx context.Context) ([]listedUser, error) {
	if r.listedAll {
		return r.all, r.allErr
	}
	r.listedAll = true
	for start := 1; ; {
		var lr listResponse
		path := fmt.Sprintf("/Users?startIndex=%d&count=%d&attributes=id,userName", start, listSize)
		if err := r.scim.exchange(ctx, r.setup, http.MethodGet, path, nil, &lr, http.StatusOK); err != nil {
			r.allErr = fmt.Errorf("list every user: %w", err)
			return nil, r.allErr
		}
		r.all = append(r.all, lr.Resources...)
		if start += len(lr.Resources); len(lr.Resources) == 0 || start > lr.TotalResults {
			break
		}
	}
	if len(r.all) == 0 {
		r.allErr = errors.New("no users: run scimload seed first")
	}
	return r.all, r.allErr
}

// page lists every user, 100 a page, with one client, as an IdP's import
// does. It is bounded by --page-timeout rather than --duration.
func (r *loadRun) page(ctx context.Context) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.pageTimeout)
	defer cancel()
	client := newClient(1)
	defer client.CloseIdleConnections()
	w := &worker{client: client}
	start := time.Now()
	next, total := 1, 0
	var err error
	for {
		var lr listResponse
		path := fmt.Sprintf("/Users?startIndex=%d&count=%d", next, pageSize)
		if err = w.measure(func() error { return r.scim.exchange(ctx, client, http.MethodGet, path, nil, &lr, http.StatusOK) }); err != nil {
			r.failures.add("page", err)
			break
		}
		total = lr.TotalResults
		if len(lr.Resources) == 0 && next <= total {
			err = fmt.Errorf("GET %s: no users, but totalResults is %d", path, total)
			break
		}
		// Advance by what came: RFC 7644 §3.4.2.4 lets a server return
		// fewer than count.
		if next += len(lr.Resources); next > total {
			break
		}
	}
	res := summarize([]*worker{w}, time.Since(start))
	if ctx.Err() != nil {
		err = fmt.Errorf("did not list every user within %s (at startIndex %d of %d)", r.pageTimeout, next, total)
	}
	return res, err
}

// listedUser is what scimload reads of a User (and of a Group's id).
type listedUser struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
}

// listResponse is a SCIM ListResponse (RFC 7644 §3.4.2).
type listResponse struct {
	TotalResults int          `json:"totalResults"`
	Resources    []listedUser `json:"Resources"`
}

// sampleUsers fetches, once, about sampleSize users spread over the whole
// list: the first page, then a page at a random offset in each following
// tenth. ids all over the table keep get honest (the first thousand rows
// alone would sit in the database's cache).
func (r *loadRun) sampleUsers(ctx context.Context) ([]listedUser, error) {
	if r.sampled {
		return r.sample, r.sampleErr
	}
	r.sampled = true
	r.sample, r.sampleErr = r.fetchSample(ctx)
	return r.sample, r.sampleErr
}

func (r *loadRun) fetchSample(ctx context.Context) ([]listedUser, error) {
	page := func(start int) ([]listedUser, int, error) {
		var lr listResponse
		path := fmt.Sprintf("/Users?startIndex=%d&count=%d&attributes=userName", start, pageSize)
		err := r.scim.exchange(ctx, r.setup, http.MethodGet, path, nil, &lr, http.StatusOK)
		return lr.Resources, lr.TotalResults, err
	}
	users, total, err := page(1)
	if err != nil {
		return nil, fmt.Errorf("sample users: %w", err)
	}
	const tenths = sampleSize / pageSize
	for s := 1; s < tenths; s++ {
		start := 1 + s*pageSize // few users: all of them
		if total > sampleSize {
			lo, end := 1+s*total/tenths, (s+1)*total/tenths
			start = lo + rand.IntN(end-pageSize+1-lo+1)
		}
		if start > total {
			break
		}
		more, _, err := page(start)
		if err != nil {
			return nil, fmt.Errorf("sample users: %w", err)
		}
		users = append(users, more...)
	}
	if len(users) == 0 {
		return nil, errors.New("no users to sample: run scimload seed first")
	}
	return users, nil
}

// target is a SCIM service provider: its base URL and bearer token.
type target struct{ base, token string }

// statusError is a response whose status the scenario does not expect.
type statusError struct {
	method, path string
	status       int
	body         string // its first errorBodyShown bytes
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.method, e.path, e.status, e.body)
}

// exchange sends one request and reads the response body to its end, so
// that the connection is reused; it decodes the body into out when out is
// not nil. A status other than those in want is a *statusError.
func (t target) exchange(ctx context.Context, c *http.Client, method, path string, body []byte, out any, want ...int) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	req.Header.Set("Accept", scimType)
	if body != nil {
		req.Header.Set("Content-Type", scimType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if !slices.Contains(want, resp.StatusCode) {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyShown))
		io.Copy(io.Discard, resp.Body)
		return &statusError{method: method, path: path, status: resp.StatusCode, body: string(head)}
	}
	if out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxDecoded)).Decode(out); err != nil {
			return fmt.Errorf("%s %s: decode the response: %w", method, path, err)
		}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// newClient is the client of every scenario: HTTP/1.1 with keep-alive and
// one idle connection kept per worker, so only a worker's first request
// opens a connection. No proxy (the target is on loopback) and no gzip, so
// gatehouse and the ceiling send the same bytes as they are.
func newClient(conns int) *http.Client {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	return &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			Protocols:           protocols,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// filterParam escapes a filter for the query string with %20 for spaces,
// as Okta and Entra ID send it (a '+' is form encoding, not RFC 3986).
func filterParam(filter string) string {
	return strings.ReplaceAll(url.QueryEscape(filter), "+", "%20")
}

// jsonString quotes s as a JSON string, which is also how a SCIM filter
// writes a string value (RFC 7644 §3.4.2.2).
func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// worker is one client of a scenario. Its latencies are its own, so the
// hot path takes no lock; they are merged when the scenario ends.
type worker struct {
	client    *http.Client
	rng       *rand.Rand
	latencies []time.Duration
	errors    int
}

// measure times one exchange, body read included.
func (w *worker) measure(exchange func() error) error {
	start := time.Now()
	err := exchange()
	if errors.Is(err, errExhausted) {
		return err // no request was sent
	}
	w.latencies = append(w.latencies, time.Since(start))
	if err != nil {
		w.errors++
	}
	return err
}

// errExhausted, from a scenario's send, ends its worker early: the
// scenario has nothing left to send (member-add ran out of new members).
// It is not a request and not an error.
var errExhausted = errors.New("scimload: nothing left to send")

// drive runs workers clients, each sending requests back to back until the
// duration is over (the last one is waited for and counted), and measures
// them. send sends a worker's i-th request. With pairs, a worker stops only
// after an even number of requests.
func (r *loadRun) drive(ctx context.Context, name string, workers int, pairs bool, send func(w *worker, i int) error) result {
	client := newClient(workers)
	defer client.CloseIdleConnections()
	ws := make([]*worker, workers)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(r.duration)
	for n := range ws {
		w := &worker{client: client, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
		ws[n] = w
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && (time.Now().Before(deadline) || pairs && i%2 == 1); i++ {
				err := w.measure(func() error { return send(w, i) })
				if errors.Is(err, errExhausted) {
					break
				}
				if err != nil {
					r.failures.add(name, err)
				}
			}
		})
	}
	wg.Wait()
	return summarize(ws, time.Since(start))
}

// summarize merges the workers' latencies. Percentiles are nearest-rank
// over every request of the scenario.
func summarize(ws []*worker, elapsed time.Duration) result {
	var all []time.Duration
	var res result
	for _, w := range ws {
		all = append(all, w.latencies...)
		res.Errors += w.errors
	}
	res.Requests = len(all)
	res.Seconds = elapsed.Seconds()
	if len(all) == 0 {
		return res
	}
	slices.Sort(all)
	res.PerSecond = float64(len(all)) / elapsed.Seconds()
	res.P50Ms, res.P99Ms = percentileMs(all, 0.50), percentileMs(all, 0.99)
	return res
}

// percentileMs is the nearest-rank q-quantile of sorted, in milliseconds.
func percentileMs(sorted []time.Duration, q float64) float64 {
	d := sorted[max(int(math.Ceil(q*float64(len(sorted))))-1, 0)]
	return float64(d) / float64(time.Millisecond)
}

// errorLog keeps the first failed exchanges of the run for the report.
type errorLog struct {
	mu    sync.Mutex
	first []string
}

func (l *errorLog) add(scenario string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.first) < errorsShown {
		l.first = append(l.first, scenario+": "+oneLine(err.Error()))
	}
}

// print lists the errors kept, if any.
func (l *errorLog) print(w io.Writer) {
	if len(l.first) > 0 {
		fmt.Fprintf(w, "first errors:\n")
		for _, e := range l.first {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// rssSampler records the peak resident memory of a process, read from
// /proc/PID/status every rssInterval.
type rssSampler struct {
	peak int64 // bytes; written by the sampling goroutine only, read after done
	err  error // why sampling stopped early (the process ended)
	quit chan struct{}
	done chan struct{}
}

func startRSS(pid int) (*rssSampler, error) {
	first, err := readRSS(pid)
	if err != nil {
		return nil, fmt.Errorf("--pid %d: %w", pid, err)
	}
	s := &rssSampler{peak: first, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(rssInterval)
		defer tick.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-tick.C:
				v, err := readRSS(pid)
				if err != nil {
					s.err = err
					return
				}
				s.peak = max(s.peak, v)
			}
		}
	}()
	return s, nil
}

// stop ends the sampling and returns the peak in bytes.
func (s *rssSampler) stop() (int64, error) {
	close(s.quit)
	<-s.done
	return s.peak, s.err
}

// cpuTime is the CPU time, user and system, process pid has used
// (/proc/PID/stat, fields 14 and 15, in clock ticks of 1/100 s: Linux's
// USER_HZ on every architecture).
func cpuTime(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	fields := strings.Fields(string(stat[i+1:])) // from field 3
	if i < 0 || len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

func readRSS(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
