package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// SSOTestResult is what a connection's test found (the JSON of
// SSOConnections.TestResults): what the IdP sent, and which administrator
// it matched or exactly why not. Package sso makes it; the console shows it.
type SSOTestResult struct {
	// ID names this result, for the page that shows it.
	ID            string              `json:"id,omitempty"`
	Connection    string              `json:"connection"`
	Succeeded     bool                `json:"succeeded"`
	Reason        string              `json:"reason,omitempty"`
	Username      string              `json:"username,omitempty"`
	Subject       string              `json:"subject,omitempty"`
	Issuer        string              `json:"issuer,omitempty"`
	Certificate   string              `json:"certificate,omitempty"`
	IssuedAt      *time.Time          `json:"issuedAt,omitempty"`
	NotBefore     *time.Time          `json:"notBefore,omitempty"`
	NotOnOrAfter  *time.Time          `json:"notOnOrAfter,omitempty"`
	Attributes    map[string][]string `json:"attributes,omitempty"`
	Administrator string              `json:"administrator,omitempty"` // the matched username
	Status        string              `json:"status,omitempty"`        // the matched administrator's status
	// NearMiss is the username of an administrator that differs from
	// Username only by case or surrounding white space, when no
	// administrator matched: a diagnosis, never a sign-in (usernames
	// match exactly).
	NearMiss string    `json:"nearMiss,omitempty"`
	At       time.Time `json:"at"`
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

// NameBreakGlass names (enabled) or no longer names a Super
// Administrator of p's organization who may still sign in with a
// password while the organization requires SSO. A Super Administrator
// decides, and only a Super Administrator can be named. The management
// API and the console both call it.
func (s *SignIn) NameBreakGlass(ctx context.Context, p Principal, administratorID string, enabled bool) error {
	if !p.Super() {
		return refuse(CodeForbidden, "only a Super Administrator may name break-glass administrators")
	}
	a, err := s.Store.Administrator(ctx, p.OrgID, administratorID)
	if errors.Is(err, store.ErrNotFound) {
		return notFound(administratorID)
	}
	if err != nil {
		return fmt.Errorf("admin: break-glass: %w", err)
	}
	if enabled && a.Role != store.RoleSuperAdministrator {
		return refuse(CodeInvalidRole, "only a Super Administrator can be a break-glass administrator")
	}
	return s.SetBreakGlass(p.Context(ctx), p.OrgID, a.ID, enabled)
}
