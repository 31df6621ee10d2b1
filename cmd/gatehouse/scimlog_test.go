package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/scim/provlog"
	"gatehouse/store"
)

// scimLogPage is GET /api/v1/scim-log's answer.
type scimLogPage struct {
	Items []struct {
		Seq                                    int64
		At                                     time.Time
		Method, Path, Filter, ScimType, Detail string
		Status                                 int
		ResourceID, UserName, DisplayName      string
		DurationMs                             float64
		TokenPrefix                            string
		RequestSize, ResponseSize              int
		RequestTruncated, ResponseTruncated    bool
		Request, Response                      *string
	}
	NextBefore int64
}

// scimLog reads the provisioning log through the management API with key.
func (s *served) scimLog(key string, query url.Values) scimLogPage {
	s.t.Helper()
	resp, _, out := s.apiAs(key, "GET", "/scim-log?"+query.Encode(), "")
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET /scim-log?%s: %d %s", query.Encode(), resp.StatusCode, out)
	}
	var p scimLogPage
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// metric reads one counter of serve's /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	_, out := get(t, base+"/metrics", nil)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// waitWritten waits until serve's provisioning log has written n requests.
func waitWritten(t *testing.T, base string, n float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metric(t, base, "gatehouse_scim_log_written_total")
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provisioning log wrote %v requests, want %v", got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// storedBodies is every body and detail the database holds, as text.
func storedBodies(t *testing.T, s *store.SQL) string {
	t.Helper()
	reader, _ := s.DB()
	rows, err := reader.Query(`SELECT method, path, filter, detail, request, response FROM scim_log`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var all strings.Builder
	for rows.Next() {
		var f [6]string
		if err := rows.Scan(&f[0], &f[1], &f[2], &f[3], &f[4], &f[5]); err != nil {
			t.Fatal(err)
		}
		all.WriteString(strings.Join(f[:], "\n") + "\n")
	}
	return all.String()
}

// TestProvisioningLog: real SCIM requests through gatehouse serve appear
// in the provisioning log with their fields, never with a password or a
// token, and only Super Administrators read it.
func TestProvisioningLog(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, db *store.SQL) {
		s := startServed(t, dsn)
		super := s.acmeKey()
		start := time.Now().UTC()

		// The secrets an IdP may send: a password at the top, in other
		// cases, nested, in PATCH operations (by path, with the value
		// first, in a value object), in Bulk data, and in a body that is
		// not JSON.
		secrets := []string{"Top-secret-1", "Upper-secret-2", "Patch-secret-3", "Patch-secret-4", "Patch-secret-5",
			"Bulk-secret-6", "NotJSON-secret-7", "Nested-secret-8", s.scimToken}
		id := s.createUser(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ann","password":"Top-secret-1"}`)
		resp, out := s.scim("POST", "/Users", `{"userName":"ann","PASSWORD":"Upper-secret-2"}`, nil)
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("second ann: %d %s", resp.StatusCode, out)
		}
		resp, out = s.scim("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"replace","path":"password","value":"Patch-secret-3"},
			{"value":"Patch-secret-4","Path":"PassWord","op":"Replace"},
			{"op":"replace","value":{"active":true,"urn:ietf:params:scim:schemas:core:2.0:User:password":"Patch-secret-5"}}]}`, nil)
		if resp.StatusCode >= 300 {
			t.Fatalf("PATCH: %d %s", resp.StatusCode, out)
		}
		resp, out = s.scim("POST", "/Bulk", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[
			{"method":"POST","path":"/Users","bulkId":"b1","data":{"userName":"bob","password":"Bulk-secret-6"}}]}`, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("Bulk: %d %s", resp.StatusCode, out)
		}
		resp, _ = s.scim("POST", "/Users", `{"userName":"carl","password":"NotJSON-secret-7"`, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("a body that is not JSON: %d", resp.StatusCode)
		}
		resp, _ = s.scim("POST", "/Users", `{"userName":"dana","name":{"givenName":"D","x":{"Password":"Nested-secret-8"}}}`, nil)
		if resp.StatusCode >= 500 {
			t.Fatalf("nested: %d", resp.StatusCode)
		}
		s.filterUsers(url.Values{"filter": {`userName eq "ann"`}})
		if resp, _ := s.scim("GET", "/Users/no-such-user", "", nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("unknown user: %d", resp.StatusCode)
		}
		if resp, _ := s.scim("POST", "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName sw \"a\""}`, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf(".search: %d", resp.StatusCode)
		}
		// The cap: a long body is cut at 16 KiB, and says so.
		members := make([]string, 600)
		for i := range members {
			members[i] = fmt.Sprintf(`{"value":"%032d"}`, i)
		}
		s.scim("POST", "/Groups", `{"displayName":"Big","members":[`+strings.Join(members, ",")+`]}`, nil)
		// A request without a token names no organization: not logged.
		req, _ := http.NewRequest("GET", s.srv.base+"/scim/v2/Users", nil)
		do(t, req)
		const sent = 10
		waitWritten(t, s.srv.base, sent)

		all := s.scimLog(super, nil)
		if len(all.Items) != sent {
			t.Fatalf("%d entries, want %d: %+v", len(all.Items), sent, all.Items)
		}
		byReq := map[string]int{}
		for i, e := range all.Items {
			byReq[e.Method+" "+e.Path+" "+strconv.Itoa(e.Status)] = i
			if e.TokenPrefix != s.scimToken[:16] || e.DurationMs <= 0 || e.At.Before(start.Add(-time.Second)) || e.Request != nil {
				t.Errorf("entry %+v", e)
			}
		}
		if all.Items[0].Path != "/scim/v2/Groups" {
			t.Errorf("newest first: %s", all.Items[0].Path)
		}
		entry := func(key string) int {
			i, ok := byReq[key]
			if !ok {
				t.Fatalf("no entry %q in %v", key, byReq)
			}
			return i
		}
		created := all.Items[entry("POST /scim/v2/Users 201")]
		if created.ResourceID != id || created.UserName != "ann" {
			t.Errorf("create: %+v", created)
		}
		clash := all.Items[entry("POST /scim/v2/Users 409")]
		if clash.ScimType != "uniqueness" || clash.Detail == "" || clash.UserName != "ann" {
			t.Errorf("clash: %+v", clash)
		}
		list := all.Items[entry("GET /scim/v2/Users 200")]
		if list.Filter != `userName eq "ann"` {
			t.Errorf("list filter %q", list.Filter)
		}
		if search := all.Items[entry("POST /scim/v2/Users/.search 200")]; search.Filter != `userName sw "a"` {
			t.Errorf(".search filter %q", search.Filter)
		}
		if missing := all.Items[entry("GET /scim/v2/Users/no-such-user 404")]; missing.ResourceID != "no-such-user" {
			t.Errorf("404: %+v", missing)
		}
		big := all.Items[0]
		if !big.RequestTruncated || big.RequestSize < 16<<10 || big.DisplayName != "Big" {
			t.Errorf("the long body: %+v", big)
		}

		// Never a secret in what is stored, and the bodies are there.
		stored := storedBodies(t, db)
		for _, secret := range secrets {
			if strings.Contains(stored, secret) {
				t.Errorf("the database holds %q", secret)
			}
		}
		for _, want := range []string{`"password":"[redacted]"`, `"PASSWORD":"[redacted]"`, `"Path":"PassWord"`, `"Password":"[redacted]"`, `"userName":"bob"`} {
			if !strings.Contains(stored, want) {
				t.Errorf("the stored bodies lack %s", want)
			}
		}
		one, _, out := s.apiAs(super, "GET", "/scim-log/"+strconv.FormatInt(created.Seq, 10), "")
		var whole struct{ Request, Response string }
		json.Unmarshal([]byte(out), &whole)
		if one.StatusCode != 200 || !strings.Contains(whole.Request, `"password":"[redacted]"`) || !strings.Contains(whole.Response, `"id":"`+id+`"`) {
			t.Errorf("GET /scim-log/%d: %d %s", created.Seq, one.StatusCode, out)
		}
		notJSON := all.Items[entry("POST /scim/v2/Users 400")]
		one, _, out = s.apiAs(super, "GET", "/scim-log/"+strconv.FormatInt(notJSON.Seq, 10), "")
		json.Unmarshal([]byte(out), &whole)
		if one.StatusCode != 200 || whole.Request != "" || notJSON.RequestSize == 0 {
			t.Errorf("the body that is not JSON: %+v %s", notJSON, out)
		}

		// Filters.
		for _, tc := range []struct {
			query url.Values
			want  int
		}{
			{url.Values{"status": {"4xx"}}, 4}, // 409, 400, 404, the group's 400
			{url.Values{"status": {"409"}}, 1},
			{url.Values{"status": {"2XX"}}, 6},
			{url.Values{"userName": {"ann"}}, 3}, // create, clash, PATCH's answer
			{url.Values{"userName": {"ANN"}}, 0},
			{url.Values{"since": {time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}, 0},
			{url.Values{"until": {time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "since": {start.Add(-time.Minute).Format(time.RFC3339)}}, sent},
			{url.Values{"limit": {"4"}}, 4},
		} {
			if got := s.scimLog(super, tc.query); len(got.Items) != tc.want {
				t.Errorf("%v: %d entries, want %d", tc.query, len(got.Items), tc.want)
			}
		}
		page := s.scimLog(super, url.Values{"limit": {"4"}})
		rest := s.scimLog(super, url.Values{"before": {strconv.FormatInt(page.NextBefore, 10)}})
		if page.NextBefore == 0 || len(rest.Items) != sent-4 || rest.Items[0].Seq >= page.Items[3].Seq {
			t.Errorf("paging: %d then %d", page.NextBefore, len(rest.Items))
		}
		for _, bad := range []string{"status=4x", "status=700", "since=yesterday", "limit=0"} {
			if resp, _, out := s.apiAs(super, "GET", "/scim-log?"+bad, ""); resp.StatusCode != 400 || !strings.Contains(out, "invalid_query") {
				t.Errorf("%s: %d %s", bad, resp.StatusCode, out)
			}
		}

		// Administrators do not read it; beta's super does not see acme's.
		r := s.cli("api-key", "create", "--org", "acme", "--name", "plain", "--role", "Administrator")
		plain := strings.TrimSpace(r.stdout)
		for _, path := range []string{"/scim-log", "/scim-log/" + strconv.FormatInt(created.Seq, 10)} {
			if resp, _, out := s.apiAs(plain, "GET", path, ""); resp.StatusCode != http.StatusForbidden {
				t.Errorf("an Administrator's %s: %d %s", path, resp.StatusCode, out)
			}
		}
		if got := s.scimLog(s.apiKey, nil); len(got.Items) != 0 {
			t.Errorf("beta sees %d of acme's entries", len(got.Items))
		}
		if resp, _, _ := s.apiAs(s.apiKey, "GET", "/scim-log/"+strconv.FormatInt(created.Seq, 10), ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("beta reads acme's entry: %d", resp.StatusCode)
		}
	})
}

// TestProvisioningLogKeepsTheLastN: --scim-log-keep bounds each
// organization's log; two instances writing one PostgreSQL database at
// once leave exactly that many, the newest.
func TestProvisioningLogKeepsTheLastN(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, db *store.SQL) {
		const keep = 15
		s := startServed(t, dsn, "--scim-log-keep", strconv.Itoa(keep))
		instances := []*server{s.srv}
		if strings.HasPrefix(dsn, "postgres") {
			addr := freeAddr(t)
			instances = append(instances, startServe(t, addr, s.env, "--addr", addr, "--scim-rate-limit", "-1",
				"--scim-log-keep", strconv.Itoa(keep)))
		}
		const each = 40
		var wg sync.WaitGroup
		for _, srv := range instances {
			wg.Go(func() {
				for i := range each {
					req, _ := http.NewRequest("GET", srv.base+"/scim/v2/Users?count=1&startIndex="+strconv.Itoa(i+1), nil)
					req.Header.Set("Authorization", "Bearer "+s.scimToken)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		for _, srv := range instances {
			waitWritten(t, srv.base, each)
		}
		page := s.scimLog(s.acmeKey(), url.Values{"limit": {"1000"}})
		if len(page.Items) != keep {
			t.Fatalf("%d entries kept, want %d", len(page.Items), keep)
		}
		reader, _ := db.DB()
		var max int64
		if err := reader.QueryRow(`SELECT max(seq) FROM scim_log`).Scan(&max); err != nil || page.Items[0].Seq != max {
			t.Fatalf("the newest entry %d is not kept (max %d, %v)", page.Items[0].Seq, max, err)
		}
	})
}

// TestProvisioningLogDropsWhenFull: while the database holds the writer
// back, a full queue drops requests and counts them in /metrics, and the
// SCIM answers do not wait; every request is written or counted.
func TestProvisioningLogDropsWhenFull(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, db *store.SQL) {
		s := startServed(t, dsn, "--scim-log-queue", "2")
		list := func() time.Duration {
			t0 := time.Now()
			if resp, out := s.scim("GET", "/Users", "", nil); resp.StatusCode != 200 {
				t.Fatalf("GET /Users: %d %s", resp.StatusCode, out)
			}
			return time.Since(t0)
		}
		list() // the token's last use is written now, not while the log is held
		waitWritten(t, s.srv.base, 1)

		// Hold the log's table: SQLite's write lock, PostgreSQL's table lock.
		_, writer := db.DB()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := writer.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var tx *sql.Tx
		if strings.HasPrefix(dsn, "postgres") {
			tx, err = conn.BeginTx(ctx, nil)
			if err == nil {
				_, err = tx.ExecContext(ctx, `LOCK TABLE scim_log IN EXCLUSIVE MODE`)
			}
		} else {
			tx, err = conn.BeginTx(ctx, nil) // the writer pool's transactions are IMMEDIATE
			if err == nil {
				_, err = tx.ExecContext(ctx, `DELETE FROM scim_log WHERE seq < 0`)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		list()                  // taken by the writer, which then waits for the lock
		time.Sleep(time.Second) // past its flush interval
		const burst = 12
		var slowest time.Duration
		for range burst {
			slowest = max(slowest, list())
		}
		dropped := metric(t, s.srv.base, "gatehouse_scim_log_dropped_total")
		if dropped != burst-2 {
			t.Errorf("dropped %v of %d with a queue of 2", dropped, burst)
		}
		if slowest > 2*time.Second {
			t.Errorf("a SCIM answer waited %v for the log", slowest)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		waitWritten(t, s.srv.base, 1+1+2)
		if got := metric(t, s.srv.base, "gatehouse_scim_log_written_total") + dropped; got != 2+burst {
			t.Errorf("written and dropped add to %v, want %d", got, 2+burst)
		}
	})
}

// TestProvisioningLogShedsOverItsBudget: SCIM requests that cost the
// writer more than its share of the CPU (1 MiB bodies to redact) are shed
// once its saved-up time is spent: counted in /metrics, warned about in
// the log, and every request written, shed, dropped or failed.
func TestProvisioningLogShedsOverItsBudget(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, db *store.SQL) {
		s := startServed(t, dsn)
		var emails strings.Builder
		for emails.Len() < 1<<20-1000 {
			emails.WriteString(`{"value":"ann@acme.test","type":"work"},`)
		}
		body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"emails":[` + emails.String() + `{"value":"x@acme.test"}]}`
		sent := 0
		for sent < 400 && (sent%10 != 0 || metric(t, s.srv.base, "gatehouse_scim_log_shed_total") == 0) {
			if resp, out := s.scim("POST", "/Users", body, nil); resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("POST /Users without userName: %d %.200s", resp.StatusCode, out)
			}
			sent++
		}
		if metric(t, s.srv.base, "gatehouse_scim_log_shed_total") == 0 {
			t.Fatalf("%d requests of 1 MiB to redact, none shed", sent)
		}
		t.Logf("shedding after %d requests", sent)
		deadline := time.Now().Add(10 * time.Second)
		for {
			var accounted float64
			for _, m := range []string{"written", "shed", "dropped", "write_failures"} {
				accounted += metric(t, s.srv.base, "gatehouse_scim_log_"+m+"_total")
			}
			if accounted == float64(sent) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d requests sent, %v written, shed, dropped or failed", sent, accounted)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !strings.Contains(s.srv.stderr.String(), "provisioning log over its time budget: ") {
			t.Errorf("no warning of the shedding in the log:\n%.2000s", s.srv.stderr.String())
		}
	})
}

// TestProvisioningLogFlushedOnShutdown: requests queued when serve is
// told to stop are written before it exits; --scim-log-keep 0 keeps none.
func TestProvisioningLogFlushedOnShutdown(t *testing.T) {
	dsn := databases[0].dsn(t)
	s := startServed(t, dsn)
	const n = 30
	for range n {
		s.scim("GET", "/Users?count=1", "", nil)
	}
	if code := s.srv.shutdown(t); code != 0 {
		t.Fatalf("serve exited %d: %s", code, s.srv.stderr.String())
	}
	db := inspect(t, dsn)
	reader, _ := db.DB()
	var count int
	if err := reader.QueryRow(`SELECT count(*) FROM scim_log`).Scan(&count); err != nil || count != n {
		t.Fatalf("%d entries after shutdown, want %d (%v)", count, n, err)
	}

	addr := freeAddr(t)
	off := startServe(t, addr, s.env, "--addr", addr, "--scim-log-keep", "0")
	req, _ := http.NewRequest("GET", off.base+"/scim/v2/Users", nil)
	req.Header.Set("Authorization", "Bearer "+s.scimToken)
	do(t, req)
	off.shutdown(t)
	if err := reader.QueryRow(`SELECT count(*) FROM scim_log`).Scan(&count); err != nil || count != n {
		t.Fatalf("with the log off: %d entries, want %d (%v)", count, n, err)
	}
	if r := gatehouse(t, s.env, "serve", "--scim-log-keep", "-1"); r.code != 2 || !strings.Contains(r.stderr, "--scim-log-keep") {
		t.Fatalf("a negative keep: %d %s", r.code, r.stderr)
	}
}

// seedSCIMLog fills the fixture organization's provisioning log with a
// page of the longest entries the log keeps (long paths, filters and
// errors; bodies at the cap, dense with quotes) and returns one's seq.
func seedSCIMLog(t *testing.T, f *serveFixture) string {
	t.Helper()
	var member strings.Builder
	for member.Len() < provlog.BodyCap {
		fmt.Fprintf(&member, `{"value":"%032d","display":"a \"quoted\" name"},`, member.Len())
	}
	body := `{"displayName":"Engineering","members":[` + member.String()
	entries := make([]store.SCIMExchange, 60)
	for i := range entries {
		entries[i] = store.SCIMExchange{OrgID: f.org.ID, At: time.Now(), Method: "PATCH",
			Path: "/scim/v2/Users/" + strings.Repeat("0123456789abcdef", 4), Filter: `userName eq "` + strings.Repeat("a.rather.long.username", 5) + `"`,
			Status: 400, SCIMType: "invalidValue", Detail: strings.Repeat("the value of the attribute is not valid; ", 8),
			UserName: "maximiliana.oberhauser.wittgenstein@example.com", DurationMicros: 123456, TokenPrefix: "gh_scim_abcdefgh",
			Request: body[:provlog.BodyCap], RequestSize: 200000, RequestTruncated: true,
			Response: body[:provlog.BodyCap], ResponseSize: 200000, ResponseTruncated: true}
	}
	if err := f.store.AppendSCIMLog(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	page, err := f.store.SCIMLog(context.Background(), f.org.ID, store.SCIMLogQuery{Limit: 1})
	if err != nil || len(page) != 1 {
		t.Fatalf("the seeded log: %v %v", page, err)
	}
	return strconv.FormatInt(page[0].Seq, 10)
}
