package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

// served is gatehouse serve on a database with two organizations: acme,
// provisioned over SCIM (scimToken), and beta, managed through the
// management API (apiKey).
type served struct {
	t              *testing.T
	srv            *server
	scimToken      string
	apiKey         string
	acmeID, betaID string
	env            map[string]string
}

func startServed(t *testing.T, dsn string, serveArgs ...string) *served {
	t.Helper()
	env := map[string]string{"GATEHOUSE_DB": dsn}
	for _, args := range [][]string{orgArgs("acme"), {"scim", "enable", "--org", "acme"}, orgArgs("beta")} {
		if r := gatehouse(t, env, args...); r.code != 0 {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}
	s := &served{t: t, env: env}
	r := gatehouse(t, env, "scim", "token", "create", "--org", "acme")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	s.scimToken = strings.TrimSpace(r.stdout)
	r = gatehouse(t, env, "api-key", "create", "--org", "beta", "--name", "test")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	s.apiKey = strings.TrimSpace(r.stdout)
	addr := freeAddr(t)
	s.srv = startServe(t, addr, env, append([]string{"--addr", addr, "--scim-rate-limit", "-1"}, serveArgs...)...)
	return s
}

// scim calls the SCIM API as acme's IdP.
func (s *served) scim(method, path, body string, header map[string]string) (*http.Response, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.srv.base+"/scim/v2"+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.scimToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(s.t, req)
}

// api calls the management API with beta's API key.
func (s *served) api(method, path, body string) (*http.Response, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.srv.base+"/api/v1"+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.apiKey)
	req.Header.Set("Content-Type", "application/json")
	return do(s.t, req)
}

// createUser creates a SCIM user and returns its id.
func (s *served) createUser(body string) string {
	s.t.Helper()
	resp, out := s.scim("POST", "/Users", body, nil)
	if resp.StatusCode != http.StatusCreated {
		s.t.Fatalf("create %s: %d %s", body, resp.StatusCode, out)
	}
	var u struct{ ID string }
	if err := json.Unmarshal([]byte(out), &u); err != nil || u.ID == "" {
		s.t.Fatalf("create: %s", out)
	}
	return u.ID
}

// filterUsers returns the userNames a SCIM list answers, in its order.
func (s *served) filterUsers(query url.Values) []string {
	s.t.Helper()
	resp, out := s.scim("GET", "/Users?"+query.Encode(), "", nil)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET /Users?%s: %d %s", query.Encode(), resp.StatusCode, out)
	}
	var list struct {
		TotalResults int
		Resources    []struct{ UserName string }
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		s.t.Fatal(err)
	}
	names := []string{}
	for _, r := range list.Resources {
		names = append(names, r.UserName)
	}
	if list.TotalResults != len(names) {
		s.t.Fatalf("GET /Users?%s: totalResults %d, %d resources", query.Encode(), list.TotalResults, len(names))
	}
	return names
}

// wantSCIMError checks a SCIM error answer.
func wantSCIMError(t *testing.T, resp *http.Response, body string, status int, scimType string) {
	t.Helper()
	var e struct {
		Schemas  []string
		Status   string
		ScimType string
		Detail   string
	}
	if resp.StatusCode != status || json.Unmarshal([]byte(body), &e) != nil || len(e.Schemas) != 1 ||
		e.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" || e.ScimType != scimType || e.Detail == "" {
		t.Errorf("want %d %s in the SCIM error schema, got %d %s", status, scimType, resp.StatusCode, body)
	}
}

// wantProblem checks a management API problem details answer.
func wantProblem(t *testing.T, resp *http.Response, body string, status int, code string) {
	t.Helper()
	var p struct {
		Status int
		Code   string
		Detail string
	}
	if resp.StatusCode != status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") ||
		json.Unmarshal([]byte(body), &p) != nil || p.Status != status || p.Code != code || p.Detail == "" {
		t.Errorf("want %d problem %s, got %d %s %s", status, code, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestEscapedSurrogatesAndBidiRefused: an escaped lone surrogate would be
// stored as U+FFFD, so different usernames from an IdP would collapse into
// one; bidirectional controls make one username display as another. Both
// are refused wherever a username (or, for surrogates, any string) enters,
// and nothing is written.
func TestEscapedSurrogatesAndBidiRefused(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, st *store.SQL) {
		s := startServed(t, dsn)
		id := s.createUser(`{"userName":"kept@acme.test"}`)
		s.createUser(`{"userName":"smile\ud83d\ude00@acme.test"}`) // a whole pair is fine

		for _, body := range []string{
			`{"userName":"sur\ud800x"}`,
			`{"userName":"sur\uDBFFx"}`,
			`{"userName":"sur\udc00x"}`,
			`{"userName":"ok@acme.test","displayName":"sur\ud800"}`,
			`{"userName":"ok@acme.test","name":{"givenName":"\udfff"}}`,
			`{"userName":"ok@acme.test","emails":[{"value":"a@acme.test","display":"\ud83d"}]}`,
		} {
			resp, out := s.scim("POST", "/Users", body, nil)
			wantSCIMError(t, resp, out, 400, "invalidValue")
		}
		resp, out := s.scim("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"displayName","value":"x\ud800"}]}`, nil)
		wantSCIMError(t, resp, out, 400, "invalidValue")
		resp, out = s.scim("POST", "/Bulk", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
			"Operations":[{"method":"POST","path":"/Users","bulkId":"a","data":{"userName":"bulk\ud800"}}]}`, nil)
		wantSCIMError(t, resp, out, 400, "invalidValue")

		for _, u := range []string{`admin\u202Enimda`, `a\u202Ab`, `a\u202Bb`, `a\u202Cb`, `a\u202Db`, `a\u2066b`, `a\u2067b`, `a\u2068b`, `a\u2069b`} {
			resp, out := s.scim("POST", "/Users", `{"userName":"`+u+`"}`, nil)
			wantSCIMError(t, resp, out, 400, "invalidValue")
			resp, out = s.scim("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"replace","path":"userName","value":"`+u+`"}]}`, nil)
			wantSCIMError(t, resp, out, 400, "invalidValue")
		}
		if got := s.filterUsers(url.Values{}); strings.Join(got, " ") != "Jane.Doe kept@acme.test smile😀@acme.test" {
			t.Errorf("users after the refusals: %q", got)
		}

		// The management API: problem details, nothing invited.
		resp, out = s.api("POST", "/administrators", `{"username":"sur\ud800x","firstName":"S","lastName":"U","email":"s@example.com"}`)
		wantProblem(t, resp, out, 400, "invalid_json")
		resp, out = s.api("POST", "/administrators", `{"username":"ok","firstName":"\udc00","lastName":"U","email":"s@example.com"}`)
		wantProblem(t, resp, out, 400, "invalid_json")
		resp, out = s.api("POST", "/administrators", "{\"username\":\"raw\xff\",\"firstName\":\"S\",\"lastName\":\"U\",\"email\":\"s@example.com\"}")
		wantProblem(t, resp, out, 400, "invalid_json")
		resp, out = s.api("POST", "/administrators", `{"username":"admin\u202Enimda","firstName":"S","lastName":"U","email":"s@example.com"}`)
		wantProblem(t, resp, out, 400, "invalid_username")
		resp, out = s.api("GET", "/administrators", "")
		if resp.StatusCode != 200 || strings.Contains(out, "nimda") || strings.Contains(out, "sur") || strings.Contains(out, `"ok"`) {
			t.Errorf("administrators after the refusals: %d %s", resp.StatusCode, out)
		}

		// The command line.
		before := storetest.TakeSnapshot(t, st)
		r := gatehouse(t, s.env, "org", "create", "gamma", "--name", "Gamma", "--admin-username", "jane\u2067doe",
			"--admin-email", "jane@example.com", "--admin-first-name", "Jane", "--admin-last-name", "Doe")
		assertRefused(t, r, 1, "bidirectional control", st, before)
	})
}

// TestFilterPresentComplex: pr on a single-valued complex attribute is true
// when it contains a non-empty node (RFC 7644 §3.4.2.2); it answered 400
// invalidFilter for name and meta.
func TestFilterPresentComplex(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, _ *store.SQL) {
		s := startServed(t, dsn) // Jane.Doe has a given and a family name
		s.createUser(`{"userName":"given","name":{"givenName":"G"}}`)
		s.createUser(`{"userName":"formatted","name":{"formatted":"F M","givenName":""}}`)
		s.createUser(`{"userName":"nameless"}`)
		s.createUser(`{"userName":"emptyname","name":{"middleName":""}}`)
		for _, tt := range []struct{ filter, want string }{
			{"name pr", "Jane.Doe given formatted"},
			{"not (name pr)", "nameless emptyname"},
			{"urn:ietf:params:scim:schemas:core:2.0:User:name pr", "Jane.Doe given formatted"},
			{`name pr and userName sw "f"`, "formatted"},
			{`not (name pr) or userName eq "given"`, "given nameless emptyname"},
			{"meta pr", "Jane.Doe given formatted nameless emptyname"},
			{"not (meta pr)", ""},
			{"emails pr", "Jane.Doe"},
		} {
			if got := strings.Join(s.filterUsers(url.Values{"filter": {tt.filter}}), " "); got != tt.want {
				t.Errorf("filter=%s: %q, want %q", tt.filter, got, tt.want)
			}
		}
		resp, out := s.scim("POST", "/Groups", `{"displayName":"G1"}`, nil)
		if resp.StatusCode != 201 {
			t.Fatalf("create group: %d %s", resp.StatusCode, out)
		}
		resp, out = s.scim("GET", "/Groups?filter="+url.QueryEscape("meta pr"), "", nil)
		if resp.StatusCode != 200 || !strings.Contains(out, `"totalResults":1`) {
			t.Errorf("Groups?filter=meta pr: %d %s", resp.StatusCode, out)
		}
	})
}

// TestFilterUnicodeCaseInsensitive: attributes /Schemas publishes as
// caseExact: false compare and sort by their Unicode case fold on both
// databases (SQLite's lower() folds ASCII only).
func TestFilterUnicodeCaseInsensitive(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, _ *store.SQL) {
		s := startServed(t, dsn)
		s.createUser(`{"userName":"emile","displayName":"ÉMILE Zoë","name":{"familyName":"MÜLLER"}}`)
		s.createUser(`{"userName":"eclair","displayName":"éclair","name":{"familyName":"Groß"}}`)
		s.createUser(`{"userName":"emma","displayName":"emma"}`)
		s.createUser(`{"userName":"zoe","displayName":"Zoe"}`)
		for _, tt := range []struct{ filter, want string }{
			{`displayName eq "émile zoë"`, "emile"},
			{`displayName co "ZOË"`, "emile"},
			{`name.familyName eq "müller"`, "emile"},
			{`name.familyName eq "GROSS"`, "eclair"},
			{`displayName sw "É"`, "emile eclair"},
		} {
			if got := strings.Join(s.filterUsers(url.Values{"filter": {tt.filter}}), " "); got != tt.want {
				t.Errorf("filter=%s: %q, want %q", tt.filter, got, tt.want)
			}
		}
		// By folded key in code point order: emma, zoe, éclair, émile zoë;
		// Jane.Doe, without a displayName, last.
		got := strings.Join(s.filterUsers(url.Values{"sortBy": {"displayName"}}), " ")
		if want := "emma zoe eclair emile Jane.Doe"; got != want {
			t.Errorf("sortBy=displayName: %q, want %q", got, want)
		}
		got = strings.Join(s.filterUsers(url.Values{"sortBy": {"displayName"}, "sortOrder": {"descending"}}), " ")
		if want := "Jane.Doe emile eclair zoe emma"; got != want {
			t.Errorf("sortBy=displayName descending: %q, want %q", got, want)
		}
	})
}

// TestUserETagCoversGroups: a User's ETag and meta.version cover its
// groups, so If-None-Match does not answer 304 after a membership change
// (or a rename of one of its groups) although the groups shown differ.
func TestUserETagCoversGroups(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, _ *store.SQL) {
		s := startServed(t, dsn)
		id := s.createUser(`{"userName":"member"}`)
		resp, out := s.scim("POST", "/Groups", `{"displayName":"Ops"}`, nil)
		if resp.StatusCode != 201 {
			t.Fatalf("create group: %d %s", resp.StatusCode, out)
		}
		var g struct{ ID string }
		json.Unmarshal([]byte(out), &g)

		// get reads the user with If-None-Match and checks the answer: 304
		// with the same tag, or 200 whose ETag is its meta.version.
		get := func(ifNoneMatch string, wantStatus int, wantGroups string) string {
			t.Helper()
			resp, out := s.scim("GET", "/Users/"+id, "", map[string]string{"If-None-Match": ifNoneMatch})
			tag := resp.Header.Get("ETag")
			if resp.StatusCode != wantStatus {
				t.Fatalf("If-None-Match %s: %d, want %d (ETag %s)", ifNoneMatch, resp.StatusCode, wantStatus, tag)
			}
			if wantStatus == http.StatusNotModified {
				if tag != ifNoneMatch {
					t.Errorf("304 with ETag %s, want %s", tag, ifNoneMatch)
				}
				return tag
			}
			var u struct {
				Groups []struct{ Display string }
				Meta   struct{ Version string }
			}
			json.Unmarshal([]byte(out), &u)
			var names []string
			for _, g := range u.Groups {
				names = append(names, g.Display)
			}
			if strings.Join(names, " ") != wantGroups || u.Meta.Version != tag || tag == "" {
				t.Errorf("groups %q (want %q), meta.version %s, ETag %s", names, wantGroups, u.Meta.Version, tag)
			}
			return tag
		}
		patchGroup := func(op string) {
			t.Helper()
			resp, out := s.scim("PATCH", "/Groups/"+g.ID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`+op+`]}`, nil)
			if resp.StatusCode/100 != 2 {
				t.Fatalf("patch group %s: %d %s", op, resp.StatusCode, out)
			}
		}

		alone := get("", 200, "")
		get(alone, 304, "")
		patchGroup(`{"op":"add","path":"members","value":[{"value":"` + id + `"}]}`)
		inOps := get(alone, 200, "Ops")
		if inOps == alone {
			t.Fatalf("the ETag %s did not change with the groups", inOps)
		}
		get(inOps, 304, "Ops")
		patchGroup(`{"op":"replace","path":"displayName","value":"Operations"}`)
		renamed := get(inOps, 200, "Operations")
		get(renamed, 304, "Operations")
		// A list shows the same version as the GET.
		resp, out = s.scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "member"`), "", nil)
		if resp.StatusCode != 200 || !strings.Contains(out, `"version":`+strconv.Quote(renamed)) {
			t.Errorf("list: %d %s, want version %s", resp.StatusCode, out, renamed)
		}
		// Writing the user with If-Match: its own version counts; groups
		// are readOnly, changed only through Groups.
		resp, out = s.scim("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"displayName","value":"M"}]}`, map[string]string{"If-Match": alone})
		if resp.StatusCode != 200 {
			t.Errorf("PATCH with If-Match %s (groups changed since): %d %s", alone, resp.StatusCode, out)
		}
		resp, out = s.scim("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"displayName","value":"N"}]}`, map[string]string{"If-Match": renamed})
		wantSCIMError(t, resp, out, http.StatusPreconditionFailed, "")
		patched := get(renamed, 200, "Operations")
		patchGroup(`{"op":"remove","path":"members[value eq \"` + id + `\"]"}`)
		get(patched, 200, "")
	})
}
