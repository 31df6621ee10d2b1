package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gatehouse/store"
)

// TestServeQueryFieldsPerRecordKind: every attribute that SCIM filters and
// sorts through a column of the store (the ones both resource types have,
// id, externalId and meta's times, included) and every order and filter of
// the management API's list resolves to its own record kind's column:
// each answers 200 with the records it names, on both databases.
func TestServeQueryFieldsPerRecordKind(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, _ *store.SQL) {
		s := startServed(t, dsn)
		a := s.createUser(`{"userName":"fields.a","externalId":"ext-a","name":{"givenName":"Ann","familyName":"Zed"}}`)
		s.createUser(`{"userName":"fields.b","externalId":"ext-b","name":{"givenName":"Bob","familyName":"Young"},"active":false}`)
		g1 := s.createGroup(`{"displayName":"Fields One","externalId":"gext-1","members":[{"value":"` + a + `"}]}`)
		s.createGroup(`{"displayName":"Fields Two","externalId":"gext-2"}`)

		const past = `"2000-01-01T00:00:00Z"`
		for _, tc := range []struct {
			query url.Values
			want  string
		}{
			{url.Values{"filter": {`id eq "` + a + `"`}}, "fields.a"},
			{url.Values{"filter": {`externalId eq "ext-a"`}}, "fields.a"},
			{url.Values{"filter": {`userName eq "fields.a"`}}, "fields.a"},
			{url.Values{"filter": {`name.givenName eq "Ann"`}}, "fields.a"},
			{url.Values{"filter": {`name.familyName eq "Zed"`}}, "fields.a"},
			{url.Values{"filter": {`userName sw "fields." and active eq false`}}, "fields.b"},
			{url.Values{"filter": {`meta.created gt ` + past + ` and externalId eq "ext-a"`}}, "fields.a"},
			{url.Values{"filter": {`meta.lastModified gt ` + past + ` and externalId eq "ext-b"`}}, "fields.b"},
			{url.Values{"filter": {`userName sw "fields."`}, "sortBy": {"externalId"}, "sortOrder": {"descending"}}, "fields.b,fields.a"},
			{url.Values{"filter": {`userName sw "fields."`}, "sortBy": {"name.familyName"}}, "fields.b,fields.a"},
			{url.Values{"filter": {`userName sw "fields."`}, "sortBy": {"meta.created"}}, "fields.a,fields.b"},
			{url.Values{"filter": {`userName sw "fields."`}, "sortBy": {"meta.lastModified"}, "sortOrder": {"descending"}}, "fields.b,fields.a"},
			{url.Values{"filter": {`userName sw "fields."`}, "sortBy": {"userName"}}, "fields.a,fields.b"},
			{url.Values{"filter": {`userName sw "fields."`}, "sortBy": {"id"}}, ""}, // any order
		} {
			got := strings.Join(s.filterUsers(tc.query), ",")
			if tc.want != "" && got != tc.want || tc.want == "" && len(got) != len("fields.a,fields.b") {
				t.Errorf("Users?%s = %q, want %q", tc.query.Encode(), got, tc.want)
			}
		}

		for _, tc := range []struct {
			query url.Values
			want  string
		}{
			{url.Values{"filter": {`id eq "` + g1 + `"`}}, "Fields One"},
			{url.Values{"filter": {`externalId eq "gext-1"`}}, "Fields One"},
			{url.Values{"filter": {`displayName eq "fields one"`}}, "Fields One"},
			{url.Values{"filter": {`meta.created gt ` + past + ` and externalId eq "gext-2"`}}, "Fields Two"},
			{url.Values{"filter": {`meta.lastModified gt ` + past + ` and externalId eq "gext-1"`}}, "Fields One"},
			{url.Values{"filter": {`members.value eq "` + a + `"`}}, "Fields One"},
			{url.Values{"filter": {`displayName sw "Fields"`}, "sortBy": {"externalId"}, "sortOrder": {"descending"}}, "Fields Two,Fields One"},
			{url.Values{"filter": {`displayName sw "Fields"`}, "sortBy": {"displayName"}}, "Fields One,Fields Two"},
			{url.Values{"filter": {`displayName sw "Fields"`}, "sortBy": {"meta.created"}, "sortOrder": {"descending"}}, "Fields Two,Fields One"},
			{url.Values{"filter": {`displayName sw "Fields"`}, "sortBy": {"meta.lastModified"}}, "Fields One,Fields Two"},
			{url.Values{"filter": {`displayName sw "Fields"`}, "sortBy": {"id"}}, ""}, // any order
		} {
			got := strings.Join(s.groupNames(tc.query), ",")
			if tc.want != "" && got != tc.want || tc.want == "" && len(got) != len("Fields One,Fields Two") {
				t.Errorf("Groups?%s = %q, want %q", tc.query.Encode(), got, tc.want)
			}
		}

		// The management API's list (beta: its owner Jane.Doe alone).
		for _, q := range []string{"sort=name", "sort=username", "sort=email", "sort=role", "sort=status", "sort=created",
			"sort=lastLogin&order=desc", "q=jane", "status=Pending", "role=Super+Administrator"} {
			resp, out := s.api("GET", "/administrators?"+q, "")
			var list struct {
				Total int
				Items []struct{ Username string }
			}
			if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(out), &list) != nil || list.Total != 1 || len(list.Items) != 1 {
				t.Errorf("GET /api/v1/administrators?%s: %d %s", q, resp.StatusCode, out)
			}
		}
	})
}

// createGroup creates a SCIM group and returns its id.
func (s *served) createGroup(body string) string {
	s.t.Helper()
	resp, out := s.scim("POST", "/Groups", body, nil)
	if resp.StatusCode != http.StatusCreated {
		s.t.Fatalf("create %s: %d %s", body, resp.StatusCode, out)
	}
	var g struct{ ID string }
	if err := json.Unmarshal([]byte(out), &g); err != nil || g.ID == "" {
		s.t.Fatalf("create: %s", out)
	}
	return g.ID
}

// groupNames returns the displayNames a SCIM list of Groups answers, in
// its order.
func (s *served) groupNames(query url.Values) []string {
	s.t.Helper()
	resp, out := s.scim("GET", "/Groups?"+query.Encode(), "", nil)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET /Groups?%s: %d %s", query.Encode(), resp.StatusCode, out)
	}
	var list struct {
		TotalResults int
		Resources    []struct{ DisplayName string }
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		s.t.Fatal(err)
	}
	names := []string{}
	for _, r := range list.Resources {
		names = append(names, r.DisplayName)
	}
	if list.TotalResults != len(names) {
		s.t.Fatalf("GET /Groups?%s: totalResults %d, %d resources", query.Encode(), list.TotalResults, len(names))
	}
	return names
}
