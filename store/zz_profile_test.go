package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"testing"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

func BenchmarkZZParallelCreate(b *testing.B) {
	s := storetest.SQLite(b)
	ctx := context.Background()
	o, _, _ := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "p", Name: "p"}, Owner: store.Administrator{UserName: "o", Role: store.RoleSuperAdministrator, Status: store.StatusActive}})
	var n atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a := store.Administrator{OrgID: o.ID, UserName: fmt.Sprintf("par-%d", n.Add(1)), Email: "p@example.com", Role: store.RoleAdministrator, Status: store.StatusActive}
			if _, err := s.CreateAdministrator(ctx, a); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func init() {
	var mu sync.Mutex
	var batches, items int
	var work, commit time.Duration
	store.DebugStats = func(n int, w, c time.Duration) {
		mu.Lock()
		batches++
		items += n
		work += w
		commit += c
		if batches%500 == 0 {
			fmt.Printf("batches %d avg size %.1f avg work %v avg commit %v\n", batches, float64(items)/float64(batches), work/time.Duration(batches), commit/time.Duration(batches))
		}
		mu.Unlock()
	}
}
