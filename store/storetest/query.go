package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"gatehouse/store"
)

func attr(path ...string) store.Field       { return store.Field{Attr: path} }
func eq(f store.Field, v any) store.Compare { return store.Compare{Field: f, Op: store.OpEq, Value: v} }
func op(f store.Field, o store.Op, v any) store.Compare {
	return store.Compare{Field: f, Op: o, Value: v}
}
func fold(c store.Compare) store.Compare  { c.Fold = true; return c }
func present(f store.Field) store.Compare { return store.Compare{Field: f, Op: store.OpPresent} }

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// queryFixture is an organization whose administrators, besides the owner,
// are alice, bob, Carol, dave and eve, created in that order, with
// attributes of every shape a filter must cope with.
func queryFixture(t *testing.T, s store.Store, slug string) (store.Org, map[string]store.Administrator) {
	t.Helper()
	o, owner := newOrg(t, s, slug)
	out := map[string]store.Administrator{"owner": owner}
	for _, x := range []struct {
		name, given, external, attrs string
	}{
		{"alice", "Zed", "ext-1", `{"title":"Engineer","name":{"formatted":"Alice Anders"},"flag":true,"level":5,
			"` + enterprise + `":{"manager":{"value":"boss-1"},"employeeNumber":"100"},
			"phoneNumbers":[{"value":"+1 555 0100","type":"work"}],"roles":["admin","dev"],"x509Certificates":[]}`},
		{"bob", "Amy", "ext-2", `{"title":"50% off_sale","flag":false,"level":10,"name":{},
			"phoneNumbers":[{"value":"+44 20","type":"home","primary":true}],"roles":"not an array"}`},
		{"Carol", "Amy", "ext-1", `{"title":"","name":{"formatted":"carol c"},"level":"5","phoneNumbers":["bare"],"roles":[{"value":"dev"}]}`},
		{"dave", "", "", ``},
		{"eve", "Amy", "", `{"title":"50X offXsale","flag":"true","level":2.5}`},
	} {
		a := admin(o.ID, x.name)
		a.GivenName, a.ExternalID = x.given, x.external
		if x.attrs != "" {
			a.Attributes = store.RawJSON(x.attrs)
		}
		out[x.name] = mustCreate(t, s, a)
	}
	return o, out
}

// queryCase is a query and the usernames it must return, in order.
type queryCase struct {
	name string
	q    store.Query
	want []string
}

func where(p store.Predicate) store.Query { return store.Query{Where: p, Page: store.Page{Limit: 100}} }

func runAdministratorCases(t *testing.T, s store.Store, org string, cases []queryCase) {
	t.Helper()
	for _, tc := range cases {
		res, err := s.QueryAdministrators(ctx, org, tc.q)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := usernames(res.Items); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if tc.q.Page.Offset == 0 && res.Total != len(tc.want) {
			t.Errorf("%s: total %d, want %d", tc.name, res.Total, len(tc.want))
		}
	}
}

func testQueryAdministrators(t *testing.T, s store.Store) {
	o, u := queryFixture(t, s, "query")
	other, _ := queryFixture(t, s, "query-other") // the same names in another organization
	all := []string{"owner", "alice", "bob", "Carol", "dave", "eve"}
	except := func(names ...string) []string {
		return slices.DeleteFunc(slices.Clone(all), func(n string) bool { return slices.Contains(names, n) })
	}
	admins, _ := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Admins"})
	ops, _ := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Ops"})
	if _, err := s.PatchGroup(ctx, o.ID, admins.ID, store.GroupPatch{Add: []string{u["bob"].ID, u["alice"].ID}}); err != nil {
		t.Fatal(err)
	}
	username, title, level, flag := store.AdministratorUserName, attr("title"), attr("level"), attr("flag")
	phone := func(p store.Predicate) store.Any { return store.Any{Attr: "phoneNumbers", Where: p} }
	sub := func(name string) store.Field { return attr(name) }
	sorted := func(f store.Field, desc, fold bool) store.Query {
		return store.Query{SortBy: f, Descending: desc, SortFold: fold, Page: store.Page{Limit: 100}}
	}

	runAdministratorCases(t, s, o.ID, []queryCase{
		{"everyone", store.Query{Page: store.Page{Limit: 100}}, all},
		{"empty And", where(store.And{}), all},
		{"empty Or", where(store.Or{}), []string{}},
		// Columns. Usernames are case-exact unless Fold says otherwise.
		{"username eq", where(eq(username, "alice")), []string{"alice"}},
		{"username eq is case-exact", where(eq(username, "ALICE")), []string{}},
		{"username eq folded", where(fold(eq(username, "ALICE"))), []string{"alice"}},
		{"username ne", where(op(username, store.OpNe, "alice")), except("alice")},
		{"username co", where(op(username, store.OpCo, "ar")), []string{"Carol"}},
		{"username co is case-exact", where(op(username, store.OpCo, "AR")), []string{}},
		{"username co folded", where(fold(op(username, store.OpCo, "AR"))), []string{"Carol"}},
		{"username sw", where(op(username, store.OpSw, "a")), []string{"alice"}},
		{"username sw is case-exact", where(op(username, store.OpSw, "A")), []string{}},
		{"username sw folded", where(fold(op(username, store.OpSw, "c"))), []string{"Carol"}},
		{"username ew", where(op(username, store.OpEw, "e")), []string{"alice", "dave", "eve"}},
		{"username gt, byte order", where(op(username, store.OpGt, "c")), []string{"owner", "dave", "eve"}},
		{"username lt", where(op(username, store.OpLt, "a")), []string{"Carol"}},
		{"username le", where(op(username, store.OpLe, "alice")), []string{"alice", "Carol"}},
		{"username ge", where(op(username, store.OpGe, "eve")), []string{"owner", "eve"}},
		{"external_id eq, shared", where(eq(store.AdministratorExternalID, "ext-1")), []string{"alice", "Carol"}},
		{"given_name pr", where(present(store.AdministratorGivenName)), except("dave")},
		{"not given_name pr", where(store.Not{P: present(store.AdministratorGivenName)}), []string{"dave"}},
		{"given_name eq null", where(eq(store.AdministratorGivenName, nil)), []string{"dave"}},
		{"given_name ne null", where(op(store.AdministratorGivenName, store.OpNe, nil)), except("dave")},
		{"given_name eq folded, no fold column", where(fold(eq(store.AdministratorGivenName, "aMY"))), []string{"bob", "Carol", "eve"}},
		{"email ew", where(op(store.AdministratorEmail, store.OpEw, "@example.com")), except("owner")},
		{"role", where(eq(store.AdministratorRole, string(store.RoleSuperAdministrator))), []string{"owner"}},
		{"status", where(eq(store.AdministratorStatus, string(store.StatusPending))), []string{"owner"}},
		{"id and anything", where(store.And{eq(store.AdministratorID, u["alice"].ID), eq(title, "Engineer")}), []string{"alice"}},
		{"id and nothing", where(store.And{eq(store.AdministratorID, u["bob"].ID), eq(title, "Engineer")}), []string{}},
		{"or", where(store.Or{eq(username, "bob"), eq(username, "alice")}), []string{"alice", "bob"}},
		// Attributes paths.
		{"title eq", where(eq(title, "Engineer")), []string{"alice"}},
		{"title eq is case-exact", where(eq(title, "engineer")), []string{}},
		{"title eq folded", where(fold(eq(title, "ENGINEER"))), []string{"alice"}},
		{"co: % is a character", where(op(title, store.OpCo, "%")), []string{"bob"}},
		{"co: _ is a character", where(op(title, store.OpCo, "_")), []string{"bob"}},
		{"co: 0%", where(op(title, store.OpCo, "0%")), []string{"bob"}},
		{"sw", where(op(title, store.OpSw, "50")), []string{"bob", "eve"}},
		{"ew", where(op(title, store.OpEw, "sale")), []string{"bob", "eve"}},
		{"ew empty: any string", where(op(title, store.OpEw, "")), []string{"alice", "bob", "Carol", "eve"}},
		{"sw folded", where(fold(op(title, store.OpSw, "eng"))), []string{"alice"}},
		{"title pr: not absent, not empty", where(present(title)), []string{"alice", "bob", "eve"}},
		{"not title pr", where(store.Not{P: present(title)}), []string{"owner", "Carol", "dave"}},
		{"ne is true when absent", where(op(title, store.OpNe, "Engineer")), except("alice")},
		{"not eq is true when absent", where(store.Not{P: eq(title, "Engineer")}), except("alice")},
		{"nested path", where(op(attr("name", "formatted"), store.OpSw, "carol")), []string{"Carol"}},
		{"nested path folded", where(fold(op(attr("name", "formatted"), store.OpSw, "ALICE"))), []string{"alice"}},
		{"complex pr: {} is not present", where(present(attr("name"))), []string{"alice", "Carol"}},
		{"URN key", where(eq(attr(enterprise, "manager", "value"), "boss-1")), []string{"alice"}},
		{"URN key, other attribute", where(eq(attr(enterprise, "employeeNumber"), "100")), []string{"alice"}},
		{"bool true", where(eq(flag, true)), []string{"alice"}},
		{"bool false", where(eq(flag, false)), []string{"bob"}},
		{"bool ne", where(op(flag, store.OpNe, true)), except("alice")},
		{"the string true is not a boolean", where(eq(flag, "true")), []string{"eve"}},
		{"number eq", where(eq(level, 5.0)), []string{"alice"}},
		{"number eq int64", where(eq(level, int64(5))), []string{"alice"}},
		{"number gt", where(op(level, store.OpGt, 4.0)), []string{"alice", "bob"}},
		{"number ge: 10 > 9 numerically", where(op(level, store.OpGe, 9.0)), []string{"bob"}},
		{"number lt", where(op(level, store.OpLt, 5.0)), []string{"eve"}},
		{"number le", where(op(level, store.OpLe, int64(5))), []string{"alice", "eve"}},
		{"number ne", where(op(level, store.OpNe, 5.0)), except("alice")},
		{"the string 5 is not a number", where(eq(level, "5")), []string{"Carol"}},
		{"strings do not compare with numbers", where(op(title, store.OpGt, 1.0)), []string{}},
		// Any over JSON arrays.
		{"any: type", where(phone(eq(sub("type"), "work"))), []string{"alice"}},
		{"any: and inside", where(phone(store.And{eq(sub("type"), "home"), eq(sub("primary"), true)})), []string{"bob"}},
		{"any: and inside, no single element", where(phone(store.And{eq(sub("type"), "work"), eq(sub("primary"), true)})), []string{}},
		{"any: sw", where(phone(op(sub("value"), store.OpSw, "+"))), []string{"alice", "bob"}},
		{"any: bare scalar element", where(phone(eq(store.Field{Attr: []string{""}}, "bare"))), []string{"Carol"}},
		{"any: non-empty", where(store.Any{Attr: "phoneNumbers"}), []string{"alice", "bob", "Carol"}},
		{"any: not", where(store.Not{P: phone(eq(sub("type"), "work"))}), except("alice")},
		{"any: scalar array", where(store.Any{Attr: "roles", Where: eq(store.Field{}, "dev")}), []string{"alice"}},
		{"any: object elements, non-array ignored", where(store.Any{Attr: "roles", Where: eq(sub("value"), "dev")}), []string{"Carol"}},
		{"any: non-empty, non-array ignored", where(store.Any{Attr: "roles"}), []string{"alice", "Carol"}},
		{"any: empty array", where(store.Any{Attr: "x509Certificates"}), []string{}},
		{"any: absent array", where(store.Any{Attr: "ims", Where: eq(sub("value"), "x")}), []string{}},
		{"any: emails derived from Email", where(store.Any{Attr: "emails", Where: fold(eq(sub("value"), "ALICE@example.com"))}), []string{"alice"}},
		{"any: groups by display", where(store.Any{Attr: "groups", Where: fold(eq(sub("display"), "admins"))}), []string{"alice", "bob"}},
		{"any: groups by value", where(store.Any{Attr: "groups", Where: eq(sub("value"), admins.ID)}), []string{"alice", "bob"}},
		{"any: empty group", where(store.Any{Attr: "groups", Where: eq(sub("value"), ops.ID)}), []string{}},
		{"any: in a group", where(store.Any{Attr: "groups"}), []string{"alice", "bob"}},
		// Sorting: by code point, ties by creation, absent last.
		{"sort username", sorted(username, false, false), []string{"Carol", "alice", "bob", "dave", "eve", "owner"}},
		{"sort username desc", sorted(username, true, false), []string{"owner", "eve", "dave", "bob", "alice", "Carol"}},
		{"sort username folded", sorted(username, false, true), []string{"alice", "bob", "Carol", "dave", "eve", "owner"}},
		{"sort given_name, ties stable", sorted(store.AdministratorGivenName, false, false), []string{"bob", "Carol", "eve", "owner", "alice", "dave"}},
		{"sort given_name desc", sorted(store.AdministratorGivenName, true, false), []string{"dave", "alice", "owner", "eve", "Carol", "bob"}},
		{"sort created_at", sorted(store.AdministratorCreatedAt, false, false), all},
		{"sort JSON string", sorted(title, false, false), []string{"Carol", "bob", "eve", "alice", "owner", "dave"}},
		{"sort JSON string desc", sorted(title, true, false), []string{"dave", "owner", "alice", "eve", "bob", "Carol"}},
		{"sort JSON numbers before strings", sorted(level, false, false), []string{"eve", "alice", "bob", "Carol", "owner", "dave"}},
		{"sort JSON numbers desc", sorted(level, true, false), []string{"dave", "owner", "Carol", "bob", "alice", "eve"}},
		{"filter, sort, window", store.Query{Where: present(title), SortBy: title, Descending: true, Page: store.Page{Offset: 1, Limit: 2}},
			[]string{"eve", "bob"}},
	})

	// Totals: the stored count without a filter, a count with one; a limit
	// of 0 asks for the total alone.
	for _, tc := range []struct {
		name  string
		q     store.Query
		items int
		total int
	}{
		{"unfiltered", store.Query{Page: store.Page{Limit: 2}}, 2, 6},
		{"filtered", store.Query{Where: present(title), Page: store.Page{Limit: 1}}, 1, 3},
		{"total only", store.Query{Where: present(title)}, 0, 3},
		{"past the end", store.Query{Where: present(title), Page: store.Page{Offset: 3, Limit: 5}}, 0, 3},
	} {
		res, err := s.QueryAdministrators(ctx, o.ID, tc.q)
		if err != nil || len(res.Items) != tc.items || res.Total != tc.total || res.Items == nil {
			t.Errorf("%s: %d items, total %d, %v; want %d, %d", tc.name, len(res.Items), res.Total, err, tc.items, tc.total)
		}
	}
	// The other organization's identical records stay out.
	res, err := s.QueryAdministrators(ctx, other.ID, where(eq(title, "Engineer")))
	if err != nil || len(res.Items) != 1 || res.Items[0].OrgID != other.ID {
		t.Fatalf("other org: %+v, %v", res.Items, err)
	}
	// Records come back whole.
	res, _ = s.QueryAdministrators(ctx, o.ID, where(eq(username, "alice")))
	if got, _ := s.Administrator(ctx, o.ID, u["alice"].ID); len(res.Items) != 1 || fmt.Sprint(res.Items[0]) != fmt.Sprint(got) {
		t.Fatalf("query item %+v\nread       %+v", res.Items, got)
	}
}

func testQueryGroups(t *testing.T, s store.Store) {
	o, u := queryFixture(t, s, "query-groups")
	mk := func(name, external string, members ...string) store.Group {
		g, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: name, ExternalID: external,
			Attributes: store.RawJSON(`{"description":"` + name + ` group"}`)})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range members {
			ids = append(ids, u[m].ID)
		}
		if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: ids}); err != nil {
			t.Fatal(err)
		}
		return g
	}
	mk("Admins", "okta-1", "alice", "bob")
	mk("Ops", "okta-2")
	mk("admins team", "okta-1", "Carol")
	mk("Ärzte", "", "dave")
	dn := store.GroupDisplayName
	member := func(p store.Predicate) store.Any { return store.Any{Attr: "members", Where: p} }
	for _, tc := range []queryCase{
		{"displayName eq folded", where(fold(eq(dn, "ADMINS"))), []string{"Admins"}},
		{"displayName eq folded, Unicode", where(fold(eq(dn, "äRZTE"))), []string{"Ärzte"}},
		{"displayName eq exact", where(eq(dn, "admins")), []string{}},
		{"displayName co folded", where(fold(op(dn, store.OpCo, "ADMIN"))), []string{"Admins", "admins team"}},
		{"externalId", where(eq(store.GroupExternalID, "okta-1")), []string{"Admins", "admins team"}},
		{"attribute", where(op(attr("description"), store.OpSw, "Ops")), []string{"Ops"}},
		{"members value", where(member(eq(attr("value"), u["alice"].ID))), []string{"Admins"}},
		{"members display folded", where(member(fold(eq(attr("display"), "CAROL")))), []string{"admins team"}},
		{"members display exact", where(member(eq(attr("display"), "carol"))), []string{}},
		{"has members", where(store.Any{Attr: "members"}), []string{"Admins", "admins team", "Ärzte"}},
		{"no members", where(store.Not{P: store.Any{Attr: "members"}}), []string{"Ops"}},
		{"sort by code point", store.Query{SortBy: dn, Page: store.Page{Limit: 10}}, []string{"Admins", "Ops", "admins team", "Ärzte"}},
		{"sort folded", store.Query{SortBy: dn, SortFold: true, Page: store.Page{Limit: 10}}, []string{"Admins", "admins team", "Ops", "Ärzte"}},
		{"newest first", store.Query{Descending: true, Page: store.Page{Limit: 10}}, []string{"Ärzte", "admins team", "Ops", "Admins"}},
	} {
		res, err := s.QueryGroups(ctx, o.ID, tc.q)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for _, g := range res.Items {
			got = append(got, g.DisplayName)
		}
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if res.Total != len(tc.want) {
			t.Errorf("%s: total %d, want %d", tc.name, res.Total, len(tc.want))
		}
	}
	res, err := s.QueryGroups(ctx, o.ID, store.Query{Page: store.Page{Limit: 0}})
	if err != nil || res.Total != 4 || len(res.Items) != 0 {
		t.Fatalf("group total: %+v, %v", res, err)
	}
}

// testQueryTimes: timestamps compare and sort chronologically, including
// ones whose fractions have different lengths (SQLite keeps them as text).
func testQueryTimes(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "query-times")
	at := func(v string) *time.Time {
		x, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatal(err)
		}
		return &x
	}
	logins := []*time.Time{
		at("2026-01-01T12:00:00Z"),
		at("2026-01-01T12:00:00.5Z"),
		at("2026-01-01T12:00:00.25Z"),
		at("2026-01-01T11:59:59.999999Z"),
		at("2025-12-31T23:00:00-02:00"), // 01:00 UTC; written in another zone
		nil,
	}
	created := map[string]store.Administrator{}
	for i, l := range logins {
		a := admin(o.ID, fmt.Sprintf("t%d", i+1))
		a.LastLoginAt = l
		created[a.UserName] = mustCreate(t, s, a)
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	ll := store.AdministratorLastLoginAt
	runAdministratorCases(t, s, o.ID, []queryCase{
		{"gt", where(op(ll, store.OpGt, *at("2026-01-01T12:00:00Z"))), []string{"t2", "t3"}},
		{"lt", where(op(ll, store.OpLt, *at("2026-01-01T12:00:00.3Z"))), []string{"t1", "t3", "t4", "t5"}},
		{"eq", where(eq(ll, *at("2026-01-01T12:00:00.25Z"))), []string{"t3"}},
		{"eq, other zone", where(eq(ll, *at("2026-01-01T13:00:00.25+01:00"))), []string{"t3"}},
		{"ge", where(op(ll, store.OpGe, *at("2026-01-01T01:00:00Z"))), []string{"t1", "t2", "t3", "t4", "t5"}},
		{"le, written in another zone", where(op(ll, store.OpLe, *at("2026-01-01T01:00:00Z"))), []string{"t5"}},
		{"pr", where(present(ll)), []string{"t1", "t2", "t3", "t4", "t5"}},
		{"ne is true when absent", where(op(ll, store.OpNe, *at("2026-01-01T12:00:00Z"))), []string{"owner", "t2", "t3", "t4", "t5", "t6"}},
		{"sort", store.Query{SortBy: ll, Page: store.Page{Limit: 10}}, []string{"t5", "t4", "t1", "t3", "t2", "owner", "t6"}},
		{"sort desc", store.Query{SortBy: ll, Descending: true, Page: store.Page{Limit: 10}}, []string{"t6", "owner", "t2", "t3", "t1", "t4", "t5"}},
		{"created_at ge", where(op(store.AdministratorCreatedAt, store.OpGe, created["t3"].CreatedAt)), []string{"t3", "t4", "t5", "t6"}},
		{"created_at lt", where(op(store.AdministratorCreatedAt, store.OpLt, created["t2"].CreatedAt)), []string{"owner", "t1"}},
		{"updated_at eq", where(eq(store.AdministratorUpdatedAt, created["t4"].UpdatedAt)), []string{"t4"}},
	})
	got, _ := s.Administrator(ctx, o.ID, created["t5"].ID)
	if got.LastLoginAt == nil || !got.LastLoginAt.Equal(*logins[4]) {
		t.Fatalf("a time written in another zone read back as %v", got.LastLoginAt)
	}
}

func testQueryInvalid(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "query-invalid")
	columnAndPath := store.AdministratorUserName
	columnAndPath.Attr = []string{"x"}
	for name, q := range map[string]store.Query{
		"group column on users":  where(eq(store.GroupDisplayName, "x")),
		"group id on users":      where(eq(store.GroupID, "x")),
		"column and path":        where(eq(columnAndPath, "x")),
		"no field":               where(eq(store.Field{}, "x")),
		"number for a string":    where(eq(store.AdministratorUserName, 5.0)),
		"string for a time":      where(op(store.AdministratorCreatedAt, store.OpGt, "2026-01-01")),
		"substring of a time":    where(op(store.AdministratorCreatedAt, store.OpCo, time.Now())),
		"unknown operator":       where(op(store.AdministratorUserName, "like", "x")),
		"substring of a number":  where(op(attr("level"), store.OpCo, 5.0)),
		"order of booleans":      where(op(attr("flag"), store.OpGt, true)),
		"quote in a key":         where(eq(attr(`a"b`), "x")),
		"backslash in a key":     where(eq(attr(`a\b`), "x")),
		"empty key":              where(eq(attr("name", ""), "x")),
		"numeric key":            where(eq(attr("phoneNumbers", "0", "value"), "x")),
		"NUL in a value":         where(eq(store.AdministratorUserName, "a\x00b")),
		"nested Any":             where(store.Any{Attr: "addresses", Where: store.Any{Attr: "roles"}}),
		"unknown email field":    where(store.Any{Attr: "emails", Where: eq(attr("kind"), "x")}),
		"column inside Any":      where(store.Any{Attr: "addresses", Where: eq(store.AdministratorUserName, "x")}),
		"nil predicate":          where(store.And{nil}),
		"sort by a group column": {SortBy: store.GroupCreatedAt, Page: store.Page{Limit: 1}},
		"After with a sort":      {SortBy: store.AdministratorUserName, After: "c1", Page: store.Page{Limit: 1}},
		"bad cursor":             {After: "not-a-cursor", Page: store.Page{Limit: 1}},
		"negative offset":        {Page: store.Page{Offset: -1, Limit: 1}},
	} {
		_, err := s.QueryAdministrators(ctx, o.ID, q)
		if !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("%s: %v, want ErrInvalidQuery", name, err)
		}
	}
	// Every column is one record kind's, even those both kinds have.
	for name, q := range map[string]store.Query{
		"user column on groups":  where(eq(store.AdministratorUserName, "x")),
		"user id on groups":      where(eq(store.AdministratorID, "x")),
		"sort by a user column":  {SortBy: store.AdministratorCreatedAt, Page: store.Page{Limit: 1}},
		"user column in members": where(store.Any{Attr: "members", Where: eq(store.AdministratorUserName, "x")}),
	} {
		_, err := s.QueryGroups(ctx, o.ID, q)
		if !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("%s: %v, want ErrInvalidQuery", name, err)
		}
	}
}

// testQueryCursorPaging pages through 1,000 administrators with After while
// others are inserted between pages: every record is seen once, in order.
func testQueryCursorPaging(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "cursor")
	const n, limit = 1000, 37
	var batch []store.Administrator
	for i := range n {
		batch = append(batch, admin(o.ID, fmt.Sprintf("p%04d", i)))
	}
	if err := CreateAdministrators(s, batch); err != nil {
		t.Fatal(err)
	}
	want := []string{owner.UserName}
	for i := range n {
		want = append(want, fmt.Sprintf("p%04d", i))
	}
	page := func(q store.Query) store.Result[store.Administrator] {
		t.Helper()
		res, err := s.QueryAdministrators(ctx, o.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	// Ascending: rows inserted meanwhile come after the ones there before.
	var got []string
	q := store.Query{Page: store.Page{Limit: limit}}
	for pages := 0; ; pages++ {
		res := page(q)
		got = append(got, usernames(res.Items)...)
		if res.Next == "" {
			if len(res.Items) == limit {
				t.Fatal("a full page without Next")
			}
			break
		}
		if pages > 2*n/limit {
			t.Fatal("paging does not end")
		}
		mustCreate(t, s, admin(o.ID, fmt.Sprintf("late%03d", pages)))
		q.After, q.Page.Offset = res.Next, q.Page.Offset+len(res.Items)
	}
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("paged %d records; the first %d differ from the creation order", len(got), len(want))
	}
	seen := map[string]bool{}
	for _, name := range got {
		if seen[name] {
			t.Fatalf("%s on two pages", name)
		}
		seen[name] = true
	}
	_, total, _ := listAdministrators(s, o.ID, store.Page{})
	if len(got) != total {
		t.Fatalf("paged through %d of %d: some were skipped", len(got), total)
	}

	// Descending, with a filter: the later inserts are not in the filter.
	got = nil
	q = store.Query{Where: op(store.AdministratorUserName, store.OpSw, "p"), Descending: true, Page: store.Page{Limit: limit}}
	for {
		res := page(q)
		if res.Total != n {
			t.Fatalf("filtered total %d, want %d", res.Total, n)
		}
		got = append(got, usernames(res.Items)...)
		if len(res.Items) < limit { // a filtered first page has no Next
			break
		}
		mustCreate(t, s, admin(o.ID, fmt.Sprintf("x-late-%d", len(got))))
		q.After, q.Page.Offset = res.Next, q.Page.Offset+len(res.Items)
	}
	reversed := slices.Clone(want[1:])
	slices.Reverse(reversed)
	if !slices.Equal(got, reversed) {
		t.Fatalf("descending pages: %d records, want the %d in reverse creation order", len(got), n)
	}
}

// testQueryUnicodeFold: comparisons and sorts with Fold on text without a
// *_fold column (plain columns, the JSON document) fold all of Unicode,
// as username uniqueness does, the same on every backend: SQLite's and
// PostgreSQL's lower() fold only ASCII, or as the database's locale says.
func testQueryUnicodeFold(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "unifold") // owner: no displayName, family name "Owner"
	for _, x := range []struct{ name, family, display string }{
		{"emile", "MÜLLER", "ÉMILE Zoë"},
		{"strasse", "Groß", "Straße"},
		{"greek", "ΟΔΟΣ", "ΟΔΟΣ"},
		{"emma", "Émond", "emma"},
		{"eclair", "ÉCLAIR", "éclair"},
		{"zoe", "zoe", "Zoe"},
		{"decomposed", "Mu\u0308ller", "E\u0301MILE ZOE\u0308"},
	} {
		a := admin(o.ID, x.name)
		a.FamilyName = x.family
		a.Attributes = store.RawJSON(`{"displayName":"` + x.display + `"}`)
		mustCreate(t, s, a)
	}
	display, family := attr("displayName"), store.AdministratorFamilyName
	sorted := func(f store.Field, desc bool) store.Query {
		return store.Query{SortBy: f, SortFold: true, Descending: desc, Page: store.Page{Limit: 100}}
	}
	runAdministratorCases(t, s, o.ID, []queryCase{
		{"displayName eq", where(fold(eq(display, "émile zoë"))), []string{"emile", "decomposed"}},
		{"displayName eq, decomposed value", where(fold(eq(display, "e\u0301mile zoe\u0308"))), []string{"emile", "decomposed"}},
		{"displayName eq, full folding", where(fold(eq(display, "STRASSE"))), []string{"strasse"}},
		{"displayName eq, final sigma", where(fold(eq(display, "οδοσ"))), []string{"greek"}},
		{"displayName co", where(fold(op(display, store.OpCo, "ZOË"))), []string{"emile", "decomposed"}},
		{"displayName sw", where(fold(op(display, store.OpSw, "É"))), []string{"emile", "eclair", "decomposed"}},
		{"displayName ew", where(fold(op(display, store.OpEw, "SSE"))), []string{"strasse"}},
		{"displayName gt", where(fold(op(display, store.OpGt, "zoe"))), []string{"emile", "greek", "eclair", "decomposed"}},
		{"displayName ne", where(fold(op(display, store.OpNe, "ÉMILE ZOË"))), []string{"owner", "strasse", "greek", "emma", "eclair", "zoe"}},
		{"family_name eq", where(fold(eq(family, "müller"))), []string{"emile", "decomposed"}},
		{"family_name eq, full folding", where(fold(eq(family, "GROSS"))), []string{"strasse"}},
		{"family_name sw", where(fold(op(family, store.OpSw, "é"))), []string{"emma", "eclair"}},
		// Folded keys in code point order: emma, owner, strasse, zoe <
		// éclair < émile zoë (twice, in creation order) < οδοσ; no
		// displayName last.
		{"sort displayName", sorted(display, false), []string{"emma", "strasse", "zoe", "eclair", "emile", "decomposed", "greek", "owner"}},
		{"sort displayName descending", sorted(display, true), []string{"owner", "greek", "decomposed", "emile", "eclair", "zoe", "strasse", "emma"}},
		{"sort family_name", sorted(family, false), []string{"strasse", "emile", "decomposed", "owner", "zoe", "eclair", "emma", "greek"}},
	})
}

// testQueryAfterShift: a page continued with After is the page its offset
// gives at that moment, after each kind of write that shifts the positions
// before it (store.Query.After): a removal before the cursor, a change
// that makes an earlier record leave a filter, a group change that makes
// one join a filter on groups, and in descending order an insert.
func testQueryAfterShift(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "aftershift")
	var batch []store.Administrator
	for i := range 40 {
		batch = append(batch, admin(o.ID, fmt.Sprintf("s%02d", i)))
	}
	if err := CreateAdministrators(s, batch); err != nil {
		t.Fatal(err)
	}
	all, _, err := listAdministrators(s, o.ID, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for _, a := range all {
		byName[a.UserName] = a.ID
	}
	g, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "shifters"})
	if err != nil {
		t.Fatal(err)
	}
	const limit = 5
	for _, tc := range []struct {
		name  string
		q     store.Query
		write func()
	}{
		{"removal before the cursor", store.Query{}, func() {
			if err := s.DeleteAdministrator(ctx, o.ID, byName["s01"], store.FlagMissingSuper, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"a filtered record renamed out", store.Query{Where: op(store.AdministratorUserName, store.OpSw, "s")}, func() {
			if _, err := s.UpdateAdministrator(ctx, o.ID, byName["s03"], store.FlagMissingSuper, func(a *store.Administrator) error {
				a.UserName = "t03"
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{"a member added to a filtered group", store.Query{Where: store.Any{Attr: "groups", Where: eq(store.Field{Attr: []string{"value"}}, g.ID)}}, func() {
			if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: []string{owner.ID}}); err != nil {
				t.Fatal(err)
			}
		}},
		{"an insert in descending order", store.Query{Descending: true}, func() { mustCreate(t, s, admin(o.ID, "s-late")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "a member added to a filtered group" {
				var ids []string
				for i := 10; i < 30; i++ {
					ids = append(ids, byName[fmt.Sprintf("s%02d", i)])
				}
				if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: ids}); err != nil {
					t.Fatal(err)
				}
			}
			q := tc.q
			q.Page = store.Page{Limit: limit}
			first, err := s.QueryAdministrators(ctx, o.ID, q)
			if err != nil {
				t.Fatal(err)
			}
			q.Page.Offset = limit
			second, err := s.QueryAdministrators(ctx, o.ID, q) // positioned: carries a Next
			if err != nil || second.Next == "" || len(first.Items) != limit {
				t.Fatalf("pages of %d and %d, Next %q: %v", len(first.Items), len(second.Items), second.Next, err)
			}
			q.Page.Offset = 2 * limit
			q.After = second.Next
			unchanged, err := s.QueryAdministrators(ctx, o.ID, q)
			if err != nil {
				t.Fatal(err)
			}
			tc.write()
			shifted, err := s.QueryAdministrators(ctx, o.ID, q)
			if err != nil {
				t.Fatal(err)
			}
			q.After = ""
			byOffset, err := s.QueryAdministrators(ctx, o.ID, q)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := usernames(shifted.Items), usernames(byOffset.Items); !slices.Equal(got, want) {
				t.Errorf("after the write, the page continued with After is %v; its offset gives %v", got, want)
			}
			if slices.Equal(usernames(unchanged.Items), usernames(byOffset.Items)) {
				t.Errorf("the write did not shift the page (%v): the test tests nothing", usernames(byOffset.Items))
			}
		})
	}
}
