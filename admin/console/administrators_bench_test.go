package console

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/admin/web"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// adminsFixture is a console over a real store holding an organization
// of n administrators (and its owner, signed in).
type adminsFixture struct {
	mux     *http.ServeMux
	session string
}

func newAdminsFixture(tb testing.TB, s *store.SQL, n int) *adminsFixture {
	tb.Helper()
	ctx := storetest.Context(context.Background())
	org, owner, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "bench", Name: "Bench"},
		Owner: store.Administrator{UserName: "owner", Email: "owner@example.com", GivenName: "Olive", FamilyName: "Owner",
			Role: store.RoleSuperAdministrator, Status: store.StatusActive}})
	if err != nil {
		tb.Fatal(err)
	}
	as := make([]store.Administrator, n)
	statuses := []store.Status{store.StatusActive, store.StatusPending, store.StatusDeactivated}
	for i := range as {
		as[i] = store.Administrator{OrgID: org.ID, UserName: fmt.Sprintf("user%05d", i), Email: fmt.Sprintf("user%05d@example.com", i),
			GivenName: fmt.Sprintf("Given%d", i), FamilyName: fmt.Sprintf("Family-%d", (i*7919)%n), Role: store.RoleAdministrator,
			Status: statuses[i%3]}
	}
	if err := s.CreateAdministrators(ctx, as); err != nil {
		tb.Fatal(err)
	}
	sealer, err := admin.NewSealer(make([]byte, 32))
	if err != nil {
		tb.Fatal(err)
	}
	signIn := &admin.SignIn{Store: s, Sealer: sealer}
	const password = "a long benchmark passphrase"
	if err := signIn.SetPassword(ctx, org.ID, owner.ID, password, false); err != nil {
		tb.Fatal(err)
	}
	res, err := signIn.Login(ctx, admin.LoginRequest{OrgSlug: org.Slug, Username: owner.UserName, Password: password, IP: "127.0.0.1"})
	if err != nil {
		tb.Fatal(err)
	}
	c := &Console{Store: s, Orgs: &admin.Orgs{Store: s}, Administrators: &admin.Administrators{Store: s}, SignIn: signIn}
	mux := http.NewServeMux()
	c.Register(mux)
	return &adminsFixture{mux: mux, session: res.Token}
}

// get renders path as the signed-in owner.
func (f *adminsFixture) get(tb testing.TB, path string) string {
	r := httptest.NewRequest("GET", path, nil)
	r.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: f.session})
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	if w.Code != 200 {
		tb.Fatalf("GET %s: %d %s", path, w.Code, w.Body.String())
	}
	return w.Body.String()
}

var nextLink = regexp.MustCompile(`href="(/administrators\?[^"]*)" rel="next"`)

// adminPages are the pages the benchmark renders: the first page, a
// search, a later page (reached by its Next link, which carries the
// store's cursor, and by its offset alone), and sorts by other columns.
func adminPages(tb testing.TB, f *adminsFixture) []struct{ name, path string } {
	// Page 101 (rows 5,001 to 5,050) as a person reaches it: the Next
	// link of page 100.
	prev := f.get(tb, "/administrators?offset=4950")
	m := nextLink.FindStringSubmatch(prev)
	if m == nil || !strings.Contains(m[1], "after=") {
		tb.Fatalf("page 100 has no Next link with a cursor")
	}
	later := strings.ReplaceAll(m[1], "&amp;", "&")
	return []struct{ name, path string }{
		{"first", "/administrators"},
		{"search", "/administrators?q=" + url.QueryEscape("USER0421")},
		{"search-filter", "/administrators?q=family-1&status=Pending"},
		{"later-cursor", later},
		{"later-offset", "/administrators?offset=5000"},
		{"sort-name", "/administrators?sort=name&order=asc"},
		{"sort-email-desc", "/administrators?sort=email&order=desc"},
		{"sort-email-desc-later", "/administrators?sort=email&order=desc&offset=5000"},
		{"drawer", ""}, // filled below
	}
}

// BenchmarkAdministrationPage renders the Administration page with
// 10,000 administrators (server time: the handler, its session check,
// its queries and the template), on SQLite and, where one can be
// started, PostgreSQL:
//
//	go test -run '^$' -bench BenchmarkAdministrationPage -benchtime 50x ./admin/console/
//
// The target is under 100 ms a page; bytes/page is the HTML's weight.
func BenchmarkAdministrationPage(b *testing.B) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) *store.SQL
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(backend.name, func(b *testing.B) {
			f := newAdminsFixture(b, backend.open(b), 10_000)
			pages := adminPages(b, f)
			// A drawer: an administrator's View/Edit over the first page.
			m := regexp.MustCompile(`href="(/administrators/[^"?]+)"`).FindStringSubmatch(f.get(b, "/administrators"))
			pages[len(pages)-1].path = m[1]
			for _, pg := range pages {
				b.Run(pg.name, func(b *testing.B) {
					size := 0
					cpu := processCPU()
					for b.Loop() {
						size = len(f.get(b, pg.path))
					}
					b.ReportMetric(float64(size), "bytes/page")
					// The CPU this process spent a page (SQLite runs in it;
					// PostgreSQL's own CPU is not counted): on a shared
					// machine, wall time also counts the waits for a core.
					b.ReportMetric(float64(processCPU()-cpu)/float64(b.N)/1e6, "cpu-ms/page")
				})
			}
		})
	}
}

// TestAdministrationPageWeight: the Administration page, a full page of
// the table with a drawer open, weighs under 100 KB with its stylesheet
// and script (the console has no images). Its speed is the benchmark's.
func TestAdministrationPageWeight(t *testing.T) {
	f := newAdminsFixture(t, storetest.SQLite(t), 200)
	assets := 0
	err := fs.WalkDir(assetFS, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assetFS.ReadFile(path)
		assets += len(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`href="(/administrators/[^"?]+)"`).FindStringSubmatch(f.get(t, "/administrators"))
	drawer := f.get(t, m[1]+"?q=user&sort=email")
	if !strings.Contains(drawer, `class="drawer"`) || !strings.Contains(drawer, "1–50 of 200") {
		t.Fatalf("not a full page with a drawer:\n%s", drawer)
	}
	if total := len(drawer) + assets; total > 100_000 {
		t.Errorf("the Administration page weighs %d bytes (HTML %d, CSS and JS %d), want under 100 KB", total, len(drawer), assets)
	} else {
		t.Logf("the Administration page weighs %d bytes (HTML %d, CSS and JS %d)", total, len(drawer), assets)
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
