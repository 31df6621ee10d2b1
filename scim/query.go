package scim

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"gatehouse/scim/filter"
	"gatehouse/scim/schema"
	"gatehouse/store"
)

// Filters run in the database: the AST is translated to a store predicate,
// which the store renders as parameterized SQL. Attributes gatehouse models
// as columns (userName, externalId, emails, displayName, ...) use their
// indexes; the others are read from the stored JSON document.

// mapping is where the store finds a single-valued attribute.
type mapping struct {
	field store.Field
	// active maps the boolean active onto the status column.
	active bool
	// constant, when set, is the attribute's value for every resource of
	// the type (meta.resourceType).
	constant string
}

var (
	matchAll  store.Predicate = store.And{}
	matchNone store.Predicate = store.Or{}
)

func column(f store.Field) mapping { return mapping{field: f} }

// commonColumns are the store's fields of the attributes both resource
// types have, each its record kind's own.
type commonColumns struct{ id, externalID, created, lastModified store.Field }

// commonField maps the attributes both resource types have.
func (rt *resourceType) commonField(r schema.Resolved) (mapping, bool) {
	if r.Extension != nil {
		return mapping{}, false
	}
	switch r.Attr.Name {
	case "id":
		return column(rt.common.id), true
	case "externalId":
		return column(rt.common.externalID), true
	case "meta":
		switch {
		case r.Sub == nil:
		case r.Sub.Name == "created":
			return column(rt.common.created), true
		case r.Sub.Name == "lastModified":
			return column(rt.common.lastModified), true
		case r.Sub.Name == "resourceType":
			return mapping{constant: rt.schema.ID}, true
		}
	}
	return mapping{}, false
}

// jsonField maps an attribute kept in the resource's JSON document.
func jsonField(r schema.Resolved) store.Field {
	var path []string
	if r.Extension != nil {
		path = append(path, r.Extension.ID)
	}
	path = append(path, r.Attr.Name)
	if r.Sub != nil {
		path = append(path, r.Sub.Name)
	}
	return store.Field{Attr: path}
}

// predicate translates a filter for the resource type.
func (rt *resourceType) predicate(e filter.Expr) (store.Predicate, error) {
	switch e := e.(type) {
	case *filter.And:
		l, r, err := rt.predicates(e.Left, e.Right)
		return store.And{l, r}, err
	case *filter.Or:
		l, r, err := rt.predicates(e.Left, e.Right)
		return store.Or{l, r}, err
	case *filter.Not:
		p, err := rt.predicate(e.X)
		if err != nil {
			return nil, err
		}
		return store.Not{P: p}, nil
	case *filter.ValuePath:
		r, ok := rt.schema.Resolve(e.Attr.URN, e.Attr.Name, "")
		if !ok {
			return matchNone, nil
		}
		if r.Attr == nil || !r.Attr.MultiValued || r.Attr.Type != schema.Complex {
			return nil, errorf(http.StatusBadRequest, invalidFilter, "%s is not a multi-valued complex attribute; a [filter] needs one", e.Attr)
		}
		inner, err := elementPredicate(r.Attr, e.Filter)
		if err != nil {
			return nil, err
		}
		return store.Any{Attr: arrayName(r), Where: inner}, nil
	case *filter.Compare:
		return rt.compare(e)
	}
	return nil, errorf(http.StatusBadRequest, invalidFilter, "unsupported filter expression")
}

func (rt *resourceType) predicates(left, right filter.Expr) (store.Predicate, store.Predicate, error) {
	l, err := rt.predicate(left)
	if err != nil {
		return nil, nil, err
	}
	r, err := rt.predicate(right)
	return l, r, err
}

// arrayName is the store's name for a multi-valued attribute: the JSON
// key, qualified by the extension URN for extension attributes.
func arrayName(r schema.Resolved) string {
	if r.Extension != nil {
		return r.Extension.ID + ":" + r.Attr.Name
	}
	return r.Attr.Name
}

// compare translates one comparison. An attribute the resource type does
// not have matches nothing (so "not (x eq 1)" matches everything): Entra ID
// needs every filter to give a ListResponse.
func (rt *resourceType) compare(e *filter.Compare) (store.Predicate, error) {
	r, ok := rt.schema.Resolve(e.Attr.URN, e.Attr.Name, e.Attr.Sub)
	if !ok || r.Attr == nil {
		return matchNone, nil
	}
	if r.Attr.MultiValued {
		sub := r.Sub
		if sub == nil {
			if sub = r.Attr.Sub("value"); sub == nil {
				return nil, errorf(http.StatusBadRequest, invalidFilter, "name a sub-attribute of %s to compare", e.Attr)
			}
		}
		inner, err := comparison(store.Field{Attr: []string{sub.Name}}, sub, e)
		if err != nil {
			return nil, err
		}
		return store.Any{Attr: arrayName(r), Where: inner}, nil
	}
	target := r.Target()
	if target.Type == schema.Complex && e.Op == filter.Pr {
		// RFC 7644 §3.4.2.2: a complex attribute is present when it
		// "contains a non-empty node", so when one of its sub-attributes
		// is (meta always is: its resourceType is constant).
		present := store.Or{}
		for _, sub := range target.SubAttributes {
			p, err := rt.compare(&filter.Compare{Attr: filter.AttrPath{URN: e.Attr.URN, Name: e.Attr.Name, Sub: sub.Name}, Op: filter.Pr})
			if err != nil {
				return nil, err
			}
			if all, ok := p.(store.And); ok && len(all) == 0 { // matchAll
				return matchAll, nil
			}
			present = append(present, p)
		}
		return present, nil
	}
	if target.Type == schema.Complex {
		if target = r.Attr.Sub("value"); target == nil {
			return nil, errorf(http.StatusBadRequest, invalidFilter, "name a sub-attribute of %s to compare", e.Attr)
		}
		r.Sub = target
	}
	m, ok := rt.kind.field(r)
	if !ok {
		m, ok = rt.commonField(r)
	}
	if !ok {
		m = mapping{field: jsonField(r)}
	}
	switch {
	case m.constant != "":
		v, isString := e.Value.V.(string)
		match := e.Op == filter.Pr || isString && matchesConstant(e.Op, m.constant, v)
		if match {
			return matchAll, nil
		}
		return matchNone, nil
	case m.active:
		return activePredicate(e)
	}
	return comparison(m.field, target, e)
}

func matchesConstant(op filter.Op, constant, v string) bool {
	c, v := strings.ToLower(constant), strings.ToLower(v)
	switch op {
	case filter.Eq:
		return c == v
	case filter.Ne:
		return c != v
	case filter.Co:
		return strings.Contains(c, v)
	case filter.Sw:
		return strings.HasPrefix(c, v)
	case filter.Ew:
		return strings.HasSuffix(c, v)
	}
	return false
}

// activePredicate maps active onto the status: an administrator is active
// unless Deactivated.
func activePredicate(e *filter.Compare) (store.Predicate, error) {
	deactivated := store.Compare{Field: store.AdministratorStatus, Op: store.OpEq, Value: string(store.StatusDeactivated)}
	if e.Op == filter.Pr {
		return matchAll, nil
	}
	b, ok := boolValue(e.Value)
	if !ok || (e.Op != filter.Eq && e.Op != filter.Ne) {
		return nil, errorf(http.StatusBadRequest, invalidFilter, "active is a boolean: compare it with eq or ne and true or false")
	}
	if b == (e.Op == filter.Eq) {
		return store.Not{P: deactivated}, nil
	}
	return deactivated, nil
}

func boolValue(v filter.Value) (bool, bool) {
	switch x := v.V.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(x) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

// elementPredicate translates the filter inside attr[...]: its attribute
// names are attr's sub-attributes.
func elementPredicate(attr *schema.Attribute, e filter.Expr) (store.Predicate, error) {
	switch e := e.(type) {
	case *filter.And, *filter.Or:
		var l, r filter.Expr
		if a, ok := e.(*filter.And); ok {
			l, r = a.Left, a.Right
		} else {
			o := e.(*filter.Or)
			l, r = o.Left, o.Right
		}
		lp, err := elementPredicate(attr, l)
		if err != nil {
			return nil, err
		}
		rp, err := elementPredicate(attr, r)
		if err != nil {
			return nil, err
		}
		if _, ok := e.(*filter.And); ok {
			return store.And{lp, rp}, nil
		}
		return store.Or{lp, rp}, nil
	case *filter.Not:
		p, err := elementPredicate(attr, e.X)
		if err != nil {
			return nil, err
		}
		return store.Not{P: p}, nil
	case *filter.Compare:
		name := e.Attr.Name
		if e.Attr.URN != "" || e.Attr.Sub != "" {
			return nil, errorf(http.StatusBadRequest, invalidFilter, "inside %s[...] name a sub-attribute of %s, not %s", attr.Name, attr.Name, e.Attr)
		}
		sub := attr.Sub(name)
		if sub == nil {
			return matchNone, nil
		}
		return comparison(store.Field{Attr: []string{sub.Name}}, sub, e)
	}
	return nil, errorf(http.StatusBadRequest, invalidFilter, "a filter inside %s[...] cannot nest another [filter]", attr.Name)
}

// comparison builds the store comparison for attribute a, checking that the
// value fits a's type (RFC 7644 §3.4.2.2: strings compare as strings,
// dateTimes chronologically, booleans only with eq/ne).
func comparison(f store.Field, a *schema.Attribute, e *filter.Compare) (store.Predicate, error) {
	if e.Op == filter.Pr {
		return store.Compare{Field: f, Op: store.OpPresent}, nil
	}
	if e.Value.Kind == filter.KindNull {
		switch e.Op {
		case filter.Eq:
			return store.Not{P: store.Compare{Field: f, Op: store.OpPresent}}, nil
		case filter.Ne:
			return store.Compare{Field: f, Op: store.OpPresent}, nil
		}
		return nil, errorf(http.StatusBadRequest, invalidFilter, "null can only be compared with eq or ne")
	}
	op := store.Op(e.Op)
	bad := func(what string) error {
		return errorf(http.StatusBadRequest, invalidFilter, "%s is %s attribute; %s", e.Attr, article(a.Type), what)
	}
	switch a.Type {
	case schema.Boolean:
		b, ok := boolValue(e.Value)
		if !ok {
			return nil, bad("compare it with true or false")
		}
		if e.Op != filter.Eq && e.Op != filter.Ne {
			return nil, bad("only eq and ne apply")
		}
		return store.Compare{Field: f, Op: op, Value: b}, nil
	case schema.Integer, schema.Decimal:
		n, ok := e.Value.V.(json.Number)
		if !ok {
			return nil, bad("compare it with a number")
		}
		x, err := n.Float64()
		if err != nil {
			return nil, bad("compare it with a number")
		}
		if e.Op == filter.Co || e.Op == filter.Sw || e.Op == filter.Ew {
			return nil, bad("co, sw and ew apply to strings")
		}
		return store.Compare{Field: f, Op: op, Value: x}, nil
	case schema.DateTime:
		s, ok := e.Value.V.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if !ok || err != nil {
			return nil, bad(`compare it with a quoted xsd:dateTime such as "2026-11-23T10:00:00Z"`)
		}
		if !f.IsColumn() {
			// In the JSON document a dateTime is the string as sent.
			return store.Compare{Field: f, Op: op, Value: s}, nil
		}
		return store.Compare{Field: f, Op: op, Value: t.UTC()}, nil
	}
	s, ok := e.Value.V.(string)
	if !ok {
		return nil, bad("compare it with a quoted string")
	}
	return store.Compare{Field: f, Op: op, Value: s, Fold: !a.CaseExact}, nil
}

func article(t schema.Type) string {
	if t == schema.Integer {
		return "an integer"
	}
	return "a " + string(t)
}

// sortField maps sortBy (RFC 7644 §3.4.2.3); fold is true for attributes
// that compare case-insensitively. A multi-valued attribute sorts by its
// primary value, which gatehouse keeps for emails only; other attributes
// it cannot sort by leave the default order.
func (rt *resourceType) sortField(sortBy string) (f store.Field, fold, ok bool) {
	p, err := filter.ParsePath(sortBy)
	if err != nil || p.Filter != nil {
		return store.Field{}, false, false
	}
	r, ok := rt.schema.Resolve(p.Attr.URN, p.Attr.Name, p.Attr.Sub)
	if !ok || r.Attr == nil {
		return store.Field{}, false, false
	}
	if r.Attr.MultiValued {
		if r.Attr.Name == "emails" && r.Extension == nil {
			return store.AdministratorEmail, true, true
		}
		return store.Field{}, false, false
	}
	target := r.Target()
	if target.Type == schema.Complex {
		return store.Field{}, false, false
	}
	fold = target.Type == schema.String && !target.CaseExact
	m, ok := rt.kind.field(r)
	if !ok {
		m, ok = rt.commonField(r)
	}
	if !ok {
		return jsonField(r), fold, true
	}
	if m.active || m.constant != "" {
		return store.Field{}, false, false
	}
	return m.field, fold, true
}
