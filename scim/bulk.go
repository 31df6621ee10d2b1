package scim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"gatehouse/scim/filter"
	"gatehouse/scim/patch"
	"gatehouse/scim/schema"
	"gatehouse/store"
)

// bulkState carries the bulkId → id bindings of one /Bulk request.
type bulkState struct {
	ids map[string]string
}

// bulkOp is one operation of a BulkRequest (RFC 7644 §3.7).
type bulkOp struct {
	Method  string          `json:"method"`
	BulkID  string          `json:"bulkId,omitempty"`
	Version string          `json:"version,omitempty"`
	Path    string          `json:"path"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// bulk runs a BulkRequest: operations in order, "bulkId:x" references in
// paths and data replaced by the id the operation with bulkId x created
// (an operation whose reference is not resolved yet waits for a later
// pass, so forward references work; a cycle fails with 409), stopping
// after failOnErrors errors. Each operation counts against the rate limit.
// Each operation's data is parsed as its endpoint parses a body, then the
// endpoint's typed function is called (bulkUser, bulkGroup): one store
// transaction per operation.
func (s *Server) bulk(c *call) error {
	body, err := c.decode()
	if err != nil {
		return err
	}
	if !hasSchema(body, schema.BulkRequestURN) {
		return errorf(http.StatusBadRequest, invalidSyntax, "a bulk request needs schemas [%q]", schema.BulkRequestURN)
	}
	raw, err := json.Marshal(field(body, "Operations"))
	if err != nil {
		return err
	}
	var ops []bulkOp
	if err := json.Unmarshal(raw, &ops); err != nil || len(ops) == 0 {
		return errorf(http.StatusBadRequest, invalidSyntax, "Operations must be a non-empty list of bulk operations")
	}
	if len(ops) > MaxBulkOperations {
		return errorf(http.StatusRequestEntityTooLarge, "", "a bulk request may carry at most %d operations; this one has %d", MaxBulkOperations, len(ops))
	}
	failOnErrors := 0
	if v, ok := field(body, "failOnErrors").(json.Number); ok {
		n, err := strconv.Atoi(v.String())
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, invalidValue, "failOnErrors must be a non-negative integer")
		}
		failOnErrors = n
	}
	st := &bulkState{ids: map[string]string{}}
	results := make([]map[string]any, len(ops))
	errs := 0
	pending := make([]int, len(ops))
	for i := range ops {
		pending[i] = i
	}
	for len(pending) > 0 {
		var waiting []int
		progressed := false
		for _, i := range pending {
			if failOnErrors > 0 && errs >= failOnErrors {
				break
			}
			op := ops[i]
			path, data, ok := st.resolve(op.Path, op.Data)
			if !ok {
				waiting = append(waiting, i)
				continue
			}
			progressed = true
			results[i] = s.bulkRun(c, st, op, path, data)
			if st, _ := strconv.Atoi(results[i]["status"].(string)); st >= 400 {
				errs++
			}
		}
		if !progressed {
			for _, i := range waiting {
				e := errorf(http.StatusConflict, invalidValue, "bulkId reference in operation %d cannot be resolved (unknown bulkId, a cycle, or the operation it names failed)", i)
				results[i] = bulkResult(ops[i], e.Status, "", e.body())
				errs++
			}
			break
		}
		if failOnErrors > 0 && errs >= failOnErrors {
			break
		}
		pending = waiting
	}
	out := make([]any, 0, len(ops))
	for _, r := range results {
		if r != nil {
			out = append(out, r)
		}
	}
	c.writeJSON(http.StatusOK, map[string]any{"schemas": []string{schema.BulkResponseURN}, "Operations": out})
	return nil
}

// field finds a key of a request body, case-insensitively (RFC 7643 §2.1).
func field(m map[string]any, name string) any {
	v, _ := filter.Lookup(m, name)
	return v
}

func hasSchema(body map[string]any, urn string) bool {
	list, _ := field(body, "schemas").([]any)
	for _, v := range list {
		if s, _ := v.(string); strings.EqualFold(s, urn) {
			return true
		}
	}
	return false
}

// resolve replaces bulkId references; ok is false while one names an
// operation that has not succeeded yet.
func (st *bulkState) resolve(path string, data json.RawMessage) (string, json.RawMessage, bool) {
	ok := true
	replace := func(s string) string {
		var b strings.Builder
		for {
			i := strings.Index(s, "bulkId:")
			if i < 0 {
				b.WriteString(s)
				return b.String()
			}
			b.WriteString(s[:i])
			s = s[i+len("bulkId:"):]
			end := strings.IndexAny(s, `"/?`)
			if end < 0 {
				end = len(s)
			}
			id, found := st.ids[s[:end]]
			if !found {
				ok = false
			}
			b.WriteString(id)
			s = s[end:]
		}
	}
	path = replace(path)
	if bytes.Contains(data, []byte("bulkId:")) {
		data = json.RawMessage(replace(string(data)))
	}
	return path, data, ok
}

func bulkResult(op bulkOp, status int, location string, response any) map[string]any {
	r := map[string]any{"method": op.Method, "status": strconv.Itoa(status)}
	if op.BulkID != "" {
		r["bulkId"] = op.BulkID
	}
	if location != "" {
		r["location"] = location
	}
	if response != nil {
		r["response"] = response
	}
	return r
}

// bulkRun serves one operation.
func (s *Server) bulkRun(c *call, st *bulkState, op bulkOp, path string, data json.RawMessage) map[string]any {
	fail := func(err error) map[string]any {
		e := asError(err, c.logger())
		return bulkResult(op, e.Status, "", e.body())
	}
	method := strings.ToUpper(op.Method)
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var rt *resourceType
	switch {
	case len(segs) == 0:
	case strings.EqualFold(segs[0], "Users"):
		rt = users
	case strings.EqualFold(segs[0], "Groups"):
		rt = groups
	}
	supported := false
	switch {
	case rt == nil || len(segs) > 2:
	case len(segs) == 1:
		supported = method == http.MethodPost
	default:
		supported = method == http.MethodPut || method == http.MethodPatch || method == http.MethodDelete
	}
	if !supported {
		return fail(errorf(http.StatusBadRequest, invalidValue, "bulk operation %s %s is not supported: use POST /Users, /Groups or PUT, PATCH, DELETE /Users/{id}, /Groups/{id}", op.Method, op.Path))
	}
	if method == http.MethodPost && op.BulkID == "" {
		return fail(errorf(http.StatusBadRequest, invalidValue, "a bulk POST needs a bulkId"))
	}
	if err := s.limiter.allow(c.org.ID); err != nil {
		return fail(err)
	}
	id := ""
	if len(segs) == 2 {
		id = segs[1]
	}
	var (
		status int
		res    resource
		err    error
	)
	if rt == groups {
		status, res, err = s.bulkGroup(c, op, method, id, data)
	} else {
		status, res, err = bulkUser(c, op, method, id, data)
	}
	if err != nil {
		return fail(err)
	}
	if method == http.MethodPost {
		id = res.id
		st.ids[op.BulkID] = id
	}
	r := bulkResult(op, status, s.location(rt.schema, id), nil)
	if res.etag != "" {
		r["version"] = res.etag
	}
	return r
}

// bulkUser serves one User operation of a Bulk request: its data parsed
// as the User endpoints parse a body, then the same userOps function.
func bulkUser(c *call, op bulkOp, method, id string, data json.RawMessage) (int, resource, error) {
	ctx, u := c.r.Context(), c.users()
	switch method {
	case http.MethodPost, http.MethodPut:
		doc, err := bulkResource(users, data)
		if err != nil {
			return 0, resource{}, err
		}
		if method == http.MethodPut {
			res, err := u.replace(ctx, id, doc, op.Version)
			return http.StatusOK, res, err
		}
		res, err := u.create(ctx, doc)
		return http.StatusCreated, res, err
	case http.MethodPatch:
		ops, err := bulkPatch(data)
		if err != nil {
			return 0, resource{}, err
		}
		res, err := u.patch(ctx, id, ops, op.Version)
		return userKind{}.patchStatus(), res, err
	default: // DELETE
		return http.StatusNoContent, resource{}, u.delete(ctx, id, op.Version)
	}
}

// bulkGroup serves one Group operation of a Bulk request: its data parsed
// as the Group endpoints parse a body, then the same typed function.
func (s *Server) bulkGroup(c *call, op bulkOp, method, id string, data json.RawMessage) (int, resource, error) {
	ctx, org := c.r.Context(), c.org.ID
	var (
		g      store.Group
		err    error
		status int
	)
	switch method {
	case http.MethodPost, http.MethodPut:
		var doc map[string]any
		var in groupInput
		if doc, err = bulkResource(groups, data); err != nil {
			break
		}
		if in, err = parseGroup(doc); err != nil {
			break
		}
		if method == http.MethodPost {
			g, err = s.createGroup(ctx, org, in)
			status = http.StatusCreated
		} else {
			g, err = s.replaceGroup(ctx, org, id, in, op.Version)
			status = http.StatusOK
		}
	case http.MethodPatch:
		var ops []patch.Operation
		if ops, err = bulkPatch(data); err == nil {
			g, err = s.patchGroup(ctx, org, id, ops, op.Version)
			status = groups.kind.patchStatus()
		}
	default: // DELETE
		return http.StatusNoContent, resource{}, s.deleteGroup(ctx, org, id, op.Version)
	}
	if err != nil {
		return 0, resource{}, err
	}
	return status, resource{id: g.ID, etag: entityTag(g.Version, nil)}, nil
}

// bulkResource parses the data of a Bulk POST or PUT as the endpoints
// parse a full resource.
func bulkResource(rt *resourceType, data json.RawMessage) (map[string]any, error) {
	raw, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	return normalizeResource(rt, raw)
}

// bulkPatch parses the data of a Bulk PATCH as the endpoints parse a
// PatchOp.
func bulkPatch(data json.RawMessage) ([]patch.Operation, error) {
	body, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	return patch.Parse(body)
}
