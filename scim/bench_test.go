package scim_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"gatehouse/store/storetest"
)

// Handler benchmarks through real HTTP on loopback and real SQLite; the
// load tool (cmd/scimload) measures the server as a whole.
func BenchmarkSCIM(b *testing.B) {
	st := storetest.SQLite(b)
	e := newEnv(b, st, withTokenCache())
	ids := storetest.SeedAdministrators(b, st, e.org.ID, "bench", 10000)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func(b *testing.B, path string) {
		req, _ := http.NewRequest("GET", e.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("%s: %d", path, res.StatusCode)
		}
	}
	b.Run("GetUser", func(b *testing.B) {
		i := 0
		for b.Loop() {
			get(b, "/Users/"+ids[i%len(ids)])
			i++
		}
	})
	b.Run("FilterUserName", func(b *testing.B) {
		i := 0
		for b.Loop() {
			get(b, "/Users?filter="+url.QueryEscape(fmt.Sprintf(`userName eq "bench-%d"`, i%len(ids))))
			i++
		}
	})
	b.Run("PatchUser", func(b *testing.B) {
		i := 0
		for b.Loop() {
			body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"d%d"}]}`, i)
			req, _ := http.NewRequest("PATCH", e.url+"/Users/"+ids[i%len(ids)], strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+e.token)
			req.Header.Set("Content-Type", "application/scim+json")
			res, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Fatalf("patch: %d", res.StatusCode)
			}
			i++
		}
	})
	var n atomic.Int64 // across the benchmark's rounds: usernames stay unique
	b.Run("CreateUserParallel", func(b *testing.B) {
		b.SetParallelism(8) // 16 clients on 2 CPUs, as the load tool runs
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"new-%d@acme.test","name":{"givenName":"N","familyName":"U"},"emails":[{"value":"n@acme.test","type":"work","primary":true}],"active":true,"externalId":"x","password":"p"}`, n.Add(1))
				req, _ := http.NewRequest("POST", e.url+"/Users", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+e.token)
				req.Header.Set("Content-Type", "application/scim+json")
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 201 {
					b.Fatalf("create: %d", res.StatusCode)
				}
			}
		})
	})
	b.Run("Page100", func(b *testing.B) {
		i := 0
		for b.Loop() {
			get(b, fmt.Sprintf("/Users?startIndex=%d&count=100", 1+(i%90)*100))
			i++
		}
	})
}
