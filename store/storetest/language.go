package storetest

import (
	"fmt"
	"sync"
	"testing"

	"gatehouse/store"
)

// testAdministratorLanguage: an administrator's language is written by
// every create path (alone, and the group commit of concurrent creates),
// changed by an update, read back by every read (by id, by username, in a
// query, with groups) and shown in the audit entry; "" (none chosen) is
// the default.
func testAdministratorLanguage(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "lang")
	if owner.Language != "" {
		t.Fatalf("a new organization's owner has language %q, want none", owner.Language)
	}
	// Concurrent creates share a batch (the group commit).
	const n = 6
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := admin(o.ID, fmt.Sprintf("lang-%d", i))
			if i%2 == 0 {
				a.Language = "ru"
			}
			got, err := s.CreateAdministrator(ctx, a)
			if err != nil {
				errs <- err
				return
			}
			ids[i] = got.ID
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, id := range ids {
		want := ""
		if i%2 == 0 {
			want = "ru"
		}
		got, err := s.Administrator(ctx, o.ID, id)
		if err != nil || got.Language != want {
			t.Fatalf("administrator %d: language %q, %v; want %q", i, got.Language, err, want)
		}
	}
	// A Super Administrator is created alone (not through the batch).
	super := admin(o.ID, "lang-super")
	super.Role, super.Language = store.RoleSuperAdministrator, "en"
	if got := mustCreate(t, s, super); got.Language != "en" {
		t.Fatalf("created super: language %q", got.Language)
	}
	if got, err := s.AdministratorByUsername(ctx, o.ID, "lang-super"); err != nil || got.Language != "en" {
		t.Fatalf("by username: %q, %v", got.Language, err)
	}

	up, err := s.UpdateAdministrator(ctx, o.ID, ids[1], store.FlagMissingSuper, func(a *store.Administrator) error {
		a.Language = "ru"
		return nil
	})
	if err != nil || up.Language != "ru" {
		t.Fatalf("update: %q, %v", up.Language, err)
	}
	if got, _, err := s.AdministratorWithGroups(ctx, o.ID, ids[1]); err != nil || got.Language != "ru" {
		t.Fatalf("with groups after update: %q, %v", got.Language, err)
	}
	res, err := s.QueryAdministrators(ctx, o.ID, store.Query{WithGroups: true, Page: store.Page{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	langs := map[string]string{}
	for _, a := range res.Items {
		langs[a.UserName] = a.Language
	}
	if langs["lang-0"] != "ru" || langs["lang-1"] != "ru" || langs["lang-3"] != "" || langs["owner"] != "" {
		t.Fatalf("query: %v", langs)
	}
	// An update that fails changes nothing.
	_, err = s.UpdateAdministrator(ctx, o.ID, ids[1], store.FlagMissingSuper, func(a *store.Administrator) error {
		a.Language = "en"
		return store.ErrConflict
	})
	if err == nil {
		t.Fatal("the failed update succeeded")
	}
	if got, _ := s.Administrator(ctx, o.ID, ids[1]); got.Language != "ru" {
		t.Fatalf("after a failed update: %q", got.Language)
	}
	// Text that neither database can hold is refused, and nothing written.
	if _, err := s.UpdateAdministrator(ctx, o.ID, ids[1], store.FlagMissingSuper, func(a *store.Administrator) error {
		a.Language = "r\x00u"
		return nil
	}); err == nil {
		t.Fatal("a language with NUL was stored")
	}
}
