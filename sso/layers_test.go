package sso

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The protocol packages never import the flow: dependencies point one
// way, sso → sso/saml, sso/oidc → sso/protocol, and sso/saml → sso/fetch.
// sso/fetch, sso/protocol and sso/provider import no other sso package.
func TestPackageLayers(t *testing.T) {
	allowed := map[string][]string{
		"saml":     {"gatehouse/sso/protocol", "gatehouse/sso/fetch"},
		"oidc":     {"gatehouse/sso/protocol", "gatehouse/sso/fetch"},
		"fetch":    nil,
		"protocol": nil,
		"provider": nil,
	}
	for dir, ok := range allowed {
		pkg, err := build.ImportDir(filepath.Join(".", dir), 0)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, imp := range pkg.Imports {
			if (imp == "gatehouse/sso" || strings.HasPrefix(imp, "gatehouse/sso/")) && !slices.Contains(ok, imp) {
				t.Errorf("sso/%s imports %s", dir, imp)
			}
		}
	}
}
