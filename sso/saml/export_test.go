package saml

import (
	"crypto/rsa"
	"crypto/x509"
	"os"
	"testing"

	"gatehouse/admin"
	"gatehouse/sso/protocol"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// What the tests of the sign-in flow through a SAML connector
// (flow_*_test.go, simplesamlphp_flow_test.go) use of this package's test
// helpers. Those tests are in package saml_test because they import
// package sso, which imports this one.

type (
	TestEnv     = samlEnv
	TestMint    = samlMint
	TestKeyPair = samlKeyPair
	SSPPOptions = ssppOptions
	SSPPIdP     = ssppIdP
)

var (
	NewTestKeyPair         = samlNewKeyPair
	TestConditions         = samlConditions
	TestIdPMetadata        = samlIdPMetadata
	TestFormValues         = samlFormValues
	TestReadPage           = samlReadPage
	SSPPRequire            = ssppRequire
	SSPPDefaults           = ssppDefaults
	StartSimpleSAMLphpWith = startSimpleSAMLphpWith
)

// NewTestEnv is an organization "org-a" on SQLite with a SAML connection
// trusting the test IdP key A.
func NewTestEnv(t testing.TB) *samlEnv {
	return newSAMLEnv(t, samlSQLite(t), "org-a", samlTestKeys(t).idpA, nil)
}

func (e *samlEnv) Store() store.Store              { return e.st }
func (e *samlEnv) Org() store.Org                  { return e.org }
func (e *samlEnv) Conn() store.SSOConnection       { return e.conn }
func (e *samlEnv) Connector() protocol.Connector   { return e.c }
func (e *samlEnv) Mint(requestID string) *samlMint { return e.mint(requestID) }
func (e *samlEnv) Sealer() *admin.Sealer           { return e.sealer }

func (m *samlMint) Bytes() []byte { return m.bytes() }

func (k samlKeyPair) Key() *rsa.PrivateKey    { return k.key }
func (k samlKeyPair) Cert() *x509.Certificate { return k.cert }
