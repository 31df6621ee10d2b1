package protocol_test

import (
	"testing"

	"gatehouse/admin"
	"gatehouse/sso/protocol"
)

// Every stored connection secret (SAML SP keys, OIDC client secrets) was
// sealed in the context "sso:" + connection ID: SealContext must keep
// opening them, and must not open a secret sealed for another connection.
func TestSealContext(t *testing.T) {
	sealer, err := admin.NewSealer(make([]byte, admin.SecretKeySize))
	if err != nil {
		t.Fatal(err)
	}
	stored := sealer.Seal("the SP key", "sso:conn-1")
	if got, err := sealer.Open(stored, protocol.SealContext("conn-1")); err != nil || got != "the SP key" {
		t.Fatalf("a secret sealed as stored today: %q, %v", got, err)
	}
	if _, err := sealer.Open(stored, protocol.SealContext("conn-2")); err == nil {
		t.Fatal("a secret sealed for conn-1 opens for conn-2")
	}
}
