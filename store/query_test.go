package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

// The filters identity providers send on every provisioning cycle must be
// index lookups, not a scan of the organization: userName eq (Okta, Entra),
// externalId eq, emails[type eq "work"].value eq and "id eq X and ..."
// (Entra), displayName eq (groups), and pages in creation order.
func TestIdPFiltersUseIndexes(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *store.SQL{"sqlite": storetest.SQLite, "postgres": storetest.Postgres} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			var org string
			for _, slug := range []string{"plans", "plans-other"} {
				o, _, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: slug, Name: slug},
					Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusActive}})
				if err != nil {
					t.Fatal(err)
				}
				org = o.ID
				storetest.SeedAdministrators(t, s, o.ID, "user", 3000)
				for i := range 500 {
					if _, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: fmt.Sprintf("Group %d", i)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if s.Dialect() == "postgres" {
				_, writer := s.DB()
				if _, err := writer.ExecContext(ctx, "ANALYZE"); err != nil {
					t.Fatal(err)
				}
			}
			first, err := s.QueryAdministrators(ctx, org, store.Query{Page: store.Page{Limit: 100}})
			if err != nil {
				t.Fatal(err)
			}
			eq := func(f store.Field, v string, fold bool) store.Compare {
				return store.Compare{Field: f, Op: store.OpEq, Value: v, Fold: fold}
			}
			page := store.Page{Limit: 100}
			for _, tc := range []struct {
				name, resource string
				q              store.Query
				index          string // an index the plan must use
				inOrder        bool   // reads the organization's range in seq order, up to the page's end
			}{
				{"userName eq", "administrators", store.Query{Where: eq(store.AdministratorUserName, "user-1234", false), Page: page},
					"administrators_org_username_fold", false},
				{"externalId eq", "administrators", store.Query{Where: eq(store.AdministratorExternalID, "ext-1234", false), Page: page},
					"administrators_org_external_id", false},
				{"emails[type eq work].value eq", "administrators", store.Query{Where: store.Any{Attr: "emails", Where: store.And{
					eq(store.Field{Attr: []string{"type"}}, "work", false),
					eq(store.Field{Attr: []string{"value"}}, "User-1234@Example.com", true)}}, Page: page},
					"administrator_emails_org_value_fold", false},
				{"id eq and manager eq", "administrators", store.Query{Where: store.And{
					eq(store.AdministratorID, "user-x-00001234", false),
					eq(store.Field{Attr: []string{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value"}}, "boss", false)},
					Page: page}, "administrators_id_key|sqlite_autoindex_administrators_1", false},
				{"displayName eq", "groups", store.Query{Where: eq(store.GroupDisplayName, "group 123", true), Page: page},
					"groups_org_display_name_fold", false},
				// PostgreSQL may walk the primary key (seq) instead, filtering
				// the org, when its statistics say the org is most rows.
				{"next page in creation order", "administrators", store.Query{After: first.Next, Page: store.Page{Offset: 100, Limit: page.Limit}},
					"administrators_org_seq|administrators_pkey", true},
				{"first page of groups", "groups", store.Query{Page: page}, "groups_org_seq|groups_pkey", true},
			} {
				plan, err := store.ExplainQuery(ctx, s, tc.resource, org, tc.q)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				text := strings.Join(plan, "\n")
				if !regexp.MustCompile(tc.index).MatchString(text) {
					t.Errorf("%s: the plan does not use %s:\n%s", tc.name, tc.index, text)
				}
				if bad := fullScan(s.Dialect(), plan, tc.inOrder); bad != "" {
					t.Errorf("%s: the plan scans the organization (%s):\n%s", tc.name, bad, text)
				}
			}
		})
	}
}

// fullScan returns the line of a plan that reads every row of a table, or
// every row of the organization through the org_id prefix of an index
// (unless inOrder: a page in creation order reads that range in order and
// stops at the page's end, without sorting), or "".
func fullScan(dialect string, plan []string, inOrder bool) string {
	bad := []*regexp.Regexp{
		regexp.MustCompile(`^SCAN (a|g|e|ea|administrators|groups|administrator_emails)\b`),
	}
	if inOrder {
		bad = append(bad, regexp.MustCompile(`USE TEMP B-TREE FOR ORDER BY`))
	} else {
		bad = append(bad, regexp.MustCompile(`^SEARCH (a|g|e|ea) USING (COVERING )?INDEX \S+ \(org_id=\?\)$`))
	}
	if dialect == "postgres" {
		bad = []*regexp.Regexp{regexp.MustCompile(`Seq Scan on (administrators|groups|administrator_emails)\b`)}
	}
	for _, line := range plan {
		for _, re := range bad {
			if re.MatchString(strings.TrimSpace(line)) {
				return strings.TrimSpace(line)
			}
		}
	}
	return ""
}

// Rows written before migration 2 get their fold columns and email index
// rows from its Go step.
func TestMigrationBackfill(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "g.db") },
		"postgres": func(t *testing.T) string { return storetest.PostgresURL(t) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			url := dsn(t)
			driver, dialect := "pgx", "postgres"
			if name == "sqlite" {
				driver, dialect = "sqlite3", "sqlite"
			}
			db, err := sql.Open(driver, url)
			if err != nil {
				t.Fatal(err)
			}
			stmts := []string{
				store.MigrationSQL(dialect, 1),
				`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`,
				`INSERT INTO schema_migrations VALUES (1, 'foundation', '2026-01-01T00:00:00Z')`,
				`INSERT INTO orgs (id, slug, name, created_at, updated_at) VALUES ('o1', 'old', 'Old', '2026-01-01 00:00:00', '2026-01-01 00:00:00')`,
				`INSERT INTO groups (id, org_id, display_name, created_at, updated_at) VALUES ('g1', 'o1', 'ÄRZTE', '2026-01-01 00:00:00', '2026-01-01 00:00:00')`,
				`INSERT INTO administrators (id, org_id, username, username_fold, email, role, status, created_at, updated_at)
					VALUES ('a1', 'o1', 'old', 'old', 'Old.User@Example.COM', 'Administrator', 'Active', '2026-01-01 00:00:00', '2026-01-01 00:00:00')`,
			}
			for _, q := range stmts {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%v\n%s", err, q)
				}
			}
			db.Close()

			s, err := store.Open(ctx, url, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			gs, err := s.QueryGroups(ctx, "o1", store.Query{Where: store.Compare{Field: store.GroupDisplayName,
				Op: store.OpEq, Value: "ärzte", Fold: true}, Page: store.Page{Limit: 10}})
			if err != nil || len(gs.Items) != 1 {
				t.Errorf("group by folded name after migration: %+v, %v", gs.Items, err)
			}
			as, err := s.QueryAdministrators(ctx, "o1", store.Query{Where: store.Any{Attr: "emails", Where: store.Compare{
				Field: store.Field{Attr: []string{"value"}}, Op: store.OpEq, Value: "old.user@example.com", Fold: true}}, Page: store.Page{Limit: 10}})
			if err != nil || len(as.Items) != 1 {
				t.Errorf("administrator by email after migration: %+v, %v", as.Items, err)
			}
		})
	}
}
