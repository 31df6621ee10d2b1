package store_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

// The store's hot paths on an organization of 100,000 administrators, all
// members of one group. Run with `make bench`; figures are in BENCHMARKS.md.

const benchSize = 100_000

type benchFixture struct {
	s          store.Store
	org        string
	ids        []string
	group      string // all benchSize administrators
	smallGroup string // 100 of them
	extra      string // an administrator in neither group
}

func newBenchFixture(b *testing.B, s store.Store) *benchFixture {
	ctx := storetest.Context(context.Background())
	o, _, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "bench", Name: "Bench"},
		Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusActive}})
	if err != nil {
		b.Fatal(err)
	}
	ids := storetest.SeedAdministrators(b, s, o.ID, "user", benchSize)
	g, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Everyone"})
	if err != nil {
		b.Fatal(err)
	}
	for start := 0; start < benchSize; start += 10_000 {
		if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: ids[start : start+10_000]}); err != nil {
			b.Fatal(err)
		}
	}
	small, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Few"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.PatchGroup(ctx, o.ID, small.ID, store.GroupPatch{Add: ids[:100]}); err != nil {
		b.Fatal(err)
	}
	extra, err := s.CreateAdministrator(ctx, store.Administrator{OrgID: o.ID, UserName: "extra-member",
		Role: store.RoleAdministrator, Status: store.StatusActive})
	if err != nil {
		b.Fatal(err)
	}
	// Statistics, as autovacuum would gather them soon after a bulk load:
	// a benchmark measures the planned query, not a plan made blind (a
	// never-analyzed PostgreSQL table had QueryPage100/after=50000 scan
	// and sort every row after the cursor).
	if sq, ok := s.(*store.SQL); ok {
		_, writer := sq.DB()
		if _, err := writer.ExecContext(ctx, "ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
	return &benchFixture{s: s, org: o.ID, ids: ids, group: g.ID, smallGroup: small.ID, extra: extra.ID}
}

func BenchmarkSQLite(b *testing.B)   { runStoreBenchmarks(b, storetest.SQLite(b)) }
func BenchmarkPostgres(b *testing.B) { runStoreBenchmarks(b, storetest.Postgres(b)) }

// BenchmarkSQLiteWithoutGroupCommit and BenchmarkPostgresWithoutGroupCommit
// are CreateAdministratorParallel with one transaction (one fsync) per
// create: what the group commit saves.
func BenchmarkSQLiteWithoutGroupCommit(b *testing.B) {
	benchWithoutGroupCommit(b, storetest.SQLite(b))
}

func BenchmarkPostgresWithoutGroupCommit(b *testing.B) {
	benchWithoutGroupCommit(b, storetest.Postgres(b))
}

func benchWithoutGroupCommit(b *testing.B, s *store.SQL) {
	store.WithoutGroupCommit(s)
	f := newBenchFixture(b, s)
	b.Run("CreateAdministratorParallel", func(b *testing.B) { parallelCreates(b, s, f.org) })
}

var parallelRuns atomic.Int64 // b.Run calls its function more than once: names must not repeat

// parallelCreates creates administrators from 32 goroutines at once (on 2
// cores): SCIM clients provision in parallel, Okta and Entra several
// requests at a time per tenant, and many tenants share a server.
func parallelCreates(b *testing.B, s store.Store, org string) {
	ctx := storetest.Context(context.Background())
	run := parallelRuns.Add(1)
	var n atomic.Int64
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a := store.Administrator{OrgID: org, UserName: fmt.Sprintf("par-%d-%d", run, n.Add(1)), Email: "p@example.com",
				Role: store.RoleAdministrator, Status: store.StatusActive}
			if _, err := s.CreateAdministrator(ctx, a); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func runStoreBenchmarks(b *testing.B, s store.Store) {
	f := newBenchFixture(b, s)
	ctx := storetest.Context(context.Background())
	created := 0 // b.Run calls its function more than once: names must not repeat
	b.Run("CreateAdministrator", func(b *testing.B) {
		for b.Loop() {
			created++
			a := store.Administrator{OrgID: f.org, UserName: fmt.Sprintf("new-%d", created), Email: "n@example.com",
				Role: store.RoleAdministrator, Status: store.StatusActive}
			if _, err := s.CreateAdministrator(ctx, a); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CreateAdministratorParallel", func(b *testing.B) { parallelCreates(b, s, f.org) })
	b.Run("AdministratorByID", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := s.Administrator(ctx, f.org, f.ids[(i*7919)%benchSize]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AdministratorWithGroups", func(b *testing.B) { // a SCIM GET of a User
		i := 0
		for b.Loop() {
			i++
			if _, _, err := s.AdministratorWithGroups(ctx, f.org, f.ids[(i*7919)%benchSize]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AdministratorByUsername", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := s.AdministratorByUsername(ctx, f.org, fmt.Sprintf("user-%d", (i*7919)%benchSize)); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, offset := range []int{0, benchSize / 2} {
		b.Run(fmt.Sprintf("ListPage100/offset=%d", offset), func(b *testing.B) {
			for b.Loop() {
				r, err := s.QueryAdministrators(ctx, f.org, store.Query{Page: store.Page{Offset: offset, Limit: 100}})
				if err != nil || len(r.Items) != 100 || r.Total < benchSize {
					b.Fatalf("page of %d, total %d, %v", len(r.Items), r.Total, err)
				}
			}
		})
	}
	// The filters identity providers send on every cycle (Okta and Entra:
	// userName eq; Entra: emails[type eq "work"].value eq), each a page of
	// up to 100 with its total.
	for _, q := range []struct {
		name  string
		where func(i int) store.Predicate
	}{
		{"QueryUserNameEq", func(i int) store.Predicate {
			return store.Compare{Field: store.AdministratorUserName, Op: store.OpEq, Value: fmt.Sprintf("user-%d", i)}
		}},
		{"QueryEmailEq", func(i int) store.Predicate {
			return store.Any{Attr: "emails", Where: store.And{
				store.Compare{Field: store.Field{Attr: []string{"type"}}, Op: store.OpEq, Value: ""},
				store.Compare{Field: store.Field{Attr: []string{"value"}}, Op: store.OpEq, Value: fmt.Sprintf("USER-%d@example.com", i), Fold: true},
			}}
		}},
	} {
		b.Run(q.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				res, err := s.QueryAdministrators(ctx, f.org, store.Query{Where: q.where((i * 7919) % benchSize), Page: store.Page{Limit: 100}})
				if err != nil || len(res.Items) != 1 || res.Total != 1 {
					b.Fatalf("%d items, total %d, %v", len(res.Items), res.Total, err)
				}
			}
		})
	}
	// A deep page in creation order, continued from the page before
	// (Query.After) instead of skipped to (compare ListPage100/offset=50000).
	b.Run("QueryPage100/after=50000", func(b *testing.B) {
		prev, err := s.QueryAdministrators(ctx, f.org, store.Query{Page: store.Page{Offset: benchSize/2 - 100, Limit: 100}})
		if err != nil || prev.Next == "" {
			b.Fatalf("page before: %v", err)
		}
		for b.Loop() {
			res, err := s.QueryAdministrators(ctx, f.org, store.Query{After: prev.Next, Page: store.Page{Offset: benchSize / 2, Limit: 100}})
			if err != nil || len(res.Items) != 100 || res.Total < benchSize {
				b.Fatalf("page of %d, total %d, %v", len(res.Items), res.Total, err)
			}
		}
	})
	for _, g := range []struct{ name, id string }{{"AddOneMemberTo100k", f.group}, {"AddOneMemberTo100", f.smallGroup}} {
		group := g.id
		b.Run(g.name, func(b *testing.B) {
			cur, err := s.Group(ctx, f.org, group)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				// One member added: one new version.
				if g, err := s.PatchGroup(ctx, f.org, group, store.GroupPatch{Add: []string{f.extra}}); err != nil || g.Version != cur.Version+1 {
					b.Fatalf("added: version %d after %d, %v", g.Version, cur.Version, err)
				}
				b.StopTimer()
				if cur, err = s.PatchGroup(ctx, f.org, group, store.GroupPatch{Remove: []string{f.extra}}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkSQLiteAddOnly and BenchmarkPostgresAddOnly add one new member at
// a time to a group of 10,000 (b.N adds of administrators never in the
// group, as an IdP assigning new hires does), in a plain group and in the
// organization's designated Super Administrator group. The members are
// SCIM-managed, so the designated group's adds recompute a role.
func BenchmarkSQLiteAddOnly(b *testing.B)   { benchAddOnly(b, storetest.SQLite(b)) }
func BenchmarkPostgresAddOnly(b *testing.B) { benchAddOnly(b, storetest.Postgres(b)) }

func benchAddOnly(b *testing.B, s *store.SQL) {
	ctx := storetest.Context(context.Background())
	o, _, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "addonly", Name: "Add only", SuperAdminGroup: "Super"},
		Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusActive}})
	if err != nil {
		b.Fatal(err)
	}
	const members = 10_000
	for _, name := range []string{"Plain", "Super"} {
		ids := seedSCIM(b, s, o.ID, "m"+name, members)
		g, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: name})
		if err != nil {
			b.Fatal(err)
		}
		if g, err = s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: ids}); err != nil {
			b.Fatal(err)
		}
		batch := 0
		b.Run("group="+name, func(b *testing.B) {
			var fresh []string
			var took []time.Duration
			cpu := postgresCPU(b, s)
			for b.Loop() {
				if len(fresh) == 0 {
					b.StopTimer()
					batch++
					seed := postgresCPU(b, s)
					fresh = seedSCIM(b, s, o.ID, fmt.Sprintf("f%s%d", name, batch), 1000)
					cpu += postgresCPU(b, s) - seed
					b.StartTimer()
				}
				start := time.Now()
				added, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: fresh[:1]})
				if err != nil || added.Version != g.Version+1 {
					b.Fatalf("added: version %d after %d, %v", added.Version, g.Version, err)
				}
				took = append(took, time.Since(start))
				g = added
				fresh = fresh[1:]
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			if s.Dialect() == "postgres" {
				b.ReportMetric(float64((postgresCPU(b, s)-cpu).Microseconds())/float64(b.N), "pg-cpu-µs/op")
			}
		})
	}
}

// seedSCIM inserts n SCIM-managed administrators and returns their ids.
func seedSCIM(b testing.TB, s store.Store, org, prefix string, n int) []string {
	batch := make([]store.Administrator, n)
	ids := make([]string, n)
	for i := range batch {
		ids[i] = fmt.Sprintf("%s-%s-%08d", prefix, org, i)
		batch[i] = store.Administrator{ID: ids[i], OrgID: org, UserName: fmt.Sprintf("%s-%d", prefix, i),
			Email: fmt.Sprintf("%s-%d@example.com", prefix, i), Role: store.RoleAdministrator, Status: store.StatusActive, SCIMManaged: true}
	}
	if err := storetest.CreateAdministrators(s, batch); err != nil {
		b.Fatal(err)
	}
	return ids
}

// postgresCPU is the CPU time the server processes of s's database have
// used (user and system, from /proc; 100 clock ticks a second), or 0 on
// SQLite or where /proc cannot be read: the cost of a write on the
// database side, apart from the client's and the machine's other load.
func postgresCPU(b *testing.B, s *store.SQL) time.Duration {
	if s.Dialect() != "postgres" {
		return 0
	}
	_, db := s.DB()
	rows, err := db.Query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var total time.Duration
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis: utime and stime
		// are the 12th and 13th.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.Atoi(f[11])
		st, _ := strconv.Atoi(f[12])
		total += time.Duration(u+st) * 10 * time.Millisecond
	}
	return total
}
