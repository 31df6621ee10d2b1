// Package geoip says where a sign-in's address is: the country and city of
// a MaxMind-format database (GeoLite2-City or GeoIP2-City; a Country
// database gives the country alone), read with maxminddb-golang. SignIn
// stores the answer with each login-history entry (admin.Locator).
//
// The database is the operator's file, read whole into memory rather than
// memory-mapped: a mapped file rewritten or truncated in place (a plain
// cp over it) would change under the reader or kill the process with
// SIGBUS, and an operator cannot be expected to know. It is verified
// whole when read, so that a corrupt or truncated file stops the server
// at start (or is refused by Reload, the one in use staying) instead of
// failing sign-ins later. A new file, copied or renamed over the old one,
// is read by Reload (serve calls it on SIGHUP).
package geoip

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"gatehouse/store"
)

// DB is an open database; safe for concurrent use, Reload included.
type DB struct {
	path      string
	languages []string
	reader    atomic.Pointer[maxminddb.Reader]
	size      atomic.Int64
}

// Open opens and verifies the database at path. Names are kept in the
// given languages only (the console's: "en", "ru").
func Open(path string, languages []string) (*DB, error) {
	d := &DB{path: path, languages: languages}
	if err := d.Reload(); err != nil {
		return nil, err
	}
	return d, nil
}

// Reload reads the database's file again and, once it is verified, uses
// it for every lookup from then on. On an error the database in use
// stays. The replaced reader is left to the garbage collector: lookups
// under way still read it.
func (d *DB) Reload() error {
	data, err := os.ReadFile(d.path)
	if err != nil {
		return fmt.Errorf("geoip: %w", err) // names the file
	}
	r, err := maxminddb.OpenBytes(data)
	if err == nil {
		err = r.Verify()
	}
	if err != nil {
		return fmt.Errorf("geoip: %s is not a valid MaxMind database: %w", d.path, err)
	}
	d.reader.Store(r)
	d.size.Store(int64(len(data)))
	return nil
}

// Size is the bytes of memory the database in use holds.
func (d *DB) Size() int64 { return d.size.Load() }

// Describe is the database's type and build time, for the log.
func (d *DB) Describe() string {
	m := d.reader.Load().Metadata
	return fmt.Sprintf("%s built %s", m.DatabaseType, m.BuildTime().UTC().Format(time.DateOnly))
}

// record is the part of a GeoIP2/GeoLite2 City or Country record read
// here. registered_country stands in when an address has no country
// (anycast and satellite networks).
type record struct {
	Country           place `maxminddb:"country"`
	RegisteredCountry place `maxminddb:"registered_country"`
	City              place `maxminddb:"city"`
}

type place struct {
	ISOCode string            `maxminddb:"iso_code"`
	Names   map[string]string `maxminddb:"names"`
}

// Locate is where ip is. An address that is not one (a malformed
// X-Forwarded-For entry), that is private, loopback, link-local,
// multicast or shared (carrier-grade NAT), that the database does not
// hold, or whose record does not decode, is the zero Location.
func (d *DB) Locate(ip string) store.Location {
	addr, err := netip.ParseAddr(ip)
	if err != nil || !public(addr.Unmap()) {
		return store.Location{}
	}
	var rec record
	if err := d.reader.Load().Lookup(addr.Unmap()).Decode(&rec); err != nil {
		return store.Location{}
	}
	country := rec.Country
	if country.ISOCode == "" && len(country.Names) == 0 {
		country = rec.RegisteredCountry
	}
	return store.Location{CountryCode: strings.ToUpper(country.ISOCode), Country: d.names(country.Names), City: d.names(rec.City.Names)}
}

func (d *DB) names(all map[string]string) map[string]string {
	var out map[string]string
	for _, lang := range d.languages {
		if n := all[lang]; n != "" {
			if out == nil {
				out = make(map[string]string, len(d.languages))
			}
			out[lang] = n
		}
	}
	return out
}

// sharedSpace is RFC 6598's carrier-grade NAT range: private in all but
// name.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// public reports whether a is an address a database can place: none of
// the ranges that mean "somewhere on a private network".
func public(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsPrivate() && !a.IsLinkLocalUnicast() &&
		!a.IsMulticast() && !sharedSpace.Contains(a)
}
