package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatehouse/store"
)

// A 201 from POST /Users means the administrator is durable: gatehouse is
// killed with SIGKILL while clients are creating users, and every user it
// acknowledged must be in the database afterwards, on both databases (each
// batches concurrent creates into one commit). Power loss cannot be
// simulated here; SQLite's synchronous=FULL and PostgreSQL's
// synchronous_commit=on, the defaults, cover it.
func TestCreatedUsersSurviveKill9(t *testing.T) {
	for _, d := range databases {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			createdUsersSurviveKill9(t, d.dsn(t))
		})
	}
}

func createdUsersSurviveKill9(t *testing.T, db string) {
	env := map[string]string{"GATEHOUSE_DB": db}
	for _, args := range [][]string{orgArgs("acme"), {"scim", "enable", "--org", "acme"}} {
		if r := gatehouse(t, env, args...); r.code != 0 {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}
	r := gatehouse(t, env, "scim", "token", "create", "--org", "acme")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	token := strings.TrimSpace(r.stdout)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	child := exec.Command(os.Args[0], "serve", "--addr", addr, "--db", db, "--scim-rate-limit", "-1", "--log-format", "json")
	child.Env = append(os.Environ(), "GATEHOUSE_TEST_CHILD_SERVE=1")
	var logs bytes.Buffer
	child.Stdout, child.Stderr = &logs, &logs
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	base := "http://" + addr
	for i := 0; ; i++ {
		if res, err := http.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			break
		}
		if i > 200 {
			t.Fatalf("gatehouse did not start: %s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for n := 0; ctx.Err() == nil; n++ {
				body := fmt.Sprintf(`{"userName":"w%d-%d@acme.test"}`, w, n)
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/scim/v2/Users", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/scim+json")
				res, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				var created struct{ ID string }
				err = json.NewDecoder(res.Body).Decode(&created)
				res.Body.Close()
				if res.StatusCode == http.StatusCreated && err == nil {
					mu.Lock()
					acked = append(acked, created.ID)
					mu.Unlock()
				}
			}
		}()
	}
	// Kill once enough creates were acknowledged (a loaded machine takes
	// longer to get there), while the writers are still sending.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 150 {
			break
		}
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	cancel()
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d users acknowledged before the kill; the test proves nothing", len(acked))
	}

	s, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	org, err := s.OrgBySlug(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, id := range acked {
		if _, err := s.Administrator(context.Background(), org.ID, id); err != nil {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged users are missing after kill -9", lost, len(acked))
	}
	t.Logf("%d acknowledged users, all present after kill -9", len(acked))
}
