package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/store"
)

func signingKey(id string, gen int64, from time.Time) store.SigningKey {
	return store.SigningKey{ID: id, Generation: gen, Algorithm: "RS256", PrivateKey: "v1.sealed-" + id,
		PublicKey: []byte("der-" + id), ActiveFrom: from}
}

func testSigningKeys(t *testing.T, s store.Store) {
	if ks, err := s.SigningKeys(ctx); err != nil || len(ks) != 0 {
		t.Fatalf("empty store: %v, %v", ks, err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC)
	first, err := s.AddSigningKey(ctx, signingKey("k1", 1, t0), t0.Add(time.Hour))
	if err != nil || first.CreatedAt.IsZero() || !first.ActiveFrom.Equal(t0.Truncate(time.Microsecond)) || first.RetireAfter != nil {
		t.Fatalf("first key %+v, %v", first, err)
	}
	// The same generation again: another instance made it first.
	_, err = s.AddSigningKey(ctx, signingKey("k1-bis", 1, t0), t0)
	wantErr(t, err, store.ErrAlreadyExists)
	for _, bad := range []store.SigningKey{
		{ID: "x", Generation: 2, Algorithm: "RS256", PublicKey: []byte("p"), ActiveFrom: t0}, // no private key
		{ID: "x", Generation: 0, Algorithm: "RS256", PrivateKey: "v1.x", PublicKey: []byte("p"), ActiveFrom: t0},
		{ID: "", Generation: 2, Algorithm: "RS256", PrivateKey: "v1.x", PublicKey: []byte("p"), ActiveFrom: t0},
	} {
		if _, err := s.AddSigningKey(ctx, bad, t0); err == nil {
			t.Errorf("stored an incomplete key %+v", bad)
		}
	}
	t1 := t0.Add(24 * time.Hour)
	retire := t1.Add(65 * time.Minute)
	second, err := s.AddSigningKey(ctx, signingKey("k2", 2, t1), retire)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := s.SigningKeys(ctx)
	if err != nil || len(ks) != 2 || ks[0].ID != second.ID || ks[1].ID != "k1" {
		t.Fatalf("keys %+v, %v", ks, err)
	}
	if ks[0].RetireAfter != nil || ks[1].RetireAfter == nil || !ks[1].RetireAfter.Equal(retire.Truncate(time.Microsecond)) {
		t.Fatalf("retirement: newest %v, previous %v; want nil and %v", ks[0].RetireAfter, ks[1].RetireAfter, retire)
	}
	if ks[1].PrivateKey != "v1.sealed-k1" || string(ks[1].PublicKey) != "der-k1" || ks[1].Algorithm != "RS256" || ks[1].Generation != 1 {
		t.Fatalf("read back %+v", ks[1])
	}
	// A third key leaves the second's retirement to it and keeps the
	// first's.
	if _, err := s.AddSigningKey(ctx, signingKey("k3", 3, t1.Add(time.Hour)), t1.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	ks, _ = s.SigningKeys(ctx)
	if !ks[2].RetireAfter.Equal(retire.Truncate(time.Microsecond)) || !ks[1].RetireAfter.Equal(t1.Add(3*time.Hour).Truncate(time.Microsecond)) {
		t.Fatalf("retirements after the third key: %v, %v", ks[1].RetireAfter, ks[2].RetireAfter)
	}
	// Audited in the server's log, with the actor, never the key.
	log, err := s.AuditLog(ctx, store.ServerAudit, store.AuditQuery{Action: store.AuditSigningKeyCreate})
	if err != nil || len(log) != 3 || log[0].TargetID != "k3" || log[0].ActorName != Actor.Name {
		t.Fatalf("audit %+v, %v", log, err)
	}
	for _, e := range log {
		if strings.Contains(string(e.After), "sealed") || strings.Contains(string(e.After), "der-") {
			t.Errorf("audit entry shows key material: %s", e.After)
		}
	}
}

// testSigningKeysConcurrent: of many writers making the same generation
// at once, exactly one succeeds; the others get ErrAlreadyExists.
func testSigningKeysConcurrent(t *testing.T, s store.Store) {
	const writers = 12
	for gen := int64(1); gen <= 2; gen++ {
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Go(func() {
				_, errs[i] = s.AddSigningKey(ctx, signingKey(fmt.Sprintf("g%d-w%d", gen, i), gen, time.Now()), time.Now().Add(time.Hour))
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrAlreadyExists):
				t.Fatalf("generation %d: %v", gen, err)
			}
		}
		if won != 1 {
			t.Fatalf("generation %d: %d writers won, want 1", gen, won)
		}
	}
	ks, _ := s.SigningKeys(ctx)
	if len(ks) != 2 || ks[1].RetireAfter == nil || ks[0].RetireAfter != nil {
		t.Fatalf("keys %+v", ks)
	}
}

func testOIDCClients(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "rp")
	other, _ := newOrg(t, s, "rp-other")
	conf := store.OIDCClient{ID: "c1", Name: "Billing", SecretHash: []byte("hash-1"),
		RedirectURIs: store.Strings{"https://billing.example/cb", "http://127.0.0.1:8000/cb"}, BackchannelLogoutURI: "https://billing.example/bcl",
		PostLogoutRedirectURIs: store.Strings{"https://billing.example/bye"}, OrgIDs: store.Strings{o.ID}, FirstParty: true}
	got, err := s.CreateOIDCClient(ctx, conf)
	if err != nil || got.CreatedAt.IsZero() {
		t.Fatalf("create %+v, %v", got, err)
	}
	pub, err := s.CreateOIDCClient(ctx, store.OIDCClient{ID: "c2", Name: "SPA", Public: true, RedirectURIs: store.Strings{"https://spa.example/"}, AllOrgs: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateOIDCClient(ctx, store.OIDCClient{ID: "c1", Name: "again", SecretHash: []byte("h"), RedirectURIs: store.Strings{"https://x.example/"}, AllOrgs: true})
	wantErr(t, err, store.ErrAlreadyExists)
	_, err = s.CreateOIDCClient(ctx, store.OIDCClient{ID: "c3", Name: "ghost org", SecretHash: []byte("h"), RedirectURIs: store.Strings{"https://x.example/"},
		OrgIDs: store.Strings{o.ID, "no-such-org"}})
	wantErr(t, err, store.ErrNotFound)
	for _, bad := range []store.OIDCClient{
		{ID: "b1", Name: "public with a secret", Public: true, SecretHash: []byte("h"), RedirectURIs: store.Strings{"https://x.example/"}, AllOrgs: true},
		{ID: "b2", Name: "confidential without", RedirectURIs: store.Strings{"https://x.example/"}, AllOrgs: true},
		{ID: "b3", Name: "no redirect", SecretHash: []byte("h"), AllOrgs: true},
		{ID: "b4", Name: "no orgs", SecretHash: []byte("h"), RedirectURIs: store.Strings{"https://x.example/"}},
	} {
		if _, err := s.CreateOIDCClient(ctx, bad); err == nil {
			t.Errorf("stored %q", bad.Name)
		}
	}
	read, err := s.OIDCClient(ctx, "c1")
	if err != nil || read.Name != "Billing" || read.Public || string(read.SecretHash) != "hash-1" || !slices.Equal(read.RedirectURIs, conf.RedirectURIs) ||
		read.BackchannelLogoutURI != conf.BackchannelLogoutURI || !slices.Equal(read.PostLogoutRedirectURIs, conf.PostLogoutRedirectURIs) || read.AllOrgs || !slices.Equal(read.OrgIDs, []string{o.ID}) || !read.FirstParty ||
		read.Disabled || !read.CreatedAt.Equal(got.CreatedAt) {
		t.Fatalf("read back %+v, %v", read, err)
	}
	if !read.Allows(o.ID) || read.Allows(other.ID) {
		t.Error("a client of one organization: Allows is wrong")
	}
	readPub, err := s.OIDCClient(ctx, pub.ID)
	if err != nil || !readPub.Public || len(readPub.SecretHash) != 0 || readPub.PostLogoutRedirectURIs == nil || len(readPub.PostLogoutRedirectURIs) != 0 || !readPub.AllOrgs || len(readPub.OrgIDs) != 0 || !readPub.Allows(other.ID) {
		t.Fatalf("public client read back %+v, %v", readPub, err)
	}
	list, err := s.OIDCClients(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "c1" || list[1].ID != "c2" {
		t.Fatalf("list %+v, %v", list, err)
	}
	_, err = s.OIDCClient(ctx, "c3")
	wantErr(t, err, store.ErrNotFound)

	// Updates: id and creation time stay; a refusal writes nothing.
	up, err := s.UpdateOIDCClient(ctx, "c1", func(c *store.OIDCClient) error {
		c.Disabled, c.ID, c.CreatedAt = true, "renamed", time.Time{}
		return nil
	})
	if err != nil || !up.Disabled || up.ID != "c1" || !up.CreatedAt.Equal(got.CreatedAt) || up.Allows(o.ID) {
		t.Fatalf("disable: %+v, %v", up, err)
	}
	boom := errors.New("boom")
	_, err = s.UpdateOIDCClient(ctx, "c1", func(c *store.OIDCClient) error { c.Name = "x"; return boom })
	wantErr(t, err, boom)
	_, err = s.UpdateOIDCClient(ctx, "c1", func(c *store.OIDCClient) error { c.OrgIDs = append(c.OrgIDs, "no-such-org"); return nil })
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UpdateOIDCClient(ctx, "c1", func(c *store.OIDCClient) error { c.SecretHash = nil; return nil }) // confidential without a secret
	if err == nil {
		t.Fatal("a confidential client lost its secret")
	}
	_, err = s.UpdateOIDCClient(ctx, "nope", func(*store.OIDCClient) error { return nil })
	wantErr(t, err, store.ErrNotFound)
	if again, _ := s.OIDCClient(ctx, "c1"); again.Name != "Billing" || !again.Disabled || len(again.OrgIDs) != 1 || string(again.SecretHash) != "hash-1" {
		t.Fatalf("after refused updates: %+v", again)
	}
	if _, err := s.UpdateOIDCClient(ctx, "c1", func(c *store.OIDCClient) error { c.SecretHash = []byte("hash-2"); return nil }); err != nil {
		t.Fatal(err)
	}
	if u, err := s.UpdateOIDCClient(ctx, "c1", func(c *store.OIDCClient) error {
		c.PostLogoutRedirectURIs = append(c.PostLogoutRedirectURIs, "https://billing.example/bye2")
		return nil
	}); err != nil || !slices.Equal(u.PostLogoutRedirectURIs, []string{"https://billing.example/bye", "https://billing.example/bye2"}) {
		t.Fatalf("post-logout URIs updated: %+v, %v", u, err)
	}
	if again, _ := s.OIDCClient(ctx, "c1"); len(again.PostLogoutRedirectURIs) != 2 {
		t.Fatalf("post-logout URIs read back: %+v", again.PostLogoutRedirectURIs)
	}
	upd, _ := s.AuditLog(ctx, store.ServerAudit, store.AuditQuery{TargetID: "c1", Action: store.AuditOIDCClientUpdate})
	if len(upd) != 3 || !strings.Contains(string(upd[0].After), "bye2") {
		t.Fatalf("post-logout update audit %+v", upd)
	}
	upd = upd[1:]
	if len(upd) != 2 || string(upd[1].Before) != `{"disabled":false}` || string(upd[1].After) != `{"disabled":true}` ||
		string(upd[0].After) != `{"secret":"new"}` {
		t.Fatalf("update audit %+v", upd)
	}
	// A refusing check sees the row and removes nothing.
	var seen store.OIDCClient
	wantErr(t, s.DeleteOIDCClient(ctx, "c1", func(c store.OIDCClient) error { seen = c; return boom }), boom)
	if _, err := s.OIDCClient(ctx, "c1"); err != nil || seen.Name != "Billing" {
		t.Fatalf("after a refused delete: %v (check saw %+v)", err, seen)
	}
	if err := s.DeleteOIDCClient(ctx, "c1", nil); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.DeleteOIDCClient(ctx, "c1", nil), store.ErrNotFound)
	_, err = s.OIDCClient(ctx, "c1")
	wantErr(t, err, store.ErrNotFound)
	log, err := s.AuditLog(ctx, store.ServerAudit, store.AuditQuery{TargetID: "c1"})
	if err != nil || len(log) != 5 || log[0].Action != store.AuditOIDCClientDelete || log[4].Action != store.AuditOIDCClientCreate {
		t.Fatalf("audit %+v, %v", log, err)
	}
	for _, e := range log {
		if strings.Contains(string(e.After)+string(e.Before), "hash-") {
			t.Errorf("audit shows the secret's hash: %+v", e)
		}
	}
	if !strings.Contains(string(log[4].After), "https://billing.example/cb") || !strings.Contains(string(log[4].After), `"postLogoutRedirectUris":["https://billing.example/bye"]`) {
		t.Errorf("audit of create lacks the redirect URIs: %s", log[4].After)
	}
	// The organization the client was restricted to has the same entries
	// in its log, without the other organizations' ids; the other
	// organization has none, and nothing of the refused writes is there.
	own, _ := s.AuditLog(ctx, o.ID, store.AuditQuery{Action: "oidc_client."})
	if len(own) != len(log) {
		t.Errorf("the owning organization's log has %d client entries, the server's %d: %+v", len(own), len(log), own)
	}
	for _, e := range own {
		if strings.Contains(string(e.Before)+string(e.After), o.ID) || strings.Contains(string(e.Before)+string(e.After), "hash-") {
			t.Errorf("the organization's entry shows organization ids or a hash: %s %s", e.Before, e.After)
		}
	}
	if len(own) > 0 && !strings.Contains(string(own[len(own)-1].After), `"otherOrganizations":false`) {
		t.Errorf("the organization's create entry: %s", own[len(own)-1].After)
	}
	if l, _ := s.AuditLog(ctx, other.ID, store.AuditQuery{Action: "oidc_client."}); len(l) != 0 {
		t.Errorf("another organization's log has client entries: %+v", l)
	}
}

// testOIDCClientsPerOrg: of concurrent registrations for an organization
// near MaxOIDCClientsPerOrg, exactly those that fit are stored; clients of
// every organization do not count, and an update that adds an organization
// is held to the same bound.
func testOIDCClientsPerOrg(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "rp-cap")
	other, _ := newOrg(t, s, "rp-cap-other")
	client := func(id string, orgs ...string) store.OIDCClient {
		return store.OIDCClient{ID: id, Name: id, SecretHash: []byte("h"), RedirectURIs: store.Strings{"https://x.example/cb"},
			OrgIDs: orgs, AllOrgs: len(orgs) == 0}
	}
	for i := range store.MaxOIDCClientsPerOrg - 2 {
		if _, err := s.CreateOIDCClient(ctx, client(fmt.Sprintf("cap-%d", i), o.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateOIDCClient(ctx, client("cap-all")); err != nil {
		t.Fatal(err)
	}
	const racers = 8
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.CreateOIDCClient(ctx, client(fmt.Sprintf("race-%d", i), other.ID, o.ID))
		}()
	}
	wg.Wait()
	stored := 0
	for _, err := range errs {
		switch {
		case err == nil:
			stored++
		case !errors.Is(err, store.ErrLimit):
			t.Errorf("racing registration: %v, want ErrLimit", err)
		}
	}
	if stored != 2 {
		t.Fatalf("%d racing registrations stored, want the 2 that fit", stored)
	}
	_, err := s.UpdateOIDCClient(ctx, "cap-all", func(c *store.OIDCClient) error {
		c.AllOrgs, c.OrgIDs = false, store.Strings{o.ID}
		return nil
	})
	wantErr(t, err, store.ErrLimit)
	// A full organization's clients still change.
	if _, err := s.UpdateOIDCClient(ctx, "cap-0", func(c *store.OIDCClient) error { c.Name = "renamed"; return nil }); err != nil {
		t.Fatal(err)
	}
	list, _ := s.OIDCClients(ctx)
	n := 0
	for _, c := range list {
		if slices.Contains(c.OrgIDs, o.ID) {
			n++
		}
	}
	if n != store.MaxOIDCClientsPerOrg {
		t.Fatalf("%d clients of the organization, want %d", n, store.MaxOIDCClientsPerOrg)
	}
}
