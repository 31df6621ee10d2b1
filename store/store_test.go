package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
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
			ctx := storetest.Context(context.Background())
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
	ctx := storetest.Context(context.Background())
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
	ctx := storetest.Context(context.Background())
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

// newOrg creates an organization whose owner is "owner".
func newOrg(t *testing.T, s store.Store, slug string) store.Org {
	t.Helper()
	o, _, err := s.CreateOrg(storetest.Context(context.Background()), store.NewOrg{Org: store.Org{Slug: slug, Name: slug},
		Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusActive}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// backends gives the DSN of a new database of each backend, for tests that
// open and close stores on it.
var backends = map[string]func(tb testing.TB) string{
	"sqlite":   func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "g.db") },
	"postgres": storetest.PostgresURL,
}

// Close lets the creates already queued commit and answers every caller:
// each create either succeeds (and its row survives a reopen) or fails
// with ErrClosed; none waits for ever.
func TestCloseDrainsGroupCommit(t *testing.T) {
	for name, dsn := range backends {
		t.Run(name, func(t *testing.T) { testCloseDrainsGroupCommit(t, dsn(t)) })
	}
}

func testCloseDrainsGroupCommit(t *testing.T, dsn string) {
	ctx := storetest.Context(context.Background())
	s, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := newOrg(t, s, "drain")
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
	s, err = store.Open(ctx, dsn, store.Options{})
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
	if r, err := s.QueryAdministrators(ctx, o.ID, store.Query{}); err != nil || r.Total != 1+created {
		t.Errorf("total = %d (%v), want %d", r.Total, err, 1+created)
	}
	t.Logf("%d of %d created before Close", created, n)
}

// One batch of the group commit answers each of its creates with its own
// outcome: a create whose username is stored already in another case, two
// that clash with each other and one that is not valid fail alone; the one
// whose caller gave up before the batch is not written. So does a batch
// with a create for an organization that does not exist, which
// PostgreSQL refuses as a whole.
func TestGroupCommitBatch(t *testing.T) {
	for name, dsn := range backends {
		t.Run(name, func(t *testing.T) {
			ctx := storetest.Context(context.Background())
			s, err := store.Open(ctx, dsn(t), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			o := newOrg(t, s, "batch")
			admin := func(org, name string) store.Administrator {
				return store.Administrator{OrgID: org, UserName: name, Email: name + "@example.com",
					Role: store.RoleAdministrator, Status: store.StatusActive}
			}
			if _, err := s.CreateAdministrator(ctx, admin(o.ID, "kept")); err != nil {
				t.Fatal(err)
			}
			// batch runs one batch of creates of the names given, in o unless
			// the name starts with "lost", each with its own actor, and
			// checks that those at the indexes in want were created.
			var exists *store.ExistsError
			actors := map[string]store.Actor{}
			batch := func(names []string, abandoned map[int]bool, want ...int) []error {
				creates := make([]store.Administrator, len(names))
				as := make([]store.Actor, len(names))
				for i, name := range names {
					creates[i] = admin(o.ID, name)
					if strings.HasPrefix(name, "lost") {
						creates[i].OrgID = "no-such-org"
					}
					as[i] = store.Actor{Kind: store.ActorAPIKey, ID: "key-" + name}
					actors[name] = as[i]
				}
				got, errs := store.CommitBatch(ctx, s, creates, as, abandoned)
				for _, i := range want {
					if errs[i] != nil {
						t.Errorf("%s: %v", names[i], errs[i])
					} else if a, err := s.Administrator(ctx, o.ID, got[i].ID); err != nil || a.UserName != names[i] {
						t.Errorf("%s read back: %+v, %v", names[i], a, err)
					}
				}
				return errs
			}
			created := []string{"owner", "kept"}
			errs := batch([]string{"alpha", "beta", "KEPT", "gamma", "Gamma", "", "abandoned", "omega"}, map[int]bool{6: true}, 0, 1, 7)
			created = append(created, "alpha", "beta", "omega")
			if !errors.As(errs[2], &exists) || exists.Existing != "kept" {
				t.Errorf("KEPT: %v, want ExistsError naming kept", errs[2])
			}
			winner, loser := "gamma", errs[4]
			if errs[3] != nil {
				winner, loser = "Gamma", errs[3]
			}
			if !errors.As(loser, &exists) || exists.Existing != winner {
				t.Errorf("gamma, Gamma: %v, %v; want one created and the other an ExistsError naming it", errs[3], errs[4])
			}
			created = append(created, winner)
			if errs[5] == nil || errors.Is(errs[5], store.ErrAlreadyExists) {
				t.Errorf("create without a username: %v, want a validation error", errs[5])
			}
			if _, err := s.AdministratorByUsername(ctx, o.ID, "abandoned"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("an abandoned create was written: %v", err)
			}

			errs = batch([]string{"delta", "lost", "DELTA"}, nil, 0)
			created = append(created, "delta")
			if !errors.Is(errs[1], store.ErrNotFound) || !errors.As(errs[2], &exists) || exists.Existing != "delta" {
				t.Errorf("lost, DELTA: %v, %v; want ErrNotFound, an ExistsError naming delta", errs[1], errs[2])
			}

			if r, _ := s.QueryAdministrators(ctx, o.ID, store.Query{}); r.Total != len(created) {
				t.Errorf("total = %d, want %d", r.Total, len(created))
			}
			log, err := s.AuditLog(ctx, o.ID, store.AuditQuery{Action: store.AuditAdministratorCreate})
			if err != nil {
				t.Fatal(err)
			}
			audited := map[string]string{}
			for _, e := range log {
				audited[e.TargetName] += e.ActorID
			}
			for _, name := range created[2:] {
				if audited[name] != actors[name].ID {
					t.Errorf("audit entries of %s: actor %q, want %q", name, audited[name], actors[name].ID)
				}
			}
			if len(audited) != len(created) {
				t.Errorf("audit entries of %d administrators, want %d", len(audited), len(created))
			}
		})
	}
}

// Two instances on one PostgreSQL database create the same usernames (in
// other cases) at once: each name is created once, and the other create of
// it fails naming it, whichever instance's batch came first.
func TestGroupCommitTwoInstancesPostgres(t *testing.T) {
	ctx := storetest.Context(context.Background())
	url := storetest.PostgresURL(t)
	var instances [2]*store.SQL
	for i := range instances {
		s, err := store.Open(ctx, url, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		instances[i] = s
	}
	o := newOrg(t, instances[0], "shared")
	const names, rounds = 64, 4
	created := 0
	for round := range rounds {
		// The second instance is sent the names in reverse order: batches
		// that inserted them in the order queued would wait for each
		// other's names in opposite orders.
		var wg sync.WaitGroup
		var errs [2][names]error
		var got [2][names]store.Administrator
		for in, s := range instances {
			for k := range names {
				i := k
				if in == 1 {
					i = names - 1 - k
				}
				name := fmt.Sprintf("r%d-user-%d", round, i)
				if in == 1 {
					name = strings.ToUpper(name)
				}
				wg.Go(func() {
					got[in][i], errs[in][i] = s.CreateAdministrator(ctx, store.Administrator{OrgID: o.ID, UserName: name,
						Role: store.RoleAdministrator, Status: store.StatusActive})
				})
			}
		}
		wg.Wait()
		for i := range names {
			winner, loser := 0, 1
			if errs[0][i] != nil {
				winner, loser = 1, 0
			}
			var exists *store.ExistsError
			if errs[winner][i] != nil || !errors.As(errs[loser][i], &exists) || exists.Existing != got[winner][i].UserName {
				t.Errorf("name %d of round %d: %v / %v, want one created and the other an ExistsError naming it", i, round, errs[0][i], errs[1][i])
				continue
			}
			created++
		}
	}
	for _, s := range instances {
		if r, err := s.QueryAdministrators(ctx, o.ID, store.Query{}); err != nil || r.Total != 1+created {
			t.Errorf("total = %d (%v), want %d", r.Total, err, 1+created)
		}
	}
}

// The WAL is copied into the database file in the background, while the
// store stays open (the writer's own auto-checkpoint is set too high to
// do it for a few hundred pages).
func TestWALCheckpointedInBackground(t *testing.T) {
	ctx := storetest.Context(context.Background())
	path := filepath.Join(t.TempDir(), "g.db")
	s, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := newOrg(t, s, "wal")
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

// Adding one member to a designated group of 10,000 recomputes one role
// by reading that administrator's memberships, never the group's members:
// PostgreSQL ran the rule's EXISTS as a hashed subplan that read all
// 10,000 (2.5 ms an add), and SQLite computed the rule twice, for the SET
// and the WHERE.
func TestRoleRecomputeReadsOneMember(t *testing.T) {
	for _, s := range []*store.SQL{storetest.SQLite(t), storetest.Postgres(t)} {
		t.Run(s.Dialect(), func(t *testing.T) {
			ctx := storetest.Context(context.Background())
			o, _, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "recompute", Name: "Recompute", SuperAdminGroup: "Super"},
				Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusActive}})
			if err != nil {
				t.Fatal(err)
			}
			g, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Super"}, seedSCIM(t, s, o.ID, "member", 10_000)...)
			if err != nil {
				t.Fatal(err)
			}
			fresh := seedSCIM(t, s, o.ID, "fresh", 1)
			if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: fresh}); err != nil {
				t.Fatal(err)
			}
			plan, err := store.ExplainSyncRoles(ctx, s, o.ID, fresh)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Join(plan, "\n")
			if s.Dialect() == "sqlite" {
				if n := strings.Count(text, "CORRELATED SCALAR SUBQUERY"); n != 1 {
					t.Errorf("the rule is computed %d times per row, want 1:\n%s", n, text)
				}
				return
			}
			// Every node of the plan: "(actual time=a..b rows=N loops=M)".
			nodes := regexp.MustCompile(`actual time=[0-9.]+\.\.[0-9.]+ rows=([0-9]+) loops=([0-9]+)`).FindAllStringSubmatch(text, -1)
			if len(nodes) == 0 {
				t.Fatalf("no node in the plan:\n%s", text)
			}
			for _, n := range nodes {
				rows, _ := strconv.Atoi(n[1])
				loops, _ := strconv.Atoi(n[2])
				if rows*loops > 10 {
					t.Errorf("a node of the plan read %d rows (%s), want a handful:\n%s", rows*loops, n[0], text)
				}
			}
		})
	}
}

// Writes that settle the Super Administrator rule take their locks in one
// order, the organization's counts before its super lock, so on
// PostgreSQL a role change of an administrator and a member change of the
// designated group, or its deletion, never deadlock (one used to lock the super lock, then
// a count; the other a count, then the super lock: PostgreSQL aborted one
// of them, a failed write for its client).
func TestSuperRuleLockOrder(t *testing.T) {
	s := storetest.Postgres(t)
	ctx := storetest.Context(context.Background())
	o, _, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "locks", Name: "Locks", SuperAdminGroup: "Super"},
		Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusActive}})
	if err != nil {
		t.Fatal(err)
	}
	ids := seedSCIM(t, s, o.ID, "idp", 5)
	g, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Super"})
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 60
	var wg sync.WaitGroup
	errs := make(chan error, 5*rounds)
	for _, id := range ids[:2] { // their role follows the IdP's "roles"
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				_, err := s.UpdateAdministrator(ctx, o.ID, id, store.FlagMissingSuper, func(a *store.Administrator) error {
					a.SCIMRole = ""
					if i%2 == 0 {
						a.SCIMRole = store.RoleSuperAdministrator
					}
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("role change: %w", err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // a second designated group, made and deleted with its member
		defer wg.Done()
		for range rounds / 2 {
			other, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Super"}, ids[4])
			if err == nil {
				err = s.DeleteGroup(ctx, o.ID, other.ID, nil)
			}
			if err != nil {
				errs <- fmt.Errorf("designated group: %w", err)
			}
		}
	}()
	for _, id := range ids[2:4] { // their role follows the designated group
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				p := store.GroupPatch{Add: []string{id}}
				if i%2 == 1 {
					p = store.GroupPatch{Remove: []string{id}}
				}
				if _, err := s.PatchGroup(ctx, o.ID, g.ID, p); err != nil {
					errs <- fmt.Errorf("member change: %w", err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 3 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Fatalf("%d writes failed", n)
	}
}
