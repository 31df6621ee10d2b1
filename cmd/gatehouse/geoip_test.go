package main

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse/admin/geoip/geoiptest"
	"gatehouse/store"
)

// geoClient signs in through the API as jdoe of org from the address from
// (X-Forwarded-For, which serve trusts with --trust-forwarded-for) and
// keeps the session cookie.
type geoClient struct {
	base string
	http *http.Client
}

func newGeoClient(t *testing.T, base string) *geoClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &geoClient{base: base, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (c *geoClient) signIn(t *testing.T, org, password, from string, want int) {
	t.Helper()
	req, _ := http.NewRequest("POST", c.base+"/api/v1/session",
		strings.NewReader(`{"organization":"`+org+`","username":"jdoe","password":"`+password+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", "127.0.0.1, "+from) // the last entry is the load balancer's
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("sign-in from %s: %d, want %d", from, resp.StatusCode, want)
	}
}

func (c *geoClient) get(t *testing.T, path string, header map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", c.base+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, body := doWith(t, c.http, req)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

// historyEntry is an item of the API's login history.
type historyEntry struct {
	IP       string          `json:"ip"`
	Result   string          `json:"result"`
	Location json.RawMessage `json:"location"`
}

func (c *geoClient) history(t *testing.T, adminID string) []historyEntry {
	t.Helper()
	var page struct{ Items []historyEntry }
	if err := json.Unmarshal([]byte(c.get(t, "/api/v1/administrators/"+adminID+"/login-history", nil)), &page); err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// TestServeGeoIP: with --geoip-db, real password sign-ins through serve
// from chosen addresses are placed in the login history, shown by the
// API (in English) and the console's drawer (in English and Russian, with
// English where the database has no Russian name); private addresses and
// addresses the database lacks are not placed. A database replaced and
// reloaded on SIGHUP places new sign-ins, and the entries written before
// keep where their address was then. Without --trust-forwarded-for, the
// address a client claims in X-Forwarded-For is not placed.
func TestServeGeoIP(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		mmdb := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
		geoiptest.Write(t, mmdb, geoiptest.All)
		srv, c, jdoe := geoServe(t, s, "geo", map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": signinKey, "GATEHOUSE_GEOIP_DB": mmdb})
		c.signIn(t, "geo", signinPassword, "127.0.0.1", 200)
		c.signIn(t, "geo", "wrong password", "203.0.113.7", 401) // a refusal is placed too
		c.signIn(t, "geo", signinPassword, "203.0.113.7", 200)
		c.signIn(t, "geo", signinPassword, "198.51.100.20", 200)
		c.signIn(t, "geo", signinPassword, "2001:db8::5", 200)
		c.signIn(t, "geo", signinPassword, "192.0.2.1", 200)   // a country without a city
		c.signIn(t, "geo", signinPassword, "10.1.2.3", 200)    // private, though the database has it
		c.signIn(t, "geo", signinPassword, "192.0.2.200", 200) // not in the database

		want := []struct{ ip, location string }{
			{"192.0.2.200", ``},
			{"10.1.2.3", ``},
			{"192.0.2.1", `{"country":"France","countryCode":"FR"}`},
			{"2001:db8::5", `{"country":"Japan","countryCode":"JP","city":"Tokyo"}`},
			{"198.51.100.20", `{"country":"Portugal","countryCode":"PT","city":"Lisbon"}`},
			{"203.0.113.7", `{"country":"Germany","countryCode":"DE","city":"Berlin"}`},
			{"203.0.113.7", `{"country":"Germany","countryCode":"DE","city":"Berlin"}`},
			{"127.0.0.1", ``},
		}
		hist := c.history(t, jdoe.ID)
		if len(hist) != len(want) {
			t.Fatalf("login history has %d entries, want %d: %s", len(hist), len(want), hist)
		}
		for i, w := range want {
			if hist[i].IP != w.ip || string(hist[i].Location) != w.location {
				t.Errorf("entry %d: %s %s, want %s %s", i, hist[i].IP, hist[i].Location, w.ip, w.location)
			}
		}

		drawer := "/administrators/" + jdoe.ID
		en := c.get(t, drawer, map[string]string{"Accept-Language": "en"})
		for _, text := range []string{">Location</th>", "Berlin, Germany", "Lisbon, Portugal", "Tokyo, Japan", ">France<", ">Unknown<"} {
			if !strings.Contains(en, text) {
				t.Errorf("the English drawer lacks %q", text)
			}
		}
		ru := c.get(t, drawer, map[string]string{"Accept-Language": "ru"})
		for _, text := range []string{">Местоположение</th>", "Берлин, Германия", "Lisbon, Portugal", "Токио, Япония", ">Франция<", ">Неизвестно<"} {
			if !strings.Contains(ru, text) {
				t.Errorf("the Russian drawer lacks %q", text)
			}
		}

		// The database replaced (renamed over, as geoipupdate does) and
		// reloaded: a new sign-in from the same address is placed anew;
		// the entries before keep Berlin.
		moved := geoiptest.Berlin
		moved.CountryCode, moved.Country, moved.City = "AT", map[string]string{"en": "Austria", "ru": "Австрия"}, map[string]string{"en": "Vienna", "ru": "Вена"}
		geoiptest.Write(t, mmdb+".new", []geoiptest.Network{moved})
		if err := os.Rename(mmdb+".new", mmdb); err != nil {
			t.Fatal(err)
		}
		hangup(t, srv, "SIGHUP: reloaded the GeoIP database")
		c.signIn(t, "geo", signinPassword, "203.0.113.7", 200)
		hist = c.history(t, jdoe.ID)
		if got := string(hist[0].Location); got != `{"country":"Austria","countryCode":"AT","city":"Vienna"}` {
			t.Errorf("after the reload: %s", got)
		}
		if got := string(hist[len(hist)-2].Location); !strings.Contains(got, `"Berlin"`) {
			t.Errorf("an entry written before the reload now says %s", got)
		}

		// An instance that does not trust X-Forwarded-For places the
		// connection's peer (loopback: nowhere), not the address a client
		// claims in the header.
		addr := freeAddr(t)
		direct := startServe(t, addr, map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": signinKey, "GATEHOUSE_GEOIP_DB": mmdb},
			"--addr", addr, "--log-format", "json")
		newGeoClient(t, direct.base).signIn(t, "geo", signinPassword, "203.0.113.9", 200)
		if h := c.history(t, jdoe.ID)[0]; h.IP != "127.0.0.1" || len(h.Location) != 0 {
			t.Errorf("a claimed X-Forwarded-For without --trust-forwarded-for: %s %s", h.IP, h.Location)
		}

		// A corrupt file on reload is refused; the database in use stays.
		if err := os.WriteFile(mmdb, []byte("not a database"), 0o644); err != nil {
			t.Fatal(err)
		}
		hangup(t, srv, "the previous one stays in use")
		c.signIn(t, "geo", signinPassword, "203.0.113.8", 200)
		if got := string(c.history(t, jdoe.ID)[0].Location); !strings.Contains(got, `"Vienna"`) {
			t.Errorf("after a refused reload: %s", got)
		}
	})
}

// hangup sends the test process SIGHUP (serve runs in it) and waits for
// one more log line of srv containing answer. Every serve running in the
// process gets every SIGHUP (tests run in parallel): what counts is an
// answer after the caller's change, whoever sent the signal.
func hangup(t *testing.T, srv *server, answer string) {
	t.Helper()
	n := strings.Count(srv.stderr.String(), answer)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(srv.stderr.String(), answer) <= n {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer SIGHUP: %s", srv.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// geoServe creates the organization org with its administrator jdoe
// (activated), starts serve with env, trusting X-Forwarded-For, and
// returns it with a client and jdoe's record.
func geoServe(t *testing.T, s *store.SQL, org string, env map[string]string) (*server, *geoClient, store.Administrator) {
	t.Helper()
	token := signinOrg(t, env, org, "jdoe")
	addr := freeAddr(t)
	srv := startServe(t, addr, env, "--addr", addr, "--trust-forwarded-for", "--log-format", "json")
	activate(t, srv.base, token)
	o, err := s.OrgBySlug(t.Context(), org)
	if err != nil {
		t.Fatal(err)
	}
	jdoe, err := s.AdministratorByUsername(t.Context(), o.ID, "jdoe")
	if err != nil {
		t.Fatal(err)
	}
	return srv, newGeoClient(t, srv.base), jdoe
}

// TestServeWithoutGeoIP: without --geoip-db, sign-ins from public
// addresses have no location: the API's entries have no "location" and
// the drawer no Location column.
func TestServeWithoutGeoIP(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		srv, c, jdoe := geoServe(t, s, "nogeo", map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": signinKey})
		c.signIn(t, "nogeo", signinPassword, "203.0.113.7", 200)
		raw := c.get(t, "/api/v1/administrators/"+jdoe.ID+"/login-history", nil)
		if strings.Contains(raw, "location") || !strings.Contains(raw, `"203.0.113.7"`) {
			t.Errorf("login history without a database: %s", raw)
		}
		if page := c.get(t, "/administrators/"+jdoe.ID, nil); strings.Contains(page, "Location") {
			t.Error("the drawer shows a Location column without a database")
		}
		// SIGHUP does not stop a server without a database.
		hangup(t, srv, "SIGHUP: nothing to reload")
		if code := srv.shutdown(t); code != 0 {
			t.Fatalf("serve exited %d", code)
		}
	})
}

// TestServeGeoIPRefusesABadDatabase: a missing or corrupt --geoip-db stops
// serve at start with one error line naming the file, before it listens.
func TestServeGeoIPRefusesABadDatabase(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.mmdb")
	geoiptest.Write(t, corrupt, geoiptest.All)
	data, err := os.ReadFile(corrupt)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(corrupt, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.mmdb"), corrupt} {
		addr := freeAddr(t)
		r := gatehouse(t, map[string]string{"GATEHOUSE_DB": filepath.Join(dir, "g.db"), "GATEHOUSE_SECRET_KEY": signinKey},
			"serve", "--addr", addr, "--geoip-db", path)
		if r.code == 0 {
			t.Fatalf("serve with %s exited 0", path)
		}
		oneErrorLine(t, r, path)
		if !strings.HasPrefix(r.stderr, "gatehouse: --geoip-db: ") {
			t.Errorf("the error does not name the flag: %q", r.stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "g.db")); err == nil {
			t.Error("serve created its database before refusing the GeoIP database")
		}
	}
}
