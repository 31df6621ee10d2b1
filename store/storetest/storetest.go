// Package storetest is the conformance suite every store.Store backend must
// pass, and the helpers that give tests a real SQLite or PostgreSQL store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"gatehouse/store"
)

// Run runs the conformance suite. newStore must return an empty store, a new
// one for each call.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Orgs", testOrgs},
		{"CreateOrgRollsBack", testCreateOrgRollsBack},
		{"RegisteredDomains", testRegisteredDomains},
		{"AdministratorCRUD", testAdministratorCRUD},
		{"AdministratorLanguage", testAdministratorLanguage},
		{"UsernameExactLookup", testUsernameExactLookup},
		{"UsernameCaseClash", testUsernameCaseClash},
		{"OrgIsolation", testOrgIsolation},
		{"UpdateRollsBack", testUpdateRollsBack},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"StaleVersionConflict", testStaleVersionConflict},
		{"BatchCreateAllOrNothing", testBatchCreateAllOrNothing},
		{"PagingStableWhileInserting", testPagingStableWhileInserting},
		{"Groups", testGroups},
		{"DeleteGroupCheck", testDeleteGroupCheck},
		{"GroupMembersAllOrNothing", testGroupMembersAllOrNothing},
		{"CreateGroupWithMembers", testCreateGroupWithMembers},
		{"ConcurrentMemberChanges", testConcurrentMemberChanges},
		{"LargeGroup", testLargeGroup},
		{"Emails", testEmails},
		{"SCIMRoles", testSCIMRoles},
		{"SCIMRolesTwoDesignated", testSCIMRolesTwoDesignated},
		{"SuperRule", testSuperRule},
		{"SuperRuleConcurrent", testSuperRuleConcurrent},
		{"PatchGroup", testPatchGroup},
		{"AdministratorGroups", testAdministratorGroups},
		{"RolesUnderConcurrency", testRolesUnderConcurrency},
		{"GroupCommit", testGroupCommit},
		{"CreatePaths", testCreatePaths},
		{"QueryAdministrators", testQueryAdministrators},
		{"QueryGroups", testQueryGroups},
		{"QueryTimes", testQueryTimes},
		{"QueryInvalid", testQueryInvalid},
		{"QueryUnicodeFold", testQueryUnicodeFold},
		{"QueryCursorPaging", testQueryCursorPaging},
		{"QueryAfterShift", testQueryAfterShift},
		{"SCIMTokens", testSCIMTokens},
		{"Invitations", testInvitations},
		{"Audit", testAudit},
		{"NoActor", testNoActor},
		{"SSO", testSSO},
		{"SSOLimits", testSSOLimits},
		{"Outbox", testOutbox},
		{"SignIn", testSignIn},
		{"BaseURL", testBaseURL},
		{"SigningKeys", testSigningKeys},
		{"SigningKeysConcurrent", testSigningKeysConcurrent},
		{"OIDCClients", testOIDCClients},
		{"OIDCFlow", testOIDCFlow},
		{"OIDCIntrospection", testOIDCIntrospection},
		{"OIDCDeprovision", testOIDCDeprovision},
		{"OIDCRefreshGrace", testOIDCRefreshGrace},
		{"OIDCClientsPerOrg", testOIDCClientsPerOrg},
		{"S3Export", testS3Export},
		{"SCIMLog", testSCIMLog},
		{"SCIMLogConcurrentPrune", testSCIMLogConcurrentPrune},
		{"LDAP", testLDAP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// Actor is the actor of the writes a test makes on a store directly,
// without the admin, scim or sso code that names the real one.
var Actor = store.Actor{Kind: store.ActorOperator, Name: "storetest"}

// Context returns parent carrying Actor: the context of a test's direct
// store writes (an audited write without an actor is refused).
func Context(parent context.Context) context.Context {
	return store.WithActor(parent, Actor)
}

// ctx is the context of the suite's writes.
var ctx = Context(context.Background())

// newOrg creates an organization with a Pending super administrator "owner".
func newOrg(t *testing.T, s store.Store, slug string) (store.Org, store.Administrator) {
	t.Helper()
	o, a, err := s.CreateOrg(ctx, store.NewOrg{
		Org:     store.Org{Slug: slug, Name: "Org " + slug},
		Domains: []string{slug + ".example"},
		Owner: store.Administrator{UserName: "owner", Email: "owner@" + slug + ".example", GivenName: "Olive", FamilyName: "Owner",
			Role: store.RoleSuperAdministrator, Status: store.StatusPending},
		Invitation: store.Invitation{Hash: []byte("hash-" + slug), ExpiresAt: time.Now().Add(time.Hour)},
	})
	if err != nil {
		t.Fatalf("CreateOrg(%s): %v", slug, err)
	}
	return o, a
}

func admin(org, username string) store.Administrator {
	return store.Administrator{OrgID: org, UserName: username, Email: username + "@example.com",
		GivenName: "Given", FamilyName: "Family", Role: store.RoleAdministrator, Status: store.StatusActive}
}

func mustCreate(t *testing.T, s store.Store, a store.Administrator) store.Administrator {
	t.Helper()
	got, err := s.CreateAdministrator(ctx, a)
	if err != nil {
		t.Fatalf("CreateAdministrator(%q): %v", a.UserName, err)
	}
	return got
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func testOrgs(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "acme")
	if o.ID == "" || o.Version != 1 || o.SCIMEnabled || o.CreatedAt.IsZero() {
		t.Fatalf("created org = %+v", o)
	}
	if owner.Role != store.RoleSuperAdministrator || owner.Status != store.StatusPending || owner.OrgID != o.ID {
		t.Fatalf("owner = %+v", owner)
	}
	for _, get := range []func() (store.Org, error){
		func() (store.Org, error) { return s.Org(ctx, o.ID) },
		func() (store.Org, error) { return s.OrgBySlug(ctx, "acme") },
	} {
		got, err := get()
		if err != nil || !sameOrg(got, o) {
			t.Fatalf("read org = %+v, %v; want %+v", got, err, o)
		}
	}
	_, err := s.OrgBySlug(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	_, _, err = s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "acme", Name: "Again"},
		Owner: store.Administrator{UserName: "x", Role: store.RoleSuperAdministrator, Status: store.StatusPending}})
	wantErr(t, err, store.ErrAlreadyExists)
	var exists *store.ExistsError
	if !errors.As(err, &exists) || exists.Existing != "acme" {
		t.Fatalf("duplicate slug error = %v, want one naming acme", err)
	}

	up, err := s.UpdateOrg(ctx, o.ID, func(o *store.Org) error {
		o.SCIMEnabled = true
		o.Slug = "renamed" // immutable: restored
		return nil
	})
	if err != nil || !up.SCIMEnabled || up.Version != 2 || up.Slug != "acme" {
		t.Fatalf("UpdateOrg = %+v, %v", up, err)
	}
	if got, _ := s.Org(ctx, o.ID); !sameOrg(got, up) {
		t.Fatalf("after update read %+v, want %+v", got, up)
	}
	_, err = s.UpdateOrg(ctx, "missing", func(*store.Org) error { return nil })
	wantErr(t, err, store.ErrNotFound)
}

// sameOrg compares records field by field; times are compared as instants
// (drivers may return them in another time zone).
func sameOrg(a, b store.Org) bool {
	return a.ID == b.ID && a.Slug == b.Slug && a.Name == b.Name && a.SCIMEnabled == b.SCIMEnabled &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && a.Version == b.Version
}

func testCreateOrgRollsBack(t *testing.T, s store.Store) {
	// A duplicate domain fails the transaction after the org row was written.
	_, _, err := s.CreateOrg(ctx, store.NewOrg{
		Org:     store.Org{Slug: "half", Name: "Half"},
		Domains: []string{"a.example", "A.example"},
		Owner:   store.Administrator{UserName: "o", Role: store.RoleSuperAdministrator, Status: store.StatusPending},
	})
	wantErr(t, err, store.ErrAlreadyExists)
	// An invalid owner fails it after the domains were written.
	_, _, err = s.CreateOrg(ctx, store.NewOrg{
		Org:     store.Org{Slug: "half", Name: "Half"},
		Domains: []string{"a.example"},
		Owner:   store.Administrator{UserName: "o", Role: "Overlord", Status: store.StatusPending},
	})
	if err == nil {
		t.Fatal("CreateOrg with an invalid role succeeded")
	}
	_, err = s.OrgBySlug(ctx, "half")
	wantErr(t, err, store.ErrNotFound)
	// The slug is free again, and so is the domain.
	o, _ := newOrg(t, s, "half")
	if ds, _ := s.RegisteredDomains(ctx, o.ID); len(ds) != 1 || ds[0].Domain != "half.example" {
		t.Fatalf("domains after rollback = %+v", ds)
	}
}

func testRegisteredDomains(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "dom")
	if err := s.AddRegisteredDomain(ctx, o.ID, "Example.COM"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.AddRegisteredDomain(ctx, o.ID, "example.com"), store.ErrAlreadyExists)
	wantErr(t, s.AddRegisteredDomain(ctx, "no-such-org", "x.example"), store.ErrNotFound)
	ds, err := s.RegisteredDomains(ctx, o.ID)
	if err != nil || len(ds) != 2 || ds[0].Domain != "dom.example" || ds[1].Domain != "example.com" {
		t.Fatalf("RegisteredDomains = %+v, %v", ds, err)
	}
	if err := s.RemoveRegisteredDomain(ctx, o.ID, "EXAMPLE.com"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.RemoveRegisteredDomain(ctx, o.ID, "example.com"), store.ErrNotFound)
	if ds, _ := s.RegisteredDomains(ctx, o.ID); len(ds) != 1 {
		t.Fatalf("after remove: %+v", ds)
	}
}

func testAdministratorCRUD(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "crud")
	login := time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC)
	in := admin(o.ID, "Jane.Doe")
	in.ExternalID, in.Phone, in.SCIMManaged, in.LastLoginAt = "ext-1", "+1 555 0100", true, &login
	in.Attributes = store.RawJSON(`{"addresses":[{"type":"work","locality":"Zürich"}],  "title":"CTO"}`)
	a := mustCreate(t, s, in)
	if a.ID == "" || a.Version != 1 || a.CreatedAt.IsZero() || !a.CreatedAt.Equal(a.UpdatedAt) {
		t.Fatalf("created = %+v", a)
	}
	got, err := s.Administrator(ctx, o.ID, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Attributes, in.Attributes) {
		t.Fatalf("attributes = %s, want them exactly as written: %s", got.Attributes, in.Attributes)
	}
	if got.LastLoginAt == nil || !got.LastLoginAt.Equal(login) || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("times = %v %v, want %v %v", got.LastLoginAt, got.CreatedAt, login, a.CreatedAt)
	}
	got.Attributes, a.Attributes = nil, nil
	got.LastLoginAt, a.LastLoginAt = nil, nil
	if fmt.Sprint(got) != fmt.Sprint(a) {
		t.Fatalf("read back %+v\nwant       %+v", got, a)
	}

	up, err := s.UpdateAdministrator(ctx, o.ID, a.ID, store.FlagMissingSuper, func(x *store.Administrator) error {
		x.FamilyName, x.Status, x.LastLoginAt, x.Attributes = "Smith", store.StatusDeactivated, nil, nil
		x.ID, x.OrgID, x.Version = "forged", "forged", 99 // not the caller's to change
		return nil
	})
	if err != nil || up.ID != a.ID || up.OrgID != o.ID || up.Version != 2 || up.FamilyName != "Smith" {
		t.Fatalf("UpdateAdministrator = %+v, %v", up, err)
	}
	got, _ = s.Administrator(ctx, o.ID, a.ID)
	if got.Status != store.StatusDeactivated || got.LastLoginAt != nil || got.Attributes != nil || got.Version != 2 {
		t.Fatalf("after update: %+v", got)
	}
	if err := s.DeleteAdministrator(ctx, o.ID, a.ID, store.FlagMissingSuper, nil); err != nil {
		t.Fatal(err)
	}
	_, err = s.Administrator(ctx, o.ID, a.ID)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteAdministrator(ctx, o.ID, a.ID, store.FlagMissingSuper, nil), store.ErrNotFound)
	if _, total, _ := listAdministrators(s, o.ID, store.Page{}); total != 1 {
		t.Fatalf("total after deleting = %d, want 1 (the owner)", total)
	}
	_, err = s.UpdateAdministrator(ctx, o.ID, a.ID, store.FlagMissingSuper, func(*store.Administrator) error { return nil })
	wantErr(t, err, store.ErrNotFound)
	_, err = s.CreateAdministrator(ctx, admin("no-such-org", "x"))
	wantErr(t, err, store.ErrNotFound)
}

func testUsernameExactLookup(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "exact")
	jdoe := mustCreate(t, s, admin(o.ID, "jdoe"))
	got, err := s.AdministratorByUsername(ctx, o.ID, "jdoe")
	if err != nil || got.ID != jdoe.ID {
		t.Fatalf("exact lookup = %+v, %v", got, err)
	}
	for _, near := range []string{"JDoe", "JDOE", "jdoe ", " jdoe", "jdoe\x00", "jdöe"} {
		_, err := s.AdministratorByUsername(ctx, o.ID, near)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AdministratorByUsername(%q) = %v, want ErrNotFound (usernames are case-sensitive)", near, err)
		}
	}
}

func testUsernameCaseClash(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "clash")
	for _, tc := range []struct{ stored, clashing string }{
		{"jdoe", "JDoe"},
		{"straße", "STRASSE"},                           // full case folding: ß folds to ss
		{"kelvin", "\u212Aelvin"},                       // KELVIN SIGN folds to k
		{"ren\u00e9", "RENE\u0301"},                     // composed é and decomposed E+acute
		{"ΣΊΣΥΦΟΣ", "σίσυφος"},                          // final sigma
		{"\u0130stanbul-admin", "i\u0307stanbul-admin"}, // dotted capital I folds to i + combining dot
	} {
		mustCreate(t, s, admin(o.ID, tc.stored))
		_, err := s.CreateAdministrator(ctx, admin(o.ID, tc.clashing))
		var exists *store.ExistsError
		if !errors.As(err, &exists) || !errors.Is(err, store.ErrAlreadyExists) || exists.Existing != tc.stored {
			t.Errorf("create %q after %q: err = %v, want ExistsError naming %q", tc.clashing, tc.stored, err, tc.stored)
		}
		if _, err := s.AdministratorByUsername(ctx, o.ID, tc.clashing); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%q was written despite the clash: %v", tc.clashing, err)
		}
	}
	// Renaming into a clash is refused too, and names the holder.
	other := mustCreate(t, s, admin(o.ID, "other"))
	_, err := s.UpdateAdministrator(ctx, o.ID, other.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.UserName = "JDOE"; return nil })
	var exists *store.ExistsError
	if !errors.As(err, &exists) || exists.Existing != "jdoe" {
		t.Fatalf("rename into clash: %v", err)
	}
	if got, _ := s.Administrator(ctx, o.ID, other.ID); got.UserName != "other" || got.Version != 1 {
		t.Fatalf("after refused rename: %+v", got)
	}
	// Changing only the case of one's own username is allowed.
	up, err := s.UpdateAdministrator(ctx, o.ID, other.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.UserName = "Other"; return nil })
	if err != nil || up.UserName != "Other" {
		t.Fatalf("own case change: %+v, %v", up, err)
	}
}

func testOrgIsolation(t *testing.T, s store.Store) {
	a, _ := newOrg(t, s, "org-a")
	b, _ := newOrg(t, s, "org-b")
	inA := mustCreate(t, s, admin(a.ID, "shared-name"))
	mustCreate(t, s, admin(b.ID, "SHARED-NAME")) // uniqueness is per organization
	if _, err := s.Administrator(ctx, b.ID, inA.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("org B read org A's administrator: %v", err)
	}
	if _, err := s.AdministratorByUsername(ctx, b.ID, "shared-name"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("org B found org A's username: %v", err)
	}
	_, err := s.UpdateAdministrator(ctx, b.ID, inA.ID, store.FlagMissingSuper, func(*store.Administrator) error { return nil })
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteAdministrator(ctx, b.ID, inA.ID, store.FlagMissingSuper, nil), store.ErrNotFound)
	_, total, err := listAdministrators(s, b.ID, store.Page{Limit: 10})
	if err != nil || total != 2 {
		t.Fatalf("org B total = %d, %v; want 2 (owner and SHARED-NAME)", total, err)
	}
}

func testUpdateRollsBack(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "rollback")
	a := mustCreate(t, s, admin(o.ID, "ann"))
	boom := errors.New("refused by rule")
	_, err := s.UpdateAdministrator(ctx, o.ID, a.ID, store.FlagMissingSuper, func(x *store.Administrator) error {
		x.FamilyName = "Changed"
		return boom
	})
	wantErr(t, err, boom)
	// An invalid record fails the write itself.
	_, err = s.UpdateAdministrator(ctx, o.ID, a.ID, store.FlagMissingSuper, func(x *store.Administrator) error {
		x.FamilyName, x.Role = "Changed", "Emperor"
		return nil
	})
	if err == nil {
		t.Fatal("update to an invalid role succeeded")
	}
	got, _ := s.Administrator(ctx, o.ID, a.ID)
	if got.FamilyName != "Family" || got.Version != 1 || got.Role != store.RoleAdministrator {
		t.Fatalf("after refused updates: %+v", got)
	}
}

func testConcurrentUpdates(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "race")
	a := mustCreate(t, s, admin(o.ID, "counter"))
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, err := s.UpdateAdministrator(ctx, o.ID, a.ID, store.FlagMissingSuper, func(x *store.Administrator) error {
					n, _ := strconv.Atoi(x.Phone)
					x.Phone = strconv.Itoa(n + 1)
					x.GivenName = fmt.Sprintf("worker-%d", w)
					return nil
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent update: %v", err)
	}
	got, _ := s.Administrator(ctx, o.ID, a.ID)
	if got.Phone != strconv.Itoa(workers*each) || got.Version != 1+workers*each {
		t.Fatalf("after %d concurrent increments: counter %s, version %d", workers*each, got.Phone, got.Version)
	}
}

func testStaleVersionConflict(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "stale")
	a := mustCreate(t, s, admin(o.ID, "bob"))
	ifMatch := func(v int64) func(*store.Administrator) error {
		return func(x *store.Administrator) error {
			if x.Version != v {
				return store.ErrConflict
			}
			x.FamilyName = fmt.Sprintf("v%d", v)
			return nil
		}
	}
	if _, err := s.UpdateAdministrator(ctx, o.ID, a.ID, store.FlagMissingSuper, ifMatch(1)); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpdateAdministrator(ctx, o.ID, a.ID, store.FlagMissingSuper, ifMatch(1)) // a second writer that read version 1
	wantErr(t, err, store.ErrConflict)
	if got, _ := s.Administrator(ctx, o.ID, a.ID); got.FamilyName != "v1" || got.Version != 2 {
		t.Fatalf("stale write changed the record: %+v", got)
	}
}

func testBatchCreateAllOrNothing(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "batch")
	mustCreate(t, s, admin(o.ID, "Taken"))
	var batch []store.Administrator
	for i := range 1200 { // more than one multi-row statement
		batch = append(batch, admin(o.ID, fmt.Sprintf("user%04d", i)))
	}
	batch[1100].UserName = "TAKEN"
	err := CreateAdministrators(s, batch)
	var exists *store.ExistsError
	if !errors.As(err, &exists) || exists.Existing != "Taken" {
		t.Fatalf("batch with a clash: %v, want ExistsError naming Taken", err)
	}
	batch[1100].UserName = "USER0003" // clashes inside the batch
	err = CreateAdministrators(s, batch)
	if !errors.As(err, &exists) || exists.Existing != "user0003" {
		t.Fatalf("batch with an inner clash: %v, want ExistsError naming user0003", err)
	}
	if _, total, _ := listAdministrators(s, o.ID, store.Page{}); total != 2 {
		t.Fatalf("failed batches left %d administrators, want 2", total)
	}
	batch[1100].UserName = "user1100"
	if err := CreateAdministrators(s, batch); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := listAdministrators(s, o.ID, store.Page{}); total != 1202 {
		t.Fatalf("total = %d, want 1202", total)
	}
}

func testPagingStableWhileInserting(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "paging")
	var batch []store.Administrator
	for i := range 349 {
		batch = append(batch, admin(o.ID, fmt.Sprintf("p%03d", i)))
	}
	if err := CreateAdministrators(s, batch); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var order []string
	for off := 0; ; off += 50 {
		page, total, err := listAdministrators(s, o.ID, store.Page{Offset: off, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		if total < 350 {
			t.Fatalf("total = %d, want >= 350", total)
		}
		for _, a := range page {
			if seen[a.ID] {
				t.Fatalf("%s appears on two pages", a.UserName)
			}
			seen[a.ID] = true
			order = append(order, a.UserName)
		}
		if len(page) < 50 {
			break
		}
		// Another writer inserts between page requests.
		mustCreate(t, s, admin(o.ID, fmt.Sprintf("late%03d", off)))
	}
	if order[0] != owner.UserName {
		t.Fatalf("first listed = %s, want the owner (creation order)", order[0])
	}
	for i := range 349 {
		if want := fmt.Sprintf("p%03d", i); order[i+1] != want {
			t.Fatalf("position %d = %s, want %s: the order moved", i+1, order[i+1], want)
		}
	}
	_, total, _ := listAdministrators(s, o.ID, store.Page{})
	if len(seen) != total {
		t.Fatalf("paged through %d, total %d: rows were skipped", len(seen), total)
	}
	if _, _, err := listAdministrators(s, o.ID, store.Page{Offset: -1, Limit: 5}); err == nil {
		t.Fatal("a negative offset was accepted")
	}
}

func testGroups(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "groups")
	other, _ := newOrg(t, s, "groups-other")
	g, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Admins", ExternalID: "okta-1",
		Attributes: store.RawJSON(`{"x":1}`)})
	if err != nil || g.Version != 1 {
		t.Fatalf("CreateGroup = %+v, %v", g, err)
	}
	if _, err := s.Group(ctx, other.ID, g.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("group visible from another org: %v", err)
	}
	a1 := mustCreate(t, s, admin(o.ID, "m1"))
	a2 := mustCreate(t, s, admin(o.ID, "m2"))

	added, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: []string{a1.ID, a2.ID, a1.ID}})
	if err != nil || added.Version != 2 || memberTotal(t, s, o.ID, g.ID) != 2 {
		t.Fatalf("adding two members (one twice) = %+v, %v", added, err)
	}
	// Re-adding a member changes nothing, not even the version.
	if again, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: []string{a2.ID}}); err != nil || again.Version != 2 {
		t.Fatalf("re-adding a member = version %d, %v", again.Version, err)
	}
	got, _ := s.Group(ctx, o.ID, g.ID)
	if got.Version != 2 {
		t.Fatalf("version after one effective change = %d, want 2", got.Version)
	}
	ms, total, err := s.GroupMembers(ctx, o.ID, g.ID, store.Page{Limit: 10})
	if err != nil || total != 2 || len(ms) != 2 || ms[0].AdministratorID != a1.ID || ms[1].UserName != "m2" {
		t.Fatalf("GroupMembers = %+v, %d, %v", ms, total, err)
	}
	if _, gs, err := s.AdministratorWithGroups(ctx, o.ID, a1.ID); err != nil || len(gs) != 1 || gs[0].ID != g.ID {
		t.Fatalf("AdministratorWithGroups = %+v, %v", gs, err)
	}

	renamed, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Update: func(g *store.Group) error { g.DisplayName = "Super Admins"; return nil }})
	if err != nil || renamed.DisplayName != "Super Admins" || renamed.Version != 3 {
		t.Fatalf("renaming = %+v, %v", renamed, err)
	}
	if same, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Update: func(g *store.Group) error { return nil }}); err != nil || same.Version != 3 {
		t.Fatalf("an update that changes nothing = version %d, %v; want 3", same.Version, err)
	}
	removed, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Remove: []string{a1.ID, "not-a-member"}})
	if err != nil || removed.Version != 4 || memberTotal(t, s, o.ID, g.ID) != 1 {
		t.Fatalf("removing a member and an absent one = %+v, %v", removed, err)
	}
	// Deleting an administrator drops its memberships.
	if err := s.DeleteAdministrator(ctx, o.ID, a2.ID, store.FlagMissingSuper, nil); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := s.GroupMembers(ctx, o.ID, g.ID, store.Page{}); total != 0 {
		t.Fatalf("members after deleting the last one: %d", total)
	}
	// Member changes on another org's group are not found.
	_, err = s.PatchGroup(ctx, other.ID, g.ID, store.GroupPatch{Add: []string{owner.ID}})
	wantErr(t, err, store.ErrNotFound)

	_, gtotal, _ := listGroups(s, o.ID, store.Page{Limit: 10})
	if gtotal != 1 {
		t.Fatalf("QueryGroups total = %d", gtotal)
	}
	if err := s.DeleteGroup(ctx, o.ID, g.ID, nil); err != nil {
		t.Fatal(err)
	}
	_, err = s.Group(ctx, o.ID, g.ID)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteGroup(ctx, o.ID, g.ID, nil), store.ErrNotFound)
	if _, gtotal, _ := listGroups(s, o.ID, store.Page{}); gtotal != 0 {
		t.Fatalf("QueryGroups total after delete = %d", gtotal)
	}
	_, _, err = s.GroupMembers(ctx, o.ID, g.ID, store.Page{Limit: 1})
	wantErr(t, err, store.ErrNotFound)
	if _, gs, _ := s.AdministratorWithGroups(ctx, o.ID, owner.ID); len(gs) != 0 {
		t.Fatalf("groups of owner after delete: %+v", gs)
	}
}

func testGroupMembersAllOrNothing(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "members")
	other, stranger := newOrg(t, s, "members-other")
	_ = other
	g, _ := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "G"})
	var ids []string
	for i := range 700 { // spans two statements
		ids = append(ids, mustCreate(t, s, admin(o.ID, fmt.Sprintf("u%d", i))).ID)
	}
	for name, bad := range map[string]string{"unknown id": "no-such-admin", "another org's administrator": stranger.ID} {
		_, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: append(append([]string{}, ids...), bad)})
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: err = %v, want ErrNotFound", name, err)
		}
		if _, total, _ := s.GroupMembers(ctx, o.ID, g.ID, store.Page{}); total != 0 {
			t.Fatalf("%s: %d members were added by a refused request", name, total)
		}
	}
	if got, _ := s.Group(ctx, o.ID, g.ID); got.Version != 1 {
		t.Fatalf("refused member changes bumped the version to %d", got.Version)
	}
}

// testCreateGroupWithMembers: a group and its members are one write. A
// refused member leaves no group (a retried creation then makes exactly
// one), and a group created with the designated name makes its
// SCIM-managed members Super Administrators in the same write.
func testCreateGroupWithMembers(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "create-members")
	_, stranger := newOrg(t, s, "create-members-other")
	var ids []string
	for i := range 700 { // spans two statements
		ids = append(ids, mustCreate(t, s, admin(o.ID, fmt.Sprintf("u%d", i))).ID)
	}
	groups := func() int {
		t.Helper()
		_, total, err := listGroups(s, o.ID, store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return total
	}
	for name, bad := range map[string]string{"unknown id": "no-such-admin", "another org's administrator": stranger.ID} {
		_, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Team"}, append(append([]string{}, ids...), bad)...)
		if !errors.Is(err, store.ErrUnknownMember) || !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: err = %v, want ErrUnknownMember", name, err)
		}
		if n := groups(); n != 0 {
			t.Fatalf("%s: a refused creation left %d groups", name, n)
		}
		res, err := s.QueryGroups(ctx, o.ID, store.Query{Page: store.Page{Limit: 10}})
		if err != nil || res.Total != 0 || len(res.Items) != 0 {
			t.Fatalf("%s: QueryGroups after a refused creation = %d groups, %v", name, res.Total, err)
		}
	}
	g, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Team"}, append(ids, ids[0])...)
	if err != nil || g.Version != 1 {
		t.Fatalf("CreateGroup with members = %+v, %v", g, err)
	}
	ms, total, err := s.GroupMembers(ctx, o.ID, g.ID, store.Page{Limit: 1000})
	if err != nil || total != len(ids) || len(ms) != len(ids) || ms[0].AdministratorID != ids[0] || ms[699].AdministratorID != ids[699] {
		t.Fatalf("members = %d (total %d), %v", len(ms), total, err)
	}
	if n := groups(); n != 1 {
		t.Fatalf("groups after one creation = %d", n)
	}

	// The designated name: roles follow in the same write.
	if _, err := s.UpdateOrg(ctx, o.ID, func(o *store.Org) error { o.SuperAdminGroup = "Supers"; return nil }); err != nil {
		t.Fatal(err)
	}
	scim := admin(o.ID, "idp-user")
	scim.SCIMManaged = true
	u := mustCreate(t, s, scim)
	if u.Role != store.RoleAdministrator {
		t.Fatalf("SCIM user starts as %q", u.Role)
	}
	if _, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Supers"}, u.ID, "no-such-admin"); !errors.Is(err, store.ErrUnknownMember) {
		t.Fatalf("designated group with an unknown member: %v", err)
	}
	if got, _ := s.Administrator(ctx, o.ID, u.ID); got.Role != store.RoleAdministrator || got.Version != u.Version {
		t.Fatalf("a refused designated group changed the role: %q version %d", got.Role, got.Version)
	}
	if _, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Supers"}, u.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Administrator(ctx, o.ID, u.ID); got.Role != store.RoleSuperAdministrator || got.Version != u.Version+1 {
		t.Fatalf("member of a new designated group is %q version %d, want Super Administrator version %d", got.Role, got.Version, u.Version+1)
	}
}

func testConcurrentMemberChanges(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "concurrent-members")
	g, _ := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "G"})
	const n = 40
	ids := make([]string, n)
	for i := range ids {
		ids[i] = mustCreate(t, s, admin(o.ID, fmt.Sprintf("c%d", i))).ID
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: []string{id}}); err != nil {
				t.Errorf("concurrent add: %v", err)
			}
		}()
	}
	wg.Wait()
	got, _ := s.Group(ctx, o.ID, g.ID)
	_, total, _ := s.GroupMembers(ctx, o.ID, g.ID, store.Page{})
	if total != n || got.Version != 1+n {
		t.Fatalf("after %d concurrent adds: %d members, version %d", n, total, got.Version)
	}
}

func testLargeGroup(t *testing.T, s store.Store) {
	if testing.Short() {
		t.Skip("100,000 members: not in -short")
	}
	o, _ := newOrg(t, s, "large")
	const size = 100_000
	ids := SeedAdministrators(t, s, o.ID, "big", size)
	g, _ := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Everyone"})
	for start := 0; start < size; start += 10_000 {
		if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: ids[start : start+10_000]}); err != nil {
			t.Fatalf("adding members %d..: %v", start, err)
		}
	}
	if n := memberTotal(t, s, o.ID, g.ID); n != size {
		t.Fatalf("%d members, want %d", n, size)
	}
	extra := mustCreate(t, s, admin(o.ID, "extra"))
	if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: []string{extra.ID}}); err != nil || memberTotal(t, s, o.ID, g.ID) != size+1 {
		t.Fatalf("one more member: %v", err)
	}
	if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Remove: []string{ids[50_000]}}); err != nil || memberTotal(t, s, o.ID, g.ID) != size {
		t.Fatalf("remove one member: %v", err)
	}
	ms, total, err := s.GroupMembers(ctx, o.ID, g.ID, store.Page{Offset: size - 5, Limit: 10})
	if err != nil || total != size || len(ms) != 5 || ms[4].AdministratorID != extra.ID {
		t.Fatalf("last page of members: %d members, total %d, %v", len(ms), total, err)
	}
	if _, gs, _ := s.AdministratorWithGroups(ctx, o.ID, ids[50_000]); len(gs) != 0 {
		t.Fatalf("removed member still in %d groups", len(gs))
	}
}

// SeedAdministrators inserts n active administrators named prefix-0 ..
// prefix-(n-1) in large batches and returns their ids in order.
func SeedAdministrators(tb testing.TB, s store.Store, org, prefix string, n int) []string {
	tb.Helper()
	ids := make([]string, 0, n)
	for start := 0; start < n; start += 5000 {
		batch := make([]store.Administrator, 0, 5000)
		for i := start; i < min(n, start+5000); i++ {
			a := admin(org, fmt.Sprintf("%s-%d", prefix, i))
			a.ID = fmt.Sprintf("%s-%s-%08d", prefix, org, i)
			batch = append(batch, a)
			ids = append(ids, a.ID)
		}
		if err := CreateAdministrators(s, batch); err != nil {
			tb.Fatalf("seeding administrators: %v", err)
		}
	}
	return ids
}

func testSCIMTokens(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "tokens")
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	t1, err := s.CreateSCIMToken(ctx, store.SCIMToken{OrgID: o.ID, Prefix: "gh_scim_aaaa", Hash: []byte("h1"), Description: "Okta"})
	if err != nil {
		t.Fatal(err)
	}
	t2, err := s.CreateSCIMToken(ctx, store.SCIMToken{OrgID: o.ID, Prefix: "gh_scim_bbbb", Hash: []byte("h2"), ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateSCIMToken(ctx, store.SCIMToken{OrgID: o.ID, Prefix: "gh_scim_cccc", Hash: []byte("h1")})
	wantErr(t, err, store.ErrAlreadyExists)
	got, err := s.SCIMTokenByHash(ctx, []byte("h2"))
	if err != nil || got.ID != t2.ID || got.OrgID != o.ID || got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("SCIMTokenByHash = %+v, %v", got, err)
	}
	_, err = s.SCIMTokenByHash(ctx, []byte("h3"))
	wantErr(t, err, store.ErrNotFound)
	used := time.Now()
	if err := s.TouchSCIMToken(ctx, t1.ID, used); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSCIMToken(ctx, o.ID, t1.ID, used); err != nil {
		t.Fatal(err)
	}
	got, _ = s.SCIMTokenByHash(ctx, []byte("h1"))
	if got.LastUsedAt == nil || got.RevokedAt == nil || got.Usable(time.Now()) {
		t.Fatalf("after touch and revoke: %+v", got)
	}
	if !t2.Usable(time.Now()) || t2.Usable(exp.Add(time.Second)) {
		t.Fatal("Usable ignores the expiry")
	}
	other, _ := newOrg(t, s, "tokens-other")
	wantErr(t, s.RevokeSCIMToken(ctx, other.ID, t2.ID, used), store.ErrNotFound)
	ts, err := s.SCIMTokens(ctx, o.ID)
	if err != nil || len(ts) != 2 {
		t.Fatalf("SCIMTokens = %+v, %v", ts, err)
	}
	if ts, _ := s.SCIMTokens(ctx, other.ID); len(ts) != 0 {
		t.Fatalf("other org sees %d tokens", len(ts))
	}
}

func testInvitations(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "invites")
	inv, err := s.InvitationByHash(ctx, []byte("hash-invites"))
	if err != nil || inv.AdministratorID != owner.ID || inv.OrgID != o.ID || inv.UsedAt != nil {
		t.Fatalf("owner's invitation = %+v, %v", inv, err)
	}
	a := mustCreate(t, s, admin(o.ID, "invitee"))
	exp := time.Now().Add(48 * time.Hour)
	if err := s.CreateInvitation(ctx, store.Invitation{Hash: []byte("second"), OrgID: o.ID, AdministratorID: a.ID, ExpiresAt: exp}, nil); err != nil {
		t.Fatal(err)
	}
	other, _ := newOrg(t, s, "invites-other")
	err = s.CreateInvitation(ctx, store.Invitation{Hash: []byte("third"), OrgID: other.ID, AdministratorID: a.ID, ExpiresAt: exp}, nil)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.InvitationByHash(ctx, []byte("third"))
	wantErr(t, err, store.ErrNotFound)
}

// testDeleteGroupCheck: DeleteGroup's check sees the locked group as it is
// inside the delete's transaction; its error leaves the group, its members
// and the count as they were. Racing an update, a check on the version
// before it never lets both succeed.
func testDeleteGroupCheck(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "delete-group-check")
	g, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "G"}, owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g, err = s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Update: func(g *store.Group) error { g.DisplayName = "G2"; return nil }}); err != nil {
		t.Fatal(err)
	}
	stale := errors.New("stale")
	var seen store.Group
	wantErr(t, s.DeleteGroup(ctx, o.ID, g.ID, func(locked store.Group) error { seen = locked; return stale }), stale)
	if seen.ID != g.ID || seen.Version != g.Version || seen.DisplayName != "G2" {
		t.Fatalf("check saw %+v, want version %d of %s", seen, g.Version, g.ID)
	}
	if _, total, err := s.GroupMembers(ctx, o.ID, g.ID, store.Page{}); err != nil || total != 1 {
		t.Fatalf("refused delete: members %d, %v", total, err)
	}
	if _, total, _ := listGroups(s, o.ID, store.Page{}); total != 1 {
		t.Fatalf("refused delete: %d groups", total)
	}
	called := false
	wantErr(t, s.DeleteGroup(ctx, "no-such-org", g.ID, func(store.Group) error { called = true; return nil }), store.ErrNotFound)
	if called {
		t.Fatal("check called for another organization's group")
	}

	for round := range 10 {
		g, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: fmt.Sprintf("race%d", round)})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var delErr, updErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			delErr = s.DeleteGroup(ctx, o.ID, g.ID, func(locked store.Group) error {
				if locked.Version != g.Version {
					return stale
				}
				return nil
			})
		}()
		go func() {
			defer wg.Done()
			_, updErr = s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Update: func(g *store.Group) error { g.DisplayName += "x"; return nil }})
		}()
		wg.Wait()
		switch {
		case delErr == nil && errors.Is(updErr, store.ErrNotFound), errors.Is(delErr, stale) && updErr == nil:
		default:
			t.Fatalf("round %d: delete %v, update %v", round, delErr, updErr)
		}
	}
}

// BatchCreator is the bulk insert of the SQL stores, kept off store.Store:
// only seeding (tests, benchmarks, scimload) inserts administrators in bulk.
type BatchCreator interface {
	CreateAdministrators(ctx context.Context, as []store.Administrator) error
}

// CreateAdministrators inserts as in one transaction through s's
// CreateAdministrators (see BatchCreator); a store without one is an error.
func CreateAdministrators(s store.Store, as []store.Administrator) error {
	b, ok := s.(BatchCreator)
	if !ok {
		return fmt.Errorf("storetest: %T cannot create administrators in bulk", s)
	}
	return b.CreateAdministrators(ctx, as)
}

// listAdministrators is a page of org's administrators in creation order
// and their total.
func listAdministrators(s store.Store, org string, p store.Page) ([]store.Administrator, int, error) {
	r, err := s.QueryAdministrators(ctx, org, store.Query{Page: p})
	return r.Items, r.Total, err
}

// listGroups is listAdministrators for groups.
func listGroups(s store.Store, org string, p store.Page) ([]store.Group, int, error) {
	r, err := s.QueryGroups(ctx, org, store.Query{Page: p})
	return r.Items, r.Total, err
}

// memberTotal is how many members the group has.
func memberTotal(t *testing.T, s store.Store, org, group string) int {
	t.Helper()
	_, n, err := s.GroupMembers(ctx, org, group, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
