// Package scim is gatehouse's SCIM 2.0 service provider (RFC 7643, RFC 7644):
// Users are the organization's administrators, Groups are groups of them.
// The bearer token names the organization. Schemas are data (scim/schema),
// filters are parsed to an AST (scim/filter) and run as SQL by the store,
// PATCH is applied by scim/patch, all inside one store transaction per
// request. The server reads and writes through Store, the part of
// store.Store it calls, and writes Users through admin.Lifecycle.
package scim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gatehouse/admin"
	"gatehouse/scim/provlog"
	"gatehouse/scim/schema"
	"gatehouse/store"
)

// Limits advertised in /ServiceProviderConfig and enforced.
const (
	// MaxBodyBytes bounds every request body; a PATCH adding thousands of
	// members fits easily.
	MaxBodyBytes = 1 << 20
	// MaxResults is the largest page a list returns; a larger count is
	// clamped to it (RFC 7644 §3.4.2.4).
	MaxResults = 1000
	// MaxBulkOperations bounds a /Bulk request.
	MaxBulkOperations = 1000
	// maxJSONDepth refuses documents nested deeper than any SCIM resource.
	maxJSONDepth = 16
)

// Config is the Server's configuration. The zero value of each field is a
// safe default.
type Config struct {
	// BaseURL is the public URL of gatehouse; resource locations are
	// BaseURL + "/scim/v2/...".
	BaseURL string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RateLimit is each organization's sustained SCIM requests per second
	// on this instance; 0 means DefaultRateLimit, negative disables.
	RateLimit float64
	// TokenCacheTTL is how long a verified token and its organization's
	// SCIM switch are remembered; a revoked token or a disabled switch takes
	// effect within it. 0 means 5 seconds; negative disables the cache.
	TokenCacheTTL time.Duration
	// Logger gives the logger of a request (the server's middleware adds
	// the request ID to it); nil means slog.Default.
	Logger func(*http.Request) *slog.Logger
	// Log is the provisioning log, given every request whose token names
	// an organization (a valid one, or one expired, revoked or of an
	// organization with SCIM off) once it is answered; nil keeps none.
	Log *provlog.Log
}

// DefaultRateLimit is the per-organization rate: Entra ID's gallery asks for
// at least 25 requests/s; an initial Okta import pages at its own pace.
const DefaultRateLimit = 200

// Server serves SCIM for every organization.
type Server struct {
	store     Store
	lifecycle *admin.Lifecycle // every write of a User
	cfg       Config
	tokens    *tokenCache
	limiter   *limiter
	pages     *pageCursors
}

// New returns a Server that reads st and writes Users through lifecycle.
func New(st Store, lifecycle *admin.Lifecycle, cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.TokenCacheTTL == 0 {
		cfg.TokenCacheTTL = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = func(*http.Request) *slog.Logger { return slog.Default() }
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &Server{
		store:     st,
		lifecycle: lifecycle,
		cfg:       cfg,
		tokens:    newTokenCache(cfg.TokenCacheTTL),
		limiter:   newLimiter(cfg.RateLimit, cfg.Now),
		pages:     newPageCursors(4096),
	}
}

// Prefix is where the SCIM endpoints live under the base URL.
const Prefix = "/scim/v2"

// Register mounts the SCIM endpoints on mux under Prefix. Route patterns
// double as metric labels.
func (s *Server) Register(mux *http.ServeMux) {
	p := Prefix
	mux.Handle("GET "+p+"/ServiceProviderConfig", s.public(s.serviceProviderConfig))
	schemas := newDiscovery("schema", schema.Schemas, func(sc *schema.Schema) string { return sc.ID }, s.schemaDoc)
	types := newDiscovery("resource type", schema.ResourceTypes, func(rt *schema.ResourceType) string { return rt.ID }, s.resourceTypeDoc)
	mux.Handle("GET "+p+"/Schemas", s.public(schemas.list))
	mux.Handle("GET "+p+"/Schemas/{id}", s.public(schemas.get))
	mux.Handle("GET "+p+"/ResourceTypes", s.public(types.list))
	mux.Handle("GET "+p+"/ResourceTypes/{id}", s.public(types.get))

	for _, rt := range []*resourceType{users, groups} {
		base := p + rt.schema.Endpoint
		mux.Handle("GET "+base, s.guard(rt.list))
		mux.Handle("GET "+base+"/{$}", s.guard(rt.list)) // Microsoft's tests ask for /Users/?filter=
		mux.Handle("POST "+base+"/.search", s.guard(rt.search))
		mux.Handle("POST "+base, s.guard(rt.create))
		mux.Handle("GET "+base+"/{id}", s.guard(rt.get))
		mux.Handle("PUT "+base+"/{id}", s.guard(rt.replace))
		mux.Handle("PATCH "+base+"/{id}", s.guard(rt.patch))
		mux.Handle("DELETE "+base+"/{id}", s.guard(rt.delete))
	}
	mux.Handle("POST "+p+"/.search", s.guard(s.searchAll))
	mux.Handle("POST "+p+"/Bulk", s.guard(s.bulk))
	mux.Handle(p+"/", s.public(s.notFound))
}

// call is one SCIM request being served.
type call struct {
	s   *Server
	w   http.ResponseWriter
	r   *http.Request
	org store.Org
	// entry is the verified token and what is cached with it.
	entry *tokenEntry
	log   *slog.Logger // made by logger on first use

	// What the provisioning log keeps of the exchange (Config.Log).
	status   int
	body     []byte // the request body as read
	response []byte // the response body as sent, when logged and not larger than provlog.MaxCapture
	respSize int
	failure  *Error
	capture  bool // the log is on and the request is a guarded one
}

// logger is the request's logger, naming the organization once the token
// has: most requests log nothing, so it is made on first use.
func (c *call) logger() *slog.Logger {
	if c.log == nil {
		c.log = c.s.cfg.Logger(c.r)
		if c.org.Slug != "" {
			c.log = c.log.With("org", c.org.Slug)
		}
	}
	return c.log
}

type handler func(c *call) error

// public serves endpoints that need no token: the discovery documents are
// the same for every organization (RFC 7644 §4).
func (s *Server) public(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &call{s: s, w: w, r: r}
		if err := h(c); err != nil {
			c.fail(err)
		}
	})
}

// guard authenticates the bearer token, checks the organization's SCIM
// switch and rate limit, then runs h.
func (s *Server) guard(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &call{s: s, w: w, r: r, capture: s.cfg.Log != nil}
		var start time.Time
		if c.capture {
			start = time.Now()
		}
		entry, err := s.authenticate(r)
		if err == nil {
			c.entry, c.org = entry, entry.org
			err = s.limiter.allow(c.org.ID)
		}
		if err == nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
			// Writes name the token in the audit log.
			c.r = r.WithContext(store.WithActor(r.Context(), store.Actor{Kind: store.ActorSCIM, ID: entry.token.ID, Name: entry.token.Prefix}))
		}
		if err == nil {
			err = h(c)
		}
		if err != nil {
			c.fail(err)
		}
		if s.cfg.Log != nil && entry != nil {
			c.record(entry, start)
		}
	})
}

// record hands the exchange to the provisioning log, which copies
// nothing and waits for nothing (provlog.Log.Record).
func (c *call) record(entry *tokenEntry, start time.Time) {
	e := provlog.Exchange{OrgID: entry.org.ID, TokenPrefix: entry.token.Prefix, At: start, Duration: time.Since(start),
		Method: c.r.Method, Path: c.r.URL.Path, ResourceID: c.r.PathValue("id"),
		Status: c.status, Request: c.body, Response: c.response, ResponseSize: c.respSize}
	if c.r.URL.RawQuery != "" {
		e.Filter = c.r.URL.Query().Get("filter")
	}
	if c.failure != nil {
		e.SCIMType, e.Detail = c.failure.ScimType, c.failure.Detail
	}
	c.s.cfg.Log.Record(e)
}

// writeHeader answers status without a body.
func (c *call) writeHeader(status int) {
	c.status = status
	c.w.WriteHeader(status)
}

func (s *Server) notFound(c *call) error {
	return errorf(http.StatusNotFound, "", "no SCIM endpoint %s %s", c.r.Method, c.r.URL.Path)
}

// fail writes err as a SCIM error.
func (c *call) fail(err error) {
	e := asError(err, c.logger())
	c.failure = e
	if e.RetryAfter > 0 {
		c.w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.Status == http.StatusUnauthorized {
		c.w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse SCIM"`)
	}
	c.writeJSON(e.Status, e.body())
}

// writeJSON answers with a SCIM JSON body.
func (c *call) writeJSON(status int, v any) {
	buf := bodyBuffers.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= maxPooledBody {
			bodyBuffers.Put(buf)
		}
	}()
	b, err := appendJSON((*buf)[:0], v)
	*buf = b
	if err != nil {
		c.logger().Error("scim: encoding a response", "err", err)
		status, b = http.StatusInternalServerError, []byte(`{"schemas":["`+schema.ErrorURN+`"],"status":"500","detail":"internal server error"}`)
	}
	h := c.w.Header()
	// Canonical keys set directly (no canonicalizing), constant values
	// shared: net/http only reads them, and an Add would append to a full
	// slice, which copies it.
	h["Content-Type"] = scimContentType
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = noSniff
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	c.status = status
	if c.capture {
		c.respSize = len(b)
		// A successful read the log sheds now is not copied (should the
		// log stop shedding before Record, it keeps the size alone).
		if len(b) <= provlog.MaxCapture && !c.s.cfg.Log.Sheds(c.r.Method, c.r.URL.Path, status) {
			c.response = append([]byte(nil), b...) // b goes back to the pool
		}
	}
	c.w.WriteHeader(status)
	c.w.Write(b)
}

var (
	scimContentType = []string{"application/scim+json; charset=utf-8"}
	noStore         = []string{"no-store"}
	noSniff         = []string{"nosniff"}
)

// bodyBuffers are the buffers responses are encoded into. A buffer grown
// past maxPooledBody (a large list) is left to the garbage collector, so
// the pool does not keep the largest response ever sent per P.
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooledBody = 64 << 10

// decode reads the request body as one JSON object, bounded by
// MaxBodyBytes, refusing invalid UTF-8 and escaped lone surrogates
// (encoding/json would silently replace both with U+FFFD, for every
// string of every resource), trailing data and nesting deeper than any
// SCIM document.
// Numbers stay json.Number so integers keep their digits.
func (c *call) decode() (map[string]any, error) {
	if ct := c.r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := strings.Cut(ct, ";")
		mt = strings.TrimSpace(strings.ToLower(mt))
		if mt != "application/scim+json" && mt != "application/json" {
			return nil, errorf(http.StatusUnsupportedMediaType, invalidSyntax, "Content-Type must be application/scim+json or application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, MaxBodyBytes))
	c.body = body
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errorf(http.StatusRequestEntityTooLarge, "", "the request body is larger than %d bytes", MaxBodyBytes)
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, invalidSyntax, "the request body could not be read")
	}
	return decodeJSON(body)
}

func decodeJSON(body []byte) (map[string]any, error) {
	if !utf8.Valid(body) {
		return nil, errorf(http.StatusBadRequest, invalidSyntax, "the request body is not valid UTF-8")
	}
	scan := admin.ScanJSON(body)
	if scan.Depth > maxJSONDepth {
		return nil, errorf(http.StatusBadRequest, invalidSyntax, "the request body is nested more than %d levels deep", maxJSONDepth)
	}
	if scan.LoneSurrogate {
		return nil, errorf(http.StatusBadRequest, invalidValue, `the request body escapes half of a UTF-16 surrogate pair (such as "\ud800" alone); send the character itself or a complete pair`)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return nil, errorf(http.StatusBadRequest, invalidSyntax, "the request body must be one JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorf(http.StatusBadRequest, invalidSyntax, "the request body has data after its JSON object")
	}
	return doc, nil
}
