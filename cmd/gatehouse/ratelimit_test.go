package main

import (
	"mime"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestServeSCIMRateLimitConcurrent: the per-organization SCIM limit of a
// running gatehouse serve (--scim-rate-limit 5, bursts of 10) holds when
// an IdP sends 60 requests at once from 20 connections: no more than the
// burst plus what the rate refilled meanwhile get through, every other
// answer is a SCIM 429 with a whole-seconds Retry-After, and another
// organization is not limited by the first one's traffic.
func TestServeSCIMRateLimitConcurrent(t *testing.T) {
	env := map[string]string{"GATEHOUSE_DB": "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")}
	tokens := map[string]string{}
	for _, slug := range []string{"acme", "beta"} {
		for _, args := range [][]string{orgArgs(slug), {"scim", "enable", "--org", slug}} {
			if r := gatehouse(t, env, args...); r.code != 0 {
				t.Fatalf("%v: %s", args, r.stderr)
			}
		}
		r := gatehouse(t, env, "scim", "token", "create", "--org", slug)
		if r.code != 0 {
			t.Fatal(r.stderr)
		}
		tokens[slug] = strings.TrimSpace(r.stdout)
	}
	addr := freeAddr(t)
	srv := startServe(t, addr, env, "--addr", addr, "--scim-rate-limit", "5")
	call := func(slug string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, srv.base+"/scim/v2/Users?count=0", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tokens[slug])
		res, _ := do(t, req)
		return res
	}

	const requests, conns = 60, 20
	var mu sync.Mutex
	statuses := map[int]int{}
	var bad []string
	var wg sync.WaitGroup
	work := make(chan struct{}, requests)
	for range requests {
		work <- struct{}{}
	}
	close(work)
	start := time.Now()
	for range conns {
		wg.Go(func() {
			for range work {
				res := call("acme")
				mu.Lock()
				statuses[res.StatusCode]++
				if res.StatusCode == http.StatusTooManyRequests {
					mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
					if n, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || n < 1 || mt != "application/scim+json" {
						bad = append(bad, "429 with Retry-After "+res.Header.Get("Retry-After")+", "+mt)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, b := range bad {
		t.Error(b)
	}
	// The burst, plus one token per 200 ms, plus one for the token that
	// may be refilling as the run starts.
	most := 10 + int(elapsed.Seconds()*5) + 1
	if ok := statuses[http.StatusOK]; ok < 10 || ok > most {
		t.Errorf("%d of %d concurrent requests granted in %v at 5/s with bursts of 10, want 10 to %d (statuses %v)",
			ok, requests, elapsed.Round(time.Millisecond), most, statuses)
	}
	if statuses[http.StatusOK]+statuses[http.StatusTooManyRequests] != requests {
		t.Errorf("statuses %v: want only 200 and 429", statuses)
	}
	if res := call("beta"); res.StatusCode != http.StatusOK {
		t.Errorf("beta, limited by acme's requests: %d", res.StatusCode)
	}
}
