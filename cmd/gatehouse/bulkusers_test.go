package main

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"testing"

	"gatehouse/store"
)

// bulkOne runs a BulkRequest of one operation and returns its result.
func (s *served) bulkOne(op string) (status int, version, location string, response map[string]any) {
	s.t.Helper()
	resp, out := s.scim("POST", "/Bulk", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[`+op+`]}`, nil)
	var r struct {
		Operations []struct {
			Status, Version, Location string
			Response                  map[string]any
		}
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(out), &r) != nil || len(r.Operations) != 1 {
		s.t.Fatalf("bulk %s: %d %s", op, resp.StatusCode, out)
	}
	o := r.Operations[0]
	status, _ = strconv.Atoi(o.Status)
	return status, o.Version, o.Location, o.Response
}

// TestBulkUserOperationsAnswerAsTheEndpoints (issue 12): Bulk's User
// operations call the endpoints' typed functions, so each answers what the
// endpoint answers: the same status, the version the endpoint's ETag
// names, the same SCIM error, and a refused write changes nothing.
func TestBulkUserOperationsAnswerAsTheEndpoints(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, _ *store.SQL) {
		s := startServed(t, dsn)
		same := func(what string, status, bulkStatus int, out string, bulkResponse map[string]any) {
			t.Helper()
			if status != bulkStatus {
				t.Fatalf("%s: endpoint %d, bulk %d", what, status, bulkStatus)
			}
			if status < 300 {
				return
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(out), &want); err != nil || !reflect.DeepEqual(want, bulkResponse) {
				t.Fatalf("%s: endpoint error %s, bulk error %v", what, out, bulkResponse)
			}
		}
		etag := func(id string) string {
			t.Helper()
			resp, out := s.scim("GET", "/Users/"+id, "", nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("get %s: %d %s", id, resp.StatusCode, out)
			}
			return resp.Header.Get("ETag")
		}
		quote := func(v string) string { b, _ := json.Marshal(v); return string(b) }

		// POST: created, its version the one GET names; bulkId resolved.
		st, version, location, _ := s.bulkOne(`{"method":"POST","path":"/Users","bulkId":"b","data":{"userName":"viaBulk","emails":[{"value":"viabulk@acme.example","primary":true}]}}`)
		if st != http.StatusCreated || location == "" {
			t.Fatalf("bulk POST: %d %q", st, location)
		}
		id := location[len(location)-len("00000000-0000-0000-0000-000000000000"):]
		if got := etag(id); version == "" || version != got {
			t.Fatalf("bulk POST version %q, GET ETag %q", version, got)
		}
		other := s.createUser(`{"userName":"viaEndpoint"}`)

		for _, c := range []struct{ what, method, path, ifMatch, body string }{
			{"POST without userName", "POST", "/Users", "", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"displayName":"x"}`},
			{"POST taken userName", "POST", "/Users", "", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"VIABULK"}`},
			{"POST data not an object", "POST", "/Users", "", `["x"]`},
			{"PUT stale version", "PUT", "/Users/" + id, `W/"99"`, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"renamed"}`},
			{"PUT unknown id", "PUT", "/Users/nope", "", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"renamed"}`},
			{"PATCH bad op", "PATCH", "/Users/" + id, "", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"explode","path":"displayName","value":"x"}]}`},
			{"PATCH stale version", "PATCH", "/Users/" + id, `W/"99"`, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"x"}]}`},
			{"DELETE stale version", "DELETE", "/Users/" + id, `W/"99"`, ``},
		} {
			before := etag(id)
			h := map[string]string{}
			if c.ifMatch != "" {
				h["If-Match"] = c.ifMatch
			}
			resp, out := s.scim(c.method, c.path, c.body, h)
			op := `{"method":"` + c.method + `","path":"` + c.path + `","bulkId":"x","version":` + quote(c.ifMatch)
			if c.body != "" {
				op += `,"data":` + c.body
			}
			st, _, _, response := s.bulkOne(op + `}`)
			same(c.what, resp.StatusCode, st, out, response)
			if resp.StatusCode < 400 {
				t.Fatalf("%s: accepted (%d)", c.what, resp.StatusCode)
			}
			if after := etag(id); after != before {
				t.Fatalf("%s: refused, yet the user changed: %s → %s", c.what, before, after)
			}
		}

		// PATCH and PUT succeed with the current version and answer the new one.
		patchBody := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"Patched"}]}`
		resp, _ := s.scim("PATCH", "/Users/"+other, patchBody, map[string]string{"If-Match": etag(other)})
		st, version, _, _ = s.bulkOne(`{"method":"PATCH","path":"/Users/` + id + `","version":` + quote(etag(id)) + `,"data":` + patchBody + `}`)
		same("PATCH", resp.StatusCode, st, "", nil)
		if got := etag(id); version != got || resp.Header.Get("ETag") != etag(other) {
			t.Fatalf("PATCH: bulk version %q, GET ETag %q", version, got)
		}
		putBody := func(name string) string {
			return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + name + `","displayName":"Put"}`
		}
		resp, _ = s.scim("PUT", "/Users/"+other, putBody("viaEndpoint"), map[string]string{"If-Match": etag(other)})
		st, version, _, _ = s.bulkOne(`{"method":"PUT","path":"/Users/` + id + `","version":` + quote(etag(id)) + `,"data":` + putBody("viaBulk") + `}`)
		same("PUT", resp.StatusCode, st, "", nil)
		if got := etag(id); version != got {
			t.Fatalf("PUT: bulk version %q, GET ETag %q", version, got)
		}

		// DELETE with the current version removes the user.
		resp, _ = s.scim("DELETE", "/Users/"+other, "", map[string]string{"If-Match": etag(other)})
		st, _, _, _ = s.bulkOne(`{"method":"DELETE","path":"/Users/` + id + `","version":` + quote(etag(id)) + `}`)
		same("DELETE", resp.StatusCode, st, "", nil)
		if resp, _ := s.scim("GET", "/Users/"+id, "", nil); st != http.StatusNoContent || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("bulk DELETE %d, then GET %d", st, resp.StatusCode)
		}
	})
}
