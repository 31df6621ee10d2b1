package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/admin/export/s3test"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// child is gatehouse serve as a process of its own, to kill -9.
type child struct {
	base string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

func startChild(t *testing.T, env map[string]string, args ...string) *child {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := &child{base: "http://" + addr, logs: &syncBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], append([]string{"serve", "--addr", addr, "--log-format", "json"}, args...)...)
	c.cmd.Env = append(os.Environ(), "GATEHOUSE_TEST_CHILD_SERVE=1")
	for k, v := range env {
		c.cmd.Env = append(c.cmd.Env, k+"="+v)
	}
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	t.Cleanup(c.kill)
	deadline := time.Now().Add(time.Minute) // a race-detector build on a busy machine starts slowly
	for {
		if res, err := http.Get(c.base + "/readyz"); err == nil {
			res.Body.Close()
			return c
		}
		select {
		case <-c.done:
			t.Fatalf("gatehouse exited: %v\n%s", c.cmd.ProcessState, c.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gatehouse did not start: %s", c.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill is kill -9.
func (c *child) kill() {
	c.cmd.Process.Kill()
	<-c.done
}

// seedAudit writes n audit entries of org in one transaction, straight
// into the table (fast), as entries of the log.
func seedAudit(t *testing.T, s *store.SQL, org string, n int) {
	t.Helper()
	_, db := s.DB()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	q := `INSERT INTO audit_log (org_id, at, actor_kind, action, target_name) VALUES (?, ?, 'system', 'test.seed', ?)`
	if s.Dialect() == "postgres" {
		q = `INSERT INTO audit_log (org_id, at, actor_kind, action, target_name) VALUES ($1, $2, 'system', 'test.seed', $3)`
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	for i := range n {
		if _, err := tx.Exec(q, org, at, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// exportedExactlyOnce reads every object of the bucket back and checks
// that each entry of the organization's audit log and login history is in
// it exactly once; it returns how many entries each stream has.
func exportedExactlyOnce(t *testing.T, srv *s3test.Server, bucket string, s *store.SQL, org string) map[string]int {
	t.Helper()
	return s3test.ExactlyOnce(t, srv.Objects(t, bucket), func(key string) string {
		parts := strings.Split(key, "/")
		if len(parts) != 7 || parts[0] != "exports" || parts[1] != "acme" || !strings.HasSuffix(key, ".jsonl") {
			t.Fatalf("unexpected key %s", key)
		}
		return parts[2]
	}, s, org)
}

// TestServeS3ExportSurvivesKill9: gatehouse serve exports an organization's
// audit log and login history to a real S3 server (versitygw); killed
// with SIGKILL in the middle of the export and started again (on
// PostgreSQL: with a second instance running beside it all along, the
// two taking the lease in turn), the bucket ends with every entry exactly
// once. The export is configured and its status read through the
// management API of the served binary.
func TestServeS3ExportSurvivesKill9(t *testing.T) {
	for _, d := range databases {
		t.Run(d.name, func(t *testing.T) {
			srv := s3test.Start(t)
			srv.MakeBucket(t, "logs")
			dsn := d.dsn(t)
			env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))}
			if r := gatehouse(t, env, orgArgs("acme")...); r.code != 0 {
				t.Fatal(r.stderr)
			}
			r := gatehouse(t, env, "api-key", "create", "--org", "acme", "--name", "export")
			if r.code != 0 {
				t.Fatal(r.stderr)
			}
			key := strings.TrimSpace(r.stdout)
			s := inspect(t, dsn)
			ctx := storetest.Context(context.Background())
			org, err := s.OrgBySlug(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			seedAudit(t, s, org.ID, 1500)

			args := []string{"--s3-export-interval", "1s", "--s3-export-batch", "10", "--s3-export-timeout", "2s"}
			first := startChild(t, env, args...)
			var second *child
			if d.name == "postgres" {
				second = startChild(t, env, args...)
			}
			call := func(method, body string) (int, map[string]any) {
				t.Helper()
				req, _ := http.NewRequest(method, first.base+"/api/v1/organization/s3-export", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, out := do(t, req)
				if strings.Contains(out, s3test.SecretKey) {
					t.Fatalf("the API shows the secret: %s", out)
				}
				var v map[string]any
				json.Unmarshal([]byte(out), &v)
				return resp.StatusCode, v
			}
			if code, v := call("GET", ""); code != 200 || v["status"] != "not_configured" {
				t.Fatalf("before: %d %v", code, v)
			}
			if code, v := call("PUT", `{"enabled":true,"endpoint":"`+srv.URL+`","region":"us-east-1","bucket":"logs","prefix":"/exports/",`+
				`"accessKeyId":"`+s3test.AccessKey+`","secretAccessKey":"`+s3test.SecretKey+`","pathStyle":true}`); code != 200 ||
				v["status"] != "pending" || v["secretAccessKeySet"] != true || v["prefix"] != "exports" {
				t.Fatalf("configure: %d %v", code, v)
			}

			// Kill -9 while the export is under way.
			deadline := time.Now().Add(time.Minute)
			for {
				e, err := s.S3Export(ctx, org.ID)
				if err != nil {
					t.Fatal(err)
				}
				if e.AuditCursor > 0 {
					break
				}
				if e.LastError != "" || time.Now().After(deadline) {
					t.Fatalf("the export did not start: %+v\n%s", e, first.logs)
				}
				time.Sleep(20 * time.Millisecond)
			}
			first.kill()
			killed, _ := s.S3Export(ctx, org.ID)
			top, _ := s.ExportAuditAfter(ctx, org.ID, killed.AuditCursor, 1)
			if len(top) == 0 {
				t.Fatalf("the export was over before the kill (cursor %d); seed more entries", killed.AuditCursor)
			}
			t.Logf("killed with the audit cursor at %d", killed.AuditCursor)

			// More activity while it is down, then start again.
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := range 20 {
					if err := s.RecordAudit(ctx, store.AuditEntry{OrgID: org.ID, Action: "test.more", TargetName: fmt.Sprint(i)}); err != nil {
						t.Error(err)
					}
				}
			})
			wg.Wait()
			if second == nil {
				second = startChild(t, env, args...)
			}
			first = second // the API of the one running
			deadline = time.Now().Add(2 * time.Minute)
			for {
				e, err := s.S3Export(ctx, org.ID)
				if err != nil {
					t.Fatal(err)
				}
				audit, _ := s.ExportAuditAfter(ctx, org.ID, e.AuditCursor, 1)
				logins, _ := s.ExportLoginsAfter(ctx, org.ID, e.LoginCursor, 1)
				if len(audit) == 0 && len(logins) == 0 && e.LastSuccessAt != nil && e.LastSuccessAt.After(killed.UpdatedAt) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the export did not finish after the restart: %+v\n%s", e, second.logs)
				}
				time.Sleep(100 * time.Millisecond)
			}
			n := exportedExactlyOnce(t, srv, "logs", s, org.ID)
			if n["audit"] < 1520 {
				t.Fatalf("exported %v", n)
			}
			code, v := call("GET", "")
			if code != 200 || v["status"] != "ok" || v["lastSuccessAt"] == nil || v["lastError"] != "" {
				t.Fatalf("status through the API: %d %v", code, v)
			}
			if strings.Contains(second.logs.String()+first.logs.String(), s3test.SecretKey) {
				t.Fatal("the secret access key is in the log")
			}
		})
	}
}

// TestConsoleS3Export: the Organization tab's "Export to S3" section,
// through gatehouse serve without JavaScript: a refused form changes
// nothing and says why at the form, a saved one is sealed and never shown
// back, a cross-site post is refused, the section is in Russian for a
// Russian browser, and an Administrator's API key may neither read nor
// change the export.
func TestConsoleS3Export(t *testing.T) {
	f := newServeFixture(t, nil)
	ctx := context.Background()
	token := f.link[strings.Index(f.link, "token=")+len("token="):]
	if a := postJSON(t, f.srv.base+"/api/v1/activation", `{"token":"`+token+`","password":"`+consolePassword+`"}`, ""); a.status != 200 {
		t.Fatalf("activation: %d %v", a.status, a.body)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Post(f.srv.base+"/api/v1/session", "application/json",
		strings.NewReader(`{"organization":"acme","username":"Jane.Doe","password":"`+consolePassword+`"}`))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("sign-in: %v %v", res, err)
	}
	res.Body.Close()
	send := func(method, path string, form url.Values, header map[string]string) (int, string, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, f.srv.base+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Location"), string(b)
	}
	code, _, page := send("GET", "/preferences/organization", nil, nil)
	if code != 200 || !strings.Contains(page, "Export to S3") || !strings.Contains(page, "Not set up") {
		t.Fatalf("organization page: %d", code)
	}
	if _, _, page := send("GET", "/preferences/organization", nil, map[string]string{"Accept-Language": "ru"}); !strings.Contains(page, "Экспорт в S3") {
		t.Fatal("no Russian section for a Russian browser")
	}
	const secret = "console-secret-never-shown"
	form := url.Values{"enabled": {"on"}, "endpoint": {"ftp://s3.example.com"}, "region": {"us-east-1"}, "bucket": {"logs"},
		"access_key_id": {"AKIAEXAMPLE"}, "secret_access_key": {secret}, "path_style": {"on"}}
	code, _, page = send("POST", "/preferences/organization/s3-export", form, nil)
	if code != 400 || !strings.Contains(page, "is not an http or https URL") || !strings.Contains(page, `value="ftp://s3.example.com"`) ||
		strings.Contains(page, secret) {
		t.Fatalf("refused form: %d", code)
	}
	if _, err := f.store.S3Export(ctx, f.org.ID); err == nil {
		t.Fatal("a refused form wrote the export")
	}
	form.Set("endpoint", "https://s3.eu-west-1.amazonaws.com")
	if code, _, _ := send("POST", "/preferences/organization/s3-export", form, map[string]string{"Sec-Fetch-Site": "cross-site"}); code != 403 {
		t.Fatalf("cross-site post: %d", code)
	}
	if _, err := f.store.S3Export(ctx, f.org.ID); err == nil {
		t.Fatal("a cross-site post wrote the export")
	}
	code, loc, _ := send("POST", "/preferences/organization/s3-export", form, nil)
	if code != 303 || !strings.Contains(loc, "saved=s3-export") {
		t.Fatalf("save: %d %s", code, loc)
	}
	e, err := f.store.S3Export(ctx, f.org.ID)
	if err != nil || !e.Enabled || e.Bucket != "logs" || !e.PathStyle || e.SecretAccessKey == secret || !strings.HasPrefix(e.SecretAccessKey, "v1.") {
		t.Fatalf("stored %+v, %v", e, err)
	}
	code, _, page = send("GET", loc, nil, nil)
	if code != 200 || strings.Contains(page, secret) || !strings.Contains(page, "The S3 export is saved") ||
		!strings.Contains(page, "Leave empty to keep it") {
		t.Fatalf("after saving: %d", code)
	}
	// Saved again with the secret left empty: the stored one stays.
	form.Del("secret_access_key")
	form.Set("prefix", "gatehouse")
	if code, _, _ := send("POST", "/preferences/organization/s3-export", form, nil); code != 303 {
		t.Fatalf("save without the secret: %d", code)
	}
	if e2, _ := f.store.S3Export(ctx, f.org.ID); e2.SecretAccessKey != e.SecretAccessKey || e2.Prefix != "gatehouse" {
		t.Fatalf("after saving without the secret: %+v", e2)
	}
	// An Administrator's key: refused, on both methods.
	resp, out := f.call(t, "POST", "/api/v1/api-keys", `{"name":"reader","role":"Administrator"}`, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("api key: %d %s", resp.StatusCode, out)
	}
	var k struct {
		Key string `json:"key"`
	}
	json.Unmarshal([]byte(out), &k)
	for _, m := range []string{"GET", "PUT"} {
		resp, out := f.call(t, m, "/api/v1/organization/s3-export", `{"enabled":false,"endpoint":"https://x.example","region":"us-east-1","bucket":"abc","accessKeyId":"abc"}`,
			map[string]string{"Authorization": "Bearer " + k.Key})
		if resp.StatusCode != 403 || problemCode(resp, out) != "forbidden" {
			t.Fatalf("%s by an Administrator: %d %s", m, resp.StatusCode, out)
		}
	}
	if e3, _ := f.store.S3Export(ctx, f.org.ID); !e3.Enabled {
		t.Fatal("an Administrator's PUT changed the export")
	}
	audit, _ := f.store.AuditLog(storetest.Context(ctx), f.org.ID, store.AuditQuery{Action: "s3_export."})
	for _, a := range audit {
		if strings.Contains(string(a.Before)+string(a.After), secret) {
			t.Fatal("the audit log holds the secret")
		}
	}
	if len(audit) != 2 {
		t.Fatalf("audit entries %d, want 2", len(audit))
	}
}
