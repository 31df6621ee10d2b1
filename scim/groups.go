package scim

import (
	"context"
	"errors"
	"net/http"

	"gatehouse/scim/patch"
	"gatehouse/scim/schema"
	"gatehouse/store"
)

// groupKind serves Groups. Members are rows of their own in the store:
// membership changes touch only the members named, so adding one member to
// a group of 100,000 costs what it costs on a group of 100.
type groupKind struct{}

// patchStatus: Entra ID and Okta both accept 204 for a group PATCH, and it
// spares rendering a large member list.
func (groupKind) patchStatus() int { return http.StatusNoContent }

func (groupKind) field(r schema.Resolved) (mapping, bool) {
	if r.Extension == nil && r.Attr.Name == "displayName" {
		return column(store.GroupDisplayName), true
	}
	return mapping{}, false
}

// renderGroup is the SCIM representation of a group; members is nil when
// the projection leaves them out.
func (s *Server) renderGroup(g store.Group, members []store.GroupMember) map[string]any {
	doc := map[string]any{
		"schemas":     []any{schema.GroupURN},
		"id":          g.ID,
		"displayName": g.DisplayName,
		"meta": map[string]any{
			"resourceType": "Group",
			"created":      timeString(g.CreatedAt),
			"lastModified": timeString(g.UpdatedAt),
			"location":     s.location(schema.Groups, g.ID),
			"version":      entityTag(g.Version, nil),
		},
	}
	if g.ExternalID != "" {
		doc["externalId"] = g.ExternalID
	}
	if len(members) > 0 {
		ms := make([]any, len(members))
		for i, m := range members {
			ms[i] = map[string]any{"value": m.AdministratorID, "display": m.UserName, "type": "User",
				"$ref": s.location(schema.Users, m.AdministratorID)}
		}
		doc["members"] = ms
	}
	return doc
}

func (c *call) groupResource(g store.Group, withMembers bool) (resource, error) {
	var members []store.GroupMember
	if withMembers {
		var err error
		members, _, err = c.s.store.GroupMembers(c.r.Context(), c.org.ID, g.ID, store.Page{Limit: maxMembersShown})
		if err != nil {
			return resource{}, err
		}
	}
	return resource{id: g.ID, etag: entityTag(g.Version, nil), doc: c.s.renderGroup(g, members)}, nil
}

// maxMembersShown bounds the members rendered in one response. Okta and
// Entra ID read membership through their own state and PATCH it; a client
// that needs a larger group in full can filter Users by groups.value.
const maxMembersShown = 100000

// groupInput is a Group as a client writes it in full (POST, PUT).
type groupInput struct {
	displayName, externalID string
	members                 []string // ids of Users
}

// parseGroup reads a normalized Group document.
func parseGroup(doc map[string]any) (groupInput, error) {
	var in groupInput
	if err := in.setFields(doc); err != nil {
		return groupInput{}, err
	}
	list, _ := doc["members"].([]any)
	in.members = make([]string, 0, len(list))
	for _, e := range list {
		m, _ := e.(map[string]any)
		v, _ := m["value"].(string)
		if v == "" {
			return groupInput{}, &schema.ValueError{Path: "members", Msg: "each member needs a value: the id of a User"}
		}
		in.members = append(in.members, v)
	}
	return in, nil
}

// setFields reads the group's own attributes of a normalized document.
func (in *groupInput) setFields(doc map[string]any) error {
	name, _ := doc["displayName"].(string)
	if name == "" {
		return &schema.ValueError{Path: "displayName", Msg: "is required"}
	}
	in.displayName = name
	in.externalID, _ = doc["externalId"].(string)
	return nil
}

func (in groupInput) apply(g *store.Group) {
	g.DisplayName, g.ExternalID = in.displayName, in.externalID
}

// memberError turns the store's refusal of a member into a 400.
func memberError(err error) error {
	if errors.Is(err, store.ErrUnknownMember) {
		return errorf(http.StatusBadRequest, invalidValue, "a member is not a User of this organization: members take the id of an existing User")
	}
	return err
}

// The group operations, with the request already parsed: the HTTP
// handlers below and Bulk both call them. Each is one store transaction,
// and an If-Match value ("" for none) is checked inside it.

// createGroup creates the group and its members in one write: a refused
// member leaves no group, and neither does a failure half-way.
func (s *Server) createGroup(ctx context.Context, org string, in groupInput) (store.Group, error) {
	g := store.Group{OrgID: org}
	in.apply(&g)
	g, err := s.store.CreateGroup(ctx, g, in.members...)
	return g, memberError(err)
}

// replaceGroup sets the group's fields and replaces its members.
func (s *Server) replaceGroup(ctx context.Context, org, id string, in groupInput, ifMatch string) (store.Group, error) {
	g, err := s.store.PatchGroup(ctx, org, id, store.GroupPatch{
		Update: func(g *store.Group) error {
			if err := checkIfMatch(ifMatch, g.Version); err != nil {
				return err
			}
			in.apply(g)
			return nil
		},
		RemoveAll: true,
		Add:       in.members,
	})
	return g, memberError(err)
}

// patchGroup applies the operations to the group's attributes inside the
// store's transaction and hands the member changes to the store as ids.
func (s *Server) patchGroup(ctx context.Context, org, id string, ops []patch.Operation, ifMatch string) (store.Group, error) {
	current, err := s.store.Group(ctx, org, id)
	if err != nil {
		return store.Group{}, err
	}
	// Member changes depend only on the operations, not on the group's
	// state, so they are worked out once before the transaction.
	_, members, err := patch.Apply(schema.Groups, s.renderGroup(current, nil), ops)
	if err != nil {
		return store.Group{}, err
	}
	g, err := s.store.PatchGroup(ctx, org, id, store.GroupPatch{
		Update: func(g *store.Group) error {
			if err := checkIfMatch(ifMatch, g.Version); err != nil {
				return err
			}
			patched, _, err := patch.Apply(schema.Groups, s.renderGroup(*g, nil), ops)
			if err != nil {
				return err
			}
			var in groupInput
			if err := in.setFields(patched); err != nil {
				return err
			}
			in.apply(g)
			return nil
		},
		RemoveAll: members.RemoveAll,
		Remove:    members.Remove,
		Add:       members.Add,
	})
	return g, memberError(err)
}

// deleteGroup checks ifMatch on the locked group, in the delete's
// transaction: a change committed after the client read its version is seen.
func (s *Server) deleteGroup(ctx context.Context, org, id string, ifMatch string) error {
	return s.store.DeleteGroup(ctx, org, id, func(g store.Group) error {
		return checkIfMatch(ifMatch, g.Version)
	})
}

func (groupKind) get(c *call, id string, p projection) (resource, error) {
	g, err := c.s.store.Group(c.r.Context(), c.org.ID, id)
	if err != nil {
		return resource{}, err
	}
	return c.groupResource(g, p.wants("members"))
}

func (groupKind) query(c *call, q store.Query, p projection) ([]resource, int, string, error) {
	res, err := c.s.store.QueryGroups(c.r.Context(), c.org.ID, q)
	if err != nil {
		return nil, 0, "", err
	}
	out := make([]resource, len(res.Items))
	for i, g := range res.Items {
		if out[i], err = c.groupResource(g, p.wants("members")); err != nil {
			return nil, 0, "", err
		}
	}
	return out, res.Total, res.Next, nil
}

func (groupKind) create(c *call, doc map[string]any) (resource, error) {
	in, err := parseGroup(doc)
	if err != nil {
		return resource{}, err
	}
	g, err := c.s.createGroup(c.r.Context(), c.org.ID, in)
	if err != nil {
		return resource{}, err
	}
	return c.groupResource(g, true)
}

func (groupKind) replace(c *call, id string, doc map[string]any, ifMatch string) (resource, error) {
	in, err := parseGroup(doc)
	if err != nil {
		return resource{}, err
	}
	g, err := c.s.replaceGroup(c.r.Context(), c.org.ID, id, in, ifMatch)
	if err != nil {
		return resource{}, err
	}
	return c.groupResource(g, true)
}

func (groupKind) patch(c *call, id string, ops []patch.Operation, ifMatch string) (resource, error) {
	g, err := c.s.patchGroup(c.r.Context(), c.org.ID, id, ops, ifMatch)
	if err != nil {
		return resource{}, err
	}
	q := c.r.URL.Query()
	if q.Get("attributes") == "" && q.Get("excludedAttributes") == "" {
		return resource{id: g.ID, etag: entityTag(g.Version, nil)}, nil // answered with 204
	}
	p, err := c.projection(groups)
	if err != nil {
		return resource{}, err
	}
	return c.groupResource(g, p.wants("members"))
}

func (groupKind) delete(c *call, id string, ifMatch string) error {
	return c.s.deleteGroup(c.r.Context(), c.org.ID, id, ifMatch)
}
