package saml

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"gatehouse/sso/protocol"
	"gatehouse/store"
)

// BenchmarkSAMLACS is Finish on a valid response (RSA-2048, rsa-sha256),
// the store calls included, on SQLite: each iteration answers its own
// request with its own assertion ID. Responses are minted before the
// clock starts. Sub-benchmarks: one request at a time or as many as
// GOMAXPROCS (an ACS under load), SQLite with synchronous FULL (the
// production default: one fsynced commit per sign-in, using the request
// and recording the assertion) or NORMAL.
func BenchmarkSAMLACS(b *testing.B) {
	keys := samlTestKeys(b)
	for _, bc := range []struct {
		name      string
		parallel  bool
		sync      string
		encrypted bool
	}{
		{"serial/FULL", false, "FULL", false},
		{"parallel/FULL", true, "FULL", false},
		{"serial/NORMAL", false, "NORMAL", false},
		{"parallel/NORMAL", true, "NORMAL", false},
		{"serial/FULL/signed-response-encrypted", false, "FULL", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "gatehouse.db"), store.Options{SQLiteSynchronous: bc.sync})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			e := newSAMLEnv(b, st, "org-a", keys.idpA, nil)
			bodies := make([]string, b.N)
			for i := range bodies {
				reqID := samlTestID()
				if _, err := st.CreateSSORequest(context.Background(), store.SSORequest{ID: reqID, ConnectionID: e.conn.ID,
					OrgID: e.org.ID, Browser: samlBrowser("b1"), ExpiresAt: e.c.now().Add(protocol.RequestTTL)}); err != nil {
					b.Fatal(err)
				}
				m := e.mint(reqID)
				if bc.encrypted {
					m.SignResponse, m.SignAssertion, m.EncryptTo = true, false, e.c.sp.cert
				}
				bodies[i] = url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(m.bytes())}}.Encode()
			}
			browser := samlBrowser("b1")
			finish := func(body string) {
				r := httptest.NewRequest("POST", ACSPath(e.conn.ID), strings.NewReader(body))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if _, _, err := e.c.Finish(context.Background(), r, browser); err != nil {
					b.Error(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			if bc.parallel {
				var next atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						finish(bodies[next.Add(1)-1])
					}
				})
			} else {
				for i := range b.N {
					finish(bodies[i])
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "validations/s")
		})
	}
}
