package geoip_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gatehouse/admin/geoip"
	"gatehouse/admin/geoip/geoiptest"
	"gatehouse/store"
)

func open(t *testing.T, nets []geoiptest.Network) (*geoip.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "city.mmdb")
	geoiptest.Write(t, path, nets)
	db, err := geoip.Open(path, []string{"en", "ru"})
	if err != nil {
		t.Fatal(err)
	}
	return db, path
}

func TestLocate(t *testing.T) {
	db, _ := open(t, geoiptest.All)
	if d := db.Describe(); !strings.HasPrefix(d, "GeoLite2-City built ") {
		t.Errorf("Describe() = %q", d)
	}
	berlin := store.Location{CountryCode: "DE", Country: map[string]string{"en": "Germany", "ru": "Германия"},
		City: map[string]string{"en": "Berlin", "ru": "Берлин"}}
	for _, tc := range []struct {
		ip   string
		want store.Location
	}{
		{"203.0.113.7", berlin},
		{"::ffff:203.0.113.7", berlin}, // IPv4-mapped, as a dual-stack listener reports it
		{"198.51.100.1", store.Location{CountryCode: "PT", Country: map[string]string{"en": "Portugal"}, City: map[string]string{"en": "Lisbon"}}},
		{"2001:db8::1", store.Location{CountryCode: "JP", Country: map[string]string{"en": "Japan", "ru": "Япония"},
			City: map[string]string{"en": "Tokyo", "ru": "Токио"}}},
		{"192.0.2.1", store.Location{CountryCode: "FR", Country: map[string]string{"en": "France", "ru": "Франция"}}},
		// Not in the database.
		{"192.0.2.200", store.Location{}},
		{"8.8.8.8", store.Location{}},
		// In the database, but private: never placed.
		{"10.1.2.3", store.Location{}},
		{"127.0.0.1", store.Location{}},
		{"::1", store.Location{}},
		{"192.168.1.1", store.Location{}},
		{"172.16.0.1", store.Location{}},
		{"100.64.0.1", store.Location{}},
		{"169.254.1.1", store.Location{}},
		{"fe80::1", store.Location{}},
		{"fd00::1", store.Location{}},
		{"0.0.0.0", store.Location{}},
		// Not addresses (a forged X-Forwarded-For never gets this far, but
		// Locate does not trust its caller).
		{"", store.Location{}},
		{"203.0.113.7:443", store.Location{}},
		{"not an address", store.Location{}},
	} {
		if got := db.Locate(tc.ip); !same(got, tc.want) {
			t.Errorf("Locate(%q) = %+v, want %+v", tc.ip, got, tc.want)
		}
	}
}

func same(a, b store.Location) bool {
	eq := func(x, y map[string]string) bool {
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if y[k] != v {
				return false
			}
		}
		return true
	}
	return a.CountryCode == b.CountryCode && eq(a.Country, b.Country) && eq(a.City, b.City)
}

// A missing, empty, truncated or foreign file is refused when opened, with
// an error naming it.
func TestOpenRefusesABadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mmdb")
	geoiptest.Write(t, good, geoiptest.All)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := append([]byte(nil), data...)
	for i := 100; i < 400 && i < len(corrupt); i++ { // the search tree
		corrupt[i] ^= 0xff
	}
	for name, content := range map[string][]byte{
		"empty.mmdb":     {},
		"truncated.mmdb": data[:len(data)/2],
		"corrupt.mmdb":   corrupt,
		"text.mmdb":      []byte("GeoLite2-City, honest\n"),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := geoip.Open(path, []string{"en"}); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Open(%s) = %v, want an error naming the file", name, err)
		}
	}
	if _, err := geoip.Open(filepath.Join(dir, "missing.mmdb"), nil); err == nil || !strings.Contains(err.Error(), "missing.mmdb") {
		t.Errorf("Open(missing) = %v", err)
	}
}

// Reload swaps in a new file while lookups go on; a bad new file is
// refused and the database in use stays.
func TestReloadWhileLocating(t *testing.T) {
	db, path := open(t, []geoiptest.Network{geoiptest.Berlin})
	moved := geoiptest.Berlin
	moved.CountryCode, moved.Country, moved.City = "AT", map[string]string{"en": "Austria"}, map[string]string{"en": "Vienna"}
	next := path + ".new"
	geoiptest.Write(t, next, []geoiptest.Network{moved})

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if got := db.Locate("203.0.113.7").CountryCode; got != "DE" && got != "AT" {
					t.Errorf("during reload: %q", got)
					return
				}
			}
		})
	}
	if err := os.Rename(next, path); err != nil { // as geoipupdate replaces it
		t.Fatal(err)
	}
	if err := db.Reload(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if got := db.Locate("203.0.113.7"); got.CountryCode != "AT" || got.CityName("en") != "Vienna" {
		t.Fatalf("after reload: %+v", got)
	}

	if err := os.WriteFile(next, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, path); err != nil {
		t.Fatal(err)
	}
	if err := db.Reload(); err == nil {
		t.Fatal("a bad file reloaded")
	}
	if got := db.Locate("203.0.113.7").CountryCode; got != "AT" {
		t.Fatalf("after a refused reload: %q", got)
	}
}

// BenchmarkLocate: the cost a sign-in pays for its location (decoding a
// City record's country and city names).
func BenchmarkLocate(b *testing.B) {
	path := filepath.Join(b.TempDir(), "city.mmdb")
	geoiptest.Write(b, path, geoiptest.All)
	db, err := geoip.Open(path, []string{"en", "ru"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if db.Locate("203.0.113.7").CountryCode != "DE" {
			b.Fatal("not placed")
		}
	}
}
