package storetest

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/store"
)

func testSSO(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "sso")
	other, _ := newOrg(t, s, "sso-other")
	c, err := s.CreateSSOConnection(ctx, store.SSOConnection{OrgID: o.ID, Kind: store.SSOSAML, Name: "Okta", Enabled: true,
		UsernameFrom: "nameid", Config: store.RawJSON(`{"metadataUrl":"https://idp.example/metadata"}`), Secret: "v1.sealed-key"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSSOConnection(ctx, store.SSOConnection{OrgID: o.ID, Kind: "ldap", Name: "x", UsernameFrom: "nameid", Config: store.RawJSON(`{}`)}); err == nil {
		t.Fatal("an unknown kind was stored")
	}
	got, err := s.SSOConnection(ctx, o.ID, c.ID)
	if err != nil || got.Secret != "v1.sealed-key" || string(got.Config) != `{"metadataUrl":"https://idp.example/metadata"}` || !got.Enabled {
		t.Fatalf("read back %+v, %v", got, err)
	}
	_, err = s.SSOConnection(ctx, other.ID, c.ID)
	wantErr(t, err, store.ErrNotFound)
	if byID, err := s.SSOConnectionByID(ctx, c.ID); err != nil || byID.OrgID != o.ID {
		t.Fatalf("by id %+v, %v", byID, err)
	}
	up, err := s.UpdateSSOConnection(ctx, o.ID, c.ID, func(c *store.SSOConnection) error {
		c.Enabled, c.Secret, c.Kind = false, "v1.new-key", store.SSOOIDC // the kind does not change
		return nil
	})
	if err != nil || up.Enabled || up.Kind != store.SSOSAML || up.Version != 2 {
		t.Fatalf("update %+v, %v", up, err)
	}
	log, _ := s.AuditLog(ctx, o.ID, store.AuditQuery{TargetID: c.ID})
	if len(log) != 2 || log[0].Action != store.AuditSSOConnectionUpdate || string(log[0].After) != `{"enabled":false,"secret":"replaced"}` {
		t.Fatalf("audit %+v", log)
	}
	for _, e := range log {
		if containsAny(string(e.Before)+string(e.After), "v1.sealed-key", "v1.new-key") {
			t.Fatalf("a sealed secret is in the audit log: %+v", e)
		}
	}
	if cs, _ := s.SSOConnections(ctx, o.ID); len(cs) != 1 {
		t.Fatalf("list %+v", cs)
	}
	if all, _ := s.AllSSOConnections(ctx, store.SSOSAML); !slices.ContainsFunc(all, func(x store.SSOConnection) bool { return x.ID == c.ID }) {
		t.Fatalf("AllSSOConnections(saml) = %+v", all)
	}
	if all, _ := s.AllSSOConnections(ctx, store.SSOOIDC); slices.ContainsFunc(all, func(x store.SSOConnection) bool { return x.ID == c.ID }) {
		t.Fatalf("AllSSOConnections(oidc) lists a SAML connection")
	}

	// Requests: bound to browser and connection, used once, expiring.
	now := time.Now().UTC()
	browser := []byte("browser-hash")
	r, err := s.CreateSSORequest(ctx, store.SSORequest{ID: "id-1", ConnectionID: c.ID, OrgID: o.ID, Browser: browser,
		RedirectTo: "/console", ExpiresAt: now.Add(5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PendingSSORequest(ctx, r.ID, c.ID, []byte("other-browser"), now); err != store.ErrNotFound {
		t.Fatalf("another browser's pending: %v", err)
	}
	if p, err := s.PendingSSORequest(ctx, r.ID, c.ID, browser, now); err != nil || p.RedirectTo != "/console" {
		t.Fatalf("pending %+v, %v", p, err)
	}
	_, err = s.UseSSORequest(ctx, r.ID, "another-connection", browser, now)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UseSSORequest(ctx, r.ID, c.ID, browser, now.Add(5*time.Minute))
	wantErr(t, err, store.ErrNotFound) // expired
	var wins int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.UseSSORequest(ctx, r.ID, c.ID, browser, now); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent uses of one request succeeded", wins)
	}
	if _, err := s.PendingSSORequest(ctx, r.ID, c.ID, browser, now); err != store.ErrNotFound {
		t.Fatalf("used request still pending: %v", err)
	}
	_, err = s.CreateSSORequest(ctx, store.SSORequest{ID: "id-1", ConnectionID: c.ID, OrgID: o.ID, Browser: browser, ExpiresAt: now.Add(time.Minute)})
	wantErr(t, err, store.ErrAlreadyExists)

	// A test's result.
	test, _ := s.CreateSSORequest(ctx, store.SSORequest{ID: "test-1", ConnectionID: c.ID, OrgID: o.ID, Browser: browser, Test: true,
		ExpiresAt: now.Add(time.Minute)})
	if err := s.SetSSORequestResult(ctx, test.ID, store.RawJSON(`{"matched":false}`)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.SetSSORequestResult(ctx, r.ID, store.RawJSON(`{}`)), store.ErrNotFound) // not a test
	if got, err := s.SSORequest(ctx, o.ID, test.ID); err != nil || string(got.Result) != `{"matched":false}` {
		t.Fatalf("test result %+v, %v", got, err)
	}
	if tests, err := s.SSOTests(ctx, o.ID, c.ID, 10); err != nil || len(tests) != 1 || tests[0].ID != test.ID {
		t.Fatalf("SSOTests = %+v, %v", tests, err)
	}
	if tests, _ := s.SSOTests(ctx, other.ID, c.ID, 10); len(tests) != 0 {
		t.Fatalf("another organization sees %d tests", len(tests))
	}
	_, err = s.SSORequest(ctx, other.ID, test.ID)
	wantErr(t, err, store.ErrNotFound)

	// The replay cache.
	if err := s.RecordAssertion(ctx, c.ID, "assertion-1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.RecordAssertion(ctx, c.ID, "assertion-1", now.Add(time.Minute)), store.ErrReplay)
	if err := s.RecordAssertion(ctx, "another-connection", "assertion-1", now.Add(time.Minute)); err != nil {
		t.Fatalf("the cache is per connection: %v", err)
	}

	// Using a request and recording its assertion is one transaction: a
	// replayed assertion leaves the request unused.
	r2, _ := s.CreateSSORequest(ctx, store.SSORequest{ID: "id-2", ConnectionID: c.ID, OrgID: o.ID, Browser: browser, ExpiresAt: now.Add(time.Minute)})
	_, err = s.UseSSORequestRecording(ctx, r2.ID, c.ID, browser, now, "assertion-1", now.Add(time.Minute))
	wantErr(t, err, store.ErrReplay)
	if _, err := s.PendingSSORequest(ctx, r2.ID, c.ID, browser, now); err != nil {
		t.Fatalf("a replay used the request: %v", err)
	}
	if _, err := s.UseSSORequestRecording(ctx, r2.ID, c.ID, browser, now, "assertion-2", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.RecordAssertion(ctx, c.ID, "assertion-2", now.Add(time.Minute)), store.ErrReplay)
	_, err = s.UseSSORequestRecording(ctx, r2.ID, c.ID, browser, now, "assertion-3", now.Add(time.Minute))
	wantErr(t, err, store.ErrNotFound)

	// Deleting the connection takes its requests and cache with it.
	wantErr(t, s.DeleteSSOConnection(ctx, other.ID, c.ID), store.ErrNotFound)
	if err := s.DeleteSSOConnection(ctx, o.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.SSORequest(ctx, o.ID, test.ID)
	wantErr(t, err, store.ErrNotFound)
	if err := s.RecordAssertion(ctx, c.ID, "assertion-1", now.Add(time.Minute)); err != nil {
		t.Fatalf("cache of a deleted connection kept: %v", err)
	}
}

func containsAny(s string, subs ...string) bool {
	return slices.ContainsFunc(subs, func(sub string) bool { return strings.Contains(s, sub) })
}
