package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
)

// The OpenID Provider's figures (issue #14): "scimload op" measures code
// exchange and introspection beside the ceiling, "scimload logout" the
// delay from a SCIM deactivation to the application's back-channel
// logout. Both prepare what they need (an administrator with a password,
// a client) straight in the database, as seed does, and then use only
// gatehouse's HTTP endpoints.

const (
	// opRedirect is the load client's redirect URI: never reached, the
	// tool reads the code from the redirect itself.
	opRedirect = "http://127.0.0.1:1/callback"
	opScopes   = "openid profile email offline_access"
	// opPassword signs in the administrators the tool makes; they exist
	// only in the load organization.
	opPassword = "scimload-Op-Pw-7d1!"
)

var opScenarios = []string{"ceiling", "healthz", "code-exchange", "introspect"}

func runOP(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("op")
	base := fs.String("base", "", "gatehouse's URL on this machine, e.g. http://127.0.0.1:8080; only 127.0.0.1, ::1 and localhost (required)")
	dsn := fs.String("db", "", "gatehouse's database, where the load administrator and client are prepared (required)")
	slug := fs.String("org", "", "slug of an existing organization (required)")
	duration := fs.Duration("duration", 5*time.Second, "how long each scenario of a round sends requests")
	concurrency := fs.Int("concurrency", 16, "parallel clients")
	rounds := fs.Int("rounds", 3, "rounds of every scenario; the summary gives their medians")
	codeCount := fs.Int("codes", 3000, "authorization codes prepared before each round's code-exchange (it ends early when they run out)")
	pid := fs.Int("pid", 0, "gatehouse's process id: the CPU time it spends per request is reported")
	jsonOut := fs.String("json", "", "also write the results to this file, as JSON")
	err := parse(fs, stdout, "--base URL --db DSN --org SLUG [flags]",
		"Measures gatehouse's OpenID Provider. Prepares, in the database, an administrator\n"+
			"with a password and a confidential client of the organization (removed at the\n"+
			"end), signs in once through /login/password and then runs rounds of:\n"+
			"ceiling (a bare net/http server of this process, as scimload run), healthz\n"+
			"(gatehouse's GET /healthz), code-exchange (POST /oauth/token with codes prepared\n"+
			"beforehand, unmeasured, through /authorize and /authorize/continue with the\n"+
			"session) and introspect (POST /oauth/introspect of the access tokens it got,\n"+
			"client basic auth). code-exchange and introspect are set beside the ceiling of\n"+
			"their round: the faster of ceiling and healthz (healthz is set beside ceiling).\n"+
			"With --pid, gatehouse's CPU time per request too. The summary gives medians\n"+
			"over the rounds. Exits 1 when a request failed.", args)
	if err != nil {
		return err
	}
	origin, err := loopbackBase(*base)
	if err != nil {
		return err
	}
	switch {
	case *dsn == "" || *slug == "":
		return usagef("op: --db and --org are required (see 'scimload op --help')")
	case *duration <= 0 || *concurrency < 1 || *rounds < 1 || *codeCount < 1:
		return usagef("op: --duration, --concurrency, --rounds and --codes must be positive")
	}
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	prep, err := openPrep(ctx, *dsn, *slug)
	if err != nil {
		return err
	}
	defer prep.close()
	username := "op-load@example.com"
	if _, err := prep.administrator(ctx, username); err != nil {
		return err
	}
	rp, err := prep.client(ctx, "scimload op "+runID, origin, "")
	if err != nil {
		return err
	}
	defer prep.removeClient(rp.id)
	session, err := rp.signIn(ctx, newBrowser(), *slug, username)
	if err != nil {
		return err
	}

	r := &loadRun{setup: newClient(1), duration: *duration, concurrency: *concurrency, runID: runID}
	fmt.Fprintf(stdout, "scimload op: %s, %d clients, %s per scenario, %d rounds\n", origin, *concurrency, *duration, *rounds)
	var all [][]result
	bad := 0
	for round := 1; round <= *rounds && ctx.Err() == nil; round++ {
		fmt.Fprintf(stdout, "round %d\n%-13s %9s %7s %10s %9s %9s  %s\n", round, "scenario", "requests", "errors", "req/s", "p50 ms", "p99 ms", "vs ceiling")
		var res []result
		var tokens []string
		r.ceilingRate = 0
		for _, name := range opScenarios {
			var one result
			var err error
			var codes []string
			if name == "code-exchange" { // unmeasured
				codes, err = rp.prepareCodes(ctx, session, *codeCount, r.concurrency)
			}
			var cpuBefore time.Duration
			if *pid > 0 && name != "ceiling" && err == nil {
				if cpuBefore, err = cpuTime(*pid); err != nil {
					return fmt.Errorf("--pid %d: %w", *pid, err)
				}
			}
			switch name {
			case "ceiling":
				one, err = r.ceiling(ctx)
			case "healthz":
				one = r.drive(ctx, name, r.concurrency, false, func(w *worker, _ int) error {
					return get(ctx, w.client, origin+"/healthz")
				})
			case "code-exchange":
				if err == nil {
					one, tokens = r.codeExchange(ctx, rp, codes)
				}
			case "introspect":
				one, err = r.introspect(ctx, rp, tokens)
			}
			if *pid > 0 && name != "ceiling" && err == nil && one.Requests > 0 {
				cpuAfter, cerr := cpuTime(*pid)
				if cerr != nil {
					return fmt.Errorf("--pid %d: %w", *pid, cerr)
				}
				one.ServerCPUMs = float64(cpuAfter-cpuBefore) / float64(time.Millisecond) / float64(one.Requests)
			}
			one.Scenario = name
			if err != nil {
				one.Failure = oneLine(err.Error())
			}
			if name != "ceiling" && r.ceilingRate > 0 {
				one.CeilingRatio = one.PerSecond / r.ceilingRate
			}
			if name == "ceiling" || name == "healthz" {
				// The ceiling is the faster of the two trivial endpoints:
				// on a busy machine, the bare server sharing this
				// process's CPUs with the clients can be the slower.
				r.ceilingRate = max(r.ceilingRate, one.PerSecond)
			}
			if one.Failure != "" || one.Errors > 0 {
				bad++
			}
			one.print(stdout)
			res = append(res, one)
		}
		all = append(all, res)
	}
	medians := medianResults(all)
	fmt.Fprintf(stdout, "medians of %d rounds\n", len(all))
	for _, m := range medians {
		m.print(stdout)
	}
	r.failures.print(stdout)
	if *jsonOut != "" {
		if err := writeJSONFile(*jsonOut, map[string]any{"base": origin, "concurrency": *concurrency,
			"duration_seconds": duration.Seconds(), "rounds": all, "medians": medians, "first_errors": r.failures.first}); err != nil {
			return err
		}
	}
	switch {
	case ctx.Err() != nil:
		return errors.New("interrupted")
	case bad > 0:
		return fmt.Errorf("%d scenarios failed or counted errors (see above)", bad)
	}
	return nil
}

// medianResults is, per scenario, the median over the rounds of each
// figure (taken separately: the median rate and the median ratio may come
// from different rounds).
func medianResults(rounds [][]result) []result {
	if len(rounds) == 0 {
		return nil
	}
	var out []result
	for i, first := range rounds[0] {
		m := result{Scenario: first.Scenario}
		pick := func(f func(result) float64) float64 {
			var vs []float64
			for _, r := range rounds {
				if i < len(r) {
					vs = append(vs, f(r[i]))
				}
			}
			slices.Sort(vs)
			if len(vs)%2 == 1 {
				return vs[len(vs)/2]
			}
			return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
		}
		m.PerSecond = pick(func(r result) float64 { return r.PerSecond })
		m.P50Ms = pick(func(r result) float64 { return r.P50Ms })
		m.P99Ms = pick(func(r result) float64 { return r.P99Ms })
		m.CeilingRatio = pick(func(r result) float64 { return r.CeilingRatio })
		m.ServerCPUMs = pick(func(r result) float64 { return r.ServerCPUMs })
		m.Requests = int(pick(func(r result) float64 { return float64(r.Requests) }))
		m.Errors = int(pick(func(r result) float64 { return float64(r.Errors) }))
		out = append(out, m)
	}
	return out
}

// codeExchange exchanges the codes concurrently; it returns the access
// tokens got.
func (r *loadRun) codeExchange(ctx context.Context, rp *relyingParty, codes []string) (result, []string) {
	var next atomic.Int64
	var mu sync.Mutex
	tokens := make([]string, 0, len(codes))
	res := r.drive(ctx, "code-exchange", r.concurrency, false, func(w *worker, _ int) error {
		i := next.Add(1) - 1
		if i >= int64(len(codes)) {
			return errExhausted
		}
		access, err := rp.exchange(ctx, w.client, codes[i])
		if err == nil {
			mu.Lock()
			tokens = append(tokens, access)
			mu.Unlock()
		}
		return err
	})
	if next.Load() >= int64(len(codes)) {
		res.Failure = fmt.Sprintf("the %d codes ran out after %.1fs: give more with --codes", len(codes), res.Seconds)
	}
	return res, tokens
}

// introspect asks about random tokens of those the code exchange got;
// every answer must say active.
func (r *loadRun) introspect(ctx context.Context, rp *relyingParty, tokens []string) (result, error) {
	if len(tokens) == 0 {
		return result{}, errors.New("no access token to introspect: the code exchange got none")
	}
	return r.drive(ctx, "introspect", r.concurrency, false, func(w *worker, _ int) error {
		return rp.introspect(ctx, w.client, tokens[w.rng.IntN(len(tokens))])
	}), nil
}

// loopbackBase checks a gatehouse URL as loopbackSCIMBase does and returns
// it without a trailing slash.
func loopbackBase(raw string) (string, error) {
	scimBase, err := loopbackSCIMBase(raw)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(scimBase, scimPath), nil
}

// prep prepares, in gatehouse's database, what the OpenID Provider's
// scenarios need.
type prep struct {
	store *store.SQL
	org   store.Org
}

func openPrep(ctx context.Context, dsn, slug string) (*prep, error) {
	s, err := store.Open(ctx, dsn, store.Options{ConnectTimeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	org, err := s.OrgBySlug(ctx, slug)
	if err != nil {
		s.Close()
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("organization %q does not exist (create it with gatehouse org create)", slug)
		}
		return nil, err
	}
	return &prep{store: s, org: org}, nil
}

func (p *prep) close() { p.store.Close() }

// asOperator: what the tool writes is the operator scimload's in the
// audit log, as seed's is.
func asOperator(ctx context.Context) context.Context {
	return store.WithActor(ctx, store.Actor{Kind: store.ActorOperator, Name: "scimload"})
}

// administrator makes sure an active, SCIM-managed administrator of that
// username exists, with opPassword.
func (p *prep) administrator(ctx context.Context, username string) (store.Administrator, error) {
	hash, err := admin.HashPassword(opPassword)
	if err != nil {
		return store.Administrator{}, err
	}
	return p.administrators(ctx, []string{username}, hash)
}

// administrators is administrator for many usernames, with a password
// hash made once; it returns the last.
func (p *prep) administrators(ctx context.Context, usernames []string, hash string) (store.Administrator, error) {
	ctx = asOperator(ctx)
	var a store.Administrator
	for _, username := range usernames {
		var err error
		a, err = p.store.AdministratorByUsername(ctx, p.org.ID, username)
		if errors.Is(err, store.ErrNotFound) {
			a, err = p.store.CreateAdministrator(ctx, store.Administrator{OrgID: p.org.ID, UserName: username, GivenName: "Op", FamilyName: "Load",
				Email: username, Role: store.RoleAdministrator, Status: store.StatusActive, SCIMManaged: true})
		}
		if err != nil {
			return a, fmt.Errorf("administrator %s: %w", username, err)
		}
		if a.Status != store.StatusActive {
			return a, fmt.Errorf("administrator %s is %s: use another organization", username, a.Status)
		}
		if _, err := p.store.UpdateCredentials(ctx, p.org.ID, a.ID, store.CredentialsChange{Action: store.AuditCredentialsUpdate,
			Update: func(c *store.Credentials) error { c.PasswordHash = hash; return nil }}); err != nil {
			return a, fmt.Errorf("administrator %s: password: %w", username, err)
		}
	}
	return a, nil
}

// client registers a confidential, first-party client of the organization
// (with a back-channel logout URI when backchannel is not empty).
func (p *prep) client(ctx context.Context, name, origin, backchannel string) (*relyingParty, error) {
	ctx = asOperator(ctx)
	secret, c, err := (&admin.OIDCClients{Store: p.store}).Create(ctx, loadOperator(ctx), admin.OIDCClientSpec{Name: name, RedirectURIs: []string{opRedirect},
		BackchannelLogoutURI: backchannel, Orgs: []string{p.org.Slug}, FirstParty: true})
	if err != nil {
		return nil, fmt.Errorf("create the load client: %w", err)
	}
	return &relyingParty{origin: origin, id: c.ID, secret: secret}, nil
}

// removeClient deletes the load client, and with it its grants and
// tokens (on a context of its own: it runs also after an interruption).
func (p *prep) removeClient(id string) {
	ctx, cancel := context.WithTimeout(asOperator(context.Background()), 30*time.Second)
	defer cancel()
	(&admin.OIDCClients{Store: p.store}).Delete(ctx, loadOperator(ctx), id)
}

// loadOperator is the load tool's principal on the server's clients: the
// operator, who manages every one of them.
func loadOperator(ctx context.Context) admin.Principal {
	actor, _ := store.ActorFrom(ctx)
	return admin.Principal{Operator: true, Actor: actor}
}

// relyingParty is the load client as an application uses gatehouse.
type relyingParty struct {
	origin     string // gatehouse
	id, secret string
}

// newBrowser is a browser: its own cookies, redirects not followed (the
// flow reads them).
func newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil) // no options: never fails
	c := newClient(1)
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// signIn signs the browser in with a password and returns its session
// cookie.
func (rp *relyingParty) signIn(ctx context.Context, browser *http.Client, slug, username string) (*http.Cookie, error) {
	form := url.Values{"organization": {slug}, "username": {username}, "password": {opPassword}, "next": {"/"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rp.origin+"/login/password", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", rp.origin)
	resp, err := browser.Do(req)
	if err != nil {
		return nil, err
	}
	body := drain(resp)
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse_session" && c.Value != "" && resp.StatusCode == http.StatusSeeOther {
			return c, nil
		}
	}
	return nil, fmt.Errorf("sign-in of %s: status %d, no session: %s", username, resp.StatusCode, body)
}

// prepareCodes gets n authorization codes with the session, workers at a
// time, each worker a browser of its own (a request is bound to the
// browser that started it).
func (rp *relyingParty) prepareCodes(ctx context.Context, session *http.Cookie, n, workers int) ([]string, error) {
	codes := make([]string, n)
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(workers, n) {
		browser := newBrowser()
		u, _ := url.Parse(rp.origin)
		browser.Jar.SetCookies(u, []*http.Cookie{session})
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				code, err := rp.authorize(ctx, browser)
				if err != nil {
					once.Do(func() { first = err })
					return
				}
				codes[i] = code
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	if first != nil {
		return nil, fmt.Errorf("prepare codes: %w", first)
	}
	return codes, nil
}

// authorize runs one authorization request with a signed-in browser:
// /authorize, then /authorize/continue, then the redirect with the code.
func (rp *relyingParty) authorize(ctx context.Context, browser *http.Client) (string, error) {
	q := url.Values{"client_id": {rp.id}, "redirect_uri": {opRedirect}, "response_type": {"code"}, "scope": {opScopes},
		"state": {"s" + strconv.FormatInt(time.Now().UnixNano(), 36)}}
	next := rp.origin + "/authorize?" + q.Encode()
	for range 3 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return "", err
		}
		resp, err := browser.Do(req)
		if err != nil {
			return "", err
		}
		body := drain(resp)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther || loc == "" {
			return "", fmt.Errorf("GET %s: status %d: %s", next, resp.StatusCode, body)
		}
		if strings.HasPrefix(loc, opRedirect) {
			u, err := url.Parse(loc)
			if err != nil || u.Query().Get("code") == "" || u.Query().Get("state") != q.Get("state") {
				return "", fmt.Errorf("redirect to the application without a code or with another state: %s", loc)
			}
			return u.Query().Get("code"), nil
		}
		if strings.HasPrefix(loc, "/") {
			loc = rp.origin + loc
		}
		next = loc
	}
	return "", fmt.Errorf("no redirect to the application, last at %s", next)
}

// exchange trades a code for tokens and returns the access token.
func (rp *relyingParty) exchange(ctx context.Context, c *http.Client, code string) (string, error) {
	var out struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {opRedirect}}
	if err := rp.post(ctx, c, "/oauth/token", form, &out); err != nil {
		return "", err
	}
	if out.AccessToken == "" || out.IDToken == "" {
		return "", errors.New("POST /oauth/token: no access or ID token")
	}
	return out.AccessToken, nil
}

// introspect asks about a token that must be active.
func (rp *relyingParty) introspect(ctx context.Context, c *http.Client, token string) error {
	var out struct {
		Active bool `json:"active"`
	}
	if err := rp.post(ctx, c, "/oauth/introspect", url.Values{"token": {token}}, &out); err != nil {
		return err
	}
	if !out.Active {
		return errors.New("POST /oauth/introspect: a live token is inactive")
	}
	return nil
}

// post sends a form with the client's basic authentication (RFC 6749
// §2.3.1: both parts form-encoded) and decodes a 200's JSON into out.
func (rp *relyingParty) post(ctx context.Context, c *http.Client, path string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rp.origin+path, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(rp.id), url.QueryEscape(rp.secret))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body := drain(resp)
	if resp.StatusCode != http.StatusOK {
		return &statusError{method: http.MethodPost, path: path, status: resp.StatusCode, body: string(body)}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	return nil
}

// get expects a 200.
func get(ctx context.Context, c *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body := drain(resp)
	if resp.StatusCode != http.StatusOK {
		return &statusError{method: http.MethodGet, path: u, status: resp.StatusCode, body: string(body)}
	}
	return nil
}

// drain reads a response to its end (so the connection is reused) and
// returns its first 64 KiB.
func drain(resp *http.Response) []byte {
	defer resp.Body.Close()
	var b bytes.Buffer
	io.Copy(&b, io.LimitReader(resp.Body, 64<<10))
	io.Copy(io.Discard, resp.Body)
	if b.Len() > errorBodyShown && resp.StatusCode >= 300 {
		return b.Bytes()[:errorBodyShown]
	}
	return b.Bytes()
}
