package main

import (
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/sso/saml"
	"gatehouse/store"
)

// ssoServe is gatehouse serve on SQLite with one organization "acme" and
// one SAML connection.
type ssoServe struct {
	srv    *server
	env    map[string]string
	dbPath string
	connID string
}

func startSSOServe(t *testing.T, extra ...string) *ssoServe {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	dbPath := filepath.Join(dir, "gatehouse.db")
	env := map[string]string{"GATEHOUSE_DB": dbPath, "GATEHOUSE_SECRET_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"GATEHOUSE_BASE_URL": "http://" + addr}
	if r := gatehouse(t, env, orgArgs("acme", "--domain", "example.com")...); r.code != 0 {
		t.Fatal(r.stderr)
	}
	md := filepath.Join(dir, "idp.xml")
	if err := os.WriteFile(md, []byte(idpMetadata(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := gatehouse(t, env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", "Okta", "--metadata-file", md)
	if r.code != 0 {
		t.Fatalf("sso create: %s", r.stderr)
	}
	s := &ssoServe{env: env, dbPath: dbPath, connID: strings.TrimSpace(r.stdout)}
	s.srv = startServe(t, addr, env, append([]string{"--addr", addr}, extra...)...)
	return s
}

// The SP metadata as gatehouse serve serves it carries no validUntil: a
// zero expiry rendered as year 1 made SimpleSAMLphp refuse every
// AuthnRequest ("Metadata for the entity ... expired"). Read as raw XML:
// crewjam would turn year 1 back into a zero time.
func TestServeSPMetadataHasNoExpiry(t *testing.T) {
	s := startSSOServe(t)
	resp, body := get(t, s.srv.base+saml.SPMetadataPath(s.connID), nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/samlmetadata+xml" {
		t.Fatalf("metadata: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var root struct {
		XMLName    xml.Name
		EntityID   string `xml:"entityID,attr"`
		ValidUntil string `xml:"validUntil,attr"`
		Cache      string `xml:"cacheDuration,attr"`
	}
	if err := xml.Unmarshal([]byte(body), &root); err != nil {
		t.Fatal(err)
	}
	if root.XMLName.Local != "EntityDescriptor" || root.EntityID != s.srv.base+saml.SPMetadataPath(s.connID) {
		t.Fatalf("not the SP's EntityDescriptor: %+v\n%s", root, body)
	}
	if root.ValidUntil != "" {
		until, err := time.Parse(time.RFC3339, root.ValidUntil)
		t.Fatalf("the SP metadata expires: validUntil=%q (%v, %v)\n%s", root.ValidUntil, until, err, body)
	}
	if strings.Contains(body, "validUntil") || root.Cache != "" {
		t.Fatalf("the SP metadata carries an expiry or cache duration:\n%s", body)
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// A bounded flood of sign-in starts (with a long next) and refused ACS
// posts from one address, through gatehouse serve: the database (file
// and WAL) grows by a bounded amount, SCIM PATCH's median latency stays
// within 2x of idle, and the requests over the limit get a 429 page with
// Retry-After. Before the limits, 2,000 requests added 27 MB here (8.4 MB
// in the outside test) and pushed SCIM PATCH from 6 to 30 ms.
func TestServeSSOFloodIsBounded(t *testing.T) {
	s := startSSOServe(t, "--scim-rate-limit", "-1") // the PATCHes are the measure, not what is limited
	token := strings.TrimSpace(gatehouse(t, s.env, "scim", "token", "create", "--org", "acme").stdout)
	if r := gatehouse(t, s.env, "scim", "enable", "--org", "acme"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	scimCall := func(method, path, body string) (*http.Response, string) {
		req, _ := http.NewRequest(method, s.srv.base+"/scim/v2"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		return do(t, req)
	}
	resp, body := scimCall("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"flood.user",
		"name":{"givenName":"F","familyName":"U"},"emails":[{"value":"flood@example.com","primary":true}]}`)
	if resp.StatusCode != 201 {
		t.Fatalf("SCIM create: %d %s", resp.StatusCode, body)
	}
	var user struct{ ID string }
	json.Unmarshal([]byte(body), &user)
	patch := func(i int) time.Duration {
		start := time.Now()
		resp, body := scimCall("PATCH", "/Users/"+user.ID, fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"name.givenName","value":"F%d"}]}`, i))
		if resp.StatusCode != 200 {
			t.Errorf("SCIM PATCH: %d %s", resp.StatusCode, body)
		}
		return time.Since(start)
	}
	// The flood: starts with a 2 KB next and refused ACS posts, from 4
	// clients paced at 500 requests a second (a flood the server could
	// absorb if each request did not write), until n are sent.
	const flood = 2000
	next := "/" + strings.Repeat("n", 2000)
	garbage := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte(strings.Repeat("<x>", 500)))}, "RelayState": {"r"}}.Encode()
	var (
		mu     sync.Mutex
		codes  = map[int]int{}
		bad    []string
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	)
	runFlood := func(n int) <-chan struct{} {
		work := make(chan int)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := range work {
					var req *http.Request
					if i%2 == 0 {
						req, _ = http.NewRequest("GET", s.srv.base+"/sso/start/"+s.connID+"?next="+url.QueryEscape(next), nil)
					} else {
						req, _ = http.NewRequest("POST", s.srv.base+saml.ACSPath(s.connID), strings.NewReader(garbage))
						req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					}
					resp, err := client.Do(req)
					mu.Lock()
					if err != nil {
						bad = append(bad, err.Error())
						mu.Unlock()
						continue
					}
					codes[resp.StatusCode]++
					if resp.StatusCode == http.StatusTooManyRequests && (resp.Header.Get("Retry-After") == "" ||
						!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html")) {
						bad = append(bad, fmt.Sprintf("429 with Retry-After %q, Content-Type %q", resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type")))
					}
					mu.Unlock()
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		done := make(chan struct{})
		go func() {
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for i := range n {
				<-tick.C
				work <- i
			}
			close(work)
			wg.Wait()
			close(done)
		}()
		return done
	}

	// What the flood stores: the database and its WAL, alone.
	time.Sleep(200 * time.Millisecond) // the WAL checkpointer catches up
	beforeDB, beforeWAL := fileSize(s.dbPath), fileSize(s.dbPath+"-wal")
	<-runFlood(flood)
	grownDB, grownWAL := fileSize(s.dbPath)-beforeDB, fileSize(s.dbPath+"-wal")-beforeWAL

	// SCIM PATCH, idle and under a flood, in the same run. The machine is
	// shared with other test packages, so a comparison over 2x is measured
	// again, up to three times: noise passes once, a flood that slows
	// SCIM (6 → 30 ms before the limits) fails every time.
	var idle, loaded []time.Duration
	for try := range 3 {
		idle, loaded = nil, nil
		for i := range 40 {
			idle = append(idle, patch(try*10000+i))
		}
		done := runFlood(flood)
		for i := 0; ; i++ {
			select {
			case <-done:
			default:
				loaded = append(loaded, patch(try*10000+1000+i))
				continue
			}
			break
		}
		if median(loaded) <= 2*median(idle) || raceDetector {
			break
		}
		t.Logf("try %d: SCIM PATCH median %s under the flood, idle %s", try+1, median(loaded), median(idle))
	}

	if len(bad) > 0 {
		t.Fatalf("%d bad answers, first: %s", len(bad), bad[0])
	}
	t.Logf("answers %v; the database grew %d bytes, its WAL %d; SCIM PATCH median idle %s, under the flood %s (%d samples)",
		codes, grownDB, grownWAL, median(idle), median(loaded), len(loaded))
	// The per-address limits hold under the concurrent flood: exactly 60
	// starts (303 to the IdP) and 60 refused answers (403) in the window.
	if codes[http.StatusSeeOther] != 60 || codes[http.StatusForbidden] != 60 || codes[http.StatusTooManyRequests] < 2*flood-120 ||
		(codes[http.StatusTooManyRequests]-(2*flood-120))%flood != 0 {
		t.Errorf("answers %v; want 60 starts, 60 refused answers, the rest 429", codes)
	}
	// The limits let about 250 small writes through per window (starts,
	// answers, their counters, the audited refusals); the WAL keeps each
	// commit's pages until a checkpoint resets it. Before, the same
	// flood added 27 MB.
	if grownDB > 256<<10 || grownDB+grownWAL > 4<<20 {
		t.Errorf("the database grew %d bytes and its WAL %d under %d requests; want at most 256 KiB and 4 MiB in all", grownDB, grownWAL, flood)
	}
	// Latency is compared without the race detector only (.ci/run runs
	// this test so after the suite): under it every request costs several
	// times more, and the flood's share of two cores with it.
	if m, i := median(loaded), median(idle); m > 2*i && !raceDetector {
		t.Errorf("SCIM PATCH median %s under the flood, more than twice the idle %s", m, i)
	}
}

// The per-address limit on sign-in starts holds across instances: 100
// concurrent starts from one address, split over two gatehouse serve
// processes on one database, start exactly the limit's 60 sign-ins; the
// rest are 429 pages with Retry-After.
func TestSSOStartLimitAcrossInstances(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": signinKey, "GATEHOUSE_BASE_URL": "http://127.0.0.1:8080"}
		if r := gatehouse(t, env, orgArgs("acme")...); r.code != 0 {
			t.Fatal(r.stderr)
		}
		md := filepath.Join(t.TempDir(), "idp.xml")
		if err := os.WriteFile(md, []byte(idpMetadata(t)), 0o600); err != nil {
			t.Fatal(err)
		}
		r := gatehouse(t, env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", "Okta", "--metadata-file", md)
		if r.code != 0 {
			t.Fatalf("sso create: %s", r.stderr)
		}
		conn := strings.TrimSpace(r.stdout)
		bases := []string{childServe(t, dsn), childServe(t, dsn)}
		var (
			mu    sync.Mutex
			codes = map[int]int{}
			wg    sync.WaitGroup
		)
		start := make(chan struct{})
		for i := range 100 {
			wg.Go(func() {
				<-start
				req, _ := http.NewRequest("GET", bases[i%2]+"/sso/start/"+conn, nil)
				req.Header.Set("X-Forwarded-For", "198.51.100.77")
				resp, err := noRedirect.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				codes[resp.StatusCode]++
				if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
					t.Error("a 429 without Retry-After")
				}
			})
		}
		close(start)
		wg.Wait()
		if codes[http.StatusSeeOther] != 60 || codes[http.StatusTooManyRequests] != 40 {
			t.Errorf("answers %v; want 60 starts (303) and 40 refused (429)", codes)
		}
	})
}
