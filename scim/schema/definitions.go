package schema

// URNs of the schemas and messages gatehouse speaks (RFC 7643 §8.7, RFC 7644 §3).
const (
	UserURN       = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupURN      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	// GatehouseURN is gatehouse's extension: the product's own fields of an
	// administrator, all read-only (they follow from the rules, not from
	// the identity provider's say-so).
	GatehouseURN = "urn:gatehouse:params:scim:schemas:extension:2.0:Administrator"

	ListResponseURN          = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	ErrorURN                 = "urn:ietf:params:scim:api:messages:2.0:Error"
	PatchOpURN               = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SearchRequestURN         = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	BulkRequestURN           = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	BulkResponseURN          = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	ServiceProviderConfigURN = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	ResourceTypeURN          = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaURN                = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// attr is a readWrite, default-returned, non-unique, case-insensitive
// single-valued attribute: the RFC's defaults (§2.2). The options below
// change one property each.
func attr(name string, t Type, desc string, opts ...func(*Attribute)) *Attribute {
	a := &Attribute{Name: name, Type: t, Description: desc, Mutability: ReadWrite, Returned: Default, Uniqueness: None}
	for _, o := range opts {
		o(a)
	}
	return a
}

func multi(a *Attribute) { a.MultiValued = true }

func required(a *Attribute) { a.Required = true }

func caseExact(a *Attribute) { a.CaseExact = true }

func readOnly(a *Attribute) { a.Mutability = ReadOnly }

func immutable(a *Attribute) { a.Mutability = Immutable }

func always(a *Attribute) { a.Returned = Always }

func serverUnique(a *Attribute) { a.Uniqueness = Server }

func canonical(vs ...string) func(*Attribute) {
	return func(a *Attribute) { a.CanonicalValues = vs }
}

func refs(ts ...string) func(*Attribute) {
	return func(a *Attribute) { a.ReferenceTypes = ts }
}

func subs(as ...*Attribute) func(*Attribute) {
	return func(a *Attribute) { a.SubAttributes = as }
}

// plural is a multi-valued complex attribute with the RFC 7643 §2.4 sub-
// attributes value, display, type and primary.
func plural(name, desc string, valueType Type, types []string, opts ...func(*Attribute)) *Attribute {
	value := attr("value", valueType, "The attribute's significant value.")
	if valueType == Reference {
		value.ReferenceTypes = []string{"external"}
	}
	return attr(name, Complex, desc, append([]func(*Attribute){multi, subs(
		value,
		attr("display", String, "A human-readable name, primarily used for display purposes."),
		attr("type", String, "A label indicating the attribute's function.", canonical(types...)),
		attr("primary", Boolean, "Indicates the primary value; true on at most one value."),
	)}, opts...)...)
}

// Common are the attributes every resource has outside its schemas
// (RFC 7643 §3.1).
var Common = []*Attribute{
	attr("id", String, "Unique identifier for the resource, assigned by the service provider.",
		readOnly, always, caseExact, serverUnique),
	attr("externalId", String, "An identifier for the resource as defined by the provisioning client.", caseExact),
	attr("meta", Complex, "Resource metadata.", readOnly, subs(
		attr("resourceType", String, "The name of the resource type of the resource.", readOnly, caseExact),
		attr("created", DateTime, "The time the resource was added to the service provider.", readOnly),
		attr("lastModified", DateTime, "The most recent time the resource was modified.", readOnly),
		attr("location", Reference, "The URI of the resource.", readOnly, caseExact, refs("uri")),
		attr("version", String, "The version (entity tag) of the resource.", readOnly, caseExact),
	)),
}

// User is the core User schema (RFC 7643 §4.1, §8.7.1), with userName
// case-exact: gatehouse usernames are case-sensitive and are what sign-in
// matches on (DESIGN.md). Uniqueness is still checked case-insensitively.
var User = &Schema{
	ID:          UserURN,
	Name:        "User",
	Description: "User Account (a gatehouse administrator)",
	Attributes: []*Attribute{
		attr("userName", String, "Unique identifier for the User, used to sign in. Case-sensitive; unique within the organization regardless of case.",
			required, caseExact, serverUnique),
		attr("name", Complex, "The components of the user's real name.", subs(
			attr("formatted", String, "The full name, formatted for display."),
			attr("familyName", String, "The family name of the User."),
			attr("givenName", String, "The given name of the User."),
			attr("middleName", String, "The middle name(s) of the User."),
			attr("honorificPrefix", String, "The honorific prefix(es) of the User."),
			attr("honorificSuffix", String, "The honorific suffix(es) of the User."),
		)),
		attr("displayName", String, "The name of the User, suitable for display to end-users."),
		attr("nickName", String, "The casual way to address the user."),
		attr("profileUrl", Reference, "A fully qualified URL pointing to a page representing the User's online profile.", refs("external")),
		attr("title", String, "The user's title, such as \"Vice President\"."),
		attr("userType", String, "The relationship between the organization and the user."),
		attr("preferredLanguage", String, "The User's preferred written or spoken language (RFC 7231 Accept-Language)."),
		attr("locale", String, "The User's default location for localizing items."),
		attr("timezone", String, "The User's time zone in the IANA Time Zone database format."),
		attr("active", Boolean, "The User's administrative status: false deactivates the administrator."),
		attr("password", String, "Accepted and discarded: gatehouse neither stores nor returns SCIM passwords.",
			func(a *Attribute) { a.Mutability, a.Returned = WriteOnly, Never }),
		plural("emails", "Email addresses for the user.", String, []string{"work", "home", "other"}),
		plural("phoneNumbers", "Phone numbers for the User.", String, []string{"work", "home", "mobile", "fax", "pager", "other"}),
		plural("ims", "Instant messaging addresses for the User.", String, []string{"aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"}),
		plural("photos", "URLs of photos of the User.", Reference, []string{"photo", "thumbnail"}),
		attr("addresses", Complex, "A physical mailing address for this User.", multi, subs(
			attr("formatted", String, "The full mailing address, formatted for display."),
			attr("streetAddress", String, "The full street address component."),
			attr("locality", String, "The city or locality component."),
			attr("region", String, "The state or region component."),
			attr("postalCode", String, "The zip code or postal code component."),
			attr("country", String, "The country name component."),
			attr("type", String, "A label indicating the attribute's function.", canonical("work", "home", "other")),
			attr("primary", Boolean, "Indicates the primary address."),
		)),
		attr("groups", Complex, "The groups the user belongs to, maintained through the Group resources.", multi, readOnly, subs(
			attr("value", String, "The identifier of the User's group.", readOnly),
			attr("$ref", Reference, "The URI of the Group.", readOnly, refs("User", "Group")),
			attr("display", String, "The group's displayName.", readOnly),
			attr("type", String, "How the membership was derived.", readOnly, canonical("direct", "indirect")),
		)),
		plural("entitlements", "A list of entitlements for the User.", String, nil),
		plural("roles", "Roles for the User. A value \"Super Administrator\" (any case) makes the administrator a Super Administrator.", String, nil),
		plural("x509Certificates", "A list of certificates issued to the User.", Binary, nil),
	},
}

// Enterprise is the enterprise User extension (RFC 7643 §4.3).
var Enterprise = &Schema{
	ID:          EnterpriseURN,
	Name:        "EnterpriseUser",
	Description: "Enterprise User",
	Attributes: []*Attribute{
		attr("employeeNumber", String, "Numeric or alphanumeric identifier assigned to a person."),
		attr("costCenter", String, "Identifies the name of a cost center."),
		attr("organization", String, "Identifies the name of an organization."),
		attr("division", String, "Identifies the name of a division."),
		attr("department", String, "Identifies the name of a department."),
		attr("manager", Complex, "The User's manager.", subs(
			attr("value", String, "The id of the SCIM resource representing the User's manager."),
			attr("$ref", Reference, "The URI of the SCIM resource representing the User's manager.", refs("User")),
			attr("displayName", String, "The displayName of the User's manager.", readOnly),
		)),
	},
}

// Gatehouse is gatehouse's User extension: the administrator's product
// fields (seed 001), computed by gatehouse and read-only over SCIM.
var Gatehouse = &Schema{
	ID:          GatehouseURN,
	Name:        "GatehouseAdministrator",
	Description: "gatehouse administrator fields",
	Attributes: []*Attribute{
		attr("role", String, "The administrator's effective role: Super Administrator when the roles attribute holds that value or the administrator is a member of the organization's designated super-administrator group; otherwise Administrator.",
			readOnly, caseExact, canonical("Administrator", "Super Administrator")),
		attr("status", String, "Pending, Active or Deactivated.", readOnly, caseExact, canonical("Pending", "Active", "Deactivated")),
		attr("lastLogin", DateTime, "When the administrator last signed in; absent if never.", readOnly),
	},
}

// Group is the core Group schema (RFC 7643 §4.2, §8.7.1).
var Group = &Schema{
	ID:          GroupURN,
	Name:        "Group",
	Description: "Group",
	Attributes: []*Attribute{
		attr("displayName", String, "A human-readable name for the Group.", required),
		attr("members", Complex, "A list of members of the Group (administrators).", multi, subs(
			attr("value", String, "Identifier of the member of this Group.", immutable, caseExact),
			attr("$ref", Reference, "The URI of the member resource.", immutable, refs("User")),
			attr("display", String, "The member's userName.", readOnly),
			attr("type", String, "The type of the member; only User.", immutable, canonical("User")),
		)),
	},
}

// Users and Groups are gatehouse's two resource types.
var (
	Users = &ResourceType{
		ID: "User", Name: "User", Endpoint: "/Users", Description: "User Account (administrator)",
		Schema:     User,
		Extensions: []Extension{{Schema: Enterprise}, {Schema: Gatehouse}},
	}
	Groups = &ResourceType{
		ID: "Group", Name: "Group", Endpoint: "/Groups", Description: "Group",
		Schema: Group,
	}
	ResourceTypes = []*ResourceType{Users, Groups}
	Schemas       = []*Schema{User, Enterprise, Gatehouse, Group}
)
