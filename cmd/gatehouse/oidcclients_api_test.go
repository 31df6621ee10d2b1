package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// TestServeOIDCClientsAPI drives /api/v1/oidc-clients through gatehouse
// serve on both databases: a Super Administrator registers, reads,
// changes, rotates, disables and removes their organization's
// application; another organization's Super Administrator, an
// Administrator and nobody are refused on it and on the applications the
// operator shares, and no refusal writes anything.
func TestServeOIDCClientsAPI(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			f := newServeFixture(t, map[string]string{"GATEHOUSE_DB": db.dsn(t)})
			ctx := context.Background()
			clients := &admin.OIDCClients{Store: f.store}
			as := func(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }
			decode := func(body string) map[string]any {
				var v map[string]any
				if err := json.Unmarshal([]byte(body), &v); err != nil {
					t.Fatalf("%v: %s", err, body)
				}
				return v
			}
			if r := gatehouse(t, f.env, orgArgs("beta")...); r.code != 0 {
				t.Fatal(r.stderr)
			}
			betaKey := strings.TrimSpace(gatehouse(t, f.env, "api-key", "create", "--org", "beta", "--name", "beta").stdout)
			adminKey := strings.TrimSpace(gatehouse(t, f.env, "api-key", "create", "--org", "acme", "--name", "adm", "--role", "Administrator").stdout)
			r := gatehouse(t, f.env, "oidc", "client", "create", "--name", "Shared", "--redirect-uri", "https://shared.example/cb")
			if r.code != 0 || betaKey == "" || adminKey == "" {
				t.Fatalf("fixture: %+v", r)
			}
			shared := strings.SplitN(r.stdout, "\n", 2)[0]
			// Each key's first use is recorded (at most once a minute):
			// make it now, so that the snapshots below see only the
			// requests' own writes.
			for _, key := range []string{f.key, betaKey, adminKey} {
				if resp, body := f.call(t, "GET", "/api/v1/me", "", as(key)); resp.StatusCode != 200 {
					t.Fatalf("me: %d %s", resp.StatusCode, body)
				}
			}

			// Refused bodies write nothing and answer problem+json.
			before := storetest.TakeSnapshot(t, f.store)
			for _, tc := range []struct{ body, code string }{
				{`{"name":"A","redirectUris":["https://a.example/cb#x"]}`, admin.CodeInvalidRedirectURI},
				{`{"name":"A","redirectUris":["https://a.example/cb"],"postLogoutRedirectUris":["http://a.example/bye"]}`, admin.CodeInvalidRedirectURI},
				{`{"name":"A","redirectUris":[]}`, admin.CodeInvalidRedirectURI},
				{`{"name":"","redirectUris":["https://a.example/cb"]}`, admin.CodeInvalidName},
				{`{"name":"A","redirectUris":["https://a.example/cb"],"organizations":["beta"]}`, admin.CodeForbidden},
				{`{"name":"A","redirectUris":["https://a.example/cb"],"firstParty":true}`, admin.CodeForbidden},
				{`{"name":"A","redirectUris":["https://a.example/cb"],"secret":"mine"}`, "invalid_json"},
			} {
				resp, body := f.call(t, "POST", "/api/v1/oidc-clients", tc.body, nil)
				if resp.StatusCode/100 != 4 || problemCode(resp, body) != tc.code || resp.Header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("POST %s: %d %s, want %s", tc.body, resp.StatusCode, body, tc.code)
				}
			}
			storetest.AssertUnchanged(t, f.store, before)

			resp, body := f.call(t, "POST", "/api/v1/oidc-clients", `{"name":"Billing","redirectUris":["https://billing.example/cb"],
				"postLogoutRedirectUris":["https://billing.example/bye"],"backchannelLogoutUri":"https://billing.example/bcl"}`, nil)
			created := decode(body)
			id, _ := created["id"].(string)
			secret, _ := created["secret"].(string)
			if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != "/api/v1/oidc-clients/"+id || !strings.HasPrefix(secret, admin.OIDCClientSecretPrefix) ||
				created["manageable"] != true || created["allOrganizations"] != false || fmt.Sprint(created["organizations"]) != "[acme]" {
				t.Fatalf("create: %d %s", resp.StatusCode, body)
			}
			if err := clients.Authenticate(ctx, id, secret); err != nil {
				t.Fatalf("the answered secret: %v", err)
			}
			path := "/api/v1/oidc-clients/" + id

			resp, body = f.call(t, "GET", "/api/v1/oidc-clients", "", nil)
			if resp.StatusCode != 200 || !strings.Contains(body, id) || !strings.Contains(body, shared) || strings.Contains(body, secret) || strings.Contains(body, `"secret"`) {
				t.Fatalf("list: %d %s", resp.StatusCode, body)
			}
			resp, body = f.call(t, "GET", "/api/v1/oidc-clients/"+shared, "", nil)
			if v := decode(body); resp.StatusCode != 200 || v["manageable"] != false || v["allOrganizations"] != true {
				t.Fatalf("get shared: %d %s", resp.StatusCode, body)
			}

			// The attacks: nothing they try writes.
			before = storetest.TakeSnapshot(t, f.store)
			for _, who := range []struct {
				name   string
				header map[string]string
				own    [2]any // status and code on acme's application
				shared [2]any // on the operator's shared application
			}{
				{"another organization's Super Administrator", as(betaKey), [2]any{404, "not_found"}, [2]any{403, "forbidden"}},
				{"an Administrator", as(adminKey), [2]any{403, "forbidden"}, [2]any{403, "forbidden"}},
				{"nobody", map[string]string{"Authorization": ""}, [2]any{401, "unauthenticated"}, [2]any{401, "unauthenticated"}},
			} {
				for target, want := range map[string][2]any{id: who.own, shared: who.shared} {
					p := "/api/v1/oidc-clients/" + target
					for _, req := range [][3]string{
						{"PATCH", p, `{"redirectUris":["https://evil.example/cb"]}`}, {"POST", p + "/rotate-secret", ""},
						{"POST", p + "/disable", ""}, {"DELETE", p, ""},
					} {
						resp, body := f.call(t, req[0], req[1], req[2], who.header)
						if resp.StatusCode != want[0] || problemCode(resp, body) != want[1] {
							t.Errorf("%s: %s %s = %d %s, want %v", who.name, req[0], req[1], resp.StatusCode, body, want)
						}
					}
				}
				resp, body := f.call(t, "GET", path, "", who.header)
				if resp.StatusCode != who.own[0] || strings.Contains(body, "billing.example") {
					t.Errorf("%s reads acme's application: %d %s", who.name, resp.StatusCode, body)
				}
				resp, body = f.call(t, "GET", "/api/v1/oidc-clients", "", who.header)
				if strings.Contains(body, id) || who.name != "another organization's Super Administrator" && resp.StatusCode == 200 {
					t.Errorf("%s lists: %d %s", who.name, resp.StatusCode, body)
				}
			}
			storetest.AssertUnchanged(t, f.store, before)

			// The Super Administrator's own: change, rotate, disable, enable, delete.
			resp, body = f.call(t, "PATCH", path, `{"postLogoutRedirectUris":["https://billing.example/bye#x"]}`, nil)
			if resp.StatusCode != 400 || problemCode(resp, body) != admin.CodeInvalidRedirectURI {
				t.Fatalf("bad patch: %d %s", resp.StatusCode, body)
			}
			resp, body = f.call(t, "PATCH", path, `{"name":"Billing 2","postLogoutRedirectUris":["https://billing.example/bye","https://billing.example/bye2"],"backchannelLogoutUri":""}`, nil)
			if v := decode(body); resp.StatusCode != 200 || v["name"] != "Billing 2" || fmt.Sprint(v["postLogoutRedirectUris"]) != "[https://billing.example/bye https://billing.example/bye2]" ||
				v["backchannelLogoutUri"] != "" || v["secret"] != nil {
				t.Fatalf("patch: %d %s", resp.StatusCode, body)
			}
			resp, body = f.call(t, "POST", path+"/rotate-secret", "", nil)
			newSecret, _ := decode(body)["secret"].(string)
			if resp.StatusCode != 200 || !strings.HasPrefix(newSecret, admin.OIDCClientSecretPrefix) || newSecret == secret {
				t.Fatalf("rotate: %d %s", resp.StatusCode, body)
			}
			if err := clients.Authenticate(ctx, id, secret); err == nil {
				t.Fatal("the old secret authenticates after rotation")
			}
			if err := clients.Authenticate(ctx, id, newSecret); err != nil {
				t.Fatalf("the new secret: %v", err)
			}
			resp, body = f.call(t, "POST", path+"/disable", "", nil)
			if resp.StatusCode != 200 || decode(body)["disabled"] != true {
				t.Fatalf("disable: %d %s", resp.StatusCode, body)
			}
			if err := clients.Authenticate(ctx, id, newSecret); err == nil {
				t.Fatal("a disabled application authenticates")
			}
			resp, body = f.call(t, "POST", path+"/enable", "", nil)
			if resp.StatusCode != 200 || decode(body)["disabled"] != false {
				t.Fatalf("enable: %d %s", resp.StatusCode, body)
			}
			if resp, body := f.call(t, "DELETE", path, "", nil); resp.StatusCode != 204 {
				t.Fatalf("delete: %d %s", resp.StatusCode, body)
			}
			if resp, body := f.call(t, "GET", path, "", nil); resp.StatusCode != 404 || problemCode(resp, body) != admin.CodeNotFound {
				t.Fatalf("after delete: %d %s", resp.StatusCode, body)
			}
			log, err := f.store.AuditLog(ctx, store.ServerAudit, store.AuditQuery{TargetID: id})
			if err != nil || len(log) != 6 || log[0].ActorKind != store.ActorAPIKey || log[0].ActorName != "test" {
				t.Fatalf("audit: %+v, %v", log, err)
			}
		})
	}
}
