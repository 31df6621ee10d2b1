package scim

import (
	"crypto/sha256"
	"encoding/base64"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"gatehouse/scim/filter"
	"gatehouse/scim/patch"
	"gatehouse/scim/schema"
	"gatehouse/store"
)

// resource is one SCIM resource and its version (the ETag): a Group as
// its rendered document, a User as the administrator it is rendered from
// when the response is written (see show).
type resource struct {
	id   string
	etag string // the entity tag of the representation: entityTag
	doc  map[string]any
	user *userSource
}

// userSource is what a User resource is rendered from.
type userSource struct {
	a      store.Administrator
	groups []store.GroupRef
}

// show is what a response shows of res with projection p. A User without
// a projection is encoded at once, without its map document.
func (c *call) show(res resource, p projection) (any, error) {
	if res.user == nil {
		return p.apply(res.doc), nil
	}
	if p.all() {
		b, err := c.appendUser(make([]byte, 0, 1024), res.user.a, res.user.groups)
		return encodedJSON(b), err
	}
	doc, err := c.renderUser(res.user.a, res.user.groups, false)
	return p.apply(doc), err
}

// kind is what differs between Users and Groups; resourceType turns it
// into the HTTP endpoints. ifMatch is the request's If-Match header ("" for
// none), checked inside the write's transaction.
type kind interface {
	get(c *call, id string, p projection) (resource, error)
	query(c *call, q store.Query, p projection) ([]resource, int, string, error)
	create(c *call, doc map[string]any) (resource, error)
	replace(c *call, id string, doc map[string]any, ifMatch string) (resource, error)
	patch(c *call, id string, ops []patch.Operation, ifMatch string) (resource, error)
	delete(c *call, id string, ifMatch string) error
	// field maps a filter or sortBy attribute to what the store compares.
	field(r schema.Resolved) (mapping, bool)
	// patchStatus is the success status of PATCH when the client asked for
	// no attributes: 200 with the resource, or 204.
	patchStatus() int
}

type resourceType struct {
	schema *schema.ResourceType
	kind   kind
	common commonColumns // the store's fields of the attributes every resource has
}

var (
	users = &resourceType{schema: schema.Users, kind: userKind{}, common: commonColumns{
		id: store.AdministratorID, externalID: store.AdministratorExternalID,
		created: store.AdministratorCreatedAt, lastModified: store.AdministratorUpdatedAt}}
	groups = &resourceType{schema: schema.Groups, kind: groupKind{}, common: commonColumns{
		id: store.GroupID, externalID: store.GroupExternalID,
		created: store.GroupCreatedAt, lastModified: store.GroupUpdatedAt}}
)

func (s *Server) location(rt *schema.ResourceType, id string) string {
	return s.cfg.BaseURL + Prefix + rt.Endpoint + "/" + id
}

// entityTag is the entity tag (and meta.version) of a record's
// representation: its version, which every change of the record raises,
// and, for a User shown with its groups, a hash of those groups (ids and
// display names). Group changes do not write the members' rows (adding one
// member to a group of 10,000 writes one membership row), so the hash is
// what makes a User's tag change when only its groups do: If-None-Match
// must not answer 304 for a representation whose groups differ. Weak,
// because the representation depends on the projection asked for (RFC
// 7232 §2.1).
func entityTag(version int64, groups []store.GroupRef) string {
	b := make([]byte, 0, 32)
	b = append(b, `W/"`...)
	b = strconv.AppendInt(b, version, 10)
	if len(groups) > 0 {
		h := fnv.New64a()
		for _, g := range groups {
			h.Write([]byte(g.ID))
			h.Write([]byte{0})
			h.Write([]byte(g.DisplayName))
			h.Write([]byte{0})
		}
		b = append(b, '.')
		b = strconv.AppendUint(b, h.Sum64(), 36)
	}
	return string(append(b, '"'))
}

// etagListed reports whether an If-None-Match header value lists tag, by
// weak comparison (RFC 7232 §2.3.2).
func etagListed(header, tag string) bool {
	want := strings.TrimPrefix(tag, "W/")
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == want {
			return true
		}
	}
	return false
}

// etagMatches reports whether an If-Match header value names version.
// For a User it compares the version alone, not the hash of its groups:
// groups is readOnly (RFC 7643 §4.1.2), changed only through Groups, so a
// membership change since the client's read cannot be lost by its write.
func etagMatches(header string, version int64) bool {
	want := strconv.FormatInt(version, 10)
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		t = strings.Trim(strings.TrimPrefix(t, "W/"), `"`)
		if v, _, _ := strings.Cut(t, "."); v == want {
			return true
		}
	}
	return false
}

// checkIfMatch is called by kinds inside their write transaction.
func checkIfMatch(ifMatch string, version int64) error {
	if ifMatch != "" && !etagMatches(ifMatch, version) {
		return errPrecondition
	}
	return nil
}

func (c *call) projection(rt *resourceType) (projection, error) {
	q := c.r.URL.Query()
	return parseProjection(rt.schema, q.Get("attributes"), q.Get("excludedAttributes"))
}

// writeResource answers with one resource, its ETag and, for 201, its
// Location.
func (c *call) writeResource(rt *resourceType, status int, res resource, p projection) error {
	v, err := c.show(res, p)
	if err != nil {
		return err
	}
	h := c.w.Header()
	h.Set("ETag", res.etag)
	if status == http.StatusCreated {
		h.Set("Location", c.s.location(rt.schema, res.id))
	}
	c.writeJSON(status, v)
	return nil
}

func (rt *resourceType) get(c *call) error {
	p, err := c.projection(rt)
	if err != nil {
		return err
	}
	res, err := rt.kind.get(c, c.r.PathValue("id"), p)
	if err != nil {
		return err
	}
	if inm := c.r.Header.Get("If-None-Match"); inm != "" && etagListed(inm, res.etag) {
		c.w.Header().Set("ETag", res.etag)
		c.writeHeader(http.StatusNotModified)
		return nil
	}
	return c.writeResource(rt, http.StatusOK, res, p)
}

func (rt *resourceType) create(c *call) error {
	return rt.write(c, http.StatusCreated, func(doc map[string]any) (resource, error) { return rt.kind.create(c, doc) })
}

func (rt *resourceType) replace(c *call) error {
	return rt.write(c, http.StatusOK, func(doc map[string]any) (resource, error) {
		return rt.kind.replace(c, c.r.PathValue("id"), doc, c.r.Header.Get("If-Match"))
	})
}

// write serves POST and PUT: a full resource in, the result out with the
// projection asked for.
func (rt *resourceType) write(c *call, status int, apply func(doc map[string]any) (resource, error)) error {
	p, err := c.projection(rt)
	if err != nil {
		return err
	}
	doc, err := c.resourceBody(rt)
	if err != nil {
		return err
	}
	res, err := apply(doc)
	if err != nil {
		return err
	}
	return c.writeResource(rt, status, res, p)
}

// resourceBody decodes and normalizes a full resource (POST, PUT).
func (c *call) resourceBody(rt *resourceType) (map[string]any, error) {
	raw, err := c.decode()
	if err != nil {
		return nil, err
	}
	return normalizeResource(rt, raw)
}

// normalizeResource normalizes a decoded full resource and checks that it
// has its required attributes.
func normalizeResource(rt *resourceType, raw map[string]any) (map[string]any, error) {
	doc, err := schema.Normalize(rt.schema, raw)
	if err != nil {
		return nil, err
	}
	if err := schema.CheckRequired(rt.schema, doc); err != nil {
		return nil, err
	}
	return doc, nil
}

func (rt *resourceType) patch(c *call) error {
	p, err := c.projection(rt)
	if err != nil {
		return err
	}
	body, err := c.decode()
	if err != nil {
		return err
	}
	ops, err := patch.Parse(body)
	if err != nil {
		return err
	}
	res, err := rt.kind.patch(c, c.r.PathValue("id"), ops, c.r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	// RFC 7644 §3.5.2: 200 with the resource is required when the client
	// asked for attributes; otherwise the resource type decides.
	if q.Get("attributes") == "" && q.Get("excludedAttributes") == "" && rt.kind.patchStatus() == http.StatusNoContent {
		c.w.Header().Set("ETag", res.etag)
		c.writeHeader(http.StatusNoContent)
		return nil
	}
	return c.writeResource(rt, http.StatusOK, res, p)
}

func (rt *resourceType) delete(c *call) error {
	if err := rt.kind.delete(c, c.r.PathValue("id"), c.r.Header.Get("If-Match")); err != nil {
		return err
	}
	c.writeHeader(http.StatusNoContent)
	return nil
}

// listParams are a list's query parameters (RFC 7644 §3.4.2), from the
// URL or from a SearchRequest body.
type listParams struct {
	filter, sortBy, sortOrder string
	attributes, excluded      string
	startIndex, count         int
	// cursor is RFC 9865's cursor parameter when the client sent one
	// (cursored; an empty cursor asks for the first page).
	cursor          string
	cursored, index bool // index: startIndex was given
}

func (c *call) urlListParams() (listParams, error) {
	q := c.r.URL.Query()
	lp := listParams{
		filter: q.Get("filter"), sortBy: q.Get("sortBy"), sortOrder: q.Get("sortOrder"),
		attributes: q.Get("attributes"), excluded: q.Get("excludedAttributes"),
		startIndex: 1, count: defaultCount,
	}
	var err error
	lp.cursor, lp.cursored = q.Get("cursor"), q.Has("cursor")
	lp.index = q.Has("startIndex")
	if v := q.Get("startIndex"); v != "" {
		if lp.startIndex, err = strconv.Atoi(v); err != nil {
			return lp, errorf(http.StatusBadRequest, invalidValue, "startIndex must be an integer")
		}
	}
	if v := q.Get("count"); v != "" {
		if lp.count, err = strconv.Atoi(v); err != nil {
			return lp, errorf(http.StatusBadRequest, invalidValue, "count must be an integer")
		}
	}
	return lp, nil
}

// defaultCount is the page size when the client gives none.
const defaultCount = 100

// normalize applies RFC 7644 §3.4.2.4: a startIndex below 1 is 1, a
// negative count is 0, and a count above MaxResults is clamped.
func (lp *listParams) normalize() {
	lp.startIndex = max(lp.startIndex, 1)
	lp.count = min(max(lp.count, 0), MaxResults)
}

func (rt *resourceType) list(c *call) error {
	lp, err := c.urlListParams()
	if err != nil {
		return err
	}
	return rt.serveList(c, lp)
}

func (rt *resourceType) search(c *call) error {
	lp, err := c.searchParams()
	if err != nil {
		return err
	}
	return rt.serveList(c, lp)
}

func (rt *resourceType) serveList(c *call, lp listParams) error {
	lp.normalize()
	p, err := parseProjection(rt.schema, lp.attributes, lp.excluded)
	if err != nil {
		return err
	}
	q, err := rt.storeQuery(lp)
	if err != nil {
		return err
	}
	if lp.cursored {
		return rt.serveCursorList(c, lp, q, p)
	}
	key := c.s.pages.key(c.org.ID, rt.schema.ID, lp)
	if q.SortBy.IsZero() {
		q.After = c.s.pages.get(key, lp.startIndex)
	}
	list, total, next, err := rt.kind.query(c, q, p)
	if err != nil {
		return err
	}
	if next != "" {
		c.s.pages.put(key, lp.startIndex+len(list), next)
	}
	out := make([]any, len(list))
	for i, res := range list {
		if out[i], err = c.show(res, p); err != nil {
			return err
		}
	}
	c.writeJSON(http.StatusOK, listResponse(out, total, lp.startIndex))
	return nil
}

// serveCursorList answers a list with RFC 9865 cursor pagination: a page
// of the records after the cursor's in creation order, whatever was
// written since, and nextCursor while the page is full.
func (rt *resourceType) serveCursorList(c *call, lp listParams, q store.Query, p projection) error {
	switch {
	case lp.index:
		return errorf(http.StatusBadRequest, invalidValue, "startIndex and cursor cannot be used together")
	case !q.SortBy.IsZero():
		return errorf(http.StatusBadRequest, invalidValue, "cursor pagination lists in creation order; sortBy cannot be used with it")
	}
	binding := cursorBinding(c.org.ID, rt.schema.ID, lp)
	q.Seek, q.Page.Offset = true, 0
	if lp.cursor != "" {
		after, ok := openCursor(lp.cursor, binding)
		if !ok {
			return errorf(http.StatusBadRequest, invalidCursor, "the cursor is not one this list gave")
		}
		q.After = after
	}
	list, total, next, err := rt.kind.query(c, q, p)
	if err != nil {
		return err
	}
	out := make([]any, len(list))
	for i, res := range list {
		if out[i], err = c.show(res, p); err != nil {
			return err
		}
	}
	body := listResponse(out, total, 0)
	delete(body, "startIndex")
	if next != "" {
		body["nextCursor"] = next + "~" + binding
	}
	c.writeJSON(http.StatusOK, body)
	return nil
}

// cursorBinding ties a cursor to the list that gave it (organization,
// resource type, filter, order), so it is not read as a position in
// another list: a cursor is the store's Next, "~", and this.
func cursorBinding(org, rt string, lp listParams) string {
	sum := sha256.Sum256([]byte(org + "\x00" + rt + "\x00" + lp.filter + "\x00" + strings.ToLower(lp.sortOrder)))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// openCursor returns the store cursor of a client's cursor given by the
// list bound to binding.
func openCursor(cursor, binding string) (string, bool) {
	after, b, ok := strings.Cut(cursor, "~")
	return after, ok && b == binding && after != ""
}

// storeQuery translates the list parameters into a store query.
func (rt *resourceType) storeQuery(lp listParams) (store.Query, error) {
	q := store.Query{Page: store.Page{Offset: lp.startIndex - 1, Limit: lp.count}}
	if lp.filter != "" {
		e, err := filter.Parse(lp.filter)
		if err != nil {
			return q, err
		}
		if q.Where, err = rt.predicate(e); err != nil {
			return q, err
		}
	}
	if lp.sortBy != "" {
		if f, fold, ok := rt.sortField(lp.sortBy); ok {
			q.SortBy, q.SortFold = f, fold
		}
	}
	switch strings.ToLower(lp.sortOrder) {
	case "", "ascending":
	case "descending":
		q.Descending = true
	default:
		return q, errorf(http.StatusBadRequest, invalidValue, "sortOrder must be ascending or descending")
	}
	return q, nil
}

// pageCursors remembers, for a list an IdP is paging through, the Next of
// the page that ended where a later page starts, so that page 10,000 of
// 1M users is a seek on the creation sequence instead of skipping 999,900
// rows. The store uses it only while nothing has shifted the positions
// since (store.Query.After): the page is always the one startIndex gives
// at that moment, whichever instance remembered the cursor or serves the
// page. A miss (another instance served the previous page, or the entry
// was evicted) reads by the offset.
type pageCursors struct {
	mu  sync.Mutex
	max int
	m   map[string]string
}

func newPageCursors(n int) *pageCursors { return &pageCursors{max: n, m: map[string]string{}} }

func (pc *pageCursors) key(org, rt string, lp listParams) string {
	return org + "\x00" + rt + "\x00" + lp.filter + "\x00" + strings.ToLower(lp.sortOrder)
}

func (pc *pageCursors) get(key string, startIndex int) string {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.m[key+"\x00"+strconv.Itoa(startIndex)]
}

func (pc *pageCursors) put(key string, startIndex int, cursor string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if len(pc.m) >= pc.max {
		for k := range pc.m { // drop an arbitrary entry
			delete(pc.m, k)
			break
		}
	}
	pc.m[key+"\x00"+strconv.Itoa(startIndex)] = cursor
}
