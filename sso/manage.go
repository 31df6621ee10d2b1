package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"gatehouse/admin"
	"gatehouse/sso/fetch"
	"gatehouse/sso/oidc"
	"gatehouse/sso/protocol"
	"gatehouse/sso/saml"
	"gatehouse/store"
)

// Manager keeps an organization's SSO connections: the rules of creating
// and changing them (admin.SSOConnections, for the management API and the
// command line) and the making of their Connectors.
type Manager struct {
	Store   store.Store
	Sealer  *admin.Sealer
	BaseURL string
	// Fetch fetches IdP metadata and OIDC discovery: fetch.NewClient's
	// SSRF-guarded client in production.
	Fetch *http.Client
	Now   func() time.Time
}

// CodeInvalidConnection refuses a connection's settings.
const CodeInvalidConnection = "invalid_sso_connection"

func invalidConnection(format string, args ...any) error {
	return &admin.Error{Code: CodeInvalidConnection, Message: fmt.Sprintf(format, args...)}
}

func (m *Manager) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

func manageOnly(p admin.Principal) error {
	if !p.Super() {
		return &admin.Error{Code: admin.CodeForbidden, Message: "only a Super Administrator may manage SSO connections"}
	}
	return nil
}

// NewConnector makes the protocol.Connector of a connection (Flow.New).
func (m *Manager) NewConnector(ctx context.Context, conn store.SSOConnection) (protocol.Connector, error) {
	switch conn.Kind {
	case store.SSOSAML:
		return saml.New(conn, m.Store, m.Sealer, m.BaseURL, m.Now)
	case store.SSOOIDC:
		return oidc.New(ctx, conn, m.Store, m.Sealer, m.BaseURL, m.Fetch, m.Now)
	}
	return nil, fmt.Errorf("sso: connection %s has unknown kind %q", conn.ID, conn.Kind)
}

// Metadata is a SAML connection's SP metadata (Flow.Metadata).
func (m *Manager) Metadata(conn store.SSOConnection) ([]byte, error) {
	return saml.SPMetadata(conn, m.Sealer, m.BaseURL)
}

func (m *Manager) get(ctx context.Context, p admin.Principal, id string) (store.SSOConnection, error) {
	c, err := m.Store.SSOConnection(ctx, p.OrgID, id)
	if errors.Is(err, store.ErrNotFound) {
		return c, &admin.Error{Code: admin.CodeNotFound, Message: fmt.Sprintf("SSO connection %q not found", id), Err: err}
	}
	return c, err
}

// List returns the organization's connections.
func (m *Manager) List(ctx context.Context, p admin.Principal) ([]admin.SSOConnectionView, error) {
	if err := manageOnly(p); err != nil {
		return nil, err
	}
	cs, err := m.Store.SSOConnections(ctx, p.OrgID)
	if err != nil {
		return nil, err
	}
	out := make([]admin.SSOConnectionView, len(cs))
	for i, c := range cs {
		out[i] = m.view(c)
	}
	return out, nil
}

// Get returns one connection.
func (m *Manager) Get(ctx context.Context, p admin.Principal, id string) (admin.SSOConnectionView, error) {
	if err := manageOnly(p); err != nil {
		return admin.SSOConnectionView{}, err
	}
	c, err := m.get(ctx, p, id)
	if err != nil {
		return admin.SSOConnectionView{}, err
	}
	return m.view(c), nil
}

// view is a connection without its secret, with what to give the IdP.
func (m *Manager) view(c store.SSOConnection) admin.SSOConnectionView {
	base := strings.TrimRight(m.BaseURL, "/")
	v := admin.SSOConnectionView{ID: c.ID, Kind: c.Kind, Name: c.Name, Enabled: c.Enabled, UsernameFrom: c.UsernameFrom,
		Settings: map[string]any{}, Endpoints: map[string]string{}, Version: c.Version}
	switch c.Kind {
	case store.SSOSAML:
		var cfg saml.Config
		json.Unmarshal(c.Config, &cfg)
		entity := cfg.SPEntityID
		if entity == "" {
			entity = base + saml.SPMetadataPath(c.ID)
		}
		v.Settings = map[string]any{"idpMetadataUrl": cfg.IdPMetadataURL, "allowIdpInitiated": cfg.AllowIdPInitiated,
			"allowSha1": cfg.AllowSHA1, "clockSkewSeconds": int(cfg.Skew() / time.Second), "idpMetadataXml": cfg.IdPMetadataXML}
		if !cfg.MetadataFetchedAt.IsZero() {
			v.Settings["metadataFetchedAt"] = cfg.MetadataFetchedAt
		}
		v.Endpoints = map[string]string{"spEntityId": entity, "acsUrl": base + saml.ACSPath(c.ID), "spMetadataUrl": base + saml.SPMetadataPath(c.ID)}
	case store.SSOOIDC:
		var cfg oidc.Config
		json.Unmarshal(c.Config, &cfg)
		v.Settings = map[string]any{"issuer": cfg.Issuer, "clientId": cfg.ClientID, "scopes": cfg.Scopes,
			"clockSkewSeconds": cfg.ClockSkew, "clientSecretSet": c.Secret != ""}
		v.Endpoints = map[string]string{"redirectUri": base + oidc.CallbackPath(c.ID)}
	}
	v.Endpoints["testUrl"] = base + "/sso/start/" + c.ID + "?test=1"
	return v
}

// checkName requires a one-line name.
func checkName(name string) error {
	if strings.TrimSpace(name) == "" || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) || utf8.RuneCountInString(name) > 200 {
		return invalidConnection("give the connection a name: 1 to 200 characters of one line")
	}
	return nil
}

// checkUsernameFrom validates where the username comes from for a kind.
func checkUsernameFrom(kind, from string) error {
	switch {
	case kind == store.SSOSAML && from == "nameid":
		return nil
	case kind == store.SSOSAML && strings.HasPrefix(from, "attribute:") && len(from) > len("attribute:"):
		return nil
	case kind == store.SSOOIDC && strings.HasPrefix(from, "claim:") && len(from) > len("claim:"):
		return nil
	}
	if kind == store.SSOSAML {
		return invalidConnection(`usernameFrom must be "nameid" or "attribute:NAME" for SAML, not %q`, from)
	}
	return invalidConnection(`usernameFrom must be "claim:NAME" for OIDC (for example "claim:preferred_username"), not %q`, from)
}

// Create makes a connection: for SAML a new SP key and certificate, the
// IdP metadata given or fetched; for OIDC the provider is discovered
// before anything is stored.
func (m *Manager) Create(ctx context.Context, p admin.Principal, spec admin.SSOConnectionSpec) (admin.SSOConnectionView, error) {
	if err := manageOnly(p); err != nil {
		return admin.SSOConnectionView{}, err
	}
	conn := store.SSOConnection{ID: uuid.NewString(), OrgID: p.OrgID, Kind: spec.Kind, Name: spec.Name, Enabled: true,
		UsernameFrom: spec.UsernameFrom}
	if spec.Enabled != nil {
		conn.Enabled = *spec.Enabled
	}
	switch spec.Kind {
	case store.SSOSAML:
		if conn.UsernameFrom == "" {
			conn.UsernameFrom = "nameid"
		}
		cert, key, err := saml.NewKey()
		if err != nil {
			return admin.SSOConnectionView{}, err
		}
		conn.Secret = m.Sealer.Seal(key, protocol.SealContext(conn.ID))
		if err := m.applySAML(ctx, &conn, saml.Config{SPCertificate: cert}, spec); err != nil {
			return admin.SSOConnectionView{}, err
		}
	case store.SSOOIDC:
		if conn.UsernameFrom == "" {
			conn.UsernameFrom = "claim:preferred_username"
		}
		if err := m.applyOIDC(ctx, &conn, oidc.Config{}, spec); err != nil {
			return admin.SSOConnectionView{}, err
		}
	default:
		return admin.SSOConnectionView{}, invalidConnection(`kind must be "saml" or "oidc", not %q`, spec.Kind)
	}
	if err := checkName(conn.Name); err != nil {
		return admin.SSOConnectionView{}, err
	}
	if err := checkUsernameFrom(conn.Kind, conn.UsernameFrom); err != nil {
		return admin.SSOConnectionView{}, err
	}
	c, err := m.Store.CreateSSOConnection(p.Context(ctx), conn)
	if err != nil {
		return admin.SSOConnectionView{}, err
	}
	return m.view(c), nil
}

// applySAML merges spec's SAML settings into cfg, fetches the metadata of
// a URL, validates, and stores the result in conn.Config.
func (m *Manager) applySAML(ctx context.Context, conn *store.SSOConnection, cfg saml.Config, spec admin.SSOConnectionSpec) error {
	if spec.Issuer != "" || spec.ClientID != "" || spec.ClientSecret != "" || len(spec.Scopes) > 0 {
		return invalidConnection("issuer, clientId, clientSecret and scopes are OIDC settings; this is a SAML connection")
	}
	switch {
	case spec.IdPMetadataXML != "" && spec.IdPMetadataURL != "":
		return invalidConnection("give the IdP metadata as XML or as a URL, not both")
	case spec.IdPMetadataXML != "":
		cfg.IdPMetadataXML, cfg.IdPMetadataURL, cfg.MetadataFetchedAt = spec.IdPMetadataXML, "", time.Time{}
	case spec.IdPMetadataURL != "":
		if err := fetch.CheckURL(spec.IdPMetadataURL); err != nil {
			return invalidConnection("IdP metadata URL: %v", err)
		}
		doc, err := fetch.Get(ctx, m.Fetch, spec.IdPMetadataURL)
		if err != nil {
			return invalidConnection("fetching the IdP metadata: %v", err)
		}
		cfg.IdPMetadataXML, cfg.IdPMetadataURL, cfg.MetadataFetchedAt = string(doc), spec.IdPMetadataURL, m.now().UTC()
	}
	if spec.SPEntityID != "" {
		cfg.SPEntityID = spec.SPEntityID
	}
	if spec.AllowIdPInitiated != nil {
		cfg.AllowIdPInitiated = *spec.AllowIdPInitiated
	}
	if spec.AllowSHA1 != nil {
		cfg.AllowSHA1 = *spec.AllowSHA1
	}
	if spec.ClockSkewSeconds != nil {
		cfg.ClockSkew = *spec.ClockSkewSeconds
	}
	if cfg.IdPMetadataXML == "" {
		return invalidConnection("a SAML connection needs the IdP metadata (idpMetadataXml or idpMetadataUrl)")
	}
	if err := cfg.Validate(); err != nil {
		return invalidConnection("%v", err)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	conn.Config = raw
	return nil
}

// applyOIDC merges spec's OIDC settings into cfg, validates them and
// discovers the provider.
func (m *Manager) applyOIDC(ctx context.Context, conn *store.SSOConnection, cfg oidc.Config, spec admin.SSOConnectionSpec) error {
	if spec.IdPMetadataXML != "" || spec.IdPMetadataURL != "" || spec.SPEntityID != "" || spec.AllowIdPInitiated != nil || spec.AllowSHA1 != nil {
		return invalidConnection("IdP metadata, spEntityId, allowIdpInitiated and allowSha1 are SAML settings; this is an OIDC connection")
	}
	prior := cfg
	if spec.Issuer != "" {
		cfg.Issuer = spec.Issuer
	}
	if spec.ClientID != "" {
		cfg.ClientID = spec.ClientID
	}
	if len(spec.Scopes) > 0 {
		cfg.Scopes = spec.Scopes
	}
	if spec.ClockSkewSeconds != nil {
		cfg.ClockSkew = *spec.ClockSkewSeconds
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if cfg, err = oidc.ParseConfig(raw); err != nil {
		return invalidConnection("%v", err)
	}
	if raw, err = json.Marshal(cfg); err != nil {
		return err
	}
	conn.Config = raw
	if spec.ClientSecret != "" {
		conn.Secret = m.Sealer.Seal(spec.ClientSecret, protocol.SealContext(conn.ID))
	}
	if conn.Secret == "" {
		return invalidConnection("an OIDC connection needs the client secret (clientSecret)")
	}
	// Discover now, so a wrong issuer is refused here rather than at the
	// first sign-in; a change that leaves the provider's settings alone
	// (disabling, renaming, the skew) does not need the provider, so it
	// works while the provider is down.
	if prior.Issuer == cfg.Issuer && prior.ClientID == cfg.ClientID && slices.Equal(prior.Scopes, cfg.Scopes) && spec.ClientSecret == "" {
		return nil
	}
	if _, err := oidc.New(ctx, *conn, m.Store, m.Sealer, m.BaseURL, m.Fetch, m.Now); err != nil {
		return invalidConnection("discovering the OIDC provider: %v", err)
	}
	return nil
}

// Update changes a connection; its kind stays.
func (m *Manager) Update(ctx context.Context, p admin.Principal, id string, spec admin.SSOConnectionSpec) (admin.SSOConnectionView, error) {
	if err := manageOnly(p); err != nil {
		return admin.SSOConnectionView{}, err
	}
	cur, err := m.get(ctx, p, id)
	if err != nil {
		return admin.SSOConnectionView{}, err
	}
	if spec.Kind != "" && spec.Kind != cur.Kind {
		return admin.SSOConnectionView{}, invalidConnection("a connection's kind does not change; create another connection")
	}
	next := cur
	if spec.Name != "" {
		next.Name = spec.Name
	}
	if spec.Enabled != nil {
		next.Enabled = *spec.Enabled
	}
	if spec.UsernameFrom != "" {
		next.UsernameFrom = spec.UsernameFrom
	}
	switch cur.Kind {
	case store.SSOSAML:
		var cfg saml.Config
		if err := json.Unmarshal(cur.Config, &cfg); err != nil {
			return admin.SSOConnectionView{}, fmt.Errorf("sso: stored SAML settings: %w", err)
		}
		err = m.applySAML(ctx, &next, cfg, spec)
	case store.SSOOIDC:
		var cfg oidc.Config
		if err := json.Unmarshal(cur.Config, &cfg); err != nil {
			return admin.SSOConnectionView{}, fmt.Errorf("sso: stored OIDC settings: %w", err)
		}
		err = m.applyOIDC(ctx, &next, cfg, spec)
	}
	if err != nil {
		return admin.SSOConnectionView{}, err
	}
	if err := checkName(next.Name); err != nil {
		return admin.SSOConnectionView{}, err
	}
	if err := checkUsernameFrom(next.Kind, next.UsernameFrom); err != nil {
		return admin.SSOConnectionView{}, err
	}
	if cur.Enabled && !next.Enabled {
		if err := m.keepsOneEnabled(ctx, p.OrgID, id); err != nil {
			return admin.SSOConnectionView{}, err
		}
	}
	c, err := m.Store.UpdateSSOConnection(p.Context(ctx), p.OrgID, id, func(c *store.SSOConnection) error {
		if c.Version != cur.Version {
			return store.ErrConflict // changed since read: the caller retries
		}
		*c = next
		return nil
	})
	if err != nil {
		return admin.SSOConnectionView{}, err
	}
	return m.view(c), nil
}

// Delete removes a connection. The organization's SSO requirement cannot
// outlive its last enabled connection.
func (m *Manager) Delete(ctx context.Context, p admin.Principal, id string) error {
	if err := manageOnly(p); err != nil {
		return err
	}
	if _, err := m.get(ctx, p, id); err != nil {
		return err
	}
	if err := m.keepsOneEnabled(ctx, p.OrgID, id); err != nil {
		return err
	}
	return m.Store.DeleteSSOConnection(p.Context(ctx), p.OrgID, id)
}

// keepsOneEnabled refuses to delete or disable connection id when the
// organization requires SSO and no other connection is enabled.
func (m *Manager) keepsOneEnabled(ctx context.Context, org, id string) error {
	o, err := m.Store.Org(ctx, org)
	if err != nil || !o.RequireSSO {
		return err
	}
	cs, err := m.Store.SSOConnections(ctx, org)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.Enabled && c.ID != id {
			return nil
		}
	}
	return &admin.Error{Code: admin.CodeSSONotConfigured,
		Message: "the organization requires SSO: turn that off before removing or disabling its last enabled connection"}
}

// TestURL is where a Super Administrator's browser starts a test.
func (m *Manager) TestURL(ctx context.Context, p admin.Principal, id string) (string, error) {
	if err := manageOnly(p); err != nil {
		return "", err
	}
	if _, err := m.get(ctx, p, id); err != nil {
		return "", err
	}
	return strings.TrimRight(m.BaseURL, "/") + "/sso/start/" + id + "?test=1", nil
}

// TestResults are the connection's latest test outcomes.
func (m *Manager) TestResults(ctx context.Context, p admin.Principal, id string) ([]store.RawJSON, error) {
	if err := manageOnly(p); err != nil {
		return nil, err
	}
	if _, err := m.get(ctx, p, id); err != nil {
		return nil, err
	}
	tests, err := m.Store.SSOTests(ctx, p.OrgID, id, 20)
	if err != nil {
		return nil, err
	}
	out := make([]store.RawJSON, len(tests))
	for i, t := range tests {
		out[i] = t.Result
	}
	return out, nil
}

var _ admin.SSOConnections = (*Manager)(nil)
