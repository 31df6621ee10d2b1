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
		return column("display_name"), true
	}
	return mapping{}, false
}

// renderGroup is the SCIM representation of a group; members is nil when
// the projection leaves them out.
func (c *call) renderGroup(g store.Group, members []store.GroupMember) map[string]any {
	doc := map[string]any{
		"schemas":     []any{schema.GroupURN},
		"id":          g.ID,
		"displayName": g.DisplayName,
		"meta": map[string]any{
			"resourceType": "Group",
			"created":      timeString(g.CreatedAt),
			"lastModified": timeString(g.UpdatedAt),
			"location":     c.s.location(schema.Groups, g.ID),
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
				"$ref": c.s.location(schema.Users, m.AdministratorID)}
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
	return resource{id: g.ID, etag: entityTag(g.Version, nil), doc: c.renderGroup(g, members)}, nil
}

// maxMembersShown bounds the members rendered in one response. Okta and
// Entra ID read membership through their own state and PATCH it; a client
// that needs a larger group in full can filter Users by groups.value.
const maxMembersShown = 100000

// applyGroup sets g's fields from a normalized Group document.
func applyGroup(doc map[string]any, g *store.Group) error {
	name, _ := doc["displayName"].(string)
	if name == "" {
		return &schema.ValueError{Path: "displayName", Msg: "is required"}
	}
	g.DisplayName = name
	g.ExternalID, _ = doc["externalId"].(string)
	return nil
}

// memberIDs reads the values of a members list.
func memberIDs(doc map[string]any) ([]string, error) {
	list, _ := doc["members"].([]any)
	ids := make([]string, 0, len(list))
	for _, e := range list {
		m, _ := e.(map[string]any)
		v, _ := m["value"].(string)
		if v == "" {
			return nil, &schema.ValueError{Path: "members", Msg: "each member needs a value: the id of a User"}
		}
		ids = append(ids, v)
	}
	return ids, nil
}

// memberError turns the store's refusal of an unknown member into a 400
// (the group itself exists).
func memberError(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusBadRequest, invalidValue, "a member is not a User of this organization: members take the id of an existing User")
	}
	return err
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

// create adds the group and its members. The store writes them in two
// transactions; when the members are refused the new group is removed
// again, so a refused POST leaves nothing behind.
func (groupKind) create(c *call, doc map[string]any) (resource, error) {
	var g store.Group
	if err := applyGroup(doc, &g); err != nil {
		return resource{}, err
	}
	ids, err := memberIDs(doc)
	if err != nil {
		return resource{}, err
	}
	g.OrgID = c.org.ID
	ctx := c.r.Context()
	g, err = c.s.store.CreateGroup(ctx, g)
	if err != nil {
		return resource{}, err
	}
	if len(ids) > 0 {
		g, err = c.s.store.PatchGroup(ctx, c.org.ID, g.ID, store.GroupPatch{Add: ids})
		if err != nil {
			if derr := c.s.store.DeleteGroup(context.WithoutCancel(ctx), c.org.ID, g.ID); derr != nil {
				c.logger().Error("scim: removing a group whose members were refused", "group", g.ID, "err", derr)
			}
			return resource{}, memberError(err)
		}
	}
	return c.groupResource(g, true)
}

func (groupKind) replace(c *call, id string, doc map[string]any, ifMatch string) (resource, error) {
	ids, err := memberIDs(doc)
	if err != nil {
		return resource{}, err
	}
	g, err := c.s.store.PatchGroup(c.r.Context(), c.org.ID, id, store.GroupPatch{
		Update: func(g *store.Group) error {
			if err := checkIfMatch(ifMatch, g.Version); err != nil {
				return err
			}
			return applyGroup(doc, g)
		},
		RemoveAll: true,
		Add:       ids,
	})
	if err != nil {
		return resource{}, memberError(err)
	}
	return c.groupResource(g, true)
}

// patch applies the operations to the group's attributes inside the
// store's transaction and hands the member changes to the store as ids.
func (groupKind) patch(c *call, id string, ops []patch.Operation, ifMatch string) (resource, error) {
	ctx := c.r.Context()
	current, err := c.s.store.Group(ctx, c.org.ID, id)
	if err != nil {
		return resource{}, err
	}
	// Member changes depend only on the operations, not on the group's
	// state, so they are worked out once before the transaction.
	_, members, err := patch.Apply(schema.Groups, c.renderGroup(current, nil), ops)
	if err != nil {
		return resource{}, err
	}
	g, err := c.s.store.PatchGroup(ctx, c.org.ID, id, store.GroupPatch{
		Update: func(g *store.Group) error {
			if err := checkIfMatch(ifMatch, g.Version); err != nil {
				return err
			}
			patched, _, err := patch.Apply(schema.Groups, c.renderGroup(*g, nil), ops)
			if err != nil {
				return err
			}
			return applyGroup(patched, g)
		},
		RemoveAll: members.RemoveAll,
		Remove:    members.Remove,
		Add:       members.Add,
	})
	if err != nil {
		return resource{}, memberError(err)
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
	ctx := c.r.Context()
	if ifMatch != "" {
		g, err := c.s.store.Group(ctx, c.org.ID, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(ifMatch, g.Version); err != nil {
			return err
		}
	}
	return c.s.store.DeleteGroup(ctx, c.org.ID, id)
}
