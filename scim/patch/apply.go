package patch

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"gatehouse/scim/filter"
	"gatehouse/scim/schema"
)

// Apply applies ops, in order, to a copy of doc and returns the copy; doc is
// not modified. doc is a resource of type rt in canonical form (as
// schema.Normalize makes it, plus the attributes the server sets, which
// PATCH cannot change and Apply leaves as they are). Either every operation
// applies or Apply returns an *Error and nothing else.
//
// For a resource type with a multi-valued "members" attribute (Groups),
// members are not part of the document: a group may have 100,000 of them.
// Every operation on "members" is turned into the returned MemberChange
// instead, any "members" in doc is ignored, and the result has none.
//
// What the operations write is coerced by schema.Coerce and spelled as in
// the schema; unassigned values (null, empty lists and objects) are removed,
// as schema.Normalize does; and the result must have every required
// attribute (schema.CheckRequired), else the error is invalidValue.
func Apply(rt *schema.ResourceType, doc map[string]any, ops []Operation) (map[string]any, MemberChange, error) {
	a := &applier{rt: rt, doc: copyObject(doc)}
	if m := rt.Schema.Attribute("members"); m != nil && m.MultiValued && m.Type == schema.Complex {
		a.members = m
		setKey(a.doc, m.Name, nil)
	}
	for i, op := range ops {
		if err := a.apply(op); err != nil {
			return nil, MemberChange{}, &Error{ScimType: err.ScimType, Detail: fmt.Sprintf("Operations[%d]: %s", i, err.Detail)}
		}
	}
	prune(a.doc)
	if err := schema.CheckRequired(rt, a.doc); err != nil {
		return nil, MemberChange{}, valueError(err)
	}
	return a.doc, a.change.result(), nil
}

type applier struct {
	rt      *schema.ResourceType
	doc     map[string]any    // the working copy
	members *schema.Attribute // rt's members attribute, or nil
	change  memberChange
	visits  int // values of multi-valued attributes looked at so far
}

// maxVisits bounds the values of multi-valued attributes one request may
// make Apply look at. Each operation on such an attribute scans its values,
// so without a bound MaxOperations small operations on a long list would
// cost quadratic time: 5,000 one-value adds took seconds.
const maxVisits = 100_000

// visit accounts for an operation that looks at n values.
func (a *applier) visit(n int) *Error {
	a.visits += n
	if a.visits > maxVisits {
		// RFC 7644 §3.12: tooMany is "more than the server is willing to
		// calculate or process".
		return errorf(TooMany, "the request makes the server examine more than %d values of multi-valued attributes; split it into smaller requests", maxVisits)
	}
	return nil
}

// target is a PATCH path resolved against the schema.
type target struct {
	ext    *schema.Schema    // the extension holding attr; nil for core and common attributes
	attr   *schema.Attribute // nil when the path is a whole extension
	filter filter.Expr       // value filter on attr, or nil
	sub    *schema.Attribute // the sub-attribute (attr.sub or attr[filter].sub), or nil
}

// name is the attribute path in schema spelling, for messages.
func (t target) name() string {
	s := t.attr.Name
	if t.ext != nil {
		s = t.ext.ID + ":" + s
	}
	return s
}

func (t target) subName() string { return t.name() + "." + t.sub.Name }

// targetName is subName when the path names a sub-attribute, else name.
func (t target) targetName() string {
	if t.sub != nil {
		return t.subName()
	}
	return t.name()
}

func (a *applier) apply(op Operation) *Error {
	var kind string
	for _, k := range []string{Add, Replace, Remove} {
		if strings.EqualFold(op.Op, k) {
			kind = k
		}
	}
	switch {
	case kind == "":
		return errorf(InvalidSyntax, `"op" must be "add", "replace" or "remove", not %s`, quote(op.Op))
	case op.Path == nil && kind == Remove:
		return errorf(NoTarget, `"remove" needs a "path"`)
	case op.Path == nil:
		return a.applyObject(kind, op.Value)
	case kind == Remove:
		return a.remove(*op.Path, op.Value)
	}
	return a.set(kind, *op.Path, op.Value, true)
}

// applyObject applies an add or replace without a path (RFC 7644 §3.5.2.1,
// §3.5.2.3): each key of the value is handled as if it were the path of an
// operation of its own. Keys are taken in sorted order, so that a whole
// attribute ("name") comes before its parts ("name.givenName") and the
// result does not depend on map order.
func (a *applier) applyObject(kind string, v any) *Error {
	m, ok := v.(map[string]any)
	if !ok {
		return errorf(InvalidValue, `%q without a "path" needs an object of attributes as its "value"`, kind)
	}
	for _, k := range sortedKeys(m) {
		p, err := filter.ParsePath(k)
		if err != nil {
			continue // not an attribute path: ignored like an unknown attribute
		}
		if err := a.set(kind, p, m[k], false); err != nil {
			return err
		}
	}
	return nil
}

// sortedKeys returns the keys of m in case-insensitive order, then in
// byte order.
func sortedKeys(m map[string]any) []string {
	type key struct{ lower, k string }
	keys := make([]key, 0, len(m))
	for k := range m {
		keys = append(keys, key{strings.ToLower(k), k})
	}
	slices.SortFunc(keys, func(x, y key) int {
		if c := strings.Compare(x.lower, y.lower); c != 0 {
			return c
		}
		return strings.Compare(x.k, y.k)
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.k
	}
	return out
}

// isSchemas reports whether p names "schemas", which the server derives
// from the attributes a resource has (RFC 7643 §3): operations on it are
// accepted and have no effect.
func isSchemas(p filter.Path) bool {
	return p.Attr.URN == "" && strings.EqualFold(p.Attr.Name, "schemas")
}

// resolve finds the attributes p names.
func (a *applier) resolve(p filter.Path) (target, *Error) {
	r, ok := a.rt.Resolve(p.Attr.URN, p.Attr.Name, p.Attr.Sub)
	if !ok {
		return target{}, errorf(InvalidPath, "%s is not an attribute of %s", quote(p.Attr.String()), a.rt.Name)
	}
	t := target{ext: r.Extension, attr: r.Attr, filter: p.Filter, sub: r.Sub}
	if p.Filter == nil {
		return t, nil
	}
	if t.attr == nil || !t.attr.MultiValued || t.attr.Type != schema.Complex {
		return target{}, errorf(InvalidPath, "%s: a value filter applies only to a multi-valued complex attribute", quote(p.String()))
	}
	if p.Sub != "" {
		if t.sub = t.attr.Sub(p.Sub); t.sub == nil {
			return target{}, errorf(InvalidPath, "%s has no sub-attribute %s", t.name(), quote(p.Sub))
		}
	}
	var bad *Error
	filter.Walk(p.Filter, func(e filter.Expr) bool {
		switch e := e.(type) {
		case *filter.Compare:
			if bad == nil && (e.Attr.URN != "" || e.Attr.Sub != "" || t.attr.Sub(e.Attr.Name) == nil) {
				bad = errorf(InvalidFilter, "%s has no sub-attribute %s", t.name(), quote(e.Attr.String()))
			}
		case *filter.ValuePath:
			if bad == nil {
				bad = errorf(InvalidFilter, "value filters cannot be nested")
			}
			return false
		}
		return true
	})
	return t, bad
}

// readOnly reports whether the target is set by the server only.
func (t target) readOnly() bool {
	return t.attr.Mutability == schema.ReadOnly || t.sub != nil && t.sub.Mutability == schema.ReadOnly
}

// set applies an add or replace to the target at p. explicit is false for
// the keys of a value map (no path), where unknown and read-only
// attributes are ignored (Okta sends "id" with every group rename).
func (a *applier) set(kind string, p filter.Path, v any, explicit bool) *Error {
	if isSchemas(p) {
		return nil
	}
	t, err := a.resolve(p)
	switch {
	case err != nil && explicit:
		return err
	case err != nil:
		return nil
	case t.attr == nil && !hasWritable(t.ext) && explicit:
		return errorf(Mutability, "%s is read-only", t.ext.ID)
	case t.attr == nil && !hasWritable(t.ext):
		return nil
	case t.attr == nil:
		return a.setExtension(kind, t.ext, v)
	case t.readOnly() && explicit:
		return errorf(Mutability, "%s is read-only", t.targetName())
	case t.readOnly():
		return nil
	case t.attr.Mutability == schema.WriteOnly:
		// The password: checked, then discarded (gatehouse never stores
		// it). In a value map it is dropped unchecked, as Normalize does.
		if explicit {
			if _, err := schema.Coerce(t.attr, v, t.name()); err != nil {
				return valueError(err)
			}
		}
		return nil
	case t.attr == a.members:
		return a.changeMembers(kind, t, v)
	case t.filter != nil:
		return a.setFiltered(kind, t, v)
	case t.sub != nil && t.attr.MultiValued:
		return errorf(InvalidPath, "%s: select the values of %s with a value filter, such as %s[type eq \"work\"].%s",
			quote(p.String()), t.attr.Name, t.attr.Name, t.sub.Name)
	case t.sub != nil:
		return a.setSub(kind, t, v)
	}
	return a.setAttr(kind, t, v)
}

// container returns the object that holds t's attribute: the resource, or
// the extension's object (made when create is set; nil otherwise if absent).
func (a *applier) container(ext *schema.Schema, create bool) map[string]any {
	if ext == nil {
		return a.doc
	}
	m, _ := get(a.doc, ext.ID).(map[string]any)
	if m == nil && create {
		m = map[string]any{}
	}
	if m != nil {
		setKey(a.doc, ext.ID, m)
	}
	return m
}

// hasWritable reports whether a client may write some attribute of ext
// (gatehouse's own extension is all read-only).
func hasWritable(ext *schema.Schema) bool {
	return slices.ContainsFunc(ext.Attributes, func(a *schema.Attribute) bool { return a.Mutability != schema.ReadOnly })
}

// setExtension handles a path, or a key of a value map, that names a whole
// extension: the keys of its object value are handled like those of a
// value map without a path, and null unassigns what a client may write.
func (a *applier) setExtension(kind string, ext *schema.Schema, v any) *Error {
	if v == nil {
		if kind == Replace {
			return a.removeExtension(ext)
		}
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return errorf(InvalidValue, "%s must be an object", ext.ID)
	}
	for _, k := range sortedKeys(m) {
		p, err := filter.ParsePath(k)
		if err != nil || p.Attr.URN != "" || isSchemas(p) {
			continue
		}
		p.Attr.URN = ext.ID
		if err := a.set(kind, p, m[k], false); err != nil {
			return err
		}
	}
	return nil
}

// setAttr sets a whole attribute.
func (a *applier) setAttr(kind string, t target, v any) *Error {
	c := a.container(t.ext, v != nil)
	old := get(c, t.attr.Name)
	var nv any
	switch {
	case v == nil && kind == Add:
		return nil // adding nothing
	case v == nil:
		// replace with null unassigns, as in a PUT (RFC 7644 §3.5.1).
	case t.attr.MultiValued:
		cv, err := schema.Coerce(t.attr, v, t.name())
		if err != nil {
			return valueError(err)
		}
		if kind == Replace {
			nv = cv
			break
		}
		if cv == nil {
			return nil
		}
		list, _ := old.([]any)
		if err := a.visit(len(list) + len(cv.([]any))); err != nil {
			return err
		}
		nv = appendNew(t.attr, list, cv.([]any))
	case t.attr.Type == schema.Complex:
		// RFC 7644 §3.5.2.1 and §3.5.2.3: the sub-attributes given are
		// set, the others are left as they are.
		cv, err := schema.CoerceValue(t.attr, v, t.name())
		if err != nil {
			return valueError(err)
		}
		if cv == nil {
			return nil
		}
		var err2 *Error
		if nv, err2 = merge(t.attr, old, cv.(map[string]any), t.name()); err2 != nil {
			return err2
		}
	default:
		cv, err := schema.Coerce(t.attr, v, t.name())
		if err != nil {
			return valueError(err)
		}
		nv = cv
	}
	if err := checkImmutable(t.attr, old, nv, t.name()); err != nil {
		return err
	}
	setKey(c, t.attr.Name, nv)
	return nil
}

// appendNew returns old followed by the values of add that are not equal
// to a value already there (RFC 7644 §3.5.2.1: adding a value the attribute
// already holds changes nothing).
func appendNew(attr *schema.Attribute, list, add []any) []any {
	out := slices.Clip(list)
	seen := make(map[string]bool, len(list)+len(add))
	for _, e := range list {
		seen[valueKey(attr, e)] = true
	}
	touched := make([]bool, len(list), len(list)+len(add))
	for _, e := range add {
		k := valueKey(attr, e)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
		touched = append(touched, true)
	}
	return keepOnePrimary(attr, out, touched)
}

// setSub sets one sub-attribute of a single-valued complex attribute.
func (a *applier) setSub(kind string, t target, v any) *Error {
	if v == nil {
		if kind == Add {
			return nil
		}
		return a.removeSub(t)
	}
	cv, err := schema.Coerce(t.sub, v, t.subName())
	if err != nil {
		return valueError(err)
	}
	if cv == nil {
		return nil
	}
	c := a.container(t.ext, true)
	old := get(c, t.attr.Name)
	nv, err2 := merge(t.attr, old, map[string]any{t.sub.Name: cv}, t.name())
	if err2 != nil {
		return err2
	}
	if err := checkImmutable(t.attr, old, nv, t.name()); err != nil {
		return err
	}
	setKey(c, t.attr.Name, nv)
	return nil
}

// setFiltered applies an add or replace whose path has a value filter,
// emails[type eq "work"] or emails[type eq "work"].value: every matching
// element gets the value (merged into it, RFC 7644 §3.5.2.3), or just the
// sub-attribute.
//
// When nothing matches, RFC 7644 §3.5.2.3 answers noTarget. gatehouse
// instead appends a new element made of the filter's "eq" comparisons and
// the value, provided that element matches the filter: Entra ID sends
// {"op":"Replace","path":"emails[type eq \"work\"].value","value":"x"}
// (and the same with "Add") for a user who has no work email yet, and
// expects one to be made.
func (a *applier) setFiltered(kind string, t target, v any) *Error {
	if v == nil {
		if kind == Add {
			return nil
		}
		return a.removeFiltered(t)
	}
	var add map[string]any
	if t.sub != nil {
		cv, err := schema.Coerce(t.sub, v, t.subName())
		if err != nil {
			return valueError(err)
		}
		if cv == nil {
			return nil
		}
		add = map[string]any{t.sub.Name: cv}
	} else {
		cv, err := schema.CoerceValue(t.attr, v, t.name())
		if err != nil {
			return valueError(err)
		}
		if cv == nil {
			return nil
		}
		add = cv.(map[string]any)
	}
	c := a.container(t.ext, true)
	old := get(c, t.attr.Name)
	list, _ := old.([]any)
	if err := a.visit(len(list)); err != nil {
		return err
	}
	out := make([]any, len(list), len(list)+1)
	touched := make([]bool, len(list), len(list)+1)
	exact := subCaseExact(t.attr)
	matched := false
	for i, e := range list {
		out[i] = e
		el, ok := e.(map[string]any)
		if !ok || !filter.Match(t.filter, el, exact) {
			continue
		}
		m, err := merge(t.attr, el, add, t.name())
		if err != nil {
			return err
		}
		out[i], touched[i], matched = m, true, true
	}
	if !matched {
		el, ok := elementFromFilter(t.attr, t.filter, add)
		if !ok {
			return errorf(NoTarget, "no value of %s matches [%s], and the filter does not describe a new one",
				t.name(), truncate(t.filter.String()))
		}
		out = append(out, el)
		touched = append(touched, true)
	}
	nv := keepOnePrimary(t.attr, out, touched)
	if err := checkImmutable(t.attr, old, nv, t.name()); err != nil {
		return err
	}
	setKey(c, t.attr.Name, nv)
	return nil
}

// elementFromFilter builds the element that an add or replace with an
// unmatched value filter appends: the filter's "eq" comparisons joined by
// "and" (type eq "work" gives type: "work"), with add merged over them.
// ok is false when the element would not match the filter itself (an "or",
// a "co", a read-only sub-attribute...).
func elementFromFilter(attr *schema.Attribute, f filter.Expr, add map[string]any) (map[string]any, bool) {
	el := map[string]any{}
	var eqs func(filter.Expr)
	eqs = func(e filter.Expr) {
		switch e := e.(type) {
		case *filter.And:
			eqs(e.Left)
			eqs(e.Right)
		case *filter.Compare:
			if sub := attr.Sub(e.Attr.Name); sub != nil && e.Op == filter.Eq && e.Value.Kind != filter.KindNull {
				el[sub.Name] = e.Value.V
			}
		}
	}
	eqs(f)
	for k, v := range add {
		el[k] = v
	}
	cv, err := schema.CoerceValue(attr, el, attr.Name)
	m, ok := cv.(map[string]any)
	if err != nil || !ok || !filter.Match(f, m, subCaseExact(attr)) {
		return nil, false
	}
	return m, true
}

// subCaseExact tells filter.Match which sub-attributes of attr compare
// case-sensitively (emails.value does not, members.value does).
func subCaseExact(attr *schema.Attribute) func(filter.AttrPath) bool {
	return func(p filter.AttrPath) bool {
		s := attr.Sub(p.Name)
		return s != nil && s.CaseExact
	}
}

// keepOnePrimary applies RFC 7644 §3.5.2: when an operation sets
// "primary" to true on a value, the server sets it to false on the other
// values. touched marks the values the operation wrote.
func keepOnePrimary(attr *schema.Attribute, list []any, touched []bool) []any {
	sub := attr.Sub("primary")
	if sub == nil || sub.Type != schema.Boolean {
		return list
	}
	primary := func(e any) bool {
		el, _ := e.(map[string]any)
		p, _ := el[sub.Name].(bool)
		return p
	}
	set := false
	for i, e := range list {
		set = set || touched[i] && primary(e)
	}
	if !set {
		return list
	}
	for i, e := range list {
		if !touched[i] && primary(e) {
			el := copyObject(e.(map[string]any))
			el[sub.Name] = false
			list[i] = el
		}
	}
	return list
}

// merge returns a copy of the complex value old with the sub-attributes of
// add set over it. Read-only sub-attributes of old (manager.displayName)
// are dropped: the server derived them from the value being changed.
func merge(attr *schema.Attribute, old any, add map[string]any, name string) (map[string]any, *Error) {
	prev, _ := old.(map[string]any)
	out := make(map[string]any, len(prev)+len(add))
	for k, v := range prev {
		if sub := attr.Sub(k); sub != nil && sub.Mutability == schema.ReadOnly {
			continue
		}
		out[k] = v
	}
	for k, v := range add {
		if sub := attr.Sub(k); sub != nil {
			if err := checkImmutable(sub, get(out, k), v, name+"."+sub.Name); err != nil {
				return nil, err
			}
		}
		setKey(out, k, v)
	}
	return out, nil
}

// checkImmutable refuses to change an immutable attribute that has a
// value (RFC 7643 §7: it may be set when absent, never changed).
func checkImmutable(attr *schema.Attribute, old, nv any, name string) *Error {
	if attr.Mutability != schema.Immutable || !present(old) || valueKey(attr, old) == valueKey(attr, nv) {
		return nil
	}
	return errorf(Mutability, "%s is immutable: it cannot be changed once set", name)
}

// remove applies a remove operation (RFC 7644 §3.5.2.2).
func (a *applier) remove(p filter.Path, v any) *Error {
	if isSchemas(p) {
		return nil
	}
	t, err := a.resolve(p)
	switch {
	case err != nil:
		return err
	case t.attr == nil:
		return a.removeExtension(t.ext)
	case t.readOnly():
		return errorf(Mutability, "%s is read-only", t.targetName())
	case t.attr.Mutability == schema.WriteOnly:
		return nil // never stored
	case t.attr == a.members:
		return a.changeMembers(Remove, t, v)
	case t.filter != nil, t.sub != nil && t.attr.MultiValued:
		return a.removeFiltered(t)
	case t.sub != nil:
		return a.removeSub(t)
	case t.attr.MultiValued && v != nil:
		return a.removeValues(t, v)
	case t.attr.Required:
		return errorf(Mutability, "%s is required and cannot be removed", t.name())
	}
	c := a.container(t.ext, false)
	if err := checkImmutable(t.attr, get(c, t.attr.Name), nil, t.name()); err != nil {
		return err
	}
	setKey(c, t.attr.Name, nil)
	return nil
}

// removeExtension unassigns the attributes of an extension that a client
// may write; the server's own (read-only) stay.
func (a *applier) removeExtension(ext *schema.Schema) *Error {
	if !hasWritable(ext) {
		return errorf(Mutability, "%s is read-only", ext.ID)
	}
	c := a.container(ext, false)
	for _, attr := range ext.Attributes {
		if attr.Mutability == schema.ReadOnly {
			continue
		}
		name := ext.ID + ":" + attr.Name
		if attr.Required {
			return errorf(Mutability, "%s is required and cannot be removed", name)
		}
		if err := checkImmutable(attr, get(c, attr.Name), nil, name); err != nil {
			return err
		}
		setKey(c, attr.Name, nil)
	}
	return nil
}

// removeSub unassigns a sub-attribute of a single-valued complex attribute.
func (a *applier) removeSub(t target) *Error {
	if t.sub.Required {
		return errorf(Mutability, "%s is required and cannot be removed", t.subName())
	}
	c := a.container(t.ext, false)
	old, _ := get(c, t.attr.Name).(map[string]any)
	if err := checkImmutable(t.sub, get(old, t.sub.Name), nil, t.subName()); err != nil {
		return err
	}
	if old != nil {
		nv := copyObject(old)
		setKey(nv, t.sub.Name, nil)
		setKey(c, t.attr.Name, nv)
	}
	return nil
}

// removeFiltered removes the elements of a multi-valued attribute that
// match t's filter, or only their sub-attribute t.sub; without a filter,
// t.sub is removed from every element. No match is not an error
// (RFC 7644 §3.5.2.2 asks for noTarget only when the path is missing).
func (a *applier) removeFiltered(t target) *Error {
	if t.sub != nil && t.sub.Required {
		return errorf(Mutability, "%s is required and cannot be removed", t.subName())
	}
	c := a.container(t.ext, false)
	old := get(c, t.attr.Name)
	list, _ := old.([]any)
	if err := a.visit(len(list)); err != nil {
		return err
	}
	exact := subCaseExact(t.attr)
	out := make([]any, 0, len(list))
	for _, e := range list {
		el, ok := e.(map[string]any)
		if !ok || t.filter != nil && !filter.Match(t.filter, el, exact) {
			out = append(out, e)
			continue
		}
		if t.sub == nil {
			continue
		}
		if err := checkImmutable(t.sub, get(el, t.sub.Name), nil, t.subName()); err != nil {
			return err
		}
		nel := copyObject(el)
		setKey(nel, t.sub.Name, nil)
		out = append(out, nel)
	}
	if err := checkImmutable(t.attr, old, out, t.name()); err != nil {
		return err
	}
	if len(list) > 0 {
		setKey(c, t.attr.Name, out)
	}
	return nil
}

// removeValues removes the elements of a multi-valued attribute that equal
// one of the values given, comparing only the sub-attributes each given
// value has: {"value": "x@example.com"} removes that address whatever its
// type. RFC 7644 §3.5.2.2 gives remove no value; Entra ID sends one to
// remove group members, and other attributes accept the same form.
func (a *applier) removeValues(t target, v any) *Error {
	cv, err := schema.Coerce(t.attr, v, t.name())
	if err != nil {
		return valueError(err)
	}
	given, _ := cv.([]any)
	c := a.container(t.ext, false)
	old := get(c, t.attr.Name)
	list, _ := old.([]any)
	if len(given) == 0 || len(list) == 0 {
		return nil
	}
	if err := a.visit(len(list) + len(given)); err != nil {
		return err
	}
	// Group the given values by the sub-attributes they name, so that each
	// element is checked once per group rather than once per value.
	type group struct {
		subs []string
		keys map[string]bool
	}
	var groups []*group
	bySubs := map[string]*group{}
	for _, g := range given {
		subs := []string{""}
		if m, ok := g.(map[string]any); ok {
			subs = sortedKeys(m)
		}
		sig := strings.Join(subs, "\x00")
		gr := bySubs[sig]
		if gr == nil {
			gr = &group{subs: subs, keys: map[string]bool{}}
			bySubs[sig] = gr
			groups = append(groups, gr)
		}
		gr.keys[projectKey(t.attr, g, subs)] = true
	}
	out := make([]any, 0, len(list))
	if err := a.visit(len(list) * (len(groups) - 1)); err != nil {
		return err
	}
	for _, e := range list {
		drop := false
		for _, gr := range groups {
			if drop = gr.keys[projectKey(t.attr, e, gr.subs)]; drop {
				break
			}
		}
		if !drop {
			out = append(out, e)
		}
	}
	if err := checkImmutable(t.attr, old, out, t.name()); err != nil {
		return err
	}
	setKey(c, t.attr.Name, out)
	return nil
}

func valueError(err error) *Error {
	var ve *schema.ValueError
	if errors.As(err, &ve) {
		return errorf(InvalidValue, "%s", ve.Error())
	}
	return errorf(InvalidValue, "invalid value")
}
