package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gatehouse/store"
)

func exchange(org string, i int, at time.Time) store.SCIMExchange {
	status := 200
	if i%3 == 0 {
		status = 409
	}
	return store.SCIMExchange{OrgID: org, At: at, Method: "POST", Path: "/scim/v2/Users", Status: status,
		UserName: fmt.Sprintf("user%d", i), DurationMicros: int64(1000 + i), TokenPrefix: "gh_scim_abcdefgh",
		Request: fmt.Sprintf(`{"userName":"user%d"}`, i), RequestSize: 20, Response: `{"id":"x"}`, ResponseSize: 10,
		ResponseTruncated: i == 1}
}

func testSCIMLog(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "provlog")
	other, _ := newOrg(t, s, "provlog-other")
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var batch []store.SCIMExchange
	for i := 1; i <= 9; i++ {
		batch = append(batch, exchange(o.ID, i, base.Add(time.Duration(i)*time.Minute)))
	}
	batch = append(batch, exchange(other.ID, 100, base))
	if err := s.AppendSCIMLog(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendSCIMLog(ctx, []store.SCIMExchange{{Method: "GET"}}); err == nil {
		t.Fatal("an entry without an organization was written")
	}

	page, err := s.SCIMLog(ctx, o.ID, store.SCIMLogQuery{Limit: 4})
	if err != nil || len(page) != 4 {
		t.Fatalf("first page: %d entries, %v", len(page), err)
	}
	if page[0].UserName != "user9" || page[0].Request != "" || page[0].RequestSize != 20 || !page[0].At.Equal(base.Add(9*time.Minute)) ||
		page[0].DurationMicros != 1009 || page[0].TokenPrefix != "gh_scim_abcdefgh" {
		t.Fatalf("newest entry %+v", page[0])
	}
	rest, _ := s.SCIMLog(ctx, o.ID, store.SCIMLogQuery{Before: page[3].Seq})
	if len(rest) != 5 || rest[4].UserName != "user1" {
		t.Fatalf("second page: %+v", rest)
	}
	whole, err := s.SCIMLogEntry(ctx, o.ID, rest[4].Seq)
	if err != nil || whole.Request != `{"userName":"user1"}` || whole.Response != `{"id":"x"}` || !whole.ResponseTruncated {
		t.Fatalf("entry %+v, %v", whole, err)
	}
	if _, err := s.SCIMLogEntry(ctx, other.ID, rest[4].Seq); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another organization's entry: %v", err)
	}

	for _, tc := range []struct {
		q    store.SCIMLogQuery
		want int
	}{
		{store.SCIMLogQuery{Status: 409}, 3},
		{store.SCIMLogQuery{StatusClass: 4}, 3},
		{store.SCIMLogQuery{StatusClass: 2}, 6},
		{store.SCIMLogQuery{StatusClass: 5}, 0},
		{store.SCIMLogQuery{UserName: "user4"}, 1},
		{store.SCIMLogQuery{UserName: "USER4"}, 0}, // usernames compare exactly
		{store.SCIMLogQuery{Since: base.Add(5 * time.Minute)}, 5},
		{store.SCIMLogQuery{Since: base.Add(2 * time.Minute), Until: base.Add(4 * time.Minute)}, 2},
	} {
		got, err := s.SCIMLog(ctx, o.ID, tc.q)
		if err != nil || len(got) != tc.want {
			t.Errorf("%+v: %d entries, %v; want %d", tc.q, len(got), err, tc.want)
		}
	}
	if _, err := s.SCIMLog(ctx, o.ID, store.SCIMLogQuery{Limit: 1001}); !errors.Is(err, store.ErrInvalidQuery) {
		t.Fatalf("limit 1001: %v", err)
	}

	// By count: the newest 4 stay, a bounded number of rows a call.
	if n, err := s.PruneSCIMLog(ctx, o.ID, 4, 3); err != nil || n != 3 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	if n, err := s.PruneSCIMLog(ctx, o.ID, 4, 3); err != nil || n != 2 {
		t.Fatalf("prune again: %d, %v", n, err)
	}
	if n, err := s.PruneSCIMLog(ctx, o.ID, 4, 3); err != nil || n != 0 {
		t.Fatalf("prune with nothing over: %d, %v", n, err)
	}
	left, _ := s.SCIMLog(ctx, o.ID, store.SCIMLogQuery{})
	if len(left) != 4 || left[3].UserName != "user6" {
		t.Fatalf("after prune: %+v", left)
	}
	if got, _ := s.SCIMLog(ctx, other.ID, store.SCIMLogQuery{}); len(got) != 1 {
		t.Fatalf("the other organization's log was pruned: %d", len(got))
	}
	// By age, every organization.
	if n, err := s.PruneSCIMLogBefore(ctx, base.Add(8*time.Minute), 1000); err != nil || n != 3 {
		t.Fatalf("prune by age: %d, %v", n, err)
	}
	left, _ = s.SCIMLog(ctx, o.ID, store.SCIMLogQuery{})
	if len(left) != 2 {
		t.Fatalf("after prune by age: %+v", left)
	}
}

// testSCIMLogConcurrentPrune: writers appending and pruning one
// organization at once (two instances) leave exactly keep entries, the
// newest, and fail nowhere.
func testSCIMLogConcurrentPrune(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "provlog-race")
	const writers, batches, per, keep = 4, 10, 25, 60
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				batch := make([]store.SCIMExchange, per)
				for i := range batch {
					batch[i] = exchange(o.ID, w*10000+b*100+i, time.Now())
				}
				if err := s.AppendSCIMLog(ctx, batch); err != nil {
					errs <- err
					return
				}
				for {
					n, err := s.PruneSCIMLog(ctx, o.ID, keep, 20)
					if err != nil {
						errs <- err
						return
					}
					if n < 20 {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := s.SCIMLog(ctx, o.ID, store.SCIMLogQuery{Limit: 1000})
	if err != nil || len(all) != keep {
		t.Fatalf("%d entries left, %v; want %d", len(all), err, keep)
	}
}
