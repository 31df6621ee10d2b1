package scim

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"

	"gatehouse/scim/schema"
	"gatehouse/store"
)

// encodedJSON is a JSON text appendJSON writes as it is: a resource
// already encoded by appendUser.
type encodedJSON []byte

// MarshalJSON lets encoding/json embed it too.
func (e encodedJSON) MarshalJSON() ([]byte, error) { return e, nil }

// appendUser appends the JSON of the User renderUser describes, the same
// bytes as appendJSON of renderUser's document, without building that
// document: the representation of every GET and list without a
// projection.
func (c *call) appendUser(b []byte, a store.Administrator, groups []store.GroupRef) ([]byte, error) {
	var stack [12]member
	raw, err := storedMembers(a.Attributes, stack[:0])
	if err != nil {
		return b, err
	}
	stored := func(k string) ([]byte, bool) {
		for _, m := range raw {
			if m.key == k {
				return m.value, true
			}
		}
		return nil, false
	}
	_, enterprise := stored(schema.EnterpriseURN)
	_, rawPhones := stored("phoneNumbers")
	// The members renderUser sets over the stored attributes.
	set := func(k string) bool {
		switch k {
		case "schemas", "id", "userName", "active", "meta", schema.GatehouseURN:
			return true
		case "externalId":
			return a.ExternalID != ""
		case "name":
			return a.GivenName != "" || a.FamilyName != ""
		case "emails":
			return len(a.Emails) > 0 || a.Email != ""
		case "phoneNumbers":
			return !rawPhones && a.Phone != ""
		case "groups":
			return len(groups) > 0
		}
		return false
	}
	var keyStack [24]string
	keys := append(keyStack[:0], "schemas", "id", "externalId", "userName", "name", "emails", "phoneNumbers", "active",
		"groups", schema.GatehouseURN, "meta")
	keys = slices.DeleteFunc(keys, func(k string) bool { return !set(k) })
	for _, m := range raw {
		if !set(m.key) {
			keys = append(keys, m.key)
		}
	}
	slices.Sort(keys)

	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if !set(k) {
			v, _ := stored(k)
			b = appendCompactValid(b, v)
			continue
		}
		switch k {
		case "schemas":
			b = append(b, '[')
			b = appendString(b, schema.UserURN)
			if enterprise {
				b = append(b, ',')
				b = appendString(b, schema.EnterpriseURN)
			}
			b = append(b, ',')
			b = appendString(b, schema.GatehouseURN)
			b = append(b, ']')
		case "id":
			b = appendString(b, a.ID)
		case "externalId":
			b = appendString(b, a.ExternalID)
		case "userName":
			b = appendString(b, a.UserName)
		case "name":
			var storedName any
			if v, ok := stored("name"); ok {
				storedName = json.RawMessage(v)
			}
			name, err := asObject(storedName)
			if err != nil {
				return b, err
			}
			if a.GivenName != "" {
				name["givenName"] = a.GivenName
			}
			if a.FamilyName != "" {
				name["familyName"] = a.FamilyName
			}
			if b, err = appendJSON(b, name); err != nil {
				return b, err
			}
		case "emails":
			emails := a.Emails
			if len(emails) == 0 { // an administrator created outside SCIM
				emails = store.Emails{{Value: a.Email, Type: "work", Primary: true}}
			}
			b = append(b, '[')
			for i, e := range emails {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, '{')
				if e.Display != "" {
					b = append(b, `"display":`...)
					b = appendString(b, e.Display)
					b = append(b, ',')
				}
				if e.Primary {
					b = append(b, `"primary":true,`...)
				}
				if e.Type != "" {
					b = append(b, `"type":`...)
					b = appendString(b, e.Type)
					b = append(b, ',')
				}
				b = append(b, `"value":`...)
				b = appendString(b, e.Value)
				b = append(b, '}')
			}
			b = append(b, ']')
		case "phoneNumbers":
			b = append(b, `[{"primary":true,"type":"work","value":`...)
			b = appendString(b, a.Phone)
			b = append(b, "}]"...)
		case "active":
			b = strconv.AppendBool(b, a.Status != store.StatusDeactivated)
		case "groups":
			b = append(b, '[')
			for i, g := range groups {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"$ref":`...)
				b = appendString(b, c.s.location(schema.Groups, g.ID))
				b = append(b, `,"display":`...)
				b = appendString(b, g.DisplayName)
				b = append(b, `,"type":"direct","value":`...)
				b = appendString(b, g.ID)
				b = append(b, '}')
			}
			b = append(b, ']')
		case schema.GatehouseURN:
			b = append(b, '{')
			if a.LastLoginAt != nil {
				b = append(b, `"lastLogin":`...)
				b = appendString(b, timeString(*a.LastLoginAt))
				b = append(b, ',')
			}
			b = append(b, `"role":`...)
			b = appendString(b, string(a.Role))
			b = append(b, `,"status":`...)
			b = appendString(b, string(a.Status))
			b = append(b, '}')
		case "meta":
			b = append(b, `{"created":`...)
			b = appendString(b, timeString(a.CreatedAt))
			b = append(b, `,"lastModified":`...)
			b = appendString(b, timeString(a.UpdatedAt))
			b = append(b, `,"location":`...)
			b = appendString(b, c.s.location(schema.Users, a.ID))
			b = append(b, `,"resourceType":"User","version":`...)
			b = appendString(b, entityTag(a.Version, groups))
			b = append(b, '}')
		}
	}
	return append(b, '}'), nil
}

// storedMembers are the members of an administrator's stored attributes
// (a JSON object, or empty), appended to into.
func storedMembers(attributes store.RawJSON, into []member) ([]member, error) {
	if len(attributes) == 0 {
		return into, nil
	}
	if !json.Valid(attributes) {
		return nil, errors.New("scim: stored attributes are not valid JSON")
	}
	if ms, ok := objectMembers(attributes, into); ok {
		return ms, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(attributes, &m); err != nil {
		return nil, err
	}
	for k, v := range m {
		into = append(into, member{k, v})
	}
	return into, nil
}
