package scim_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"gatehouse/scim"
	"gatehouse/store/storetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestDiscovery(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	// No token needed: the documents are the same for every organization.
	res, err := http.Get(e.url + "/Schemas")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("/Schemas without a token: %d", res.StatusCode)
	}

	s := e.do("GET", "/Schemas", nil).must(t, 200)
	golden := filepath.Join("..", "testdata", "scim", "schemas.json")
	got, _ := json.MarshalIndent(s.body, "", "  ")
	got = bytes.ReplaceAll(got, []byte(e.url), []byte("http://gatehouse.test/scim/v2"))
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Errorf("/Schemas differs from %s (run go test ./scim -run TestDiscovery -update after checking the change)", golden)
	}
	var userName map[string]any
	for _, a := range lookup(s.body, "Resources.0.attributes").([]any) {
		if m := a.(map[string]any); m["name"] == "userName" {
			userName = m
		}
	}
	if userName["caseExact"] != true || userName["uniqueness"] != "server" || userName["required"] != true {
		t.Errorf("userName published as %v", userName)
	}
	e.do("GET", "/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", nil).must(t, 200)
	e.do("GET", "/Schemas/urn:nope", nil).must(t, 404)

	rt := e.do("GET", "/ResourceTypes", nil).must(t, 200)
	if rt.body["totalResults"] != float64(2) || rt.str("Resources.0.endpoint") != "/Users" || rt.str("Resources.0.schemaExtensions.0.schema") != "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" {
		t.Errorf("/ResourceTypes: %s", rt.raw)
	}
	e.do("GET", "/ResourceTypes/Group", nil).must(t, 200)

	spc := e.do("GET", "/ServiceProviderConfig", nil).must(t, 200)
	for path, want := range map[string]any{
		"patch.supported": true, "bulk.supported": true, "bulk.maxOperations": float64(scim.MaxBulkOperations),
		"bulk.maxPayloadSize": float64(scim.MaxBodyBytes), "filter.maxResults": float64(scim.MaxResults),
		"sort.supported": true, "etag.supported": true, "changePassword.supported": false,
		"authenticationSchemes.0.type": "oauthbearertoken",
	} {
		if got := lookup(spc.body, path); got != want {
			t.Errorf("ServiceProviderConfig %s = %v, want %v", path, got, want)
		}
	}
	e.do("GET", "/NoSuchThing", nil).must(t, 404)
}
