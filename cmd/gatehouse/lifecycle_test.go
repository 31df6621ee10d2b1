package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

// acmeKey creates a Super Administrator API key of acme (the organization
// the IdP provisions in startServed).
func (s *served) acmeKey() string {
	s.t.Helper()
	r := gatehouse(s.t, s.env, "api-key", "create", "--org", "acme", "--name", "support-test")
	if r.code != 0 {
		s.t.Fatal(r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// apiAs calls the management API with key.
func (s *served) apiAs(key, method, path, body string) (*http.Response, map[string]any, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.srv.base+"/api/v1"+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, out := do(s.t, req)
	var m map[string]any
	json.Unmarshal([]byte(out), &m)
	return resp, m, out
}

// cli runs a gatehouse command on the served database and wants success.
func (s *served) cli(args ...string) result {
	s.t.Helper()
	r := gatehouse(s.t, s.env, args...)
	if r.code != 0 {
		s.t.Fatalf("gatehouse %v: %d %s", args, r.code, r.stderr)
	}
	return r
}

// missingSince is the organization's superAdministratorMissingSince as
// GET /api/v1/organization shows it, and as org show prints it.
func (s *served) missingSince(key string) (api any, cli string) {
	s.t.Helper()
	resp, m, out := s.apiAs(key, "GET", "/organization", "")
	if resp.StatusCode != 200 {
		s.t.Fatalf("GET /organization: %d %s", resp.StatusCode, out)
	}
	v, ok := m["superAdministratorMissingSince"]
	if !ok {
		s.t.Fatalf("GET /organization has no superAdministratorMissingSince: %s", out)
	}
	r := s.cli("org", "show", "--org", "acme")
	for _, l := range strings.Split(r.stdout, "\n") {
		if k, val, _ := strings.Cut(l, ": "); k == "super-admin-missing-since" {
			return v, val
		}
	}
	s.t.Fatalf("org show printed no super-admin-missing-since: %q", r.stdout)
	return nil, ""
}

var ctx = context.Background()

// orgID is the id of the organization slug.
func orgID(t *testing.T, s *store.SQL, slug string) string {
	t.Helper()
	o, err := s.OrgBySlug(ctx, slug)
	if err != nil {
		t.Fatal(err)
	}
	return o.ID
}

// auditActions counts the organization's audit entries by action.
func auditActions(t *testing.T, s *store.SQL, org string) map[string]int {
	t.Helper()
	page, err := s.AuditLog(ctx, org, store.AuditQuery{Action: "organization.", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range page {
		n[e.Action]++
	}
	return n
}

// TestRoleChangeOnIdPManagedAdministrator (issue 12, defect 1): with SCIM
// off, a role set through the API on an administrator the IdP provisioned
// was answered 200 and not made (the store recomputed the IdP's role). It
// is made now, and the IdP takes the role back when it next writes the
// user.
func TestRoleChangeOnIdPManagedAdministrator(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, _ *store.SQL) {
		s := startServed(t, dsn)
		key := s.acmeKey()
		id := s.createUser(`{"userName":"idp.user","name":{"givenName":"Idp","familyName":"User"},"emails":[{"value":"idp.user@example.com","primary":true}]}`)
		s.cli("scim", "disable", "--org", "acme")

		resp, m, out := s.apiAs(key, "PATCH", "/administrators/"+id, `{"role":"Super Administrator"}`)
		if resp.StatusCode != 200 || m["role"] != "Super Administrator" || m["scimManaged"] != false {
			t.Fatalf("PATCH role: %d %s", resp.StatusCode, out)
		}
		if resp, m, out = s.apiAs(key, "GET", "/administrators/"+id, ""); m["role"] != "Super Administrator" {
			t.Fatalf("GET after PATCH role: %d %s", resp.StatusCode, out)
		}

		// SCIM on again: the IdP's next write (no roles) sets the role.
		s.cli("scim", "enable", "--org", "acme")
		resp, out = s.scim("PUT", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"idp.user"}`, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("PUT: %d %s", resp.StatusCode, out)
		}
		if _, m, out = s.apiAs(key, "GET", "/administrators/"+id, ""); m["role"] != "Administrator" || m["scimManaged"] != true {
			t.Fatalf("after the IdP's PUT: %s", out)
		}
	})
}

// TestOrganizationKeepsSuperAdministrator (issue 12, defect 2): the IdP
// deprovisions the last Super Administrator (deactivate, then delete)
// without being blocked, and the organization is flagged, audited, shown
// and listed until support restores one; through the API no Super
// Administrator is demoted by another; the guard counts Pending ones.
func TestOrganizationKeepsSuperAdministrator(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, st *store.SQL) {
		s := startServed(t, dsn)
		key := s.acmeKey()
		boss := s.createUser(`{"userName":"boss","roles":[{"value":"Super Administrator"}]}`)
		other := s.createUser(`{"userName":"other"}`)
		// The owner org create made (Pending) leaves: boss is the last.
		s.cli("administrator", "deactivate", "--org", "acme", "--override-scim-lock", "Jane.Doe")
		if api, cli := s.missingSince(key); api != nil || cli != "-" {
			t.Fatalf("flagged with a Super Administrator left: %v %q", api, cli)
		}

		resp, out := s.scim("PATCH", "/Users/"+boss, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"active","value":false}]}`, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("the IdP's deactivation of the last Super Administrator: %d %s", resp.StatusCode, out)
		}
		api, cli := s.missingSince(key)
		if api == nil || cli == "-" || cli == "" {
			t.Fatalf("not flagged: API %v, org show %q", api, cli)
		}
		if n := auditActions(t, st, orgID(t, st, "acme")); n[store.AuditOrgSuperAdminMissing] != 1 {
			t.Fatalf("audit: %v", n)
		}

		// Support restores one; the flag goes, audited.
		r := s.cli("administrator", "set-role", "--org", "acme", "--override-scim-lock", "other", "Super Administrator")
		if !strings.Contains(r.stdout, "Super Administrator") {
			t.Fatalf("set-role printed %q", r.stdout)
		}
		if api, cli := s.missingSince(key); api != nil || cli != "-" {
			t.Fatalf("still flagged after the restore: %v %q", api, cli)
		}
		if n := auditActions(t, st, orgID(t, st, "acme")); n[store.AuditOrgSuperAdminRestored] != 1 {
			t.Fatalf("audit: %v", n)
		}

		// The IdP deletes the restored one: never blocked, flagged again.
		if resp, out := s.scim("DELETE", "/Users/"+other, "", nil); resp.StatusCode != 204 {
			t.Fatalf("the IdP's delete of the last Super Administrator: %d %s", resp.StatusCode, out)
		}
		if api, _ := s.missingSince(key); api == nil {
			t.Fatal("not flagged after the IdP's delete")
		}

		// Through the API (SCIM off), no Super Administrator is demoted,
		// deactivated or deleted by another, Pending ones included, and a
		// refusal writes nothing.
		s.cli("scim", "disable", "--org", "acme")
		s.cli("administrator", "reactivate", "--org", "acme", "Jane.Doe") // Pending: never finished
		jane, err := st.AdministratorByUsername(ctx, orgID(t, st, "acme"), "Jane.Doe")
		if err != nil || jane.Status != store.StatusPending || jane.Role != store.RoleSuperAdministrator {
			t.Fatalf("owner: %+v %v", jane, err)
		}
		if api, _ := s.missingSince(key); api != nil {
			t.Fatal("still flagged with a Pending Super Administrator")
		}
		before := storetest.TakeSnapshot(t, st)
		for _, c := range []struct{ method, path, body string }{
			{"PATCH", "/administrators/" + jane.ID, `{"role":"Administrator"}`},
			{"POST", "/administrators/" + jane.ID + "/deactivate", ""},
			{"DELETE", "/administrators/" + jane.ID, ""},
		} {
			resp, _, out := s.apiAs(key, c.method, c.path, c.body)
			wantProblem(t, resp, out, 403, "super_admin_protected")
		}
		storetest.AssertUnchanged(t, st, before)

		// Support neither: she is the last one, Pending counts.
		before = storetest.TakeSnapshot(t, st)
		assertRefused(t, gatehouse(t, s.env, "administrator", "deactivate", "--org", "acme", "Jane.Doe"), 1,
			"at least one Super Administrator", st, before)
		assertRefused(t, gatehouse(t, s.env, "administrator", "set-role", "--org", "acme", "Jane.Doe", "Administrator"), 1,
			"at least one Super Administrator", st, before)
	})
}

// TestLastSuperAdministratorConcurrent: support deactivating the last two
// Super Administrators (both Pending) at once leaves one; the IdP
// deprovisioning its last two at once flags the organization once.
func TestLastSuperAdministratorConcurrent(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, st *store.SQL) {
		env := map[string]string{"GATEHOUSE_DB": dsn}
		for round := range 4 {
			slug := fmt.Sprintf("race%d", round)
			if r := gatehouse(t, env, orgArgs(slug)...); r.code != 0 {
				t.Fatal(r.stderr)
			}
			org, err := st.OrgBySlug(ctx, slug)
			if err != nil {
				t.Fatal(err)
			}
			second := store.Administrator{OrgID: org.ID, UserName: "second", Email: "second@example.com",
				Role: store.RoleSuperAdministrator, Status: store.StatusPending}
			if _, err := st.CreateAdministrator(ctx, second); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			codes := make([]int, 2)
			for i, name := range []string{"Jane.Doe", "second"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					codes[i] = gatehouse(t, env, "administrator", "deactivate", "--org", slug, name).code
				}()
			}
			wg.Wait()
			page, err := st.QueryAdministrators(ctx, org.ID, store.Query{Page: store.Page{Limit: 10}})
			if err != nil {
				t.Fatal(err)
			}
			supers := 0
			for _, a := range page.Items {
				if a.Role == store.RoleSuperAdministrator && a.Status != store.StatusDeactivated {
					supers++
				}
			}
			if supers != 1 || codes[0]+codes[1] != 1 {
				t.Fatalf("round %d: exit codes %v, %d Super Administrators left", round, codes, supers)
			}
		}

		s := startServed(t, dsn)
		ids := []string{
			s.createUser(`{"userName":"b1","roles":[{"value":"super_administrator"}]}`),
			s.createUser(`{"userName":"b2","roles":[{"value":"Super Administrator"}]}`),
		}
		s.cli("administrator", "deactivate", "--org", "acme", "--override-scim-lock", "Jane.Doe")
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, _ := s.scim("DELETE", "/Users/"+id, "", nil)
				statuses[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		if statuses[0] != 204 || statuses[1] != 204 {
			t.Fatalf("the IdP's deletes: %v", statuses)
		}
		if n := auditActions(t, st, orgID(t, st, "acme")); n[store.AuditOrgSuperAdminMissing] != 1 {
			t.Fatalf("flagged %d times", n[store.AuditOrgSuperAdminMissing])
		}
		if o, _ := st.OrgBySlug(ctx, "acme"); o.SuperAdminMissingSince == nil {
			t.Fatal("not flagged")
		}
	})
}

// TestDeleteIfMatchInsideTheWrite (issue 12, defect 4): a DELETE with
// If-Match checked the version, then deleted in another transaction, so a
// change committed in between was deleted although the client named the
// version before it. Racing a PATCH against such a DELETE, both may not
// succeed: either the DELETE came first (the PATCH finds nothing) or the
// PATCH did (the DELETE's version is stale).
func TestDeleteIfMatchInsideTheWrite(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, _ *store.SQL) {
		s := startServed(t, dsn)
		const rounds = 60
		both := 0
		for i := range rounds {
			id := s.createUser(fmt.Sprintf(`{"userName":"race%d"}`, i))
			var wg sync.WaitGroup
			var del, patch int
			wg.Add(2)
			go func() {
				defer wg.Done()
				resp, _ := s.scim("DELETE", "/Users/"+id, "", map[string]string{"If-Match": `W/"1"`})
				del = resp.StatusCode
			}()
			go func() {
				defer wg.Done()
				resp, _ := s.scim("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
					"Operations":[{"op":"replace","path":"displayName","value":"changed"}]}`, nil)
				patch = resp.StatusCode
			}()
			wg.Wait()
			switch {
			case del == 204 && patch == 200:
				both++
			case del == 204 && patch == 404, del == 412 && patch == 200:
			default:
				t.Fatalf("round %d: DELETE %d, PATCH %d", i, del, patch)
			}
		}
		if both > 0 {
			t.Fatalf("%d of %d DELETEs with a stale If-Match deleted the changed user", both, rounds)
		}
	})
}

// TestGroupDeleteIfMatchInsideTheWrite is TestDeleteIfMatchInsideTheWrite
// for groups, through DELETE /Groups/{id} and through Bulk (whose DELETE
// names the version in "version"): a PATCH racing a DELETE that names the
// version before it may not both succeed.
func TestGroupDeleteIfMatchInsideTheWrite(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, _ *store.SQL) {
		s := startServed(t, dsn)
		const rounds = 60
		both := 0
		for i := range rounds {
			resp, out := s.scim("POST", "/Groups", groupBody(fmt.Sprintf("race%d", i)), nil)
			var g struct{ ID string }
			if err := json.Unmarshal([]byte(out), &g); resp.StatusCode != http.StatusCreated || err != nil {
				t.Fatalf("create group: %d %s", resp.StatusCode, out)
			}
			etag := resp.Header.Get("ETag")
			var wg sync.WaitGroup
			var del, patch int
			var bulkResp *http.Response
			var bulkOut string
			wg.Add(2)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					resp, _ := s.scim("DELETE", "/Groups/"+g.ID, "", map[string]string{"If-Match": etag})
					del = resp.StatusCode
					return
				}
				version, _ := json.Marshal(etag)
				bulkResp, bulkOut = s.scim("POST", "/Bulk", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[
					{"method":"DELETE","path":"/Groups/`+g.ID+`","version":`+string(version)+`}]}`, nil)
			}()
			go func() {
				defer wg.Done()
				resp, _ := s.scim("PATCH", "/Groups/"+g.ID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
					"Operations":[{"op":"replace","path":"displayName","value":"changed`+strconv.Itoa(i)+`"}]}`, nil)
				patch = resp.StatusCode
			}()
			wg.Wait()
			if bulkResp != nil {
				del, _ = strconv.Atoi(bulkStatus(t, bulkResp, bulkOut))
			}
			switch {
			case del == 204 && patch == 204:
				both++
			case del == 204 && patch == 404, del == 412 && patch == 204:
			default:
				t.Fatalf("round %d: DELETE %d, PATCH %d", i, del, patch)
			}
		}
		if both > 0 {
			t.Fatalf("%d of %d DELETEs with a stale If-Match deleted the changed group", both, rounds)
		}
	})
}
