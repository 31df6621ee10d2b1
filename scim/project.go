package scim

import (
	"net/http"
	"strings"

	"gatehouse/scim/filter"
	"gatehouse/scim/schema"
)

// projection is a request's attributes or excludedAttributes parameter
// (RFC 7644 §3.9), resolved against the resource type. The zero value
// returns every default attribute.
type projection struct {
	include bool // attributes= given: only these (and the always-returned)
	paths   []projected
}

type projected struct {
	ext  string // extension URN, "" for core and common attributes
	attr string // schema spelling; "" means the whole extension
	sub  string // schema spelling, or ""
}

// parseProjection reads the two parameters; giving both is an error, as
// is a path that does not parse. Paths naming no attribute are ignored:
// they select or exclude nothing. A value filter in a path
// (attributes=emails[type eq "work"]) selects the whole attribute.
func parseProjection(rt *schema.ResourceType, attributes, excluded string) (projection, error) {
	if attributes != "" && excluded != "" {
		return projection{}, errorf(http.StatusBadRequest, invalidValue, "give attributes or excludedAttributes, not both")
	}
	list, include := excluded, false
	if attributes != "" {
		list, include = attributes, true
	}
	p := projection{include: include}
	if list == "" {
		return p, nil
	}
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		path, err := filter.ParsePath(raw)
		if err != nil {
			return projection{}, errorf(http.StatusBadRequest, invalidValue, "attribute list: %v", err)
		}
		sub := path.Attr.Sub
		if path.Sub != "" {
			sub = path.Sub
		}
		r, ok := rt.Resolve(path.Attr.URN, path.Attr.Name, sub)
		if !ok {
			continue
		}
		pp := projected{}
		if r.Extension != nil {
			pp.ext = r.Extension.ID
		}
		if r.Attr != nil {
			pp.attr = r.Attr.Name
		}
		if r.Sub != nil {
			pp.sub = r.Sub.Name
		}
		p.paths = append(p.paths, pp)
	}
	return p, nil
}

// wants reports whether the projection returns the top-level attribute
// name of the core schema (used to skip loading group members).
func (p projection) wants(name string) bool {
	for _, pp := range p.paths {
		if pp.ext == "" && pp.attr == name {
			return p.include || pp.sub != ""
		}
	}
	return !p.include
}

// all reports whether the projection returns every default attribute,
// leaving the document as it is.
func (p projection) all() bool { return len(p.paths) == 0 && !p.include }

// apply returns doc as the projection shows it. doc is not modified;
// unchanged parts are shared.
func (p projection) apply(doc map[string]any) map[string]any {
	if p.all() {
		return doc
	}
	if !p.include {
		out := shallowCopy(doc)
		for _, pp := range p.paths {
			exclude(out, pp)
		}
		return out
	}
	out := map[string]any{}
	for _, k := range []string{"schemas", "id"} { // returned: always
		if v, ok := doc[k]; ok {
			out[k] = v
		}
	}
	for _, pp := range p.paths {
		include(out, doc, pp)
	}
	return out
}

func shallowCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// container returns the map holding pp's attribute: doc itself, or the
// extension's object inside it.
func container(doc map[string]any, ext string) map[string]any {
	if ext == "" {
		return doc
	}
	m, _ := decoded(doc[ext]).(map[string]any)
	return m
}

func exclude(out map[string]any, pp projected) {
	if pp.attr == "id" && pp.ext == "" {
		return // returned: always
	}
	if pp.attr == "" {
		delete(out, pp.ext)
		return
	}
	if pp.ext != "" {
		m, _ := decoded(out[pp.ext]).(map[string]any)
		if m == nil {
			return
		}
		m = shallowCopy(m)
		out[pp.ext] = m
		out = m
	}
	if pp.sub == "" {
		delete(out, pp.attr)
		return
	}
	switch v := decoded(out[pp.attr]).(type) {
	case map[string]any:
		c := shallowCopy(v)
		delete(c, pp.sub)
		out[pp.attr] = c
	case []any:
		list := make([]any, len(v))
		for i, e := range v {
			if m, ok := e.(map[string]any); ok {
				c := shallowCopy(m)
				delete(c, pp.sub)
				e = c
			}
			list[i] = e
		}
		out[pp.attr] = list
	}
}

func include(out, doc map[string]any, pp projected) {
	src := container(doc, pp.ext)
	if src == nil {
		return
	}
	if pp.attr == "" {
		out[pp.ext] = src
		return
	}
	dst := out
	if pp.ext != "" {
		m, _ := out[pp.ext].(map[string]any)
		if m == nil {
			m = map[string]any{}
			out[pp.ext] = m
		}
		dst = m
	}
	v, ok := src[pp.attr]
	if !ok {
		return
	}
	if pp.sub == "" {
		dst[pp.attr] = v
		return
	}
	switch v := decoded(v).(type) {
	case map[string]any:
		m, _ := dst[pp.attr].(map[string]any)
		if m == nil {
			m = map[string]any{}
			dst[pp.attr] = m
		}
		if sv, ok := v[pp.sub]; ok {
			m[pp.sub] = sv
		}
	case []any:
		// Several subs of one multi-valued attribute: keep the elements
		// aligned by index.
		prev, _ := dst[pp.attr].([]any)
		list := make([]any, len(v))
		for i, e := range v {
			m := map[string]any{}
			if i < len(prev) {
				if pm, ok := prev[i].(map[string]any); ok {
					m = pm
				}
			}
			if em, ok := e.(map[string]any); ok {
				if sv, ok := em[pp.sub]; ok {
					m[pp.sub] = sv
				}
			}
			list[i] = m
		}
		dst[pp.attr] = list
	}
}
