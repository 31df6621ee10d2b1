// Package schema holds gatehouse's SCIM schemas and resource types as data
// (RFC 7643 §7): the validator, the PATCH engine, projection and the
// discovery endpoints (/Schemas, /ResourceTypes) all read these same values,
// so what the server advertises is what it does.
package schema

import (
	"strings"
)

// Type is an attribute's data type (RFC 7643 §2.3).
type Type string

const (
	String    Type = "string"
	Boolean   Type = "boolean"
	Decimal   Type = "decimal"
	Integer   Type = "integer"
	DateTime  Type = "dateTime"
	Binary    Type = "binary"
	Reference Type = "reference"
	Complex   Type = "complex"
)

// Mutability says whether and when a client may set an attribute (RFC 7643 §7).
type Mutability string

const (
	ReadOnly  Mutability = "readOnly"
	ReadWrite Mutability = "readWrite"
	Immutable Mutability = "immutable"
	WriteOnly Mutability = "writeOnly"
)

// Returned says when an attribute appears in a response (RFC 7643 §7).
type Returned string

const (
	Always  Returned = "always"
	Never   Returned = "never"
	Default Returned = "default"
	Request Returned = "request"
)

// Uniqueness is an attribute's uniqueness rule (RFC 7643 §7).
type Uniqueness string

const (
	None   Uniqueness = "none"
	Server Uniqueness = "server"
	Global Uniqueness = "global"
)

// Attribute describes one attribute or sub-attribute.
type Attribute struct {
	Name            string
	Type            Type
	MultiValued     bool
	Description     string
	Required        bool
	CaseExact       bool
	Mutability      Mutability
	Returned        Returned
	Uniqueness      Uniqueness
	CanonicalValues []string
	ReferenceTypes  []string
	SubAttributes   []*Attribute
}

// Sub finds a sub-attribute by name, case-insensitively (RFC 7643 §2.1).
func (a *Attribute) Sub(name string) *Attribute { return find(a.SubAttributes, name) }

func find(as []*Attribute, name string) *Attribute {
	for _, a := range as {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}

// Schema is one schema: the core User or Group, or an extension.
type Schema struct {
	ID          string
	Name        string
	Description string
	Attributes  []*Attribute
}

// Attribute finds a top-level attribute by name, case-insensitively.
func (s *Schema) Attribute(name string) *Attribute { return find(s.Attributes, name) }

// Extension is a schema extension of a resource type.
type Extension struct {
	Schema   *Schema
	Required bool
}

// ResourceType is a SCIM resource type (RFC 7643 §6): its core schema, its
// extensions and the attributes common to every resource (id, externalId,
// meta), which RFC 7643 §3.1 keeps outside the schemas.
type ResourceType struct {
	ID          string
	Name        string
	Endpoint    string
	Description string
	Schema      *Schema
	Extensions  []Extension
}

// Extension finds one of the resource type's extensions by URN,
// case-insensitively.
func (rt *ResourceType) Extension(urn string) *Schema {
	for _, e := range rt.Extensions {
		if strings.EqualFold(e.Schema.ID, urn) {
			return e.Schema
		}
	}
	return nil
}

// Attribute finds a top-level attribute of the core schema or a common
// attribute (id, externalId, meta).
func (rt *ResourceType) Attribute(name string) *Attribute {
	if a := find(Common, name); a != nil {
		return a
	}
	return rt.Schema.Attribute(name)
}

// Resolved is an attribute path resolved against a resource type.
type Resolved struct {
	// Extension is the extension schema the attribute belongs to, nil for
	// the core schema and the common attributes. An extension's attributes
	// live in the resource under the extension's URN (RFC 7643 §3.3).
	Extension *Schema
	// Attr is the top-level attribute; nil when the path names a whole
	// extension.
	Attr *Attribute
	// Sub is the sub-attribute, or nil.
	Sub *Attribute
}

// Target is the most specific attribute named: Sub, else Attr.
func (r Resolved) Target() *Attribute {
	if r.Sub != nil {
		return r.Sub
	}
	return r.Attr
}

// Resolve finds the attribute named by an optional schema URN, a name and an
// optional sub-attribute name, case-insensitively. urn may be the core
// schema's ID or an extension's; a path that is exactly an extension's URN
// (urn+":"+name) names the whole extension. Without urn, a name the core
// schema lacks is looked up in the extensions. ok is false when nothing
// matches.
func (rt *ResourceType) Resolve(urn, name, sub string) (r Resolved, ok bool) {
	if urn != "" {
		if ext := rt.Extension(urn + ":" + name); ext != nil && sub == "" {
			return Resolved{Extension: ext}, true
		}
		if ext := rt.Extension(urn); ext != nil {
			r.Extension = ext
			r.Attr = ext.Attribute(name)
		} else if strings.EqualFold(urn, rt.Schema.ID) {
			r.Attr = rt.Attribute(name)
		}
	} else if r.Attr = rt.Attribute(name); r.Attr == nil {
		// An unqualified name the core schema lacks may name an
		// extension's attribute: Entra ID filters on "manager".
		for _, e := range rt.Extensions {
			if a := e.Schema.Attribute(name); a != nil {
				r.Extension, r.Attr = e.Schema, a
				break
			}
		}
	}
	if r.Attr == nil {
		return Resolved{}, false
	}
	if sub != "" {
		if r.Attr.Type != Complex {
			return Resolved{}, false
		}
		if r.Sub = r.Attr.Sub(sub); r.Sub == nil {
			return Resolved{}, false
		}
	}
	return r, true
}
