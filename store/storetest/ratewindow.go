package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/store"
)

// testSSOLimits: rate windows count atomically under concurrency, and a
// connection's sign-in requests in flight stay under the cap whatever
// the concurrency, its expired ones making room.
func testSSOLimits(t *testing.T, s store.Store) {
	now := time.Now()
	t.Run("rate window", func(t *testing.T) {
		var wg sync.WaitGroup
		seen := make([]bool, 41)
		var mu sync.Mutex
		for range 40 {
			wg.Go(func() {
				n, err := s.HitRateWindow(ctx, "k", now, time.Minute)
				mu.Lock()
				defer mu.Unlock()
				if err != nil || n < 1 || n > 40 || seen[n] {
					t.Errorf("hit: %d, %v (a count twice or out of range)", n, err)
					return
				}
				seen[n] = true
			})
		}
		wg.Wait()
		if n, err := s.RateWindowHits(ctx, "k", now, time.Minute); n != 40 || err != nil {
			t.Fatalf("hits %d, %v; want 40", n, err)
		}
		if n, _ := s.RateWindowHits(ctx, "other", now, time.Minute); n != 0 {
			t.Fatalf("another key has %d hits", n)
		}
		// The window is fixed from its first hit: a later hit does not
		// move it.
		if n, err := s.HitRateWindow(ctx, "k", now.Add(59*time.Second), time.Minute); n != 41 || err != nil {
			t.Fatalf("hit late in the window: %d, %v; want 41", n, err)
		}
		// A new window starts once the old one is over.
		if n, err := s.HitRateWindow(ctx, "k", now.Add(time.Minute), time.Minute); n != 1 || err != nil {
			t.Fatalf("next window: %d, %v", n, err)
		}
		if n, err := s.PruneRateWindows(ctx, now.Add(2*time.Minute)); n != 1 || err != nil {
			t.Fatalf("prune: %d, %v", n, err)
		}
	})

	t.Run("requests in flight", func(t *testing.T) {
		o, _ := newOrg(t, s, "limits")
		c, err := s.CreateSSOConnection(ctx, store.SSOConnection{OrgID: o.ID, Kind: store.SSOSAML, Name: "Okta", Enabled: true,
			UsernameFrom: "nameid", Config: store.RawJSON(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		req := func(id string, expires time.Time) store.SSORequest {
			return store.SSORequest{ID: id, ConnectionID: c.ID, OrgID: o.ID, Browser: []byte("b"), ExpiresAt: expires}
		}
		if _, err := s.CreateSSORequest(ctx, store.SSORequest{ID: "long", ConnectionID: c.ID, OrgID: o.ID, Browser: []byte("b"),
			RedirectTo: "/" + strings.Repeat("x", store.MaxSSORedirect), ExpiresAt: now.Add(time.Minute)}); err == nil {
			t.Fatal("a redirect longer than MaxSSORedirect was stored")
		}
		// 20 expired ones (gone at the next create), and the cap less 10.
		for i := range 20 {
			if _, err := s.CreateSSORequest(ctx, req(fmt.Sprintf("old-%d", i), now.Add(-time.Second))); err != nil {
				t.Fatal(err)
			}
		}
		for i := range store.MaxSSORequestsInFlight - 10 {
			if _, err := s.CreateSSORequest(ctx, req(fmt.Sprintf("r-%d", i), now.Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		created, limited := 0, 0
		for i := range 30 {
			wg.Go(func() {
				_, err := s.CreateSSORequest(ctx, req(fmt.Sprintf("c-%d", i), now.Add(time.Hour)))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					created++
				case errors.Is(err, store.ErrLimit):
					limited++
				default:
					t.Errorf("create: %v", err)
				}
			})
		}
		wg.Wait()
		if created != 10 || limited != 20 {
			t.Fatalf("%d created, %d refused with ErrLimit; want 10 and 20", created, limited)
		}
		if _, err := s.SSORequest(ctx, o.ID, "old-0"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an expired request is still stored: %v", err)
		}
	})
}
