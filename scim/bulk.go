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
// A Group operation calls the same function as the Group endpoint, each
// one store transaction (see bulkGroup); a User operation is served by the
// User endpoint's handler through a synthetic request.
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
	var h handler
	switch {
	case rt == nil || len(segs) > 2:
	case len(segs) == 1 && method == http.MethodPost:
		h = rt.create
	case len(segs) == 2 && method == http.MethodPut:
		h = rt.replace
	case len(segs) == 2 && method == http.MethodPatch:
		h = rt.patch
	case len(segs) == 2 && method == http.MethodDelete:
		h = rt.delete
	}
	if h == nil {
		return fail(errorf(http.StatusBadRequest, invalidValue, "bulk operation %s %s is not supported: use POST /Users, /Groups or PUT, PATCH, DELETE /Users/{id}, /Groups/{id}", op.Method, op.Path))
	}
	if method == http.MethodPost && op.BulkID == "" {
		return fail(errorf(http.StatusBadRequest, invalidValue, "a bulk POST needs a bulkId"))
	}
	if err := s.limiter.allow(c.org.ID); err != nil {
		return fail(err)
	}
	if rt == groups {
		return s.bulkGroup(st, c, op, method, segs, data)
	}
	// Users: served through the HTTP handler with a synthetic request.
	r, err := http.NewRequestWithContext(c.r.Context(), method, Prefix+"/"+strings.Join(segs, "/"), bytes.NewReader(data))
	if err != nil {
		return fail(errorf(http.StatusBadRequest, invalidValue, "bulk operation path %q is not valid", op.Path))
	}
	r.Header.Set("Content-Type", "application/scim+json")
	if op.Version != "" {
		r.Header.Set("If-Match", op.Version)
	}
	if len(segs) == 2 {
		r.SetPathValue("id", segs[1])
	}
	rec := &recorder{header: http.Header{}}
	sub := &call{s: s, w: rec, r: r, org: c.org, entry: c.entry, log: c.logger()}
	if err := h(sub); err != nil {
		sub.fail(err)
	}
	location := rec.header.Get("Location")
	if method == http.MethodPost && rec.status == http.StatusCreated {
		var created struct{ ID string }
		if err := json.Unmarshal(rec.body.Bytes(), &created); err != nil || created.ID == "" {
			// Later references to op.BulkID stay unresolved (409), rather
			// than naming an empty id.
			c.logger().Error("scim: bulk: the created resource has no id", "bulkId", op.BulkID, "err", err)
		} else {
			st.ids[op.BulkID] = created.ID
		}
	}
	if location == "" && len(segs) == 2 && rec.status < 300 {
		location = s.location(rt.schema, segs[1])
	}
	res := bulkResult(op, rec.status, location, nil)
	if v := rec.header.Get("ETag"); v != "" {
		res["version"] = v
	}
	if rec.status >= 400 {
		var body any
		json.Unmarshal(rec.body.Bytes(), &body)
		res["response"] = body
	}
	return res
}

// bulkGroup serves one Group operation of a Bulk request: its data parsed
// as the Group endpoints parse a body, then the same typed function.
func (s *Server) bulkGroup(st *bulkState, c *call, op bulkOp, method string, segs []string, data json.RawMessage) map[string]any {
	ctx, org := c.r.Context(), c.org.ID
	id := ""
	if len(segs) == 2 {
		id = segs[1]
	}
	var (
		g      store.Group
		err    error
		status int
	)
	switch method {
	case http.MethodPost, http.MethodPut:
		var in groupInput
		if in, err = bulkGroupInput(data); err != nil {
			break
		}
		if method == http.MethodPost {
			g, err = s.createGroup(ctx, org, in)
			status, id = http.StatusCreated, g.ID
		} else {
			g, err = s.replaceGroup(ctx, org, id, in, op.Version)
			status = http.StatusOK
		}
	case http.MethodPatch:
		var body map[string]any
		var ops []patch.Operation
		if body, err = decodeJSON(data); err == nil {
			if ops, err = patch.Parse(body); err == nil {
				g, err = s.patchGroup(ctx, org, id, ops, op.Version)
				status = groups.kind.patchStatus()
			}
		}
	case http.MethodDelete:
		err = s.deleteGroup(ctx, org, id, op.Version)
		status = http.StatusNoContent
	}
	if err != nil {
		e := asError(err, c.logger())
		return bulkResult(op, e.Status, "", e.body())
	}
	res := bulkResult(op, status, s.location(schema.Groups, id), nil)
	if method != http.MethodDelete {
		res["version"] = entityTag(g.Version, nil)
	}
	if method == http.MethodPost {
		st.ids[op.BulkID] = g.ID
	}
	return res
}

// bulkGroupInput parses the data of a Bulk POST or PUT of a Group.
func bulkGroupInput(data json.RawMessage) (groupInput, error) {
	raw, err := decodeJSON(data)
	if err != nil {
		return groupInput{}, err
	}
	doc, err := normalizeResource(groups, raw)
	if err != nil {
		return groupInput{}, err
	}
	return parseGroup(doc)
}

// recorder keeps the answer of one bulk operation.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
