package admin

import (
	"context"

	"gatehouse/store"
)

// SSOConnectionSpec is what creating or changing an SSO connection takes
// (issue #5). Empty and nil fields of a change keep their value.
type SSOConnectionSpec struct {
	Kind    string // store.SSOSAML or store.SSOOIDC; on create only
	Name    string
	Enabled *bool
	// UsernameFrom: "nameid" or "attribute:NAME" (SAML), "claim:NAME"
	// (OIDC).
	UsernameFrom string

	// SAML: the IdP's metadata, as XML or as a URL gatehouse fetches
	// (https or loopback only) and refreshes.
	IdPMetadataXML    string
	IdPMetadataURL    string
	SPEntityID        string
	AllowIdPInitiated *bool
	AllowSHA1         *bool
	ClockSkewSeconds  *int

	// OIDC.
	Issuer       string
	ClientID     string
	ClientSecret string // write-only
	Scopes       []string
}

// SSOConnectionView is a connection as the management API shows it:
// never its secret.
type SSOConnectionView struct {
	ID           string         `json:"id"`
	Kind         string         `json:"kind"`
	Name         string         `json:"name"`
	Enabled      bool           `json:"enabled"`
	UsernameFrom string         `json:"usernameFrom"`
	Settings     map[string]any `json:"settings"`
	// For SAML, what to give the IdP: the SP metadata URL, entity ID and
	// ACS URL; for OIDC the redirect URI.
	Endpoints map[string]string `json:"endpoints"`
	Version   int64             `json:"version"`
}

// SSOConnections manages an organization's SSO connections; package sso
// implements it (the management API and the CLI hold this interface, so
// admin does not depend on the protocols). Super Administrators only.
type SSOConnections interface {
	List(ctx context.Context, p Principal) ([]SSOConnectionView, error)
	Get(ctx context.Context, p Principal, id string) (SSOConnectionView, error)
	Create(ctx context.Context, p Principal, spec SSOConnectionSpec) (SSOConnectionView, error)
	Update(ctx context.Context, p Principal, id string, spec SSOConnectionSpec) (SSOConnectionView, error)
	Delete(ctx context.Context, p Principal, id string) error
	// TestURL is where the Super Administrator's browser starts a test
	// sign-in: it shows what the IdP sent and what it matched, without a
	// session.
	TestURL(ctx context.Context, p Principal, id string) (string, error)
	// TestResults are the outcomes (JSON) of the connection's recent
	// tests, newest first; a test still in flight has none yet.
	TestResults(ctx context.Context, p Principal, id string) ([]store.RawJSON, error)
}
