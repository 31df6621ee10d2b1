// Package geoiptest writes small MaxMind-format databases for tests, in
// the GeoLite2-City layout (country iso_code and names, city names), with
// mmdbwriter: the tests build the .mmdb they read, no file is checked in.
package geoiptest

import (
	"net"
	"os"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Network is one network of a test database and where it is. Empty
// fields are left out of its record.
type Network struct {
	CIDR        string
	CountryCode string
	Country     map[string]string // names by language
	City        map[string]string
}

// Networks are the places the tests of gatehouse use: documentation
// ranges (RFC 5737, RFC 3849), and a private range that is in the
// database so that a test proves gatehouse, not the data, leaves private
// addresses unplaced.
var (
	Berlin = Network{CIDR: "203.0.113.0/24", CountryCode: "DE",
		Country: map[string]string{"en": "Germany", "ru": "Германия", "de": "Deutschland"},
		City:    map[string]string{"en": "Berlin", "ru": "Берлин", "de": "Berlin"}}
	// Lisbon has no Russian names: the console falls back to English.
	Lisbon = Network{CIDR: "198.51.100.0/24", CountryCode: "PT",
		Country: map[string]string{"en": "Portugal"}, City: map[string]string{"en": "Lisbon"}}
	// Tokyo is an IPv6 network.
	Tokyo = Network{CIDR: "2001:db8::/32", CountryCode: "JP",
		Country: map[string]string{"en": "Japan", "ru": "Япония"}, City: map[string]string{"en": "Tokyo", "ru": "Токио"}}
	// CountryOnly has no city.
	CountryOnly = Network{CIDR: "192.0.2.0/25", CountryCode: "FR", Country: map[string]string{"en": "France", "ru": "Франция"}}
	// Private is 10.0.0.0/8, placed in Germany by the database.
	Private = Network{CIDR: "10.0.0.0/8", CountryCode: "DE", Country: map[string]string{"en": "Germany"}}
	// All is every network above.
	All = []Network{Berlin, Lisbon, Tokyo, CountryOnly, Private}
)

// Write writes a database holding nets to path (mode 0644).
func Write(t testing.TB, path string, nets []Network) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", Languages: []string{"de", "en", "ru"},
		Description: map[string]string{"en": "gatehouse test database"}, IncludeReservedNetworks: true, RecordSize: 28})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		_, network, err := net.ParseCIDR(n.CIDR)
		if err != nil {
			t.Fatal(err)
		}
		rec := mmdbtype.Map{}
		if n.CountryCode != "" || n.Country != nil {
			country := mmdbtype.Map{}
			if n.CountryCode != "" {
				country["iso_code"] = mmdbtype.String(n.CountryCode)
			}
			if n.Country != nil {
				country["names"] = names(n.Country)
			}
			rec["country"] = country
		}
		if n.City != nil {
			rec["city"] = mmdbtype.Map{"names": names(n.City)}
		}
		if err := tree.Insert(network, rec); err != nil {
			t.Fatalf("%s: %v", n.CIDR, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func names(m map[string]string) mmdbtype.Map {
	out := mmdbtype.Map{}
	for k, v := range m {
		out[mmdbtype.String(k)] = mmdbtype.String(v)
	}
	return out
}
