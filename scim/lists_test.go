package scim_test

import (
	"fmt"
	"net/url"
	"sync"
	"testing"

	"gatehouse/scim"
	"gatehouse/store/storetest"
)

func TestListPaging(t *testing.T) {
	st := storetest.SQLite(t)
	e := newEnv(t, st)
	storetest.SeedAdministrators(t, st, e.org.ID, "page", 1100)
	// Walk the list while users are being created: no overlap, no skip of
	// the users that were there before the walk.
	seen := map[string]int{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 30 {
			if r := e.do("POST", "/Users", user(fmt.Sprintf("late%d@acme.test", i))); r.status != 201 {
				t.Errorf("create during walk: %d", r.status)
			}
		}
	}()
	total := 0
	for start := 1; ; start += 100 {
		r := e.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=100", start), nil).must(t, 200)
		total = int(r.body["totalResults"].(float64))
		res := r.body["Resources"].([]any)
		if r.body["startIndex"] != float64(start) || r.body["itemsPerPage"] != float64(len(res)) {
			t.Fatalf("page %d: startIndex %v itemsPerPage %v", start, r.body["startIndex"], r.body["itemsPerPage"])
		}
		for _, x := range res {
			seen[x.(map[string]any)["userName"].(string)]++
		}
		if len(res) == 0 || start+len(res) > total {
			break
		}
	}
	wg.Wait()
	for name, n := range seen {
		if n > 1 {
			t.Errorf("%s on %d pages", name, n)
		}
	}
	for i := range 1100 {
		if name := fmt.Sprintf("page-%d", i); seen[name] != 1 {
			t.Fatalf("%s seen %d times", name, seen[name])
		}
	}
	if total < 1101 {
		t.Errorf("totalResults %d", total)
	}

	// count above the maximum is clamped; count=0 gives only the total.
	r := e.do("GET", "/Users?count=5000", nil).must(t, 200)
	if n := len(r.body["Resources"].([]any)); n != min(scim.MaxResults, int(r.body["totalResults"].(float64))) {
		t.Errorf("clamped page has %d", n)
	}
	z := e.do("GET", "/Users?count=0", nil).must(t, 200)
	if len(z.body["Resources"].([]any)) != 0 || z.body["totalResults"].(float64) < 1101 {
		t.Errorf("count=0: %s", z.raw)
	}

	// sortBy userName descending (code point order: "page-999" > "page-1099").
	s := e.do("GET", "/Users?sortBy=userName&sortOrder=descending&count=2&filter="+url.QueryEscape(`userName sw "page-"`), nil).must(t, 200)
	if s.str("Resources.0.userName") != "page-999" || s.str("Resources.1.userName") != "page-998" || s.body["totalResults"] != float64(1100) {
		t.Errorf("sorted: %v %v total %v", s.str("Resources.0.userName"), s.str("Resources.1.userName"), s.body["totalResults"])
	}

	// Projection.
	p := e.do("GET", "/Users?count=1&attributes=userName,name.familyName", nil).must(t, 200)
	res := p.body["Resources"].([]any)[0].(map[string]any)
	if _, ok := res["emails"]; ok || res["id"] == nil || res["userName"] == nil {
		t.Errorf("attributes=userName,name.familyName gave %v", res)
	}
	x := e.do("GET", "/Users?count=1&excludedAttributes=emails,meta", nil).must(t, 200)
	res = x.body["Resources"].([]any)[0].(map[string]any)
	if _, ok := res["emails"]; ok || res["userName"] == nil {
		t.Errorf("excludedAttributes=emails gave %v", res)
	}

	// POST .search gives the same as GET.
	sr := e.do("POST", "/Users/.search", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
		"filter": `userName eq "page-7"`, "attributes": []string{"userName"}}).must(t, 200)
	if sr.body["totalResults"] != float64(1) || sr.str("Resources.0.userName") != "page-7" {
		t.Errorf(".search: %s", sr.raw)
	}
}

func TestBadFilters(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	for _, f := range []string{`userName eq`, `userName zz "x"`, `(userName eq "x"`, `emails[type eq "work"`, `active gt true`, `meta.created gt "yesterday"`, `userName eq 12`} {
		r := e.do("GET", "/Users?filter="+url.QueryEscape(f), nil).must(t, 400)
		if r.str("scimType") != "invalidFilter" || r.str("detail") == "" {
			t.Errorf("%s: %s", f, r.raw)
		}
	}
	// An attribute the schema lacks matches nothing, and not of it everything.
	if r := e.do("GET", "/Users?filter="+url.QueryEscape(`nosuch eq "x"`), nil).must(t, 200); r.body["totalResults"] != float64(0) {
		t.Errorf("unknown attribute: %s", r.raw)
	}
}
