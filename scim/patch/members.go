package patch

import (
	"fmt"
	"strings"

	"gatehouse/scim/filter"
	"gatehouse/scim/schema"
)

// MemberChange is the net effect of a PATCH on a group's members, to be
// applied in this order: when RemoveAll, remove every member; then remove
// the Remove ids; then add the Add ids. Remove and Add are disjoint and
// free of duplicates, in the order the ids first appeared in the request.
// The ids are not checked against the store.
type MemberChange struct {
	RemoveAll   bool
	Remove, Add []string
}

// changeMembers turns an operation on "members" into member changes. The
// forms accepted:
//
//	add     members                      value: a member or a list   Add
//	replace members                      value: a list, [] or null   RemoveAll, Add
//	remove  members                      no value                    RemoveAll
//	remove  members                      value: a member or a list   Remove (Entra ID)
//	remove  members[value eq "id"]                                   Remove (Okta, Entra ID)
//	remove  members[value eq "a" or value eq "b"]                    Remove
//
// and, for add and replace, a "members" key in a value map without a path.
func (a *applier) changeMembers(kind string, t target, v any) *Error {
	switch {
	case t.sub != nil:
		return errorf(Mutability, "the sub-attributes of members cannot be changed: add or remove the member instead")
	case t.filter != nil && kind != Remove:
		return errorf(InvalidPath, `a value filter on members is supported only with "remove"; add members with the path "members"`)
	case t.filter != nil:
		ids, err := memberFilterIDs(t.filter)
		if err != nil {
			return err
		}
		a.change.remove(ids)
		return nil
	case kind == Remove && v == nil:
		a.change.removeAll()
		return nil
	}
	ids, err := memberIDs(t.attr, v)
	if err != nil {
		return err
	}
	switch kind {
	case Add:
		a.change.add(ids)
	case Replace:
		a.change.removeAll()
		a.change.add(ids)
	case Remove:
		a.change.remove(ids)
	}
	return nil
}

// memberIDs reads the ids of a member value: a list of members, or one
// member; a member is {"value": "id", ...} or, through schema.CoerceValue,
// the bare id.
func memberIDs(attr *schema.Attribute, v any) ([]string, *Error) {
	list, ok := v.([]any)
	if !ok {
		if v == nil {
			return nil, nil
		}
		list = []any{v}
	}
	ids := make([]string, 0, len(list))
	for i, e := range list {
		if e == nil {
			continue
		}
		name := fmt.Sprintf("%s[%d]", attr.Name, i)
		cv, err := schema.CoerceValue(attr, e, name)
		if err != nil {
			return nil, valueError(err)
		}
		m, _ := cv.(map[string]any)
		id, _ := m["value"].(string)
		if id == "" {
			return nil, errorf(InvalidValue, `%s: a member needs a "value" holding the member's id`, name)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// memberFilterIDs reads the ids of a members filter: value eq "id", or
// several joined by "or". Other filters would need the member list, which
// is not loaded for a PATCH.
func memberFilterIDs(e filter.Expr) ([]string, *Error) {
	var ids []string
	stack := []filter.Expr{e}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if or, ok := x.(*filter.Or); ok {
			stack = append(stack, or.Right, or.Left)
			continue
		}
		c, ok := x.(*filter.Compare)
		if !ok || c.Attr.URN != "" || c.Attr.Sub != "" || !strings.EqualFold(c.Attr.Name, "value") ||
			c.Op != filter.Eq || c.Value.Kind != filter.KindString {
			return nil, errorf(InvalidFilter, `a members filter must be value eq "id", or several joined by "or", `+
				`such as members[value eq "a" or value eq "b"]; found [%s]`, truncate(e.String()))
		}
		// No member has the empty id: value eq "" matches none, so it
		// removes nothing (found by FuzzApply).
		if id := c.Value.V.(string); id != "" {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// memberChange accumulates the net member change of a request in time
// linear in the number of ids.
type memberChange struct {
	all         bool
	rem, adding idSet
}

// add cancels a pending removal of the ids; they are added (a member
// already there stays).
func (c *memberChange) add(ids []string) {
	for _, id := range ids {
		c.rem.drop(id)
		c.adding.put(id)
	}
}

// remove cancels a pending addition of the ids and, unless every member is
// removed anyway, records their removal.
func (c *memberChange) remove(ids []string) {
	for _, id := range ids {
		c.adding.drop(id)
		if !c.all {
			c.rem.put(id)
		}
	}
}

func (c *memberChange) removeAll() {
	c.all = true
	c.rem, c.adding = idSet{}, idSet{}
}

func (c *memberChange) result() MemberChange {
	return MemberChange{RemoveAll: c.all, Remove: c.rem.list(), Add: c.adding.list()}
}

// idSet is a set of ids that remembers the order in which ids first
// entered it.
type idSet struct {
	order []string
	in    map[string]bool // false: was in the set, dropped since
}

func (s *idSet) put(id string) {
	if s.in == nil {
		s.in = map[string]bool{}
	}
	if _, seen := s.in[id]; !seen {
		s.order = append(s.order, id)
	}
	s.in[id] = true
}

func (s *idSet) drop(id string) {
	if s.in[id] {
		s.in[id] = false
	}
}

func (s *idSet) list() []string {
	var out []string
	for _, id := range s.order {
		if s.in[id] {
			out = append(out, id)
		}
	}
	return out
}
