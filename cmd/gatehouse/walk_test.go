package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"gatehouse/store"
)

// Issue 12, defect 5: a SCIM list walk that alternates two instances
// returns every user exactly once, whatever was deleted or renamed since an
// earlier walk left its page positions in each instance. Both instances
// share one database (on SQLite, one file).
func TestListWalkAcrossInstances(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, _ *store.SQL) {
		a := startServed(t, dsn)
		addr := freeAddr(t)
		b := *a
		b.srv = startServe(t, addr, a.env, "--addr", addr, "--scim-rate-limit", "-1")
		instances := []*served{a, &b}

		// 160 users a-000..a-159; every fourth is named b-... instead, so
		// the filter userName sw "a-" matches 120 of them.
		ids := map[string]string{} // userName -> id
		for i := range 160 {
			name := fmt.Sprintf("a-%03d", i)
			if i%4 == 3 {
				name = fmt.Sprintf("b-%03d", i)
			}
			ids[name] = a.createUser(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + name + `"}`)
		}

		// walk lists every page of 10, the first on instance first, then
		// alternating, and returns the userNames in the order served.
		walk := func(filter string, first int) []string {
			t.Helper()
			var names []string
			for page, start := 0, 1; ; page++ {
				q := url.Values{"startIndex": {strconv.Itoa(start)}, "count": {"10"}}
				if filter != "" {
					q.Set("filter", filter)
				}
				s := instances[(first+page)%2]
				resp, out := s.scim("GET", "/Users?"+q.Encode(), "", nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET /Users?%s: %d %s", q.Encode(), resp.StatusCode, out)
				}
				var list struct {
					TotalResults int
					Resources    []struct{ UserName string }
				}
				if err := json.Unmarshal([]byte(out), &list); err != nil {
					t.Fatal(err)
				}
				for _, r := range list.Resources {
					names = append(names, r.UserName)
				}
				start += len(list.Resources)
				if len(list.Resources) == 0 || start > list.TotalResults {
					return names
				}
			}
		}
		// exactlyOnce checks that got holds each of want once.
		exactlyOnce := func(what string, got, want []string) {
			t.Helper()
			seen := map[string]int{}
			var twice []string
			for _, n := range got {
				if seen[n]++; seen[n] == 2 {
					twice = append(twice, n)
				}
			}
			var missing []string
			for _, n := range want {
				if seen[n] == 0 {
					missing = append(missing, n)
				}
			}
			if len(twice) > 0 || len(missing) > 0 || len(got) != len(want) {
				t.Errorf("%s: %d users for %d; returned twice %v; missing %v", what, len(got), len(want), twice, missing)
			}
		}

		t.Run("deletions between walks", func(t *testing.T) {
			before := walk("", 0)
			exactlyOnce("first walk", before, before)
			if len(before) < 160 {
				t.Fatalf("first walk: %d users", len(before))
			}
			exactlyOnce("second walk, other instance first", walk("", 1), before)
			// 30 deletions among the first pages.
			deleted := map[string]bool{}
			for i := 0; len(deleted) < 30; i += 2 {
				name := before[i+1]
				id, ok := ids[name]
				if !ok {
					continue
				}
				if resp, out := a.scim("DELETE", "/Users/"+id, "", nil); resp.StatusCode != http.StatusNoContent {
					t.Fatalf("DELETE %s: %d %s", name, resp.StatusCode, out)
				}
				deleted[name], ids[name] = true, ""
			}
			want := slices.DeleteFunc(slices.Clone(before), func(n string) bool { return deleted[n] })
			exactlyOnce("walk after deletions", walk("", 0), want)
			exactlyOnce("walk after deletions, other instance first", walk("", 1), want)
		})

		// RFC 9865 cursor pagination: a walk that deletes a user already
		// listed and one not yet listed after every page lists each user
		// present throughout exactly once, and never one twice.
		t.Run("cursor walk with deletions during it", func(t *testing.T) {
			all := walk("", 0)
			deleted := map[string]bool{}
			var got []string
			cursor := ""
			for page := 0; ; page++ {
				q := url.Values{"cursor": {cursor}, "count": {"10"}}
				resp, out := instances[page%2].scim("GET", "/Users?"+q.Encode(), "", nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET /Users?%s: %d %s", q.Encode(), resp.StatusCode, out)
				}
				var list struct {
					StartIndex *int
					NextCursor string
					Resources  []struct{ UserName string }
				}
				if err := json.Unmarshal([]byte(out), &list); err != nil {
					t.Fatal(err)
				}
				if list.StartIndex != nil {
					t.Fatalf("a cursor page with startIndex: %s", out)
				}
				for _, r := range list.Resources {
					got = append(got, r.UserName)
				}
				if list.NextCursor == "" {
					break
				}
				cursor = list.NextCursor
				// One listed already, one ahead.
				for _, name := range []string{got[len(got)-3], all[min(len(got)+4, len(all)-1)]} {
					if id := ids[name]; id != "" && !deleted[name] {
						if resp, out := a.scim("DELETE", "/Users/"+id, "", nil); resp.StatusCode != http.StatusNoContent {
							t.Fatalf("DELETE %s: %d %s", name, resp.StatusCode, out)
						}
						deleted[name], ids[name] = true, ""
					}
				}
			}
			if len(deleted) < 20 {
				t.Fatalf("only %d deletions", len(deleted))
			}
			var want []string // present throughout, plus those deleted after being listed
			listed := map[string]bool{}
			for _, n := range got {
				listed[n] = true
			}
			for _, n := range all {
				if !deleted[n] || listed[n] {
					want = append(want, n)
				}
			}
			exactlyOnce("cursor walk", got, want)

			for _, tc := range []struct {
				name, query, scimType string
			}{
				{"forged cursor", "cursor=c1.0~AAAA", "invalidCursor"},
				{"a cursor of another filter", "cursor=" + url.QueryEscape(cursor) + "&filter=" + url.QueryEscape(`userName sw "a"`), "invalidCursor"},
				{"cursor and startIndex", "cursor=&startIndex=1", "invalidValue"},
				{"cursor and sortBy", "cursor=&sortBy=userName", "invalidValue"},
			} {
				resp, out := b.scim("GET", "/Users?"+tc.query, "", nil)
				wantSCIMError(t, resp, out, http.StatusBadRequest, tc.scimType)
			}
		})

		t.Run("renames between filtered walks", func(t *testing.T) {
			const filter = `userName sw "a-"`
			before := walk(filter, 0)
			exactlyOnce("first walk", before, before)
			exactlyOnce("second walk, other instance first", walk(filter, 1), before)
			// 25 users leave the filter and 25 join it, most of them
			// in its first pages.
			var names []string
			for name, id := range ids {
				if id != "" {
					names = append(names, name)
				}
			}
			slices.Sort(names)
			left, joined := 0, 0
			for _, name := range names {
				to := ""
				switch {
				case name[0] == 'a' && left < 25:
					to, left = "c-"+name[2:], left+1
				case name[0] == 'b' && joined < 25:
					to, joined = "a-"+name[2:]+"-back", joined+1
				default:
					continue
				}
				body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"userName","value":"` + to + `"}]}`
				if resp, out := a.scim("PATCH", "/Users/"+ids[name], body, nil); resp.StatusCode != http.StatusOK {
					t.Fatalf("PATCH %s: %d %s", name, resp.StatusCode, out)
				}
			}
			if left+joined != 50 {
				t.Fatalf("renamed %d users", left+joined)
			}
			want := a.filterUsers(url.Values{"filter": {filter}, "count": {"1000"}})
			exactlyOnce("walk after renames", walk(filter, 0), want)
			exactlyOnce("walk after renames, other instance first", walk(filter, 1), want)
		})
	})
}
