package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/scim"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// env is one organization with SCIM on, a token, and gatehouse's SCIM
// server on a real loopback HTTP server.
type env struct {
	t     testing.TB
	st    *store.SQL
	org   store.Org
	token string
	url   string // base URL of the SCIM endpoints
	owner store.Administrator
}

type envOption func(*scim.Config, *admin.OrgSpec)

func withDomains(ds ...string) envOption {
	return func(_ *scim.Config, s *admin.OrgSpec) { s.Domains = ds }
}

// withTokenCache keeps verified tokens as production does.
func withTokenCache() envOption {
	return func(c *scim.Config, _ *admin.OrgSpec) { c.TokenCacheTTL = 0 }
}

// withLog sends every request's log to w, as text.
func withLog(w io.Writer) envOption {
	return func(c *scim.Config, _ *admin.OrgSpec) {
		l := slog.New(slog.NewTextHandler(w, nil))
		c.Logger = func(*http.Request) *slog.Logger { return l }
	}
}

func withRateLimit(r float64) envOption {
	return func(c *scim.Config, _ *admin.OrgSpec) { c.RateLimit = r }
}

func newEnv(t testing.TB, st *store.SQL, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	cfg := scim.Config{RateLimit: -1, TokenCacheTTL: -1}
	spec := admin.OrgSpec{Slug: "acme", Name: "Acme", Owner: admin.OwnerSpec{
		UserName: "owner@acme.test", Email: "owner@acme.test", GivenName: "Olive", FamilyName: "Owner"}}
	for _, o := range opts {
		o(&cfg, &spec)
	}
	if len(spec.Domains) > 0 {
		spec.Owner.Email = "owner@" + spec.Domains[0]
	}
	orgs := &admin.Orgs{Store: st, BaseURL: "http://gatehouse.test"}
	org, owner, _, err := orgs.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if org, err = orgs.SetSCIM(ctx, org.ID, true); err != nil {
		t.Fatal(err)
	}
	token, _, err := (&admin.SCIMTokens{Store: st}).Create(ctx, org.ID, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL
	// The server gets the store as scim.Store only (the struct hides
	// every other method of st): what the tests exercise is exactly what
	// the interface declares.
	scim.New(struct{ scim.Store }{st}, &admin.Lifecycle{Store: st}, cfg).Register(mux)
	return &env{t: t, st: st, org: org, token: token, url: srv.URL + scim.Prefix, owner: owner}
}

// response is one answer, decoded.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends a request with the env's token. body may be nil, a string (sent
// as is) or a value to encode. Extra headers come as name, value pairs.
func (e *env) do(method, path string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{Timeout: 30 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := response{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.t.Fatalf("%s %s: answer is not a JSON object: %v\n%s", method, path, err, raw)
		}
	}
	return r
}

// must fails unless the answer has the status.
func (r response) must(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// str reads a string at a dotted path of the body ("name.givenName",
// "Resources.0.id").
func (r response) str(path string) string {
	v, _ := lookup(r.body, path).(string)
	return v
}

func lookup(v any, path string) any {
	for path != "" {
		switch x := v.(type) {
		case map[string]any:
			// Keys may hold dots (schema URNs such as "...:2.0:User"): take
			// the longest key that prefixes the rest of the path.
			best := ""
			for k := range x {
				if (path == k || strings.HasPrefix(path, k+".")) && len(k) > len(best) {
					best = k
				}
			}
			if best == "" {
				return nil
			}
			v, path = x[best], strings.TrimPrefix(strings.TrimPrefix(path, best), ".")
		case []any:
			p, rest, _ := strings.Cut(path, ".")
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				return nil
			}
			v, path = x[i], rest
		default:
			return nil
		}
	}
	return v
}

// user is a typical Okta create body.
func user(userName string) map[string]any {
	return map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": userName,
		"name":     map[string]any{"givenName": "Jane", "familyName": "Doe"},
		"emails":   []any{map[string]any{"value": userName, "type": "work", "primary": true}},
		"active":   true,
		"password": "Secr3t-pa55word!",
		"groups":   []any{},
	}
}

// assertNotStored fails if text appears in any column of any row.
func assertNotStored(t *testing.T, st *store.SQL, text string) {
	t.Helper()
	for table, rows := range storetest.Dump(t, st) {
		for _, row := range rows {
			for _, v := range row {
				if strings.Contains(fmt.Sprintf("%s", v), text) {
					t.Errorf("table %s stores %q", table, text)
				}
			}
		}
	}
}
