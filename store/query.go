package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Predicate selects records: And, Or, Not, Compare or Any. The store renders
// it as SQL in which every value is a bind parameter and every name comes
// from the store's own list, so a predicate built from a client's filter
// cannot inject SQL.
//
// Every predicate is two-valued: an absent attribute makes a comparison
// false, never unknown, so Not and OpNe are true for a record that lacks
// the attribute (RFC 7644 §3.4.2.2).
type Predicate interface{ predicate() }

// And is true when all of its predicates are; an empty And is true.
type And []Predicate

// Or is true when one of its predicates is; an empty Or is false.
type Or []Predicate

// Not negates P.
type Not struct{ P Predicate }

// Op is a comparison operator of RFC 7644 §3.4.2.2.
type Op string

const (
	OpEq      Op = "eq"
	OpNe      Op = "ne"
	OpCo      Op = "co" // contains: a substring, no wildcards
	OpSw      Op = "sw" // starts with
	OpEw      Op = "ew" // ends with
	OpGt      Op = "gt"
	OpGe      Op = "ge"
	OpLt      Op = "lt"
	OpLe      Op = "le"
	OpPresent Op = "pr" // has a value: not null, not "", not [] or {}
)

// Compare compares a field with a value.
//
// Strings compare by code point (byte order of UTF-8), the same on both
// databases; with Fold they compare case-insensitively: through a folded
// column and Fold where the field has one (AdministratorUserName,
// GroupDisplayName, the emails' value, the members' and groups' display),
// elsewhere through the same fold computed in SQL (fold.go). Times compare chronologically,
// numbers numerically, booleans only with eq and ne. A value of another
// type than the field's is ErrInvalidQuery for columns; for an Attributes
// path it matches only values of its own JSON type. A nil Value with OpEq
// is "not present", with OpNe "present".
type Compare struct {
	Field Field
	Op    Op
	Value any  // string, float64, int64, bool, time.Time, or nil (OpPresent ignores it)
	Fold  bool // case-insensitive (strings only)
}

// Field names what a Compare looks at or a Query sorts by: a column of one
// kind of record, which only the Administrator* and Group* values below
// name (so no caller spells a column, and none can name one the store
// does not have), or a path into the record's Attributes JSON, Field{Attr:
// ...}. A column of one kind of record used on the other is
// ErrInvalidQuery.
//
// Attr keys are matched exactly (the protocol layer writes and asks for
// the schema's names) and may not contain '"' or '\'. A time.Time compared
// with an Attributes value compares with its RFC 3339 text in UTC, which is
// how the protocol layer should write date-times it keeps there.
type Field struct {
	table, column string // a column of the table; both "" for an Attr path
	// Attr is a path into the record's Attributes, e.g. {"name",
	// "formatted"} or {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
	// "manager", "value"}; inside an Any, the element's sub-attribute.
	Attr []string
}

// The columns of administrators: text, but times where the name ends in
// At. They compare with the record's field of the same name.
var (
	AdministratorID          = administratorsResource.field("id")
	AdministratorUserName    = administratorsResource.field("username")
	AdministratorExternalID  = administratorsResource.field("external_id")
	AdministratorGivenName   = administratorsResource.field("given_name")
	AdministratorFamilyName  = administratorsResource.field("family_name")
	AdministratorEmail       = administratorsResource.field("email") // the primary address; every address: Any "emails"
	AdministratorPhone       = administratorsResource.field("phone")
	AdministratorRole        = administratorsResource.field("role")
	AdministratorStatus      = administratorsResource.field("status")
	AdministratorSCIMRole    = administratorsResource.field("scim_role")
	AdministratorCreatedAt   = administratorsResource.field("created_at")
	AdministratorUpdatedAt   = administratorsResource.field("updated_at")
	AdministratorLastLoginAt = administratorsResource.field("last_login_at") // absent while never signed in
)

// The columns of groups, as those of administrators.
var (
	GroupID          = groupsResource.field("id")
	GroupDisplayName = groupsResource.field("display_name")
	GroupExternalID  = groupsResource.field("external_id")
	GroupCreatedAt   = groupsResource.field("created_at")
	GroupUpdatedAt   = groupsResource.field("updated_at")
)

// IsZero reports whether f names nothing (the default sort).
func (f Field) IsZero() bool { return f.column == "" && len(f.Attr) == 0 }

// IsColumn reports whether f is a column (one of the values above) rather
// than an Attr path.
func (f Field) IsColumn() bool { return f.column != "" }

// String is the table and column, or the Attr path.
func (f Field) String() string {
	if f.column != "" {
		return f.table + "." + f.column
	}
	return strings.Join(f.Attr, ".")
}

// Any is true when some element of a multi-valued attribute satisfies
// Where; inside Where, Field.Attr (one element) names the element's
// sub-attribute ({"value"}, {"type"}, {"primary"}); an element that is a
// bare scalar is named by Attr {""} or nil. Any does not nest.
//
// Attr is "emails" (administrators: the indexed addresses, sub-attributes
// value, type, display, primary), "groups" (administrators: value = group
// id, display = its display name), "members" (groups: value =
// administrator id, display = username), or the key of a JSON array in
// Attributes ("phoneNumbers", "addresses", "roles", ...); an extension's
// array is named "<schema URN>:<attribute>" and found under the URN's key.
type Any struct {
	Attr  string
	Where Predicate // nil: the attribute has at least one element
}

func (And) predicate()     {}
func (Or) predicate()      {}
func (Not) predicate()     {}
func (Compare) predicate() {}
func (Any) predicate()     {}

// Query selects, sorts and windows the records of one organization.
type Query struct {
	Where Predicate // nil: every record of the org
	// SortBy is the sort key, with the record's creation order (seq) as
	// tie-breaker so the order is total and stable across pages; zero
	// sorts by creation order alone. Records without a value sort last
	// (first when Descending), RFC 7644 §3.4.2.3. Strings sort by code
	// point, or by their case fold with SortFold; an Attributes path
	// sorts numbers (numerically) before strings.
	SortBy     Field
	SortFold   bool
	Descending bool
	Page       Page
	// WithGroups (administrators only) fills Result.Groups in the same
	// statement.
	WithGroups bool
	// After makes the page cheaper to read, never different: it is the Next
	// of an earlier result whose window ended where Page.Offset starts
	// (Page.Offset = the earlier Offset + len(Items)). The page is the one
	// Page.Offset gives at this moment; the store reads it by seeking past
	// the earlier result's last row (seq > the cursor's) instead of
	// skipping Page.Offset rows when nothing that shifts the positions
	// before it has been committed since (positionKinds), and by the offset
	// otherwise. So deep pages cost the same as the first while the records
	// stand still, and a walk that alternates instances, or meets a delete
	// or a change, neither repeats nor skips a record. Giving After with
	// SortBy is ErrInvalidQuery.
	After string
	// Seek makes After a cursor of its own (RFC 9865 cursor pagination):
	// the page is the records after the cursor's row, Page.Offset ignored,
	// whatever was written since. A record present during a whole walk is
	// then listed once; one inserted or removed meanwhile may or may not
	// be. Without After, the first page.
	Seek bool
}

// Result is a window of a query's records and their total.
type Result[T any] struct {
	Items []T
	Total int // records that match Where, whatever the window
	// Next is given as Query.After with the next page's offset (Offset +
	// len(Items)), or with Seek, when the query is in creation order and
	// the page is full; "" otherwise.
	Next string
	// Groups holds the groups of each administrator of Items that has any,
	// when the query asked for them (Query.WithGroups).
	Groups map[string][]GroupRef
}

// kind is the type of a column's values.
type kind int

const (
	kindText kind = iota
	kindTime
	kindBool
)

// column is a field the store can compare: its SQL, on the alias of its
// table in the query.
type column struct {
	sql      string
	kind     kind
	fold     string // column holding Fold(sql), if any
	nullable bool
	// exactViaFold: a case-exact eq compares the fold column too, only so
	// that the index on the fold column serves it. On a unique fold index
	// (username) that also spares SQLite sorting the match for ORDER BY
	// seq: one userName eq went from 18 µs to 6 µs.
	exactViaFold bool
}

// resource is a table Query runs on.
type resource struct {
	table, alias string
	selectList   string // the columns a query reads, qualified by alias
	columns      map[string]column
	count        string // record_counts kind
	// multi are its multi-valued attributes kept in tables: the SQL around
	// the element condition, and the columns Where can name.
	multi map[string]multiValued
}

type multiValued struct {
	open    func(org string) expr // up to the element condition
	close   string
	columns map[string]column
}

// field is the Field of one of r's columns; package initialization
// panics if r has no such column, so every exported Field resolves.
func (r *resource) field(name string) Field {
	if _, ok := r.columns[name]; !ok {
		panic("store: " + r.table + " has no column " + name)
	}
	return Field{table: r.table, column: name}
}

func textColumn(sql string) column { return column{sql: sql, kind: kindText} }
func timeColumn(sql string) column { return column{sql: sql, kind: kindTime} }

var administratorsResource = &resource{
	table: "administrators", alias: "a", count: countAdministrators, selectList: prefixed(administratorColumns, "a"),
	columns: map[string]column{
		"id":            textColumn("a.id"),
		"username":      {sql: "a.username", kind: kindText, fold: "a.username_fold", exactViaFold: true},
		"external_id":   textColumn("a.external_id"),
		"given_name":    textColumn("a.given_name"),
		"family_name":   textColumn("a.family_name"),
		"email":         textColumn("a.email"),
		"phone":         textColumn("a.phone"),
		"role":          textColumn("a.role"),
		"status":        textColumn("a.status"),
		"scim_role":     textColumn("a.scim_role"),
		"created_at":    timeColumn("a.created_at"),
		"updated_at":    timeColumn("a.updated_at"),
		"last_login_at": {sql: "a.last_login_at", kind: kindTime, nullable: true},
	},
	multi: map[string]multiValued{
		// An IN of seqs rather than a correlated EXISTS or an IN of ids:
		// "a.org_id = ? AND a.seq IN (...)" is an equality on both columns
		// of the (org_id, seq) index, so the database starts from the
		// index of the subquery (the Entra filter on an address: the
		// (org_id, value_fold) index) and seeks each administrator, in
		// seq order, instead of walking the organization and testing
		// every administrator (what SQLite chose for an IN of ids, having
		// no statistics to tell it the org_id range is large).
		"emails": {
			open: func(org string) expr {
				return cat("a.seq IN (SELECT ea.seq FROM administrator_emails e JOIN administrators ea ON ea.id = e.administrator_id",
					" WHERE e.org_id = ", param{org}, " AND (")
			},
			close: "))",
			columns: map[string]column{
				"value":   {sql: "e.value", kind: kindText, fold: "e.value_fold", exactViaFold: true},
				"type":    textColumn("e.type"),
				"display": textColumn("e.display"),
				"primary": {sql: "e.is_primary", kind: kindBool},
			},
		},
		"groups": {
			open: func(org string) expr {
				return cat("a.seq IN (SELECT ga.seq FROM group_members m JOIN groups mg ON mg.id = m.group_id",
					" JOIN administrators ga ON ga.id = m.administrator_id WHERE mg.org_id = ", param{org}, " AND (")
			},
			close: "))",
			columns: map[string]column{
				"value":   textColumn("m.group_id"),
				"display": {sql: "mg.display_name", kind: kindText, fold: "mg.display_name_fold"},
			},
		},
	},
}

var groupsResource = &resource{
	table: "groups", alias: "g", count: countGroups, selectList: prefixed(groupColumns, "g"),
	columns: map[string]column{
		"id":           textColumn("g.id"),
		"display_name": {sql: "g.display_name", kind: kindText, fold: "g.display_name_fold"},
		"external_id":  textColumn("g.external_id"),
		"created_at":   timeColumn("g.created_at"),
		"updated_at":   timeColumn("g.updated_at"),
	},
	multi: map[string]multiValued{
		"members": {
			open: func(string) expr {
				return cat("EXISTS (SELECT 1 FROM group_members m JOIN administrators ma ON ma.id = m.administrator_id WHERE m.group_id = g.id AND (")
			},
			close: "))",
			columns: map[string]column{
				"value":   textColumn("m.administrator_id"),
				"display": {sql: "ma.username", kind: kindText, fold: "ma.username_fold"},
			},
		},
	},
}

// expr is a piece of SQL with the values of its ? placeholders, in order.
type expr struct {
	sql  string
	args []any
}

// param is a bind parameter inside cat.
type param struct{ v any }

// cat joins SQL text (string), pieces (expr) and parameters (param) in
// order.
func cat(parts ...any) expr {
	var b strings.Builder
	var args []any
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			b.WriteString(p)
		case expr:
			b.WriteString(p.sql)
			args = append(args, p.args...)
		case param:
			b.WriteByte('?')
			args = append(args, p.v)
		default:
			panic(fmt.Sprintf("store: cat of %T", p))
		}
	}
	return expr{b.String(), args}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidQuery}, args...)...)
}

// jsonRef is a value inside a JSON document: a path into a record's
// attributes, or into (or at) the current element of an Any over a JSON
// array.
type jsonRef struct {
	doc  string   // the record's attributes column; "" for the element
	path []string // empty: the element itself
}

// jsonSQL is how a dialect reads JSON. Each method returns a two-valued
// condition or a value that is NULL when the JSON value is absent or of
// another type, so documents of any shape never make a query fail.
type jsonSQL interface {
	text(r jsonRef) expr    // a string, as text
	number(r jsonRef) expr  // a number, as a numeric value
	boolean(r jsonRef) expr // a boolean, as the text 'true' or 'false'
	present(r jsonRef) expr // not null, "", [] or {}
	// elements is true when the array at r has an element satisfying
	// where, which reads the element through jsonRef{}.
	elements(r jsonRef, where expr) expr
	nonEmpty(r jsonRef) expr // r is an array with an element
}

// stringSQL is how a dialect tests substrings without pattern characters.
type stringSQL interface {
	contains(x, v expr) expr
	startsWith(x, v expr) expr
	endsWith(x, v expr) expr
}

// sqliteJSON: JSON paths are bound as '$."key"."key"'; json_type tells
// SQLite's types apart ('text', 'integer', 'real', 'true', 'false', 'null',
// 'object', 'array').
type sqliteJSON struct{}

func sqlitePath(path []string) string {
	var b strings.Builder
	b.WriteByte('$')
	for _, k := range path {
		b.WriteString(`."`)
		b.WriteString(k)
		b.WriteByte('"')
	}
	return b.String()
}

// typeAndValue are json_type and json_extract of r. The element of
// json_each is e: e.type and e.value, and a path into it is read only when
// it is an object (json_extract of a bare string element would fail).
func (sqliteJSON) typeAndValue(r jsonRef) (typ, val expr) {
	p := param{sqlitePath(r.path)}
	switch {
	case r.doc != "":
		return cat("json_type(", r.doc, ", ", p, ")"), cat("json_extract(", r.doc, ", ", p, ")")
	case len(r.path) > 0:
		return cat("(CASE WHEN e.type = 'object' THEN json_type(e.value, ", p, ") END)"), cat("json_extract(e.value, ", p, ")")
	}
	return cat("e.type"), cat("e.value")
}

func (j sqliteJSON) text(r jsonRef) expr {
	t, v := j.typeAndValue(r)
	return cat("(CASE WHEN ", t, " = 'text' THEN ", v, " END)")
}

func (j sqliteJSON) number(r jsonRef) expr {
	t, v := j.typeAndValue(r)
	return cat("(CASE WHEN ", t, " IN ('integer', 'real') THEN ", v, " END)")
}

func (j sqliteJSON) boolean(r jsonRef) expr {
	t, _ := j.typeAndValue(r)
	return cat("(CASE WHEN ", t, " IN ('true', 'false') THEN ", t, " END)")
}

// present relies on json_extract returning arrays and objects minified.
func (j sqliteJSON) present(r jsonRef) expr {
	t, v := j.typeAndValue(r)
	return cat("(CASE WHEN ", t, " IS NULL OR ", t, " = 'null' THEN FALSE WHEN ", t, " = 'text' THEN ", v, " <> '' WHEN ",
		t, " = 'array' THEN ", v, " <> '[]' WHEN ", t, " = 'object' THEN ", v, " <> '{}' ELSE TRUE END)")
}

func (j sqliteJSON) elements(r jsonRef, where expr) expr {
	p := param{sqlitePath(r.path)}
	return cat("(COALESCE(json_type(", r.doc, ", ", p, ") = 'array', FALSE) AND EXISTS (SELECT 1 FROM json_each(", r.doc, ", ", p,
		") e WHERE ", where, "))")
}

func (sqliteJSON) nonEmpty(r jsonRef) expr {
	return cat("COALESCE(json_array_length(", r.doc, ", ", param{sqlitePath(r.path)}, ") > 0, FALSE)")
}

// postgresJSON reads the text attributes column as jsonb (writes checked
// that it parses: queryableJSON) with the path bound as a text[].
type postgresJSON struct{}

func (postgresJSON) node(r jsonRef) expr {
	switch {
	case r.doc != "":
		return cat("(", r.doc, "::jsonb #> ", param{r.path}, "::text[])")
	case len(r.path) > 0:
		return cat("(e.value #> ", param{r.path}, "::text[])")
	}
	return cat("e.value")
}

func (j postgresJSON) text(r jsonRef) expr {
	n := j.node(r)
	return cat("(CASE WHEN jsonb_typeof(", n, ") = 'string' THEN ", n, " #>> '{}' END)")
}

func (j postgresJSON) number(r jsonRef) expr {
	n := j.node(r)
	return cat("(CASE WHEN jsonb_typeof(", n, ") = 'number' THEN (", n, ")::numeric END)")
}

func (j postgresJSON) boolean(r jsonRef) expr {
	n := j.node(r)
	return cat("(CASE WHEN jsonb_typeof(", n, ") = 'boolean' THEN ", n, " #>> '{}' END)")
}

func (j postgresJSON) present(r jsonRef) expr {
	n := j.node(r)
	t := cat("jsonb_typeof(", n, ")")
	return cat("(CASE WHEN ", t, " IS NULL OR ", t, " = 'null' THEN FALSE WHEN ", t, " = 'string' THEN ", n, " #>> '{}' <> '' WHEN ",
		t, " = 'array' THEN jsonb_array_length(", n, ") > 0 WHEN ", t, " = 'object' THEN ", n, " <> '{}'::jsonb ELSE TRUE END)")
}

// elements hands jsonb_array_elements NULL (no rows) for a non-array, which
// would otherwise make it fail.
func (j postgresJSON) elements(r jsonRef, where expr) expr {
	n := j.node(r)
	return cat("EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(", n, ") = 'array' THEN ", n, " END) e(value) WHERE ",
		where, ")")
}

func (j postgresJSON) nonEmpty(r jsonRef) expr {
	n := j.node(r)
	return cat("(CASE WHEN jsonb_typeof(", n, ") = 'array' THEN jsonb_array_length(", n, ") > 0 ELSE FALSE END)")
}

// sqliteStrings: instr and substr count characters and know no wildcards
// (LIKE would treat % and _ as patterns and ignore ASCII case).
type sqliteStrings struct{}

func (sqliteStrings) contains(x, v expr) expr { return cat("instr(", x, ", ", v, ") > 0") }
func (sqliteStrings) startsWith(x, v expr) expr {
	return cat("substr(", x, ", 1, length(", v, ")) = ", v)
}
func (sqliteStrings) endsWith(x, v expr) expr {
	return cat("(CASE WHEN length(", v, ") = 0 THEN ", x, " IS NOT NULL ELSE substr(", x, ", -length(", v, ")) = ", v, " END)")
}

type postgresStrings struct{}

func (postgresStrings) contains(x, v expr) expr   { return cat("strpos(", x, ", ", v, ") > 0") }
func (postgresStrings) startsWith(x, v expr) expr { return cat("starts_with(", x, ", ", v, ")") }
func (postgresStrings) endsWith(x, v expr) expr   { return cat("right(", x, ", length(", v, ")) = ", v) }

// compiler renders a Predicate for one resource of one organization.
type compiler struct {
	d   *dialect
	res *resource
	org string
}

// scope is where a Field is resolved: the record (sub and elem unset), an
// element of a multi-valued attribute kept in a table (sub), or an element
// of a JSON array (elem).
type scope struct {
	sub  map[string]column
	elem bool
}

func (c *compiler) predicate(p Predicate, sc scope) (expr, error) {
	switch p := p.(type) {
	case And:
		return c.join(p, " AND ", "TRUE", sc)
	case Or:
		return c.join(p, " OR ", "FALSE", sc)
	case Not:
		e, err := c.predicate(p.P, sc)
		if err != nil {
			return expr{}, err
		}
		return cat("NOT ", e), nil
	case Compare:
		return c.compare(p, sc)
	case Any:
		return c.any(p, sc)
	case nil:
		return expr{}, invalid("nil predicate")
	}
	return expr{}, invalid("unknown predicate %T", p)
}

// join renders the predicates of an And or an Or; empty is the value of
// none.
func (c *compiler) join(list []Predicate, op, empty string, sc scope) (expr, error) {
	if len(list) == 0 {
		return cat(empty), nil
	}
	parts := make([]any, 0, 2*len(list)+1)
	parts = append(parts, "(")
	for i, q := range list {
		e, err := c.predicate(q, sc)
		if err != nil {
			return expr{}, err
		}
		if i > 0 {
			parts = append(parts, op)
		}
		parts = append(parts, e)
	}
	return cat(append(parts, ")")...), nil
}

func (c *compiler) any(p Any, sc scope) (expr, error) {
	if sc.sub != nil || sc.elem {
		return expr{}, invalid("Any %q inside Any", p.Attr)
	}
	if m, ok := c.res.multi[strings.ToLower(p.Attr)]; ok {
		where := cat("TRUE")
		if p.Where != nil {
			var err error
			if where, err = c.predicate(p.Where, scope{sub: m.columns}); err != nil {
				return expr{}, err
			}
		}
		return cat(m.open(c.org), where, m.close), nil
	}
	path := []string{p.Attr}
	if strings.HasPrefix(strings.ToLower(p.Attr), "urn:") {
		i := strings.LastIndexByte(p.Attr, ':')
		path = []string{p.Attr[:i], p.Attr[i+1:]}
	}
	if err := checkPath(path); err != nil {
		return expr{}, err
	}
	r := jsonRef{doc: c.res.alias + ".attributes", path: path}
	if p.Where == nil {
		return c.d.json.nonEmpty(r), nil
	}
	where, err := c.predicate(p.Where, scope{elem: true})
	if err != nil {
		return expr{}, err
	}
	return c.d.json.elements(r, where), nil
}

// checkPath admits the keys both dialects read alike: SQLite's quoted path
// labels cannot hold '"', and PostgreSQL's #> reads a key that looks like a
// number as an array index (RFC 7643 attribute names start with a letter
// anyway).
func checkPath(path []string) error {
	if len(path) == 0 {
		return invalid("empty attribute path")
	}
	for _, k := range path {
		if k == "" || strings.ContainsAny(k, `"\`) || !storable(k) || k[0] == '-' || '0' <= k[0] && k[0] <= '9' {
			return invalid("attribute name %q", k)
		}
	}
	return nil
}

func (c *compiler) compare(x Compare, sc scope) (expr, error) {
	f := x.Field
	if x.Value == nil && (x.Op == OpEq || x.Op == OpNe) {
		e, err := c.compare(Compare{Field: f, Op: OpPresent}, sc)
		if x.Op == OpEq {
			e = cat("NOT ", e)
		}
		return e, err
	}
	switch {
	case sc.sub != nil:
		if f.column != "" || len(f.Attr) != 1 {
			return expr{}, invalid("a sub-attribute must be named by one Attr key")
		}
		col, ok := sc.sub[strings.ToLower(f.Attr[0])]
		if !ok {
			return expr{}, invalid("unknown sub-attribute %q", f.Attr[0])
		}
		return c.compareColumn(col, x)
	case sc.elem:
		if f.column != "" {
			return expr{}, invalid("column %s inside an Any over a JSON array", f)
		}
		if len(f.Attr) == 0 || len(f.Attr) == 1 && f.Attr[0] == "" {
			return c.compareJSON(jsonRef{}, x)
		}
		if err := checkPath(f.Attr); err != nil {
			return expr{}, err
		}
		return c.compareJSON(jsonRef{path: f.Attr}, x)
	case f.column != "":
		col, err := c.column(f)
		if err != nil {
			return expr{}, err
		}
		return c.compareColumn(col, x)
	}
	if err := checkPath(f.Attr); err != nil {
		return expr{}, err
	}
	return c.compareJSON(jsonRef{doc: c.res.alias + ".attributes", path: f.Attr}, x)
}

// column resolves a column Field on the compiler's resource.
func (c *compiler) column(f Field) (column, error) {
	if len(f.Attr) > 0 {
		return column{}, invalid("a field names a column or an attribute path, not both")
	}
	if f.table != c.res.table {
		return column{}, invalid("%s is not a field of %s", f, c.res.table)
	}
	col, ok := c.res.columns[f.column]
	if !ok { // not for a Field of resource.field
		return column{}, invalid("unknown column %s", f)
	}
	return col, nil
}

func (c *compiler) compareColumn(col column, x Compare) (expr, error) {
	switch col.kind {
	case kindText:
		if x.Op == OpPresent {
			return cat("(", col.sql, " <> '')"), nil
		}
		v, ok := x.Value.(string)
		if !ok {
			return expr{}, invalid("%s compared with %T, not a string", col.sql, x.Value)
		}
		if !storable(v) {
			return expr{}, invalid("value is not valid UTF-8 text")
		}
		switch {
		case x.Fold && col.fold != "":
			return c.compareText(x.Op, cat(col.fold), cat(param{Fold(v)}), col.nullable)
		case x.Fold:
			return c.compareText(x.Op, c.d.fold(cat(col.sql)), c.foldedValue(v), col.nullable)
		case x.Op == OpEq && col.exactViaFold:
			return cat("(", col.fold, " = ", param{Fold(v)}, " AND ", col.sql, " = ", param{v}, ")"), nil
		}
		return c.compareText(x.Op, cat(col.sql), cat(param{v}), col.nullable)
	case kindTime:
		if x.Op == OpPresent {
			return cat("(", col.sql, " IS NOT NULL)"), nil
		}
		v, ok := x.Value.(time.Time)
		if !ok {
			return expr{}, invalid("%s compared with %T, not a time", col.sql, x.Value)
		}
		// UTC as stored: SQLite keeps times as text in one fixed format,
		// whose byte order is then chronological.
		return c.order(x.Op, cat(col.sql), cat(param{v.UTC()}), col.nullable)
	case kindBool:
		if x.Op == OpPresent {
			return cat(col.sql), nil
		}
		v, ok := x.Value.(bool)
		if !ok {
			return expr{}, invalid("%s compared with %T, not a boolean", col.sql, x.Value)
		}
		switch x.Op {
		case OpEq:
			return cat("(", col.sql, " = ", param{v}, ")"), nil
		case OpNe:
			return cat("(", col.sql, " <> ", param{v}, ")"), nil
		}
		return expr{}, invalid("operator %q on a boolean", x.Op)
	}
	return expr{}, invalid("column kind %d", col.kind)
}

func (c *compiler) compareJSON(r jsonRef, x Compare) (expr, error) {
	j := c.d.json
	if x.Op == OpPresent {
		return j.present(r), nil
	}
	switch v := x.Value.(type) {
	case string:
		if !storable(v) {
			return expr{}, invalid("value is not valid UTF-8 text")
		}
		if x.Fold {
			return c.compareText(x.Op, c.d.fold(j.text(r)), c.foldedValue(v), true)
		}
		return c.compareText(x.Op, j.text(r), cat(param{v}), true)
	case time.Time:
		return c.compareText(x.Op, j.text(r), cat(param{v.UTC().Format(time.RFC3339Nano)}), true)
	case float64, int64:
		return c.order(x.Op, j.number(r), cat("CAST(", param{v}, " AS NUMERIC)"), true)
	case bool:
		b := cat(param{strconv.FormatBool(v)})
		switch x.Op {
		case OpEq:
			return cat("COALESCE(", j.boolean(r), " = ", b, ", FALSE)"), nil
		case OpNe:
			return cat("COALESCE(", j.boolean(r), " <> ", b, ", TRUE)"), nil
		}
		return expr{}, invalid("operator %q on a boolean", x.Op)
	}
	return expr{}, invalid("cannot compare with a %T", x.Value)
}

// foldedValue is v folded as the dialect's fold folds the other side: in
// Go when the fold is textFold, so the database folds one side only.
func (c *compiler) foldedValue(v string) expr {
	if c.d.foldExact {
		return cat(param{textFold(v)})
	}
	return c.d.fold(cat("CAST(", param{v}, " AS TEXT)"))
}

// compareText renders x op v for strings: the substring operators, or an
// ordering in byte order.
func (c *compiler) compareText(op Op, x, v expr, nullable bool) (expr, error) {
	var e expr
	switch op {
	case OpCo:
		e = c.d.strings.contains(x, v)
	case OpSw:
		e = c.d.strings.startsWith(x, v)
	case OpEw:
		e = c.d.strings.endsWith(x, v)
	case OpGt, OpGe, OpLt, OpLe:
		return c.order(op, cat(x, c.d.byteOrder), v, nullable)
	default:
		return c.order(op, x, v, nullable)
	}
	if nullable {
		e = cat("COALESCE(", e, ", FALSE)")
	}
	return cat("(", e, ")"), nil
}

// order renders x op v for eq, ne and the orderings. A nullable x is
// absent when NULL: a comparison with it is false, ne true.
func (c *compiler) order(op Op, x, v expr, nullable bool) (expr, error) {
	sym, ok := map[Op]string{OpEq: " = ", OpNe: " <> ", OpGt: " > ", OpGe: " >= ", OpLt: " < ", OpLe: " <= "}[op]
	if !ok {
		return expr{}, invalid("operator %q", op)
	}
	e := cat(x, sym, v)
	switch {
	case !nullable:
		return cat("(", e, ")"), nil
	case op == OpNe:
		return cat("COALESCE(", e, ", TRUE)"), nil
	}
	return cat("COALESCE(", e, ", FALSE)"), nil
}

// orderBy renders the sort keys of q, seq last.
func (c *compiler) orderBy(q Query) (expr, error) {
	dir := ""
	if q.Descending {
		dir = " DESC"
	}
	seq := c.res.alias + ".seq" + dir
	f := q.SortBy
	switch {
	case f.IsZero():
		return cat(seq), nil
	case f.column != "":
		col, err := c.column(f)
		if err != nil {
			return expr{}, err
		}
		if col.kind == kindTime {
			return cat("(", col.sql, " IS NULL)", dir, ", ", col.sql, dir, ", ", seq), nil
		}
		key := cat(col.sql)
		switch {
		case q.SortFold && col.fold != "":
			key = cat(col.fold)
		case q.SortFold:
			key = c.d.fold(key)
		}
		return cat("(", col.sql, " = '')", dir, ", ", key, c.d.byteOrder, dir, ", ", seq), nil
	}
	if err := checkPath(f.Attr); err != nil {
		return expr{}, err
	}
	r := jsonRef{doc: c.res.alias + ".attributes", path: f.Attr}
	num, txt := c.d.json.number(r), c.d.json.text(r)
	if q.SortFold {
		txt = c.d.fold(txt)
	}
	return cat("(", num, " IS NULL AND ", txt, " IS NULL)", dir, ", (", num, " IS NULL)", dir, ", ", num, dir, ", ",
		txt, c.d.byteOrder, dir, ", ", seq), nil
}

// cursor is the opaque form of Result.Next and Query.After: the seq of
// the page's last row and the positions generation the page was read at.
func cursor(seq, gen int64) string {
	return "c" + strconv.FormatInt(seq, 36) + "." + strconv.FormatInt(gen, 36)
}

func parseCursor(s string) (seq, gen int64, err error) {
	a, b, ok := strings.Cut(strings.TrimPrefix(s, "c"), ".")
	seq, err1 := strconv.ParseInt(a, 36, 64)
	gen, err2 := strconv.ParseInt(b, 36, 64)
	if !ok || err1 != nil || err2 != nil || !strings.HasPrefix(s, "c") || seq < 0 || gen < 0 {
		return 0, 0, invalid("cursor %q", s)
	}
	return seq, gen, nil
}

// positionKinds are the record_counts kinds whose weighted sum (positions)
// changes whenever a committed write may have shifted the position of a
// row in the creation-order list q reads: the removals of res's records
// (weighted 2, so that with the count, which a removal lowers by 1, the
// sum still grows), and also
//   - its count (which every insert raises) where an insert may take a seq
//     below rows already visible (seqCommitsOutOfOrder), or when the order
//     is descending, where every insert comes first;
//   - with a filter, every change that may change what it matches
//     (countChanged), and the inserts and removals of both resources (a
//     group's members are administrators, an administrator's groups are
//     groups).
//
// Each of those counts is written in the transaction of the write it
// counts, so the sum read in the page's own statement tells whether the
// page before, at the generation its Next carries, still ends where
// Page.Offset begins.
func (s *SQL) positionKinds(res *resource, q Query) []string {
	if q.Where != nil {
		return []string{countAdministrators, removedKind(countAdministrators), countGroups, removedKind(countGroups), countChanged}
	}
	kinds := []string{removedKind(res.count)}
	if q.Descending || s.d.seqCommitsOutOfOrder {
		kinds = append(kinds, res.count)
	}
	return kinds
}

// positions is the scalar subquery of the positions generation of q.
func (s *SQL) positions(res *resource, org string, q Query) expr {
	kinds := s.positionKinds(res, q)
	e := cat("(SELECT CAST(COALESCE(SUM(CASE WHEN kind LIKE '%.removed' THEN 2 * n ELSE n END), 0) AS BIGINT) FROM record_counts WHERE org_id = ",
		param{org}, " AND kind IN (")
	for i, k := range kinds {
		if i > 0 {
			e = cat(e, ", ")
		}
		e = cat(e, param{k})
	}
	return cat(e, "))")
}

// QueryAdministrators runs q on the administrators of org.
func (s *SQL) QueryAdministrators(ctx context.Context, org string, q Query) (Result[Administrator], error) {
	extra := ""
	if q.WithGroups {
		extra = s.d.groupRefs + " AS group_refs"
	}
	var groups map[string][]GroupRef
	res, err := runQuery(ctx, s, administratorsResource, extra, org, q, func(r *sql.Rows, tail []any) (Administrator, error) {
		var refsCol sql.NullString
		if q.WithGroups {
			tail = append([]any{&refsCol}, tail...)
		}
		a, err := scanAdministrator(r, tail...)
		if err != nil {
			return a, err
		}
		refs, err := parseGroupRefs(refsCol)
		if err != nil {
			return a, err
		}
		if len(refs) > 0 {
			if groups == nil {
				groups = map[string][]GroupRef{}
			}
			groups[a.ID] = refs
		}
		return a, nil
	})
	res.Groups = groups
	return res, err
}

// QueryGroups runs q on the groups of org.
func (s *SQL) QueryGroups(ctx context.Context, org string, q Query) (Result[Group], error) {
	return runQuery(ctx, s, groupsResource, "", org, q, func(r *sql.Rows, tail []any) (Group, error) {
		var g Group
		err := r.Scan(append([]any{&g.ID, &g.OrgID, &g.DisplayName, &g.ExternalID, &g.CreatedAt, &g.UpdatedAt, &g.Version, &g.Attributes},
			tail...)...)
		return g, err
	})
}

// querySQL is a query rendered: the page's and the total's statements.
type querySQL struct {
	page, count expr
	// positioned: the page selects the positions generation after seq.
	positioned bool
}

// buildQuery renders q on res for org. count is empty when the total
// comes from record_counts; page is empty when no rows are asked for.
// The page selects res.selectList, then extra when not empty (one more
// expression, which may name the row by the resource's alias), then seq,
// then, when positioned, the positions generation.
func (s *SQL) buildQuery(res *resource, extra, org string, q Query) (querySQL, error) {
	var out querySQL
	if err := checkPage(q.Page); err != nil {
		return out, fmt.Errorf("%w: %w", ErrInvalidQuery, err)
	}
	if and, ok := q.Where.(And); ok && len(and) == 0 {
		q.Where = nil
	}
	c := &compiler{d: &s.d, res: res, org: org}
	where := cat(res.alias, ".org_id = ", param{org})
	if q.Where != nil {
		w, err := c.predicate(q.Where, scope{})
		if err != nil {
			return out, err
		}
		where = cat(where, " AND ", w)
		out.count = cat("SELECT count(*) FROM ", res.table, " ", res.alias, " WHERE ", where)
	}
	if q.Page.Limit == 0 {
		return out, nil
	}
	orderBy, err := c.orderBy(q)
	if err != nil {
		return out, err
	}
	offset := q.Page.Offset
	if extra != "" {
		extra = ", " + extra
	}
	// A page in creation order reads the positions generation, for its
	// Next, in its own statement: the rows and the generation are then of
	// one snapshot. A filtered first page does not (the filters of
	// identity providers find one record or none, and must stay cheap);
	// the second page of a walk, read by its small offset, does.
	extra += ", " + res.alias + ".seq"
	var gen expr
	if q.SortBy.IsZero() && (q.Where == nil || offset > 0 || q.After != "") {
		gen, out.positioned = cat(", ", s.positions(res, org, q)), true
	}
	if q.Seek && !q.SortBy.IsZero() {
		return out, invalid("Seek continues creation order only, not a sort")
	}
	if q.Seek {
		offset = 0
	}
	if q.After != "" {
		if !q.SortBy.IsZero() {
			return out, invalid("After continues creation order only, not a sort")
		}
		seq, at, err := parseCursor(q.After)
		if err != nil {
			return out, err
		}
		cmp := " > "
		if q.Descending {
			cmp = " < "
		}
		// The seek returns rows only while the generation is the cursor's:
		// no row is then added or removed before the cursor's, so the
		// rows after it are the rows after the offset.
		where = cat(where, " AND ", res.alias, ".seq", cmp, param{seq})
		if !q.Seek {
			where = cat(where, " AND ", s.positions(res, org, q), " = ", param{at})
		}
		offset = 0
	}
	// The limit is written into the text (checkPage bounds it): with a
	// bound LIMIT, SQLite runs an ORDER BY ... LIMIT through a sorter even
	// when the index finds one row (35 µs instead of 12 µs for a
	// userName filter). Clients use a few page sizes, so the kept
	// statements stay few. An OFFSET of 0 (a filter, a first page, every
	// page continued by a cursor) is left out: with an OFFSET parameter,
	// PostgreSQL judged its generic plan dearer than a custom one and so
	// planned the statement again at every run, which cost more than
	// running it (92 µs and 53 µs for a userName filter).
	out.page = cat("SELECT ", res.selectList, extra, gen, " FROM ", res.table, " ", res.alias,
		" WHERE ", where, " ORDER BY ", orderBy, " LIMIT "+strconv.Itoa(q.Page.Limit))
	if offset > 0 {
		out.page = cat(out.page, " OFFSET ", param{offset})
	}
	return out, nil
}

// prefixed qualifies a list of columns with a table alias.
func prefixed(columns, alias string) string {
	fields := strings.Split(columns, ",")
	for i, f := range fields {
		fields[i] = alias + "." + strings.TrimSpace(f)
	}
	return strings.Join(fields, ", ")
}

func runQuery[T any](ctx context.Context, s *SQL, res *resource, extra, org string, q Query,
	scan func(r *sql.Rows, tail []any) (T, error)) (Result[T], error) {
	out := Result[T]{Items: []T{}}
	qs, err := s.buildQuery(res, extra, org, q)
	if err != nil {
		return out, err
	}
	counted := false
	if qs.count.sql == "" {
		if out.Total, err = s.count(ctx, org, res.count); err != nil {
			return out, fmt.Errorf("store: query %s: %w", res.table, err)
		}
		counted = true
		if q.After == "" && !q.Seek && q.Page.Offset >= out.Total {
			return out, nil
		}
	}
	if qs.page.sql != "" {
		var seq, gen int64
		tail := []any{&seq}
		if qs.positioned {
			tail = append(tail, &gen)
		}
		err := s.dynamic(ctx, qs.page, func(st *sqlx.Stmt, args []any) error {
			return scanRows(ctx, st, args, func(r *sql.Rows) error {
				t, err := scan(r, tail)
				out.Items = append(out.Items, t)
				return err
			})
		})
		if err != nil {
			return out, fmt.Errorf("store: query %s: %w", res.table, err)
		}
		rows := len(out.Items)
		if rows == 0 && q.After != "" && !q.Seek {
			// The positions moved since the cursor (or the list ends
			// there): read the page by its offset.
			q.After = ""
			return runQuery(ctx, s, res, extra, org, q, scan)
		}
		// An unpositioned page (a filtered first one) gives generation 0,
		// which no later read matches unless nothing was ever written.
		if q.SortBy.IsZero() && rows == q.Page.Limit {
			out.Next = cursor(seq, gen)
		}
		// A first page that is not full holds every match (the filters of
		// identity providers find one record or none): no count needed.
		if !counted && q.After == "" && (q.Page.Offset == 0 || q.Seek) && rows < q.Page.Limit {
			out.Total, counted = rows, true
		}
	}
	if !counted {
		if err := s.dynamic(ctx, qs.count, func(st *sqlx.Stmt, args []any) error { return st.GetContext(ctx, &out.Total, args...) }); err != nil {
			return out, fmt.Errorf("store: query %s: %w", res.table, err)
		}
	}
	return out, nil
}

// maxDynamicStatements bounds the query statements kept prepared: their
// text depends on the shape of a client's filter, which a client could
// vary without end.
const maxDynamicStatements = 1000

// dynamic runs a query built from a Query on the reader, through a kept
// prepared statement while fewer than maxDynamicStatements are kept, and
// prepared for this call alone after that.
func (s *SQL) dynamic(ctx context.Context, e expr, run func(st *sqlx.Stmt, args []any) error) error {
	if _, kept := s.stmts.Load(stmtKey{s.reader, e.sql}); kept || s.dynamicKept.Load() < maxDynamicStatements {
		st, err := s.stmt(ctx, s.reader, e.sql)
		if err != nil {
			return err
		}
		if !kept {
			s.dynamicKept.Add(1)
		}
		return unavailable(run(st, e.args))
	}
	st, err := s.reader.PreparexContext(ctx, s.reader.Rebind(e.sql))
	if err != nil {
		return unavailable(err)
	}
	defer st.Close()
	return unavailable(run(st, e.args))
}
