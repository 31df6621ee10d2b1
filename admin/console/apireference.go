package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"gatehouse/admin/api"
)

// The API reference: the management API's OpenAPI document (the one
// /api/v1/openapi.json serves, embedded in package api) read once and
// shown as a page, grouped by the first segment of the path, each
// operation with its method, path, summary, parameters, request body
// fields and responses. No script renders it and nothing comes from a
// CDN.

// apiReference is the document as the page shows it.
type apiReference struct {
	Title, Description, Base string
	Groups                   []apiGroup
	// Schemas are the named schemas of the responses, each shown once
	// (the responses link to them): written out at every operation they
	// made the page weigh more than 100 KB.
	Schemas []*apiSchema
}

type apiGroup struct {
	ID, Name   string
	Operations []apiOperation
}

type apiOperation struct {
	ID, Method, Path, Summary string
	Public                    bool // needs no credentials
	Parameters                []apiField
	Body                      *apiSchema
	Responses                 []apiResponse
}

type apiField struct {
	Name, In, Type, Description string
	Required                    bool
}

type apiSchema struct {
	Name, Type string
	Fields     []apiField
}

type apiResponse struct {
	Status, Description string
	Schema              *apiSchema
}

// OpenAPI 3.1, the parts the page shows.
type oaDocument struct {
	Info struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	} `json:"info"`
	Servers    []struct{ URL string } `json:"servers"`
	Paths      json.RawMessage        `json:"paths"`
	Components struct {
		Schemas   map[string]*oaSchema   `json:"schemas"`
		Responses map[string]*oaResponse `json:"responses"`
	} `json:"components"`
}

type oaOperation struct {
	Summary     string                 `json:"summary"`
	Parameters  []oaParameter          `json:"parameters"`
	RequestBody *oaBody                `json:"requestBody"`
	Responses   map[string]*oaResponse `json:"responses"`
	Security    *[]json.RawMessage     `json:"security"`
}

type oaParameter struct {
	Name        string    `json:"name"`
	In          string    `json:"in"`
	Required    bool      `json:"required"`
	Description string    `json:"description"`
	Schema      *oaSchema `json:"schema"`
}

type oaBody struct {
	Required bool                   `json:"required"`
	Content  map[string]oaMediaType `json:"content"`
}

type oaMediaType struct {
	Schema *oaSchema `json:"schema"`
}

type oaResponse struct {
	Ref         string                 `json:"$ref"`
	Description string                 `json:"description"`
	Content     map[string]oaMediaType `json:"content"`
}

type oaSchema struct {
	Ref         string               `json:"$ref"`
	Type        any                  `json:"type"` // a name or a list of names (3.1)
	Format      string               `json:"format"`
	Description string               `json:"description"`
	Enum        []any                `json:"enum"`
	Items       *oaSchema            `json:"items"`
	Properties  map[string]*oaSchema `json:"properties"`
	Required    []string             `json:"required"`
	OneOf       []*oaSchema          `json:"oneOf"`
	AnyOf       []*oaSchema          `json:"anyOf"`
}

// methods in the order the page lists them.
var methods = []string{"get", "post", "put", "patch", "delete"}

// groupNames name the groups by the first segment of their paths.
var groupNames = map[string]string{
	"openapi.json": msg("The API's description"), "me": msg("Your own account"), "session": msg("Signing in and out"),
	"activation": msg("Account activation"), "password-reset": msg("Password reset links"), "organization": msg("Organization"),
	"administrators": msg("Administrators"), "scim": msg("SCIM tokens"), "api-keys": msg("API keys"), "audit": msg("Audit log"),
	"sso": msg("SSO connections"), "oidc-clients": msg("Applications (OpenID Connect clients)"),
}

// reference is the management API's document, read once: a document
// that does not parse stops the program at its start, and a test.
var reference = func() *apiReference {
	ref, err := parseAPIReference(api.OpenAPIDocument())
	if err != nil {
		panic(err)
	}
	return ref
}()

// parseAPIReference reads an OpenAPI document, keeping the order of its
// paths.
func parseAPIReference(doc []byte) (*apiReference, error) {
	var d oaDocument
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("console: API reference: %w", err)
	}
	ref := &apiReference{Title: d.Info.Title, Description: d.Info.Description, Base: api.Prefix}
	if len(d.Servers) > 0 {
		ref.Base = d.Servers[0].URL
	}
	paths, err := orderedKeys(d.Paths)
	if err != nil {
		return nil, fmt.Errorf("console: API reference: paths: %w", err)
	}
	var items map[string]map[string]json.RawMessage
	if err := json.Unmarshal(d.Paths, &items); err != nil {
		return nil, fmt.Errorf("console: API reference: paths: %w", err)
	}
	byGroup, order := map[string]*apiGroup{}, []string{}
	for _, path := range paths {
		item := items[path]
		var shared []oaParameter
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				return nil, fmt.Errorf("console: API reference: %s: %w", path, err)
			}
		}
		seg := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 2)[0]
		g := byGroup[seg]
		if g == nil {
			name := groupNames[seg]
			if name == "" {
				name = seg
			}
			g = &apiGroup{ID: "group-" + anchor(seg), Name: name}
			byGroup[seg], order = g, append(order, seg)
		}
		for _, m := range methods {
			raw, ok := item[m]
			if !ok {
				continue
			}
			var op oaOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("console: API reference: %s %s: %w", m, path, err)
			}
			g.Operations = append(g.Operations, d.operation(strings.ToUpper(m), path, op, shared))
		}
	}
	named := map[string]*apiSchema{}
	for _, seg := range order {
		g := byGroup[seg]
		ref.Groups = append(ref.Groups, *g)
		for _, o := range g.Operations {
			for _, r := range o.Responses {
				if s := r.Schema; s != nil && s.Name != "" && len(s.Fields) > 0 && named[s.Name] == nil {
					named[s.Name] = s
					ref.Schemas = append(ref.Schemas, s)
				}
			}
		}
	}
	sort.Slice(ref.Schemas, func(i, j int) bool { return ref.Schemas[i].Name < ref.Schemas[j].Name })
	return ref, nil
}

func (d *oaDocument) operation(method, path string, op oaOperation, shared []oaParameter) apiOperation {
	o := apiOperation{ID: anchor(method + path), Method: method, Path: path, Summary: op.Summary,
		Public: op.Security != nil && len(*op.Security) == 0}
	for _, p := range append(append([]oaParameter{}, shared...), op.Parameters...) {
		o.Parameters = append(o.Parameters, apiField{Name: p.Name, In: p.In, Type: d.typeOf(p.Schema),
			Description: p.Description, Required: p.Required})
	}
	if op.RequestBody != nil {
		if mt, ok := op.RequestBody.Content["application/json"]; ok {
			o.Body = d.schema(mt.Schema)
		}
	}
	codes := make([]string, 0, len(op.Responses))
	for code := range op.Responses {
		codes = append(codes, code)
	}
	sort.Strings(codes) // 2xx, 4xx..., then "default"
	for _, code := range codes {
		r := op.Responses[code]
		if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok && d.Components.Responses[name] != nil {
			r = d.Components.Responses[name]
		}
		resp := apiResponse{Status: code, Description: r.Description}
		for _, mt := range r.Content {
			resp.Schema = d.schema(mt.Schema)
			break
		}
		if code == "default" {
			resp.Status = "4xx/5xx"
		}
		o.Responses = append(o.Responses, resp)
	}
	return o
}

// schema is s with its fields (a referenced schema's, one level deep).
func (d *oaDocument) schema(s *oaSchema) *apiSchema {
	if s == nil {
		return nil
	}
	out := &apiSchema{Type: d.typeOf(s)}
	if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
		out.Name = name
		s = d.Components.Schemas[name]
		if s == nil {
			return out
		}
	}
	if s.Items != nil && len(s.Properties) == 0 {
		// A list: show the fields of its items.
		if inner := d.schema(s.Items); inner != nil && len(inner.Fields) > 0 {
			out.Fields = inner.Fields
		}
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := s.Properties[n]
		out.Fields = append(out.Fields, apiField{Name: n, Type: d.typeOf(p), Description: p.Description,
			Required: contains(s.Required, n)})
	}
	return out
}

// typeOf is a schema's type as a reader wants it: "string", "integer",
// "Administrator", "list of AuditEntry", "one of: a, b".
func (d *oaDocument) typeOf(s *oaSchema) string {
	if s == nil {
		return ""
	}
	if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
		if t := d.Components.Schemas[name]; t != nil && len(t.Enum) > 0 {
			return d.typeOf(t)
		}
		return name
	}
	if len(s.Enum) > 0 {
		vals := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			vals[i] = fmt.Sprint(v)
		}
		return "one of: " + strings.Join(vals, ", ")
	}
	var alts []*oaSchema
	alts = append(append(alts, s.OneOf...), s.AnyOf...)
	if len(alts) > 0 {
		ts := make([]string, len(alts))
		for i, a := range alts {
			ts[i] = d.typeOf(a)
		}
		return strings.Join(ts, " or ")
	}
	var t string
	switch v := s.Type.(type) {
	case string:
		t = v
	case []any:
		ts := make([]string, 0, len(v))
		for _, x := range v {
			ts = append(ts, fmt.Sprint(x))
		}
		t = strings.Join(ts, " or ")
	}
	if t == "array" && s.Items != nil {
		return "list of " + d.typeOf(s.Items)
	}
	if s.Format != "" {
		t += " (" + s.Format + ")"
	}
	return t
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// orderedKeys are the keys of a JSON object in the order written.
func orderedKeys(obj json.RawMessage) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not an object")
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// anchor is s as an element id: letters, digits and hyphens.
func anchor(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

func (c *Console) apiReference(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "apireference", &page{Title: msg("API reference"), Me: &me, Org: &org, Nav: "preferences",
		Tab: "api", Data: reference})
}
