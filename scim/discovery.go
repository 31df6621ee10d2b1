package scim

import (
	"net/http"
	"strings"

	"gatehouse/scim/schema"
)

// The discovery documents (RFC 7644 §4) are rendered from scim/schema, the
// same values the validator, filters and PATCH use.

func (s *Server) serviceProviderConfig(c *call) error {
	c.writeJSON(http.StatusOK, map[string]any{
		"schemas":          []string{schema.ServiceProviderConfigURN},
		"documentationUri": s.cfg.BaseURL + "/",
		"patch":            map[string]any{"supported": true},
		"bulk": map[string]any{
			"supported":      true,
			"maxOperations":  MaxBulkOperations,
			"maxPayloadSize": MaxBodyBytes,
		},
		"filter":         map[string]any{"supported": true, "maxResults": MaxResults},
		"changePassword": map[string]any{"supported": false},
		"sort":           map[string]any{"supported": true},
		// RFC 9865 §4: index (startIndex) by default, cursor on request.
		"pagination": map[string]any{"cursor": true, "index": true, "defaultPaginationMethod": "index",
			"defaultPageSize": defaultCount, "maxPageSize": MaxResults},
		"etag": map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type":        "oauthbearertoken",
			"name":        "Bearer token",
			"description": "A SCIM token of the organization, created with `gatehouse scim token create --org SLUG` or by a super administrator, sent as Authorization: Bearer <token>.",
			"primary":     true,
		}},
		"meta": map[string]any{
			"resourceType": "ServiceProviderConfig",
			"location":     s.cfg.BaseURL + Prefix + "/ServiceProviderConfig",
		},
	})
	return nil
}

// discovery is a set of discovery documents (the schemas or the resource
// types), rendered once: they never change while the server runs.
type discovery struct {
	kind string // for the 404: "schema", "resource type"
	ids  []string
	docs []any
}

func newDiscovery[T any](kind string, items []T, id func(T) string, doc func(T) map[string]any) *discovery {
	d := &discovery{kind: kind}
	for _, it := range items {
		d.ids = append(d.ids, id(it))
		d.docs = append(d.docs, doc(it))
	}
	return d
}

func (d *discovery) list(c *call) error {
	c.writeJSON(http.StatusOK, listResponse(d.docs, len(d.docs), 1))
	return nil
}

func (d *discovery) get(c *call) error {
	for i, id := range d.ids {
		if strings.EqualFold(id, c.r.PathValue("id")) {
			c.writeJSON(http.StatusOK, d.docs[i])
			return nil
		}
	}
	return errorf(http.StatusNotFound, "", "no %s %q", d.kind, c.r.PathValue("id"))
}

func (s *Server) schemaDoc(sc *schema.Schema) map[string]any {
	attrs := make([]any, len(sc.Attributes))
	for i, a := range sc.Attributes {
		attrs[i] = attributeDoc(a)
	}
	return map[string]any{
		"schemas":     []string{schema.SchemaURN},
		"id":          sc.ID,
		"name":        sc.Name,
		"description": sc.Description,
		"attributes":  attrs,
		"meta": map[string]any{
			"resourceType": "Schema",
			"location":     s.cfg.BaseURL + Prefix + "/Schemas/" + sc.ID,
		},
	}
}

func attributeDoc(a *schema.Attribute) map[string]any {
	d := map[string]any{
		"name":        a.Name,
		"type":        a.Type,
		"multiValued": a.MultiValued,
		"description": a.Description,
		"required":    a.Required,
		"caseExact":   a.CaseExact,
		"mutability":  a.Mutability,
		"returned":    a.Returned,
		"uniqueness":  a.Uniqueness,
	}
	if len(a.CanonicalValues) > 0 {
		d["canonicalValues"] = a.CanonicalValues
	}
	if len(a.ReferenceTypes) > 0 {
		d["referenceTypes"] = a.ReferenceTypes
	}
	if len(a.SubAttributes) > 0 {
		subs := make([]any, len(a.SubAttributes))
		for i, sa := range a.SubAttributes {
			subs[i] = attributeDoc(sa)
		}
		d["subAttributes"] = subs
	}
	return d
}

func (s *Server) resourceTypeDoc(rt *schema.ResourceType) map[string]any {
	exts := make([]any, len(rt.Extensions))
	for i, e := range rt.Extensions {
		exts[i] = map[string]any{"schema": e.Schema.ID, "required": e.Required}
	}
	return map[string]any{
		"schemas":          []string{schema.ResourceTypeURN},
		"id":               rt.ID,
		"name":             rt.Name,
		"endpoint":         rt.Endpoint,
		"description":      rt.Description,
		"schema":           rt.Schema.ID,
		"schemaExtensions": exts,
		"meta": map[string]any{
			"resourceType": "ResourceType",
			"location":     s.cfg.BaseURL + Prefix + "/ResourceTypes/" + rt.ID,
		},
	}
}

// listResponse is a ListResponse message (RFC 7644 §3.4.2).
func listResponse(resources []any, total, startIndex int) map[string]any {
	return map[string]any{
		"schemas":      []string{schema.ListResponseURN},
		"totalResults": total,
		"startIndex":   startIndex,
		"itemsPerPage": len(resources),
		"Resources":    resources,
	}
}
