package saml

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/sso/fetch"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// testIdPMetadata is IdP metadata with a fresh signing certificate.
func testIdPMetadata(t testing.TB, entityID string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: entityID},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return testMetadataXML(entityID, "signing", base64.StdEncoding.EncodeToString(der))
}

func testMetadataXML(entityID, use, certB64 string) string {
	return `<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="` + entityID + `">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="` + use + `"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + certB64 + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.com/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
`
}

func TestCheckSAMLMetadata(t *testing.T) {
	good := testIdPMetadata(t, "https://idp.example.com")
	if err := CheckIdPMetadata([]byte(good)); err != nil {
		t.Fatalf("good metadata: %v", err)
	}
	cert := good[strings.Index(good, "<ds:X509Certificate>")+len("<ds:X509Certificate>") : strings.Index(good, "</ds:X509Certificate>")]
	body := strings.TrimPrefix(good, `<?xml version="1.0"?>`)
	entities := func(inner ...string) string {
		return `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">` + strings.Join(inner, "") + `</md:EntitiesDescriptor>`
	}
	sp := `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="sp"><md:SPSSODescriptor/></md:EntityDescriptor>`
	if err := CheckIdPMetadata([]byte(entities(sp, body))); err != nil {
		t.Fatalf("an EntitiesDescriptor with one IdP: %v", err)
	}
	for name, doc := range map[string]string{
		"html":                "<html><body>Sign in</body></html>",
		"not xml":             "{}",
		"empty":               "",
		"no idp":              `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><md:SPSSODescriptor/></md:EntityDescriptor>`,
		"encryption only":     testMetadataXML("https://idp.example.com", "encryption", cert),
		"bad certificate":     testMetadataXML("https://idp.example.com", "signing", "AAAA"),
		"no entityID":         testMetadataXML("", "signing", cert),
		"wrong namespace":     strings.ReplaceAll(good, "urn:oasis:names:tc:SAML:2.0:metadata", "urn:evil"),
		"two IdPs":            entities(body, strings.Replace(body, "idp.example.com", "idp2.example.com", 1)),
		"no IdP in list":      entities(sp),
		"not round-trip safe": strings.Replace(good, "</md:IDPSSODescriptor>", "<b:c:d/></md:IDPSSODescriptor>", 1),
	} {
		if err := CheckIdPMetadata([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

type refreshFixture struct {
	st      *store.SQL
	conn    store.SSOConnection
	srv     *httptest.Server
	doc     atomic.Value // string the server answers; "404" for not found
	fetches atomic.Int32
	now     time.Time
	r       *MetadataRefresher
}

func newRefreshFixture(t *testing.T, initialDoc string) *refreshFixture {
	t.Helper()
	ctx := storetest.Context(context.Background())
	f := &refreshFixture{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	f.doc.Store(initialDoc)
	f.srv = metadataServer(t, func(w http.ResponseWriter, req *http.Request) {
		f.fetches.Add(1)
		if d := f.doc.Load().(string); d == "404" {
			http.NotFound(w, req)
		} else {
			io.WriteString(w, d)
		}
	})
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	org, _, err := st.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "acme", Name: "Acme"},
		Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusPending}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{"idpMetadataUrl": f.srv.URL + "/metadata", "idpMetadataXml": initialDoc,
		"metadataFetchedAt": f.now.Format(time.RFC3339Nano), "spEntityId": "https://gatehouse.example/sp", "allowIdpInitiated": false})
	f.conn, err = st.CreateSSOConnection(ctx, store.SSOConnection{OrgID: org.ID, Kind: store.SSOSAML, Name: "IdP", Enabled: true,
		UsernameFrom: "nameid", Config: cfg, Secret: "sealed"})
	if err != nil {
		t.Fatal(err)
	}
	// Connections the refresher must skip: OIDC, and SAML without URL.
	if _, err := st.CreateSSOConnection(ctx, store.SSOConnection{OrgID: org.ID, Kind: store.SSOOIDC, Name: "OIDC",
		Config: store.RawJSON(`{"idpMetadataUrl":"` + f.srv.URL + `/metadata"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSSOConnection(ctx, store.SSOConnection{OrgID: org.ID, Kind: store.SSOSAML, Name: "Pasted",
		Config: store.RawJSON(`{"idpMetadataXml":"<x/>"}`)}); err != nil {
		t.Fatal(err)
	}
	f.r = &MetadataRefresher{Store: st, Client: fetch.NewClient(fetch.Options{AllowLoopback: true}), Every: time.Hour,
		Now: func() time.Time { return f.now }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		List: func(ctx context.Context) ([]store.SSOConnection, error) { return st.SSOConnections(ctx, org.ID) }}
	return f
}

func (f *refreshFixture) stored(t *testing.T) (store.SSOConnection, map[string]any) {
	t.Helper()
	c, err := f.st.SSOConnection(context.Background(), f.conn.OrgID, f.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(c.Config, &m); err != nil {
		t.Fatal(err)
	}
	return c, m
}

func TestMetadataRefresher(t *testing.T) {
	ctx := storetest.Context(context.Background())
	v1 := testIdPMetadata(t, "https://idp.example.com")
	v2 := testIdPMetadata(t, "https://idp.example.com") // the IdP rolled its key
	f := newRefreshFixture(t, v1)

	// Fetched just now: not due.
	if got := f.r.Round(ctx); got != (RefreshStats{}) || f.fetches.Load() != 0 {
		t.Fatalf("fresh: %+v, %d fetches", got, f.fetches.Load())
	}

	// Due, unchanged: nothing written.
	f.now = f.now.Add(61 * time.Minute)
	if got := f.r.Round(ctx); got != (RefreshStats{Due: 1, Unchanged: 1}) {
		t.Fatalf("unchanged: %+v", got)
	}
	if c, _ := f.stored(t); c.Version != f.conn.Version {
		t.Fatalf("unchanged document written: version %d", c.Version)
	}
	// Remembered: not fetched again before another hour.
	if got := f.r.Round(ctx); got.Due != 0 {
		t.Fatalf("just checked: %+v", got)
	}

	// Changed: stored, with its time; the other keys are kept.
	f.doc.Store(v2)
	f.now = f.now.Add(61 * time.Minute)
	if got := f.r.Round(ctx); got != (RefreshStats{Due: 1, Updated: 1}) {
		t.Fatalf("changed: %+v", got)
	}
	c, m := f.stored(t)
	if m["idpMetadataXml"] != v2 || m["metadataFetchedAt"] != f.now.Format(time.RFC3339Nano) ||
		m["spEntityId"] != "https://gatehouse.example/sp" || m["allowIdpInitiated"] != false ||
		m["idpMetadataUrl"] != f.srv.URL+"/metadata" || len(m) != 5 {
		t.Fatalf("config after refresh: %v", m)
	}
	if c.Secret != "sealed" || c.Name != "IdP" || !c.Enabled || c.Version != f.conn.Version+1 {
		t.Fatalf("connection after refresh: %+v", c)
	}

	// A document that is not valid IdP metadata, or a failed fetch, keeps
	// the stored one, and is tried again next round.
	// (No SingleSignOnService: passes CheckIdPMetadata, but the SAML
	// connector could not use it.)
	noSSO := regexp.MustCompile(`(?s)<md:SingleSignOnService[^>]*/>`).ReplaceAllString(testIdPMetadata(t, "https://idp.example.com"), "")
	if err := CheckIdPMetadata([]byte(noSSO)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<html>maintenance</html>", testMetadataXML("https://idp.example.com", "encryption", "AAAA"), noSSO, "404"} {
		f.doc.Store(bad)
		f.now = f.now.Add(61 * time.Minute)
		before := f.fetches.Load()
		for range 2 {
			if got := f.r.Round(ctx); got != (RefreshStats{Due: 1, Failed: 1}) {
				t.Fatalf("%.20s: %+v", bad, got)
			}
		}
		if f.fetches.Load() != before+2 {
			t.Fatalf("%.20s: not retried", bad)
		}
		if _, m := f.stored(t); m["idpMetadataXml"] != v2 {
			t.Fatalf("%.20s replaced the stored metadata", bad)
		}
	}

	// Back to a good document.
	f.doc.Store(v1)
	if got := f.r.Round(ctx); got != (RefreshStats{Due: 1, Updated: 1}) {
		t.Fatalf("recovered: %+v", got)
	}
	if _, m := f.stored(t); m["idpMetadataXml"] != v1 {
		t.Fatal("good document after failures not stored")
	}
}

// A connection whose URL changed after it was listed is not overwritten
// with the old URL's document.
func TestMetadataRefresherConcurrentEdit(t *testing.T) {
	ctx := storetest.Context(context.Background())
	f := newRefreshFixture(t, testIdPMetadata(t, "https://old.example.com"))
	f.doc.Store(testIdPMetadata(t, "https://old.example.com"))
	listed := f.conn
	if _, err := f.st.UpdateSSOConnection(ctx, f.conn.OrgID, f.conn.ID, func(c *store.SSOConnection) error {
		c.Config = store.RawJSON(`{"idpMetadataUrl":"https://new.example.com/metadata","idpMetadataXml":"<pasted/>"}`)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.r.List = func(context.Context) ([]store.SSOConnection, error) { return []store.SSOConnection{listed}, nil }
	f.now = f.now.Add(2 * time.Hour)
	if got := f.r.Round(ctx); got != (RefreshStats{Due: 1, Unchanged: 1}) {
		t.Fatalf("round: %+v", got)
	}
	if _, m := f.stored(t); m["idpMetadataXml"] != "<pasted/>" {
		t.Fatalf("edited connection overwritten: %v", m)
	}
}

func TestRefreshSAMLMetadataRuns(t *testing.T) {
	f := newRefreshFixture(t, "")
	v := testIdPMetadata(t, "https://idp.example.com")
	f.doc.Store(v)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		RefreshIdPMetadata(ctx, f.st, f.r.List, f.r.Client, time.Hour, f.r.Now, f.r.Logger)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, m := f.stored(t); m["idpMetadataXml"] == v {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("metadata never stored")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RefreshIdPMetadata did not return after cancel")
	}
}

// CheckIdPMetadata reads documents from any URL an administrator
// gives: it must not panic, and what it accepts must be XML whose root
// is in the SAML metadata namespace.
func FuzzCheckSAMLMetadata(f *testing.F) {
	f.Add([]byte(testIdPMetadata(f, "https://idp.example.com")))
	f.Add([]byte("<html>"))
	f.Add([]byte(`<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		if CheckIdPMetadata(doc) == nil && !bytes.Contains(doc, []byte(metadataNS)) {
			t.Fatalf("accepted a document outside the metadata namespace: %q", doc)
		}
	})
}

func metadataServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
