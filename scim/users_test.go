package scim_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestUserLifecycle(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, st *store.SQL) {
		e := newEnv(t, st)
		// Entra ID's test connection: an absent user is an empty list, not 404.
		r := e.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "2e8f0c8e-52a1-4d7c-9b3b-3e8c7c1b6f00"`), nil).must(t, 200)
		if r.body["totalResults"] != float64(0) || len(r.body["Resources"].([]any)) != 0 {
			t.Fatalf("test connection: %s", r.raw)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/scim+json") {
			t.Errorf("Content-Type %q", ct)
		}

		body := user("jdoe@acme.test")
		body["externalId"] = "00u1"
		body["title"] = "Engineer"
		body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = map[string]any{"employeeNumber": "701984", "manager": map[string]any{"value": "m-1"}}
		body["addresses"] = []any{map[string]any{"type": "work", "locality": "Lyon", "country": "FR"}}
		body["unknownAttribute"] = "ignored"
		c := e.do("POST", "/Users", body).must(t, 201)
		id := c.str("id")
		if id == "" || c.header.Get("Location") != e.url+"/Users/"+id || c.header.Get("ETag") == "" {
			t.Fatalf("create: id %q, Location %q, ETag %q", id, c.header.Get("Location"), c.header.Get("ETag"))
		}
		if c.header.Get("ETag") != c.str("meta.version") {
			t.Errorf("ETag %q differs from meta.version %q", c.header.Get("ETag"), c.str("meta.version"))
		}
		for path, want := range map[string]string{
			"userName": "jdoe@acme.test", "externalId": "00u1", "name.givenName": "Jane", "title": "Engineer",
			"addresses.0.locality": "Lyon", "emails.0.value": "jdoe@acme.test",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.employeeNumber": "701984",
			"meta.resourceType": "User",
		} {
			if got := c.str(path); got != want {
				t.Errorf("%s = %q, want %q", path, got, want)
			}
		}
		if _, ok := c.body["password"]; ok {
			t.Error("password returned")
		}
		if _, ok := c.body["unknownAttribute"]; ok {
			t.Error("unknown attribute stored")
		}
		assertNotStored(t, st, "Secr3t-pa55word!")

		// Exact, case-sensitive userName match.
		for filter, want := range map[string]float64{
			`userName eq "jdoe@acme.test"`:                     1,
			`userName eq "JDOE@acme.test"`:                     0,
			`externalId eq "00u1"`:                             1,
			`emails[type eq "work"].value eq "JDOE@ACME.TEST"`: 1, // emails are case-insensitive
			`title eq "engineer"`:                              1,
			`addresses[locality eq "Lyon"]`:                    1,
			`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`:              1,
			`id eq "` + id + `" and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "m-1"`: 1,
			`active eq true`: 2, // with the owner
		} {
			r := e.do("GET", "/Users?filter="+url.QueryEscape(filter), nil).must(t, 200)
			if r.body["totalResults"] != want {
				t.Errorf("%s: totalResults %v, want %v", filter, r.body["totalResults"], want)
			}
		}

		// A userName differing only by case is taken, and the error names the existing user.
		dup := e.do("POST", "/Users", user("JDoe@acme.test")).must(t, 409)
		if dup.str("scimType") != "uniqueness" || !strings.Contains(dup.str("detail"), "jdoe@acme.test") || !strings.Contains(dup.str("detail"), id) {
			t.Errorf("409 body: %s", dup.raw)
		}

		// Okta deactivation: no-path replace. The user stays readable.
		e.do("PATCH", "/Users/"+id, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}}}).must(t, 200)
		g := e.do("GET", "/Users/"+id, nil).must(t, 200)
		if g.body["active"] != false || g.str("urn:gatehouse:params:scim:schemas:extension:2.0:Administrator.status") != "Deactivated" {
			t.Fatalf("after deactivation: %s", g.raw)
		}
		a, err := st.Administrator(context.Background(), e.org.ID, id)
		if err != nil || a.Status != store.StatusDeactivated {
			t.Fatalf("stored status %q, %v", a.Status, err)
		}

		// Re-assignment: the IdP POSTs the same user again.
		again := e.do("POST", "/Users", body).must(t, 201)
		if again.str("id") != id || again.body["active"] != true {
			t.Fatalf("re-provisioning a deactivated user: %s", again.raw)
		}

		// PUT replaces: attributes left out are cleared.
		put := user("jdoe@acme.test")
		put["name"] = map[string]any{"givenName": "Janet", "familyName": "Doe"}
		p := e.do("PUT", "/Users/"+id, put).must(t, 200)
		if p.str("name.givenName") != "Janet" || p.str("title") != "" || p.str("externalId") != "" {
			t.Errorf("after PUT: %s", p.raw)
		}

		e.do("DELETE", "/Users/"+id, nil).must(t, 204)
		nf := e.do("GET", "/Users/"+id, nil).must(t, 404)
		if nf.str("status") != "404" || nf.str("detail") == "" {
			t.Errorf("404 body: %s", nf.raw)
		}
		e.do("DELETE", "/Users/"+id, nil).must(t, 404)
	})
}

// A deactivated administrator that the IdP creates again comes back, and
// the log says so once per re-provisioning, from POST /Users and Bulk
// alike (the line used to be written by both callers of the create).
func TestReprovisionLoggedOnce(t *testing.T) {
	st := storetest.SQLite(t)
	var log syncBuffer
	e := newEnv(t, st, withLog(&log))
	id := e.do("POST", "/Users", user("back@acme.test")).must(t, 201).str("id")
	deactivate := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}}}
	lines := func() int { return strings.Count(log.String(), "deactivated administrator re-provisioned") }

	e.do("PATCH", "/Users/"+id, deactivate).must(t, 200)
	if again := e.do("POST", "/Users", user("back@acme.test")).must(t, 201); again.str("id") != id || again.body["active"] != true {
		t.Fatalf("POST of a deactivated user: %s", again.raw)
	}
	if n := lines(); n != 1 {
		t.Fatalf("after POST: %d log lines, want 1:\n%s", n, log.String())
	}
	e.do("PATCH", "/Users/"+id, deactivate).must(t, 200)
	bulk := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"},
		"Operations": []any{map[string]any{"method": "POST", "path": "/Users", "bulkId": "b1", "data": user("back@acme.test")}}}
	if r := e.do("POST", "/Bulk", bulk).must(t, 200); r.str("Operations.0.status") != "201" {
		t.Fatalf("Bulk POST of a deactivated user: %s", r.raw)
	}
	if n := lines(); n != 2 {
		t.Fatalf("after Bulk: %d log lines, want 2:\n%s", n, log.String())
	}
}

// syncBuffer is a bytes.Buffer that concurrent handlers may write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestReassignmentWithOtherExternalIDIsAConflict(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	body := user("sam@acme.test")
	body["externalId"] = "a"
	id := e.do("POST", "/Users", body).must(t, 201).str("id")
	e.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`).must(t, 200)
	body["externalId"] = "b"
	before := storetest.TakeSnapshot(t, e.st)
	e.do("POST", "/Users", body).must(t, 409)
	storetest.AssertUnchanged(t, e.st, before)
}

func TestAccess(t *testing.T) {
	st := storetest.SQLite(t)
	e := newEnv(t, st)
	ctx := context.Background()
	call := func(auth string) response {
		t.Helper()
		req, _ := http.NewRequest("GET", e.url+"/Users", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		r := response{status: res.StatusCode, header: res.Header}
		io.Copy(io.Discard, res.Body)
		return r
	}
	for name, auth := range map[string]string{
		"missing":      "",
		"basic":        "Basic " + e.token,
		"wrong":        "Bearer gh_scim_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"prefix only":  "Bearer " + e.token[:20],
		"token suffix": "Bearer " + e.token + "x",
	} {
		if r := call(auth); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: status %d, WWW-Authenticate %q", name, r.status, r.header.Get("WWW-Authenticate"))
		}
	}
	r := e.do("GET", "/Users/nope", nil)
	if r.status != 404 || r.str("schemas.0") != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Errorf("404 without SCIM error body: %s", r.raw)
	}

	// Rotation: a second token works alongside the first; revoking one
	// leaves the other.
	tokens := &admin.SCIMTokens{Store: st}
	second, rec, err := tokens.Create(ctx, e.org.ID, "rotation", 0)
	if err != nil {
		t.Fatal(err)
	}
	if r := call("Bearer " + second); r.status != 200 {
		t.Fatalf("second token: %d", r.status)
	}
	if err := st.RevokeSCIMToken(ctx, e.org.ID, rec.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if r := call("Bearer " + second); r.status != 401 {
		t.Errorf("revoked token: %d", r.status)
	}
	if r := call("Bearer " + e.token); r.status != 200 {
		t.Errorf("first token after revoking the second: %d", r.status)
	}
	ts, err := st.SCIMTokens(ctx, e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		if tk.Description == "test" && tk.LastUsedAt == nil {
			t.Error("last-used time not recorded")
		}
	}

	// SCIM off: 403 with a SCIM error saying so.
	if _, err := (&admin.Orgs{Store: st}).SetSCIM(ctx, e.org.ID, false); err != nil {
		t.Fatal(err)
	}
	off := e.do("GET", "/Users", nil).must(t, 403)
	if !strings.Contains(off.str("detail"), "turned off") {
		t.Errorf("403 detail: %s", off.raw)
	}
}

func TestRegisteredDomains(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), withDomains("acme.test"))
	e.do("GET", "/Users?count=0", nil).must(t, 200) // records the token's first use
	before := storetest.TakeSnapshot(t, e.st)
	r := e.do("POST", "/Users", user("eve@evil.test")).must(t, 400)
	if r.str("scimType") != "invalidValue" || !strings.Contains(r.str("detail"), "eve@evil.test") {
		t.Errorf("body: %s", r.raw)
	}
	storetest.AssertUnchanged(t, e.st, before)
	id := e.do("POST", "/Users", user("ann@acme.test")).must(t, 201).str("id")
	before = storetest.TakeSnapshot(t, e.st)
	e.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"emails","value":[{"value":"ann@gmail.test","type":"home"}]}]}`).must(t, 400)
	storetest.AssertUnchanged(t, e.st, before)
}

func TestETags(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	c := e.do("POST", "/Users", user("kim@acme.test")).must(t, 201)
	id, tag := c.str("id"), c.header.Get("ETag")
	e.do("GET", "/Users/"+id, nil, "If-None-Match", tag).must(t, 304)
	e.do("GET", "/Users/"+id, nil, "If-None-Match", `W/"999"`).must(t, 200)
	before := storetest.TakeSnapshot(t, e.st)
	e.do("PUT", "/Users/"+id, user("kim@acme.test"), "If-Match", `W/"999"`).must(t, 412)
	e.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"x"}]}`, "If-Match", `W/"999"`).must(t, 412)
	e.do("DELETE", "/Users/"+id, nil, "If-Match", `W/"999"`).must(t, 412)
	storetest.AssertUnchanged(t, e.st, before)
	p := e.do("PUT", "/Users/"+id, user("kim@acme.test"), "If-Match", tag).must(t, 200)
	if p.header.Get("ETag") == tag {
		t.Error("ETag unchanged by a write")
	}
}

// Concurrent PATCHes of different attributes of one user: none is lost.
func TestConcurrentPatches(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, st *store.SQL) {
		e := newEnv(t, st)
		id := e.do("POST", "/Users", user("con@acme.test")).must(t, 201).str("id")
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"entitlements","value":[{"value":"e%d"}]}]}`, i)
				if r := e.do("PATCH", "/Users/"+id, body); r.status != 200 {
					t.Errorf("patch %d: %d %s", i, r.status, r.raw)
				}
			}()
		}
		wg.Wait()
		g := e.do("GET", "/Users/"+id, nil).must(t, 200)
		if n := len(g.body["entitlements"].([]any)); n != 20 {
			t.Errorf("%d entitlements after 20 concurrent adds", n)
		}
	})
}
