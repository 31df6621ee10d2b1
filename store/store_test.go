package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.SQLite(t) })
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.Postgres(t) })
}

// Reopening a database applies nothing twice and keeps the data.
func TestMigrationsRunOnce(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "sub", "dir", "g.db") },
		"postgres": func(t *testing.T) string { return storetest.PostgresURL(t) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			url := dsn(t)
			s, err := store.Open(ctx, url, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			first, err := s.MigrationVersions(ctx)
			if err != nil || len(first) == 0 {
				t.Fatalf("versions = %v, %v", first, err)
			}
			if _, _, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "keep", Name: "Keep"},
				Owner: store.Administrator{UserName: "o", Role: store.RoleSuperAdministrator, Status: store.StatusPending}}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s, err = store.Open(ctx, url, store.Options{})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer s.Close()
			again, _ := s.MigrationVersions(ctx)
			if !reflect.DeepEqual(first, again) {
				t.Fatalf("versions after reopen = %v, want %v", again, first)
			}
			if _, err := s.OrgBySlug(ctx, "keep"); err != nil {
				t.Fatalf("data lost on reopen: %v", err)
			}
		})
	}
}

// Several instances starting at once on one PostgreSQL migrate it once.
func TestConcurrentMigrationPostgres(t *testing.T) {
	url := storetest.PostgresURL(t)
	ctx := context.Background()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := store.Open(ctx, url, store.Options{})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{"", "sqlite::memory:", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"} {
		if s, err := store.Open(ctx, dsn, store.Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
	if _, err := store.Open(ctx, filepath.Join(t.TempDir(), "x.db"), store.Options{SQLiteSynchronous: "OFF"}); err == nil {
		t.Error("synchronous=OFF was accepted")
	}
}

func TestSQLitePath(t *testing.T) {
	for in, want := range map[string]string{
		"data/g.db":                 "data/g.db",
		"sqlite:data/g.db":          "data/g.db",
		"sqlite:///var/lib/g.db":    "/var/lib/g.db",
		"sqlite:data/g.db?mode=rwc": "data/g.db",
		"file:/tmp/x.db":            "/tmp/x.db",
	} {
		if got := store.SQLitePath(in); got != want {
			t.Errorf("SQLitePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFoldUsername(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"JDoe", "jdoe"}, {"STRASSE", "straße"}, {"\u212Aelvin", "kelvin"}, {"RENE\u0301", "ren\u00e9"},
	} {
		if store.FoldUsername(tc.a) != store.FoldUsername(tc.b) {
			t.Errorf("FoldUsername(%q) = %q, FoldUsername(%q) = %q: want equal", tc.a, store.FoldUsername(tc.a), tc.b, store.FoldUsername(tc.b))
		}
	}
	for _, tc := range []struct{ a, b string }{{"jdoe", "jdoe1"}, {"j.doe", "jdoe"}, {"jdoe", "jdoe "}} {
		if store.FoldUsername(tc.a) == store.FoldUsername(tc.b) {
			t.Errorf("FoldUsername(%q) == FoldUsername(%q)", tc.a, tc.b)
		}
	}
}

func FuzzFoldUsername(f *testing.F) {
	for _, s := range []string{"jdoe", "JDoe", "straße", "\u212A", "RENE\u0301", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// The ASCII fast path and the Unicode path must agree, and folding
		// must be idempotent.
		f := store.FoldUsername(s)
		if store.FoldUsername(f) != f {
			t.Fatalf("FoldUsername not idempotent on %q", s)
		}
	})
}

// Close lets the creates already queued commit and answers every caller:
// each create either succeeds (and its row survives a reopen) or fails
// with ErrClosed; none waits for ever.
func TestCloseDrainsGroupCommit(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	s, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, _, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "drain", Name: "Drain"},
		Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusActive}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	ids := make(chan string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := s.CreateAdministrator(ctx, store.Administrator{OrgID: o.ID, UserName: fmt.Sprintf("d%d", i),
				Role: store.RoleAdministrator, Status: store.StatusActive})
			if err != nil {
				errs <- err
				return
			}
			ids <- a.ID
		}()
	}
	time.Sleep(time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(ids)
	close(errs)
	for err := range errs {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("create during Close: %v, want success or ErrClosed", err)
		}
	}
	s, err = store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	created := 0
	for id := range ids {
		created++
		if _, err := s.Administrator(ctx, o.ID, id); err != nil {
			t.Errorf("acknowledged create %s lost: %v", id, err)
		}
	}
	t.Logf("%d of %d created before Close", created, n)
}

// The WAL is copied into the database file in the background, while the
// store stays open (the writer's own auto-checkpoint is set too high to
// do it for a few hundred pages).
func TestWALCheckpointedInBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	s, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o, _, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "wal", Name: "WAL"},
		Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusActive}})
	if err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	time.Sleep(200 * time.Millisecond) // the migrations' pages are copied
	before := size()
	storetest.SeedAdministrators(t, s, o.ID, "wal", 2000)
	for deadline := time.Now().Add(5 * time.Second); size() <= before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the database file stayed at %d bytes for 5 s after 2000 inserts: no checkpoint", before)
		}
	}
}
