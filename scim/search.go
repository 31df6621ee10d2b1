package scim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"gatehouse/scim/schema"
)

// searchParams reads a SearchRequest body (RFC 7644 §3.4.3).
func (c *call) searchParams() (listParams, error) {
	body, err := c.decode()
	if err != nil {
		return listParams{}, err
	}
	if !hasSchema(body, schema.SearchRequestURN) {
		return listParams{}, errorf(http.StatusBadRequest, invalidSyntax, "a search request needs schemas [%q]", schema.SearchRequestURN)
	}
	lp := listParams{startIndex: 1, count: defaultCount}
	str := func(name string) (string, error) {
		switch v := field(body, name).(type) {
		case nil:
			return "", nil
		case string:
			return v, nil
		}
		return "", errorf(http.StatusBadRequest, invalidValue, "%s must be a string", name)
	}
	list := func(name string) (string, error) {
		switch v := field(body, name).(type) {
		case nil:
			return "", nil
		case string:
			return v, nil
		case []any:
			parts := make([]string, len(v))
			for i, e := range v {
				s, ok := e.(string)
				if !ok {
					return "", errorf(http.StatusBadRequest, invalidValue, "%s must be a list of attribute names", name)
				}
				parts[i] = s
			}
			return strings.Join(parts, ","), nil
		}
		return "", errorf(http.StatusBadRequest, invalidValue, "%s must be a list of attribute names", name)
	}
	integer := func(name string, dst *int) error {
		switch v := field(body, name).(type) {
		case nil:
			return nil
		case json.Number:
			n, err := strconv.Atoi(v.String())
			if err != nil {
				return errorf(http.StatusBadRequest, invalidValue, "%s must be an integer", name)
			}
			*dst = n
			return nil
		}
		return errorf(http.StatusBadRequest, invalidValue, "%s must be an integer", name)
	}
	for _, f := range []struct {
		name string
		dst  *string
		get  func(string) (string, error)
	}{
		{"filter", &lp.filter, str}, {"sortBy", &lp.sortBy, str}, {"sortOrder", &lp.sortOrder, str},
		{"attributes", &lp.attributes, list}, {"excludedAttributes", &lp.excluded, list},
	} {
		if *f.dst, err = f.get(f.name); err != nil {
			return lp, err
		}
	}
	if err := integer("startIndex", &lp.startIndex); err != nil {
		return lp, err
	}
	lp.index = field(body, "startIndex") != nil
	if v := field(body, "cursor"); v != nil {
		if lp.cursor, err = str("cursor"); err != nil {
			return lp, err
		}
		lp.cursored = true
	}
	if err := integer("count", &lp.count); err != nil {
		return lp, err
	}
	return lp, nil
}

// searchAll is POST /.search at the root (RFC 7644 §3.4.3): Users, then
// Groups, as one list. Each resource type gets the same filter; an
// attribute one type lacks matches none of its resources.
func (s *Server) searchAll(c *call) error {
	lp, err := c.searchParams()
	if err != nil {
		return err
	}
	if lp.cursored {
		return errorf(http.StatusBadRequest, invalidValue, "a search of every resource type pages by startIndex; cursor is supported on /Users and /Groups")
	}
	lp.normalize()
	var out []any
	total := 0
	offset, limit := lp.startIndex-1, lp.count
	for _, rt := range []*resourceType{users, groups} {
		p, err := parseProjection(rt.schema, lp.attributes, lp.excluded)
		if err != nil {
			return err
		}
		q, err := rt.storeQuery(lp)
		if err != nil {
			return err
		}
		q.Page.Offset, q.Page.Limit = max(offset-total, 0), limit-len(out)
		list, n, _, err := rt.kind.query(c, q, p)
		if err != nil {
			return err
		}
		for _, res := range list {
			v, err := c.show(res, p)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		total += n
	}
	if out == nil {
		out = []any{}
	}
	c.writeJSON(http.StatusOK, listResponse(out, total, lp.startIndex))
	return nil
}
