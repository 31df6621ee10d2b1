package store_test

import (
	"context"
	"fmt"
	"testing"

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
	ctx := context.Background()
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
		if _, err := s.AddGroupMembers(ctx, o.ID, g.ID, ids[start:start+10_000]); err != nil {
			b.Fatal(err)
		}
	}
	small, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Few"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.AddGroupMembers(ctx, o.ID, small.ID, ids[:100]); err != nil {
		b.Fatal(err)
	}
	extra, err := s.CreateAdministrator(ctx, store.Administrator{OrgID: o.ID, UserName: "extra-member",
		Role: store.RoleAdministrator, Status: store.StatusActive})
	if err != nil {
		b.Fatal(err)
	}
	return &benchFixture{s: s, org: o.ID, ids: ids, group: g.ID, smallGroup: small.ID, extra: extra.ID}
}

func BenchmarkSQLite(b *testing.B)   { runStoreBenchmarks(b, storetest.SQLite(b)) }
func BenchmarkPostgres(b *testing.B) { runStoreBenchmarks(b, storetest.Postgres(b)) }

func runStoreBenchmarks(b *testing.B, s store.Store) {
	f := newBenchFixture(b, s)
	ctx := context.Background()
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
	b.Run("AdministratorByID", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := s.Administrator(ctx, f.org, f.ids[(i*7919)%benchSize]); err != nil {
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
				page, total, err := s.ListAdministrators(ctx, f.org, store.Page{Offset: offset, Limit: 100})
				if err != nil || len(page) != 100 || total < benchSize {
					b.Fatalf("page of %d, total %d, %v", len(page), total, err)
				}
			}
		})
	}
	for _, g := range []struct{ name, id string }{{"AddOneMemberTo100k", f.group}, {"AddOneMemberTo100", f.smallGroup}} {
		group := g.id
		b.Run(g.name, func(b *testing.B) {
			for b.Loop() {
				if n, err := s.AddGroupMembers(ctx, f.org, group, []string{f.extra}); err != nil || n != 1 {
					b.Fatalf("added %d, %v", n, err)
				}
				b.StopTimer()
				if _, err := s.RemoveGroupMembers(ctx, f.org, group, []string{f.extra}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
