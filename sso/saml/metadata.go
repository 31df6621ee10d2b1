package saml

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/crewjam/saml"
	xrv "github.com/mattermost/xml-roundtrip-validator"

	"gatehouse/sso/fetch"
	"gatehouse/store"
)

// CheckIdPMetadata reports whether doc is SAML 2.0 metadata of an
// identity provider with at least one signing certificate: an
// EntityDescriptor (or an EntitiesDescriptor holding exactly one IdP, as
// the SAML connector accepts) with an IDPSSODescriptor whose
// KeyDescriptor (use "signing" or unspecified) carries a parsable X.509
// certificate. Documents are round-trip checked first (crewjam's
// defence against XML parser differentials).
func CheckIdPMetadata(doc []byte) error {
	if err := xrv.Validate(bytes.NewReader(doc)); err != nil {
		return fmt.Errorf("sso: metadata is not round-trip safe XML: %w", err)
	}
	// crewjam's EntityDescriptor decodes any root element (its custom
	// UnmarshalXML does not check the name), so look at the root first.
	var root xml.Name
	for dec := xml.NewDecoder(bytes.NewReader(doc)); root.Local == ""; {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("sso: metadata is not XML with a root element")
		}
		if se, ok := tok.(xml.StartElement); ok {
			root = se.Name
		}
	}
	var ed saml.EntityDescriptor
	switch {
	case root.Space == metadataNS && root.Local == "EntityDescriptor":
		if err := xml.Unmarshal(doc, &ed); err != nil {
			return fmt.Errorf("sso: metadata is not a SAML EntityDescriptor: %w", err)
		}
	case root.Space == metadataNS && root.Local == "EntitiesDescriptor":
		var eds saml.EntitiesDescriptor
		if err := xml.Unmarshal(doc, &eds); err != nil {
			return fmt.Errorf("sso: metadata is not a SAML EntitiesDescriptor: %w", err)
		}
		n := 0
		for _, e := range eds.EntityDescriptors {
			if len(e.IDPSSODescriptors) > 0 {
				ed, n = e, n+1
			}
		}
		if n != 1 {
			return fmt.Errorf("sso: metadata lists %d identity providers, not one", n)
		}
	default:
		return fmt.Errorf("sso: metadata is not a SAML EntityDescriptor but {%s}%s", root.Space, root.Local)
	}
	if ed.EntityID == "" {
		return errors.New("sso: metadata has no entityID")
	}
	if len(ed.IDPSSODescriptors) == 0 {
		return errors.New("sso: metadata has no IDPSSODescriptor")
	}
	for _, idp := range ed.IDPSSODescriptors {
		for _, kd := range idp.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					continue
				}
				if _, err := x509.ParseCertificate(der); err == nil {
					return nil
				}
			}
		}
	}
	return errors.New("sso: metadata has no signing certificate")
}

const metadataNS = "urn:oasis:names:tc:SAML:2.0:metadata"

// metadataFields are the keys of a SAML connection's config the
// refresher reads and writes; every other key is kept as it is.
type metadataFields struct {
	IdPMetadataXML    string `json:"idpMetadataXml"`
	IdPMetadataURL    string `json:"idpMetadataUrl"`
	MetadataFetchedAt string `json:"metadataFetchedAt"`
}

func readMetadataFields(config []byte) (metadataFields, error) {
	var f metadataFields
	if len(bytes.TrimSpace(config)) == 0 {
		return f, nil
	}
	// Decode key by key: a field of another type elsewhere in the config
	// must not stop the refresher.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(config, &m); err != nil {
		return f, err
	}
	for k, dst := range map[string]*string{"idpMetadataXml": &f.IdPMetadataXML, "idpMetadataUrl": &f.IdPMetadataURL,
		"metadataFetchedAt": &f.MetadataFetchedAt} {
		if raw, ok := m[k]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, dst); err != nil {
				return f, fmt.Errorf("config key %s: %w", k, err)
			}
		}
	}
	return f, nil
}

// setMetadataFields returns config with the metadata and its fetch time
// set, the other keys unchanged.
func setMetadataFields(config []byte, doc string, at time.Time) ([]byte, error) {
	m := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(config)) > 0 {
		if err := json.Unmarshal(config, &m); err != nil {
			return nil, err
		}
	}
	x, _ := json.Marshal(doc)
	ts, _ := json.Marshal(at.UTC().Format(time.RFC3339Nano))
	m["idpMetadataXml"], m["metadataFetchedAt"] = x, ts
	return json.Marshal(m)
}

// MetadataRefresher keeps the IdP metadata of SAML connections that name
// a metadata URL up to date: each round it fetches the documents last
// fetched more than Every ago and stores one that changed, is valid IdP
// metadata (CheckIdPMetadata) and leaves the connection's settings valid
// (ParseConfig: what New will read). A fetch that fails, or a document that
// does not pass, is logged and leaves the stored metadata as it was; it
// is tried again next round. A document that did not change is not
// written (no audit entry); the refresher remembers, in memory, when it
// last saw it, so after a restart it is fetched once more.
//
// Several gatehouse instances may refresh the same database: a write
// happens only if the stored document still differs and the connection
// still names the URL fetched.
type MetadataRefresher struct {
	Store ConnectionUpdater
	// List returns the connections to consider; those not of kind SAML or
	// without a metadata URL are skipped.
	List   func(ctx context.Context) ([]store.SSOConnection, error)
	Client *http.Client
	// Every is the age at which a document is fetched again; 0 means
	// DefaultMetadataRefresh.
	Every  time.Duration
	Now    func() time.Time // nil means time.Now
	Logger *slog.Logger     // nil means slog.Default()

	mu      sync.Mutex
	checked map[string]time.Time // connection ID -> last fetch with an unchanged document
}

// ConnectionUpdater writes a connection's refreshed metadata; a
// store.Store is one.
type ConnectionUpdater interface {
	UpdateSSOConnection(ctx context.Context, org, id string, fn func(*store.SSOConnection) error) (store.SSOConnection, error)
}

var _ ConnectionUpdater = store.Store(nil)

// DefaultMetadataRefresh is how old fetched IdP metadata may get.
const DefaultMetadataRefresh = 24 * time.Hour

// RefreshIdPMetadata runs a MetadataRefresher until ctx is done: one
// round at once, then rounds every every/4 (at least a second), so a
// document is at most about 1.25 × every old.
func RefreshIdPMetadata(ctx context.Context, st ConnectionUpdater, list func(ctx context.Context) ([]store.SSOConnection, error),
	client *http.Client, every time.Duration, now func() time.Time, logger *slog.Logger) {
	r := &MetadataRefresher{Store: st, List: list, Client: client, Every: every, Now: now, Logger: logger}
	r.Run(ctx)
}

// Run does rounds until ctx is done.
func (r *MetadataRefresher) Run(ctx context.Context) {
	tick := max(r.every()/4, time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		r.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RefreshStats counts what a round did.
type RefreshStats struct {
	Due, Updated, Unchanged, Failed int
}

// Round fetches the due documents once. The updates are gatehouse's own
// (store.System) in the audit log.
func (r *MetadataRefresher) Round(ctx context.Context) RefreshStats {
	ctx = store.WithActor(ctx, store.System)
	var st RefreshStats
	logger := r.Logger
	if logger == nil {
		logger = slog.Default()
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	conns, err := r.List(ctx)
	if err != nil {
		logger.ErrorContext(ctx, "sso: metadata refresh: list connections", "err", err)
		return st
	}
	r.forget(conns)
	for _, c := range conns {
		if ctx.Err() != nil {
			return st
		}
		if c.Kind != store.SSOSAML {
			continue
		}
		f, err := readMetadataFields(c.Config)
		if err != nil {
			logger.WarnContext(ctx, "sso: metadata refresh: unreadable connection config", "org", c.OrgID, "connection", c.ID, "err", err)
			continue
		}
		if f.IdPMetadataURL == "" || !r.due(c.ID, f, now()) {
			continue
		}
		st.Due++
		switch updated, err := r.refresh(ctx, c, f.IdPMetadataURL, now); {
		case err != nil:
			st.Failed++
			logger.WarnContext(ctx, "sso: metadata refresh failed; keeping the stored metadata", "org", c.OrgID,
				"connection", c.ID, "err", err)
		case updated:
			st.Updated++
			logger.InfoContext(ctx, "sso: metadata refreshed", "org", c.OrgID, "connection", c.ID)
		default:
			st.Unchanged++
		}
	}
	return st
}

func (r *MetadataRefresher) due(id string, f metadataFields, now time.Time) bool {
	last, _ := time.Parse(time.RFC3339Nano, f.MetadataFetchedAt)
	if f.IdPMetadataXML == "" {
		return true
	}
	r.mu.Lock()
	if t, ok := r.checked[id]; ok && t.After(last) {
		last = t
	}
	r.mu.Unlock()
	return now.Sub(last) >= r.every()
}

func (r *MetadataRefresher) every() time.Duration {
	if r.Every <= 0 {
		return DefaultMetadataRefresh
	}
	return r.Every
}

// forget drops what it remembers of connections no longer listed.
func (r *MetadataRefresher) forget(listed []store.SSOConnection) {
	ids := make(map[string]bool, len(listed))
	for _, c := range listed {
		ids[c.ID] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.checked {
		if !ids[id] {
			delete(r.checked, id)
		}
	}
}

func (r *MetadataRefresher) markChecked(id string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.checked == nil {
		r.checked = map[string]time.Time{}
	}
	r.checked[id] = at
}

// errUnchanged stops an update that has nothing to write.
var errUnchanged = errors.New("unchanged")

func (r *MetadataRefresher) refresh(ctx context.Context, c store.SSOConnection, metadataURL string, now func() time.Time) (bool, error) {
	doc, err := fetch.Get(ctx, r.Client, metadataURL)
	if err != nil {
		return false, err
	}
	fetchedAt := now()
	if f, _ := readMetadataFields(c.Config); bytes.Equal(bytes.TrimSpace(doc), bytes.TrimSpace([]byte(f.IdPMetadataXML))) {
		r.markChecked(c.ID, fetchedAt)
		return false, nil
	}
	if err := CheckIdPMetadata(doc); err != nil {
		shown := metadataURL
		if u, perr := url.Parse(metadataURL); perr == nil {
			shown = fetch.ShowURL(u)
		}
		return false, fmt.Errorf("%s: %w", shown, err)
	}
	_, err = r.Store.UpdateSSOConnection(ctx, c.OrgID, c.ID, func(cur *store.SSOConnection) error {
		f, err := readMetadataFields(cur.Config)
		if err != nil {
			return err
		}
		if f.IdPMetadataURL != metadataURL || bytes.Equal(bytes.TrimSpace(doc), bytes.TrimSpace([]byte(f.IdPMetadataXML))) {
			return errUnchanged // edited meanwhile, or another instance stored it
		}
		cfg, err := setMetadataFields(cur.Config, string(doc), fetchedAt)
		if err != nil {
			return err
		}
		// What the connector will parse must still parse: the new
		// document with the connection's other settings.
		if _, err := ParseConfig(cfg); err != nil {
			return err
		}
		cur.Config = cfg
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		r.markChecked(c.ID, fetchedAt)
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store the metadata: %w", err)
	}
	r.markChecked(c.ID, fetchedAt)
	return true, nil
}
