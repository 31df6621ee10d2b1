package scim_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"gatehouse/scim"
	"gatehouse/store/storetest"
)

func TestBadInput(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	id := e.do("POST", "/Users", user("bad@acme.test")).must(t, 201).str("id")
	before := storetest.TakeSnapshot(t, e.st)
	for _, c := range []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"junk", "POST", "/Users", `{"userName":`, 400},
		{"not an object", "POST", "/Users", `["x"]`, 400},
		{"trailing data", "POST", "/Users", `{"userName":"a@acme.test"} {}`, 400},
		{"wrong type", "POST", "/Users", `{"userName":42}`, 400},
		{"active not boolean", "POST", "/Users", `{"userName":"b@acme.test","active":"maybe"}`, 400},
		{"missing userName", "POST", "/Users", `{"name":{"givenName":"x"}}`, 400},
		{"invalid UTF-8", "POST", "/Users", []byte("{\"userName\":\"\xff\xfe@acme.test\"}"), 400},
		{"NUL", "POST", "/Users", `{"userName":"a\u0000b"}`, 400},
		{"deep nesting", "POST", "/Users", strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000), 400},
		{"too large", "POST", "/Users", `{"userName":"big@acme.test","title":"` + strings.Repeat("x", scim.MaxBodyBytes) + `"}`, 413},
		{"patch no ops", "PATCH", "/Users/" + id, `{` + patchOp + `}`, 400},
		{"patch bad op", "PATCH", "/Users/" + id, patchBody(`{"op":"frobnicate","path":"title","value":"x"}`), 400},
		{"patch readOnly", "PATCH", "/Users/" + id, patchBody(`{"op":"replace","path":"id","value":"x"}`), 400},
		{"patch bad path", "PATCH", "/Users/" + id, patchBody(`{"op":"replace","path":"emails[type eq","value":"x"}`), 400},
		{"patch removes userName", "PATCH", "/Users/" + id, patchBody(`{"op":"remove","path":"userName"}`), 400},
		{"second op bad", "PATCH", "/Users/" + id, patchBody(`{"op":"replace","path":"title","value":"T"},{"op":"replace","path":"active","value":"perhaps"}`), 400},
		{"bad count", "GET", "/Users?count=many", nil, 400},
		{"search without schemas", "POST", "/Users/.search", `{"filter":"userName eq \"bad@acme.test\""}`, 400},
		{"search count not an integer", "POST", "/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"count":"ten"}`, 400},
		{"search bad filter", "POST", "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq"}`, 400},
		{"bulk without schemas", "POST", "/Bulk", `{"Operations":[{"method":"DELETE","path":"/Users/` + id + `"}]}`, 400},
		{"bulk without operations", "POST", "/Bulk", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[]}`, 400},
		{"bulk failOnErrors negative", "POST", "/Bulk", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"failOnErrors":-1,"Operations":[{"method":"DELETE","path":"/Users/` + id + `"}]}`, 400},
		{"both projections", "GET", "/Users?attributes=userName&excludedAttributes=emails", nil, 400},
	} {
		r := e.do(c.method, c.path, c.body)
		if r.status != c.status || r.str("schemas.0") != "urn:ietf:params:scim:api:messages:2.0:Error" || r.str("status") != strconv.Itoa(c.status) {
			t.Errorf("%s: %d %s", c.name, r.status, r.raw)
		}
		if strings.Contains(strings.ToLower(string(r.raw)), "sql") {
			t.Errorf("%s: internal text in %s", c.name, r.raw)
		}
	}
	storetest.AssertUnchanged(t, e.st, before)
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), withRateLimit(5))
	limited := 0
	for range 30 {
		r := e.do("GET", "/Users?count=0", nil)
		if r.status == 429 {
			limited++
			if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
		}
	}
	if limited == 0 || limited > 25 {
		t.Errorf("%d of 30 requests limited at 5/s with bursts of 10", limited)
	}
}

func TestBulk(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	// The group refers to a user created later in the same request.
	body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"failOnErrors":0,"Operations":[
	 {"method":"POST","path":"/Groups","bulkId":"g1","data":{"displayName":"Tour Guides","members":[{"type":"User","value":"bulkId:u1"}]}},
	 {"method":"POST","path":"/Users","bulkId":"u1","data":{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@acme.test"}},
	 {"method":"PATCH","path":"/Users/bulkId:u1","data":` + patchBody(`{"op":"replace","path":"title","value":"Guide"}`) + `},
	 {"method":"POST","path":"/Users","bulkId":"dup","data":{"userName":"ALICE@acme.test"}}
	]}`
	r := e.do("POST", "/Bulk", body).must(t, 200)
	ops := r.body["Operations"].([]any)
	if len(ops) != 4 {
		t.Fatalf("operations: %s", r.raw)
	}
	status := map[string]string{}
	for _, o := range ops {
		m := o.(map[string]any)
		key := fmt.Sprint(m["bulkId"], m["method"])
		status[key], _ = m["status"].(string)
	}
	if status["g1POST"] != "201" || status["u1POST"] != "201" || status["dupPOST"] != "409" || status["<nil>PATCH"] != "200" {
		t.Fatalf("statuses %v: %s", status, r.raw)
	}
	g := e.do("GET", "/Groups?filter=displayName+eq+%22Tour+Guides%22", nil).must(t, 200)
	if g.str("Resources.0.members.0.display") != "alice@acme.test" {
		t.Errorf("group member: %s", g.raw)
	}
	// failOnErrors stops after the first error.
	r = e.do("POST", "/Bulk", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"failOnErrors":1,"Operations":[
	 {"method":"POST","path":"/Users","bulkId":"x","data":{"userName":"alice@acme.test"}},
	 {"method":"POST","path":"/Users","bulkId":"y","data":{"userName":"bob@acme.test"}}]}`).must(t, 200)
	if n := len(r.body["Operations"].([]any)); n != 1 {
		t.Errorf("failOnErrors=1 ran %d operations", n)
	}
	if r := e.do("GET", "/Users?filter=userName+eq+%22bob@acme.test%22", nil).must(t, 200); r.body["totalResults"] != float64(0) {
		t.Errorf("the operation after the failure ran: %s", r.raw)
	}
	// An operation gatehouse does not serve, and a POST without bulkId, fail
	// alone with a SCIM error in their result.
	r = e.do("POST", "/Bulk", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[
	 {"method":"GET","path":"/Users"},
	 {"method":"POST","path":"/Users","data":{"userName":"nobulkid@acme.test"}}]}`).must(t, 200)
	for i, o := range r.body["Operations"].([]any) {
		m := o.(map[string]any)
		if m["status"] != "400" || lookup(m, "response.scimType") != "invalidValue" {
			t.Errorf("operation %d: %v", i, m)
		}
	}
	// maxOperations.
	var b strings.Builder
	for i := range scim.MaxBulkOperations + 1 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"method":"DELETE","path":"/Users/x%d"}`, i)
	}
	e.do("POST", "/Bulk", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[`+b.String()+`]}`).must(t, 413)
}
