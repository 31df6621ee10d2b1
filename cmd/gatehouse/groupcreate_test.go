package main

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

// groupsNamed returns the ids of acme's groups named name, and how many
// members each has.
func (s *served) groupsNamed(name string) map[string]int {
	s.t.Helper()
	resp, out := s.scim("GET", "/Groups?filter="+url.QueryEscape(`displayName eq "`+name+`"`), "", nil)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("list groups %s: %d %s", name, resp.StatusCode, out)
	}
	var list struct {
		TotalResults int
		Resources    []struct {
			ID      string
			Members []struct{ Value string }
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || list.TotalResults != len(list.Resources) {
		s.t.Fatalf("list groups %s: %v %s", name, err, out)
	}
	got := map[string]int{}
	for _, g := range list.Resources {
		got[g.ID] = len(g.Members)
	}
	return got
}

// groupBody is a Group with members.
func groupBody(name string, members ...string) string {
	ms := make([]string, len(members))
	for i, m := range members {
		ms[i] = `{"value":"` + m + `"}`
	}
	return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"` + name + `","members":[` + strings.Join(ms, ",") + `]}`
}

// bulkCreateGroup is a BulkRequest of one POST /Groups.
func bulkCreateGroup(name string, members ...string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[
		{"method":"POST","path":"/Groups","bulkId":"g","data":` + groupBody(name, members...) + `}]}`
}

// bulkStatus is the status of the one operation of a BulkResponse.
func bulkStatus(t *testing.T, resp *http.Response, out string) string {
	t.Helper()
	var r struct{ Operations []struct{ Status string } }
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(out), &r) != nil || len(r.Operations) != 1 {
		t.Fatalf("bulk: %d %s", resp.StatusCode, out)
	}
	return r.Operations[0].Status
}

// TestGroupCreateRefusedMember: a POST /Groups (and a Bulk POST) whose
// members include one that is not a User answers 400 and leaves nothing:
// no group, no audit entry, no count. Before, the group was created in a
// transaction of its own and its clean-up deleted an empty id, so every
// refused POST left a group behind. A retried POST creates exactly one.
func TestGroupCreateRefusedMember(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, st *store.SQL) {
		s := startServed(t, dsn)
		id := s.createUser(`{"userName":"member"}`)
		before := storetest.TakeSnapshot(t, st)
		resp, out := s.scim("POST", "/Groups", groupBody("Ops", id, "no-such-user"), nil)
		wantSCIMError(t, resp, out, http.StatusBadRequest, "invalidValue")
		resp, out = s.scim("POST", "/Bulk", bulkCreateGroup("Bulk ops", "no-such-user", id), nil)
		if st := bulkStatus(t, resp, out); st != "400" || !strings.Contains(out, "invalidValue") {
			t.Errorf("bulk with a refused member: %s", out)
		}
		storetest.AssertUnchanged(t, st, before)
		if got := s.groupsNamed("Ops"); len(got) != 0 {
			t.Errorf("groups left by a refused POST: %v", got)
		}
		if got := s.groupsNamed("Bulk ops"); len(got) != 0 {
			t.Errorf("groups left by a refused Bulk POST: %v", got)
		}

		// The IdP retries with the member fixed: one group each.
		if resp, out := s.scim("POST", "/Groups", groupBody("Ops", id), nil); resp.StatusCode != http.StatusCreated {
			t.Fatalf("retried POST: %d %s", resp.StatusCode, out)
		}
		if resp, out := s.scim("POST", "/Bulk", bulkCreateGroup("Bulk ops", id), nil); bulkStatus(t, resp, out) != "201" {
			t.Fatalf("retried Bulk POST: %s", out)
		}
		for _, name := range []string{"Ops", "Bulk ops"} {
			got := s.groupsNamed(name)
			if len(got) != 1 {
				t.Errorf("%s: %d groups after a refused and a good POST, want 1", name, len(got))
			}
			for _, n := range got {
				if n != 1 {
					t.Errorf("%s: %d members, want 1", name, n)
				}
			}
		}
	})
}

// blockOnAdministrator runs the statement in a transaction of its own
// that keeps the administrator's row locked, and returns the transaction.
func blockOnAdministrator(t *testing.T, db *sql.DB, statement, id string) *sql.Tx {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(statement, id); err != nil {
		t.Fatal(err)
	}
	return tx
}

// waitForLockWaiters waits until n sessions of the database wait for a
// lock: gatehouse's writes of the requests sent, stuck on the row the test
// holds.
func waitForLockWaiters(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting int
		err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions wait for a lock after 20s, want %d", waiting, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type postAnswer struct {
	resp *http.Response
	body string
}

// TestGroupCreateInterruptedPostgres interrupts a POST /Groups with a
// member, and a Bulk POST of one, in the middle of writing the members:
// the member's row is held by the test, so the insert of the member rows
// waits. Then
//   - the member is deleted by a transaction that commits meanwhile: 400,
//     no group;
//   - PostgreSQL is stopped (pg_ctl stop -m fast) and started again: 503,
//     no group, and the IdP's retry creates exactly one.
//
// Before, the group was committed before its members were written, so
// both left a memberless group and the retry made a second one.
func TestGroupCreateInterruptedPostgres(t *testing.T) {
	cluster := storetest.NewPostgresCluster(t)
	dsn := cluster.URL(t)
	s := startServed(t, dsn)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	send := func(path, body string) chan postAnswer {
		ch := make(chan postAnswer, 1)
		go func() {
			req, _ := http.NewRequest("POST", s.srv.base+"/scim/v2"+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+s.scimToken)
			req.Header.Set("Content-Type", "application/scim+json")
			resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
			if err != nil {
				t.Errorf("POST %s: %v", path, err)
				ch <- postAnswer{}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				t.Errorf("POST %s: %v", path, err)
			}
			ch <- postAnswer{resp, string(b)}
		}()
		return ch
	}

	t.Run("member deleted meanwhile", func(t *testing.T) {
		doomed := s.createUser(`{"userName":"leaving"}`)
		tx := blockOnAdministrator(t, db, `DELETE FROM administrators WHERE id = $1`, doomed)
		plain := send("/Groups", groupBody("Leavers", doomed))
		bulk := send("/Bulk", bulkCreateGroup("Bulk leavers", doomed))
		waitForLockWaiters(t, db, 2)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		a := <-plain
		if a.resp == nil {
			t.FailNow()
		}
		wantSCIMError(t, a.resp, a.body, http.StatusBadRequest, "invalidValue")
		b := <-bulk
		if b.resp == nil {
			t.FailNow()
		}
		if st := bulkStatus(t, b.resp, b.body); st != "400" {
			t.Errorf("bulk: member deleted meanwhile: %s", b.body)
		}
		for _, name := range []string{"Leavers", "Bulk leavers"} {
			if got := s.groupsNamed(name); len(got) != 0 {
				t.Errorf("%s: groups left: %v", name, got)
			}
		}
	})

	t.Run("database stopped", func(t *testing.T) {
		member := s.createUser(`{"userName":"staying"}`)
		tx := blockOnAdministrator(t, db, `SELECT 1 FROM administrators WHERE id = $1 FOR UPDATE`, member)
		plain := send("/Groups", groupBody("Outage", member))
		bulk := send("/Bulk", bulkCreateGroup("Bulk outage", member))
		waitForLockWaiters(t, db, 2)
		// The outage reaches gatehouse's sessions first, while they wait
		// on the row with their group inserted: stopping the cluster
		// alone may end the test's session first, free the row and let a
		// write commit as its connection goes, which no server can tell
		// from a failure (the answer is 503 and the write is there).
		var ended int
		if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&ended); err != nil || ended != 2 {
			t.Fatalf("ended %d waiting sessions: %v", ended, err)
		}
		cluster.Stop(t) // ends every session, the test's too
		tx.Rollback()
		a, b := <-plain, <-bulk
		if a.resp == nil || b.resp == nil {
			t.FailNow()
		}
		wantSCIMError(t, a.resp, a.body, http.StatusServiceUnavailable, "")
		if st := bulkStatus(t, b.resp, b.body); st != "503" {
			t.Errorf("bulk during the outage: %s", b.body)
		}
		cluster.Start(t)
		// The server's pool finds its connections gone; wait until it
		// answers again.
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, _ := s.scim("GET", "/Groups?count=1", "", nil)
			if resp.StatusCode == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no answer after PostgreSQL restarted: %d", resp.StatusCode)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, name := range []string{"Outage", "Bulk outage"} {
			if got := s.groupsNamed(name); len(got) != 0 {
				t.Errorf("%s: groups left by the interrupted creation: %v", name, got)
			}
		}
		// The IdP retries once the database is back.
		if resp, out := s.scim("POST", "/Groups", groupBody("Outage", member), nil); resp.StatusCode != http.StatusCreated {
			t.Fatalf("retried POST: %d %s", resp.StatusCode, out)
		}
		if resp, out := s.scim("POST", "/Bulk", bulkCreateGroup("Bulk outage", member), nil); bulkStatus(t, resp, out) != "201" {
			t.Fatalf("retried Bulk POST: %s", out)
		}
		for _, name := range []string{"Outage", "Bulk outage"} {
			got := s.groupsNamed(name)
			if len(got) != 1 {
				t.Errorf("%s: %d groups after an interrupted and a retried POST, want 1", name, len(got))
			}
			for _, n := range got {
				if n != 1 {
					t.Errorf("%s: %d members, want 1", name, n)
				}
			}
		}
	})
}

// TestBulkGroupOperations: every Group operation of a Bulk request is
// served as its own endpoint serves it (the same function, one
// transaction each): bulkId references, If-Match from "version", a
// refused member changing nothing, a missing group 404, bad data 400.
func TestBulkGroupOperations(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, st *store.SQL) {
		s := startServed(t, dsn)
		first := s.createUser(`{"userName":"first"}`)
		bulk := func(ops string) []map[string]any {
			t.Helper()
			resp, out := s.scim("POST", "/Bulk", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[`+ops+`]}`, nil)
			var r struct{ Operations []map[string]any }
			if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(out), &r) != nil {
				t.Fatalf("bulk: %d %s", resp.StatusCode, out)
			}
			return r.Operations
		}
		res := bulk(`{"method":"POST","path":"/Users","bulkId":"u","data":{"userName":"second"}},
			{"method":"POST","path":"/Groups","bulkId":"g","data":` + groupBody("Team", "bulkId:u") + `},
			{"method":"PATCH","path":"/Groups/bulkId:g","data":` + patchBody(`{"op":"add","path":"members","value":[{"value":"`+first+`"}]},{"op":"replace","path":"displayName","value":"Crew"}`) + `},
			{"method":"PUT","path":"/Groups/bulkId:g","version":"W/\"1\"","data":` + groupBody("Stale") + `}`)
		want := []string{"201", "201", "204", "412"}
		for i, r := range res {
			if r["status"] != want[i] {
				t.Errorf("operation %d: %v, want status %s", i, r, want[i])
			}
		}
		gid := strings.TrimPrefix(res[1]["location"].(string), s.srv.base+"/scim/v2/Groups/")
		resp, out := s.scim("GET", "/Groups/"+gid, "", nil)
		var g struct {
			DisplayName string
			Members     []struct{ Display string }
		}
		json.Unmarshal([]byte(out), &g)
		if resp.StatusCode != 200 || g.DisplayName != "Crew" || len(g.Members) != 2 || resp.Header.Get("ETag") != res[2]["version"] {
			t.Fatalf("group after bulk: %d %s (ETag %s, bulk version %v)", resp.StatusCode, out, resp.Header.Get("ETag"), res[2]["version"])
		}

		before := storetest.TakeSnapshot(t, st)
		res = bulk(`{"method":"PATCH","path":"/Groups/` + gid + `","data":` + patchBody(`{"op":"add","path":"members","value":[{"value":"no-such-user"}]}`) + `},
			{"method":"PUT","path":"/Groups/` + gid + `","data":` + groupBody("Crew", first, "no-such-user") + `},
			{"method":"PUT","path":"/Groups/no-such-group","data":` + groupBody("Crew", first) + `},
			{"method":"PATCH","path":"/Groups/` + gid + `","data":[1]},
			{"method":"POST","path":"/Groups","bulkId":"h","data":{"members":[]}}`)
		want = []string{"400", "400", "404", "400", "400"}
		for i, r := range res {
			if r["status"] != want[i] || r["response"] == nil {
				t.Errorf("operation %d: %v, want status %s with a SCIM error", i, r, want[i])
			}
		}
		storetest.AssertUnchanged(t, st, before)

		res = bulk(`{"method":"PUT","path":"/Groups/` + gid + `","data":` + groupBody("Crew", first) + `},
			{"method":"DELETE","path":"/Groups/` + gid + `","version":"W/\"1\""},
			{"method":"DELETE","path":"/Groups/` + gid + `"}`)
		want = []string{"200", "412", "204"}
		for i, r := range res {
			if r["status"] != want[i] {
				t.Errorf("operation %d: %v, want status %s", i, r, want[i])
			}
		}
		if resp, _ := s.scim("GET", "/Groups/"+gid, "", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("group after a Bulk DELETE: %d", resp.StatusCode)
		}
	})
}

// patchBody is a PatchOp request with the operations given.
func patchBody(ops string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + ops + `]}`
}
