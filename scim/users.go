package scim

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"gatehouse/admin"
	"gatehouse/scim/patch"
	"gatehouse/scim/schema"
	"gatehouse/store"
)

// userKind serves Users: the organization's administrators.
//
// Storage: the attributes gatehouse acts on are columns of the
// administrator (userName, externalId, name.givenName, name.familyName,
// emails, active as the status, the role from roles); every other attribute
// the IdP sent is kept in the administrator's JSON document exactly as sent
// (after type normalization) and returned as such.
type userKind struct{}

func (userKind) patchStatus() int { return http.StatusOK } // Okta wants the user back

func (userKind) field(r schema.Resolved) (mapping, bool) {
	switch {
	case r.Extension == schema.Gatehouse:
		switch r.Attr.Name {
		case "role":
			return column(store.AdministratorRole), true
		case "status":
			return column(store.AdministratorStatus), true
		case "lastLogin":
			return column(store.AdministratorLastLoginAt), true
		}
	case r.Extension != nil:
	case r.Attr.Name == "userName":
		return column(store.AdministratorUserName), true
	case r.Attr.Name == "active":
		return mapping{active: true}, true
	case r.Attr.Name == "name" && r.Sub != nil && r.Sub.Name == "givenName":
		return column(store.AdministratorGivenName), true
	case r.Attr.Name == "name" && r.Sub != nil && r.Sub.Name == "familyName":
		return column(store.AdministratorFamilyName), true
	}
	return mapping{}, false
}

func timeString(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// renderUser is the SCIM representation of an administrator. For a
// response, the stored attributes stay raw JSON (json.RawMessage values)
// and are written out as they are; decoded is for the PATCH engine, which
// needs every value as Go data.
func (c *call) renderUser(a store.Administrator, groups []store.GroupRef, decoded bool) (map[string]any, error) {
	return c.s.renderUser(a, groups, decoded)
}

func (s *Server) renderUser(a store.Administrator, groups []store.GroupRef, decoded bool) (map[string]any, error) {
	doc := map[string]any{}
	if len(a.Attributes) > 0 {
		var err error
		if decoded {
			err = decodeJSONValue(a.Attributes, &doc)
		} else {
			var raw map[string]json.RawMessage
			err = json.Unmarshal(a.Attributes, &raw)
			for k, v := range raw {
				doc[k] = v
			}
		}
		if err != nil {
			return nil, err
		}
	}
	schemas := []any{schema.UserURN}
	if _, ok := doc[schema.EnterpriseURN]; ok {
		schemas = append(schemas, schema.EnterpriseURN)
	}
	schemas = append(schemas, schema.GatehouseURN)
	doc["schemas"] = schemas
	doc["id"] = a.ID
	if a.ExternalID != "" {
		doc["externalId"] = a.ExternalID
	}
	doc["userName"] = a.UserName
	if a.GivenName != "" || a.FamilyName != "" {
		name, err := asObject(doc["name"])
		if err != nil {
			return nil, err
		}
		doc["name"] = name
		if a.GivenName != "" {
			name["givenName"] = a.GivenName
		}
		if a.FamilyName != "" {
			name["familyName"] = a.FamilyName
		}
	}
	switch {
	case len(a.Emails) > 0:
		emails := make([]any, len(a.Emails))
		for i, e := range a.Emails {
			m := map[string]any{"value": e.Value}
			if e.Type != "" {
				m["type"] = e.Type
			}
			if e.Display != "" {
				m["display"] = e.Display
			}
			if e.Primary {
				m["primary"] = true
			}
			emails[i] = m
		}
		doc["emails"] = emails
	case a.Email != "": // an administrator created outside SCIM
		doc["emails"] = []any{map[string]any{"value": a.Email, "type": "work", "primary": true}}
	}
	if _, ok := doc["phoneNumbers"]; !ok && a.Phone != "" {
		doc["phoneNumbers"] = []any{map[string]any{"value": a.Phone, "type": "work", "primary": true}}
	}
	doc["active"] = a.Status != store.StatusDeactivated
	if len(groups) > 0 {
		gs := make([]any, len(groups))
		for i, g := range groups {
			gs[i] = map[string]any{"value": g.ID, "display": g.DisplayName, "type": "direct",
				"$ref": s.location(schema.Groups, g.ID)}
		}
		doc["groups"] = gs
	}
	ext := map[string]any{"role": string(a.Role), "status": string(a.Status)}
	if a.LastLoginAt != nil {
		ext["lastLogin"] = timeString(*a.LastLoginAt)
	}
	doc[schema.GatehouseURN] = ext
	doc["meta"] = map[string]any{
		"resourceType": "User",
		"created":      timeString(a.CreatedAt),
		"lastModified": timeString(a.UpdatedAt),
		"location":     s.location(schema.Users, a.ID),
		"version":      entityTag(a.Version, groups),
	}
	return doc, nil
}

// applyUser sets a from a normalized User document (POST, PUT, or the
// result of a PATCH). Absent readWrite attributes are cleared (RFC 7644
// §3.5.1), except active: a document without it leaves the status as it
// is (admin.Lifecycle makes new users Active).
func applyUser(doc map[string]any, a *store.Administrator, domains []string) error {
	rest := make(map[string]any, len(doc))
	for k, v := range doc {
		rest[k] = v
	}
	userName, _ := rest["userName"].(string)
	if err := admin.CheckUsername(userName); err != nil {
		return err
	}
	a.UserName = userName
	a.ExternalID, _ = rest["externalId"].(string)
	a.GivenName, a.FamilyName = "", ""
	if name, ok := rest["name"].(map[string]any); ok {
		a.GivenName, _ = name["givenName"].(string)
		a.FamilyName, _ = name["familyName"].(string)
		other := make(map[string]any, len(name))
		for k, v := range name {
			if k != "givenName" && k != "familyName" {
				other[k] = v
			}
		}
		if len(other) > 0 {
			rest["name"] = other
		} else {
			delete(rest, "name")
		}
	}
	a.Emails, a.Email = nil, ""
	emails, _ := rest["emails"].([]any)
	for _, e := range emails {
		m, _ := e.(map[string]any)
		v, _ := m["value"].(string)
		if v == "" {
			continue
		}
		if len(domains) > 0 {
			if err := admin.CheckEmail(v, domains); err != nil {
				return err
			}
		}
		em := store.Email{Value: v}
		em.Type, _ = m["type"].(string)
		em.Display, _ = m["display"].(string)
		em.Primary, _ = m["primary"].(bool)
		a.Emails = append(a.Emails, em)
	}
	a.Email = primaryEmail(a.Emails)
	phones, _ := rest["phoneNumbers"].([]any)
	a.Phone = primaryValue(phones)
	if active, ok := rest["active"].(bool); ok {
		// The IdP owns the lifecycle: active makes a Pending (invited)
		// administrator Active too, since it signs in through SSO.
		a.Status = store.StatusActive
		if !active {
			a.Status = store.StatusDeactivated
		}
	}
	// The role follows the IdP alone (admin.Lifecycle), also for an
	// administrator created by hand that the IdP now provisions: roles the
	// IdP stops sending must stop granting (a PATCH removing a role leaves
	// no roles attribute), so an absent attribute cannot mean "keep what
	// was there".
	roles, _ := rest["roles"].([]any)
	values := make([]string, 0, len(roles))
	for _, r := range roles {
		m, _ := r.(map[string]any)
		if v, _ := m["value"].(string); v != "" {
			values = append(values, v)
		}
	}
	a.SCIMRole = admin.IdPRole(values)
	// preferredLanguage (RFC 7643 §4.1.2) sets the administrator's
	// language ("ru", "ru-RU": Russian; any other tag: English). It stays
	// in Attributes as sent, so the IdP reads back what it wrote. An
	// absent one leaves the language the administrator chose: most IdPs
	// never send it.
	if pref, _ := rest["preferredLanguage"].(string); pref != "" {
		a.Language = admin.LanguageOfTag(pref)
	}
	for _, k := range []string{"userName", "externalId", "emails", "active", "id", "meta", "groups", "schemas", schema.GatehouseURN} {
		delete(rest, k)
	}
	a.Attributes = nil
	if len(rest) > 0 {
		b, err := json.Marshal(rest)
		if err != nil {
			return err
		}
		a.Attributes = b
	}
	return nil
}

// primaryEmail is the primary address, else the first.
func primaryEmail(es []store.Email) string {
	for _, e := range es {
		if e.Primary {
			return e.Value
		}
	}
	if len(es) > 0 {
		return es[0].Value
	}
	return ""
}

// primaryValue is the value of the primary element of a multi-valued
// attribute, else of the first.
func primaryValue(list []any) string {
	first := ""
	for _, e := range list {
		m, _ := e.(map[string]any)
		v, _ := m["value"].(string)
		if p, _ := m["primary"].(bool); p && v != "" {
			return v
		}
		if first == "" {
			first = v
		}
	}
	return first
}

// userOps are the operations on Users with typed arguments: a context
// and values parsed at the edge, never the HTTP request. The handlers
// (userKind) parse the request and call them; Bulk can call them directly.
// Each goes through admin.Lifecycle, which holds the rules.
type userOps struct {
	s     *Server
	org   store.Org
	entry *tokenEntry         // the token's cache: the registered domains
	log   func() *slog.Logger // the request's logger, made on first use
}

func (c *call) users() userOps { return userOps{s: c.s, org: c.org, entry: c.entry, log: c.logger} }

func (u userOps) lifecycle() *admin.Lifecycle { return u.s.lifecycle }

// userResource is the resource of a and its groups.
func userResource(a store.Administrator, groups []store.GroupRef) resource {
	return resource{id: a.ID, etag: entityTag(a.Version, groups), user: &userSource{a, groups}}
}

// withGroups is the resource of a as just written, with its groups read
// now. An administrator deleted since has none.
func (u userOps) withGroups(ctx context.Context, a store.Administrator) (resource, error) {
	_, refs, err := u.s.store.AdministratorWithGroups(ctx, u.org.ID, a.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return resource{}, err
	}
	return userResource(a, refs), nil
}

// get reads one User, with its groups when withGroups (one statement
// either way).
func (u userOps) get(ctx context.Context, id string, withGroups bool) (resource, error) {
	if !withGroups {
		a, err := u.s.store.Administrator(ctx, u.org.ID, id)
		if err != nil {
			return resource{}, err
		}
		return userResource(a, nil), nil
	}
	a, refs, err := u.s.store.AdministratorWithGroups(ctx, u.org.ID, id)
	if err != nil {
		return resource{}, err
	}
	return userResource(a, refs), nil
}

func (u userOps) query(ctx context.Context, q store.Query) ([]resource, int, string, error) {
	res, err := u.s.store.QueryAdministrators(ctx, u.org.ID, q)
	if err != nil {
		return nil, 0, "", err
	}
	out := make([]resource, len(res.Items))
	for i, a := range res.Items {
		out[i] = userResource(a, res.Groups[a.ID])
	}
	return out, res.Total, res.Next, nil
}

// create provisions a User from a normalized document, logging a
// deactivated administrator that comes back (see
// admin.Lifecycle.Provision).
func (u userOps) create(ctx context.Context, doc map[string]any) (resource, error) {
	domains, err := u.entry.domains(ctx, u.s.store)
	if err != nil {
		return resource{}, err
	}
	a, again, err := u.lifecycle().Provision(ctx, u.org.ID, func(a *store.Administrator) error {
		return applyUser(doc, a, domains)
	})
	if err != nil {
		return resource{}, err
	}
	if !again {
		return userResource(a, nil), nil // a new administrator is in no group
	}
	u.log().Info("scim: deactivated administrator re-provisioned", "administrator", a.ID)
	return u.withGroups(ctx, a)
}

// replace sets a User from a normalized document, if its version matches
// ifMatch (an If-Match header, "" for any).
func (u userOps) replace(ctx context.Context, id string, doc map[string]any, ifMatch string) (resource, error) {
	return u.update(ctx, id, ifMatch, func(*store.Administrator) (map[string]any, error) { return doc, nil })
}

// patch applies PATCH operations to a User, if its version matches ifMatch.
func (u userOps) patch(ctx context.Context, id string, ops []patch.Operation, ifMatch string) (resource, error) {
	return u.update(ctx, id, ifMatch, func(a *store.Administrator) (map[string]any, error) {
		doc, err := u.s.renderUser(*a, nil, true)
		if err != nil {
			return nil, err
		}
		patched, _, err := patch.Apply(schema.Users, doc, ops)
		if err != nil {
			return nil, err
		}
		return schema.Normalize(schema.Users, patched)
	})
}

// update replaces an administrator's SCIM attributes with the document
// next gives for its current state, inside the store's transaction, after
// checking ifMatch there.
func (u userOps) update(ctx context.Context, id, ifMatch string, next func(*store.Administrator) (map[string]any, error)) (resource, error) {
	domains, err := u.entry.domains(ctx, u.s.store)
	if err != nil {
		return resource{}, err
	}
	a, err := u.lifecycle().Sync(ctx, u.org.ID, id, versionCheck(ifMatch), func(a *store.Administrator) error {
		doc, err := next(a)
		if err != nil {
			return err
		}
		return applyUser(doc, a, domains)
	})
	if err != nil {
		return resource{}, err
	}
	return u.withGroups(ctx, a)
}

// delete removes a User, if its version matches ifMatch (checked inside
// the delete).
func (u userOps) delete(ctx context.Context, id, ifMatch string) error {
	return u.lifecycle().Deprovision(ctx, u.org.ID, id, versionCheck(ifMatch))
}

// versionCheck is the check of an If-Match header ("" checks nothing).
func versionCheck(ifMatch string) admin.VersionCheck {
	if ifMatch == "" {
		return nil
	}
	return func(v int64) bool { return etagMatches(ifMatch, v) }
}

// The HTTP side: userKind parses nothing more than resourceType did and
// calls userOps.

func (userKind) get(c *call, id string, p projection) (resource, error) {
	return c.users().get(c.r.Context(), id, p.wants("groups"))
}

func (userKind) query(c *call, q store.Query, p projection) ([]resource, int, string, error) {
	q.WithGroups = p.wants("groups")
	return c.users().query(c.r.Context(), q)
}

func (userKind) create(c *call, doc map[string]any) (resource, error) {
	return c.users().create(c.r.Context(), doc)
}

func (userKind) replace(c *call, id string, doc map[string]any, ifMatch string) (resource, error) {
	return c.users().replace(c.r.Context(), id, doc, ifMatch)
}

func (userKind) patch(c *call, id string, ops []patch.Operation, ifMatch string) (resource, error) {
	return c.users().patch(c.r.Context(), id, ops, ifMatch)
}

func (userKind) delete(c *call, id string, ifMatch string) error {
	return c.users().delete(c.r.Context(), id, ifMatch)
}
