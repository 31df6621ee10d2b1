package patch

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"gatehouse/scim/filter"
	"gatehouse/scim/schema"
)

// applyTest applies ops (a JSON array of operations, parsed with Parse) to
// a document: userDoc or groupDoc, changed by the merge patch doc. The
// expected result is that document changed by the merge patch want; or
// the error has scimType err and a detail containing detail.
type applyTest struct {
	name    string
	doc     string // RFC 7386 merge patch applied to the base document; "" for none
	ops     string
	want    string // RFC 7386 merge patch giving the expected result; "" for unchanged
	members MemberChange
	err     string
	detail  string
}

const mgr = `"26118915-6090-4610-87e4-49d8ca9f808d"`

var userTests = []applyTest{
	// Okta (notes/scim-clients.md).
	{name: "okta deactivate",
		ops:  `[{"op":"replace","value":{"active":false}}]`,
		want: `{"active":false}`},
	{name: "okta reactivate",
		doc:  `{"active":false}`,
		ops:  `[{"op":"replace","value":{"active":true}}]`,
		want: `{"active":true}`},
	{name: "okta password change is accepted and not stored",
		ops: `[{"op":"replace","value":{"password":"t1meMa$heen"}},{"op":"replace","path":"password","value":"0ther"}]`},

	// Entra ID without aadOptscim062020: capitalised ops, "False", one path per op.
	{name: "entra disable with string boolean",
		ops:  `[{"op":"Replace","path":"active","value":"False"}]`,
		want: `{"active":false}`},
	{name: "entra enable with string boolean",
		doc:  `{"active":false}`,
		ops:  `[{"op":"Replace","path":"active","value":"True"}]`,
		want: `{"active":true}`},
	{name: "entra several replace ops",
		ops: `[
			{"op":"Replace","path":"emails[type eq \"work\"].value","value":"barbara@example.com"},
			{"op":"Replace","path":"name.familyName","value":"Jensen-Smith"},
			{"op":"Replace","path":"externalId","value":"00u1NEW"},
			{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber","value":"701985"},
			{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"a0b1c2d3"}]`,
		want: `{
			"emails": [{"value":"barbara@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],
			"name": {"familyName":"Jensen-Smith"},
			"externalId": "00u1NEW",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber":"701985","manager":{"value":"a0b1c2d3","displayName":null}}}`},
	{name: "entra add work email to a user without emails",
		doc:  `{"emails":null}`,
		ops:  `[{"op":"Add","path":"emails[type eq \"work\"].value","value":"babs@example.com"}]`,
		want: `{"emails":[{"type":"work","value":"babs@example.com"}]}`},
	{name: "entra replace work email of a user without one",
		doc:  `{"emails":[{"value":"babs@jensen.org","type":"home"}]}`,
		ops:  `[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"babs@example.com"}]`,
		want: `{"emails":[{"value":"babs@jensen.org","type":"home"},{"type":"work","value":"babs@example.com"}]}`},
	{name: "entra app role with string primary",
		ops:  `[{"op":"Add","path":"roles","value":[{"primary":"True","type":"WindowsAzureActiveDirectoryRole","value":"Admin"}]}]`,
		want: `{"roles":[{"primary":true,"type":"WindowsAzureActiveDirectoryRole","value":"Admin"}]}`},
	{name: "entra remove manager",
		ops:  `[{"op":"Remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]`,
		want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":null}}`},

	// Entra ID with aadOptscim062020: lowercase ops, one no-path map with
	// dotted, URN-prefixed and filtered keys.
	{name: "entra flag replace map",
		ops: `[{"op":"replace","value":{
			"displayName":"Barb Jensen",
			"name.givenName":"Barb",
			"name.familyName":"Jensen",
			"active":false,
			"emails[type eq \"work\"].value":"barb@example.com",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"42",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":{"value":"m2"}}}]`,
		want: `{
			"displayName":"Barb Jensen",
			"name":{"givenName":"Barb"},
			"active":false,
			"emails":[{"value":"barb@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"42","manager":{"value":"m2","displayName":null}}}`},
	{name: "entra flag add map with extension object",
		ops: `[{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
			{"costCenter":"4130","manager":"m3","unknown":"x"}}}]`,
		want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"costCenter":"4130","manager":{"value":"m3","displayName":null}}}`},
	{name: "map: read-only and unknown keys ignored",
		ops: `[{"op":"replace","value":{"id":"other","meta":{"created":"2020-01-01T00:00:00Z"},"groups":[],
			"schemas":["urn:x"],"foo":"bar","urn:foo:bar:baz":1,"not a path!":2,
			"urn:gatehouse:params:scim:schemas:extension:2.0:Administrator:role":"Super Administrator",
			"urn:gatehouse:params:scim:schemas:extension:2.0:Administrator":{"status":"Deactivated"},
			"urn:gatehouse:params:scim:schemas:extension:2.0:Administrator:lastLogin":null,
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName":"Boss",
			"displayName":"New"}}]`,
		want: `{"displayName":"New"}`},
	{name: "map: null for a read-only extension is ignored",
		ops: `[{"op":"replace","value":{"urn:gatehouse:params:scim:schemas:extension:2.0:Administrator":null}}]`},
	{name: "map: whole attribute before its parts",
		ops:  `[{"op":"replace","value":{"name.givenName":"B","name":{"givenName":"A","familyName":"F"}}}]`,
		want: `{"name":{"givenName":"B","familyName":"F"}}`},
	{name: "map: keys in any case",
		ops:  `[{"op":"replace","value":{"Name.GivenName":"B","DISPLAYNAME":"D","URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:DIVISION":"East"}}]`,
		want: `{"name":{"givenName":"B"},"displayName":"D","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"division":"East"}}`},
	{name: "map: members key of a user is unknown",
		ops: `[{"op":"add","value":{"members":[{"value":"x"}]}}]`},

	// add (RFC 7644 §3.5.2.1).
	{name: "add simple",
		ops:  `[{"op":"add","path":"nickName","value":"Babs"}]`,
		want: `{"nickName":"Babs"}`},
	{name: "add replaces a single value",
		ops:  `[{"op":"add","path":"displayName","value":"B"}]`,
		want: `{"displayName":"B"}`},
	{name: "add to multi-valued skips equal values",
		ops: `[{"op":"add","path":"emails","value":[
			{"value":"BJensen@Example.com","type":"work","primary":true},
			{"value":"b@other.org","type":"other"},
			{"value":"b@other.org","type":"Other"}]}]`,
		want: `{"emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"},{"value":"b@other.org","type":"other"}]}`},
	{name: "add one value to multi-valued",
		ops:  `[{"op":"add","path":"emails","value":{"value":"x@y.org"}}]`,
		want: `{"emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"},{"value":"x@y.org"}]}`},
	{name: "add to absent multi-valued",
		ops:  `[{"op":"add","path":"phoneNumbers","value":[{"value":"555-555-8377","type":"work"}]}]`,
		want: `{"phoneNumbers":[{"value":"555-555-8377","type":"work"}]}`},
	{name: "add primary value clears the other primary",
		ops:  `[{"op":"add","path":"emails","value":[{"value":"new@example.com","type":"work","primary":true}]}]`,
		want: `{"emails":[{"value":"bjensen@example.com","type":"work","primary":false},{"value":"babs@jensen.org","type":"home"},{"value":"new@example.com","type":"work","primary":true}]}`},
	{name: "add complex merges",
		ops:  `[{"op":"add","path":"name","value":{"middleName":"Jane"}}]`,
		want: `{"name":{"middleName":"Jane"}}`},
	{name: "add sub-attribute",
		ops:  `[{"op":"add","path":"name.honorificPrefix","value":"Ms."}]`,
		want: `{"name":{"honorificPrefix":"Ms."}}`},
	{name: "add sub-attribute of absent complex",
		doc:  `{"name":null}`,
		ops:  `[{"op":"add","path":"name.givenName","value":"B"}]`,
		want: `{"name":{"givenName":"B"}}`},
	{name: "add extension attribute to absent extension",
		doc:  `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":null}`,
		ops:  `[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":"m4"}]`,
		want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m4"}}}`},
	{name: "add core attribute with the core URN",
		ops:  `[{"op":"add","path":"urn:ietf:params:scim:schemas:core:2.0:User:title","value":"Guide"}]`,
		want: `{"title":"Guide"}`},
	{name: "add with a value filter sets matching elements",
		ops:  `[{"op":"add","path":"emails[type eq \"home\"].display","value":"Babs at home"}]`,
		want: `{"emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home","display":"Babs at home"}]}`},
	{name: "add null changes nothing",
		ops: `[{"op":"add","path":"displayName","value":null},{"op":"add","path":"emails","value":[]}]`},
	{name: "add to extension path",
		ops:  `[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"division":"East","employeeNumber":"1"}}]`,
		want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"division":"East","employeeNumber":"1"}}`},

	// replace (RFC 7644 §3.5.2.3).
	{name: "replace simple in any case",
		ops:  `[{"op":"REPLACE","path":"DISPLAYNAME","value":"B"}]`,
		want: `{"displayName":"B"}`},
	{name: "replace complex keeps unspecified sub-attributes",
		ops:  `[{"op":"replace","path":"name","value":{"givenName":"Barb"}}]`,
		want: `{"name":{"givenName":"Barb"}}`},
	{name: "replace multi-valued replaces the list",
		ops:  `[{"op":"replace","path":"emails","value":[{"value":"only@example.com","type":"work"}]}]`,
		want: `{"emails":[{"value":"only@example.com","type":"work"}]}`},
	{name: "replace filtered element merges the object",
		ops:  `[{"op":"replace","path":"emails[type eq \"home\"]","value":{"value":"babs@home.org","display":"Babs"}}]`,
		want: `{"emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@home.org","type":"home","display":"Babs"}]}`},
	{name: "replace filtered element with a bare value",
		ops:  `[{"op":"replace","path":"emails[type eq \"work\"]","value":"w@example.com"}]`,
		want: `{"emails":[{"value":"w@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}]}`},
	{name: "replace by boolean filter",
		ops:  `[{"op":"replace","path":"emails[primary eq true].value","value":"p@example.com"}]`,
		want: `{"emails":[{"value":"p@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}]}`},
	{name: "replace every matching element",
		ops:  `[{"op":"replace","path":"emails[value ew \".com\" or type eq \"home\"].display","value":"x"}]`,
		want: `{"emails":[{"value":"bjensen@example.com","type":"work","primary":true,"display":"x"},{"value":"babs@jensen.org","type":"home","display":"x"}]}`},
	{name: "replace filtered primary clears the other primary",
		ops:  `[{"op":"replace","path":"emails[type eq \"home\"].primary","value":true}]`,
		want: `{"emails":[{"value":"bjensen@example.com","type":"work","primary":false},{"value":"babs@jensen.org","type":"home","primary":true}]}`},
	{name: "replace absent attribute adds it",
		ops:  `[{"op":"replace","path":"title","value":"Guide"},{"op":"replace","path":"addresses","value":{"locality":"Hollywood","type":"work"}}]`,
		want: `{"title":"Guide","addresses":[{"locality":"Hollywood","type":"work"}]}`},
	{name: "replace with null unassigns",
		ops:  `[{"op":"replace","path":"displayName","value":null},{"op":"replace","path":"emails[type eq \"home\"]","value":null},{"op":"replace","path":"name.formatted","value":null}]`,
		want: `{"displayName":null,"emails":[{"value":"bjensen@example.com","type":"work","primary":true}],"name":{"formatted":null}}`},
	{name: "replace extension with null keeps the server's extension",
		ops:  `[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":null}]`,
		want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":null}`},
	{name: "replace fixes key case of the stored document",
		doc:  `{"displayName":null,"DisplayName":"Old"}`,
		ops:  `[{"op":"replace","path":"displayName","value":"New"}]`,
		want: `{"DisplayName":null,"displayName":"New"}`},
	{name: "operations apply in order",
		ops: `[{"op":"replace","path":"displayName","value":"A"},{"op":"replace","path":"displayName","value":"B"},
			{"op":"add","path":"emails","value":[{"value":"tmp@example.com","type":"other"}]},
			{"op":"remove","path":"emails[value eq \"tmp@example.com\"]"}]`,
		want: `{"displayName":"B"}`},
	{name: "schemas path is ignored",
		ops: `[{"op":"add","path":"schemas","value":["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]},{"op":"remove","path":"schemas"}]`},

	// remove (RFC 7644 §3.5.2.2).
	{name: "remove simple",
		ops:  `[{"op":"remove","path":"displayName"}]`,
		want: `{"displayName":null}`},
	{name: "remove absent attribute",
		ops: `[{"op":"remove","path":"nickName"}]`},
	{name: "remove sub-attribute",
		ops:  `[{"op":"remove","path":"name.givenName"}]`,
		want: `{"name":{"givenName":null}}`},
	{name: "remove last sub-attribute unassigns the attribute",
		doc:  `{"name":{"givenName":"B","familyName":null,"formatted":null}}`,
		ops:  `[{"op":"remove","path":"name.givenName"}]`,
		want: `{"name":null}`},
	{name: "remove filtered elements",
		ops:  `[{"op":"remove","path":"emails[type eq \"home\"]"}]`,
		want: `{"emails":[{"value":"bjensen@example.com","type":"work","primary":true}]}`},
	{name: "remove filtered with no match changes nothing",
		ops: `[{"op":"remove","path":"emails[type eq \"other\"]"},{"op":"remove","path":"phoneNumbers[type eq \"work\"]"}]`},
	{name: "remove sub-attribute of filtered elements",
		ops:  `[{"op":"remove","path":"emails[type eq \"work\"].value"}]`,
		want: `{"emails":[{"type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}]}`},
	{name: "remove sub-attribute of every element",
		ops:  `[{"op":"remove","path":"emails.type"}]`,
		want: `{"emails":[{"value":"bjensen@example.com","primary":true},{"value":"babs@jensen.org"}]}`},
	{name: "remove last element unassigns the attribute",
		ops:  `[{"op":"remove","path":"emails[value co \"@\"]"}]`,
		want: `{"emails":null}`},
	{name: "remove multi-valued",
		ops:  `[{"op":"remove","path":"emails"}]`,
		want: `{"emails":null}`},
	{name: "remove values given in value",
		ops:  `[{"op":"remove","path":"emails","value":[{"value":"BABS@jensen.org"},{"value":"nobody@example.com"}]}]`,
		want: `{"emails":[{"value":"bjensen@example.com","type":"work","primary":true}]}`},
	{name: "remove values compares the given sub-attributes",
		ops: `[{"op":"remove","path":"emails","value":[{"value":"babs@jensen.org","type":"work"}]}]`},
	{name: "remove enterprise extension",
		ops:  `[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]`,
		want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":null}`},
	{name: "remove extension attribute",
		ops:  `[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}]`,
		want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":null}}`},
	{name: "remove password",
		ops: `[{"op":"remove","path":"password"}]`},

	// Errors.
	{name: "remove required attribute", ops: `[{"op":"remove","path":"userName"}]`, err: Mutability, detail: "userName"},
	{name: "replace required with empty", ops: `[{"op":"replace","path":"userName","value":""}]`, err: InvalidValue, detail: "userName"},
	{name: "replace required with null", ops: `[{"op":"replace","value":{"userName":null}}]`, err: InvalidValue, detail: "userName"},
	{name: "replace id", ops: `[{"op":"replace","path":"id","value":"x"}]`, err: Mutability, detail: "id is read-only"},
	{name: "replace meta.created", ops: `[{"op":"replace","path":"meta.created","value":"2020-01-01T00:00:00Z"}]`, err: Mutability, detail: "meta.created"},
	{name: "add groups", ops: `[{"op":"add","path":"groups","value":[{"value":"g2"}]}]`, err: Mutability, detail: "groups"},
	{name: "remove meta", ops: `[{"op":"remove","path":"meta"}]`, err: Mutability},
	{name: "remove groups filtered", ops: `[{"op":"remove","path":"groups[value eq \"g\"]"}]`, err: Mutability},
	{name: "replace manager displayName",
		ops: `[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName","value":"Boss"}]`,
		err: Mutability, detail: "manager.displayName"},
	{name: "replace gatehouse role",
		ops: `[{"op":"replace","path":"urn:gatehouse:params:scim:schemas:extension:2.0:Administrator:role","value":"Super Administrator"}]`,
		err: Mutability},
	{name: "replace gatehouse extension",
		ops: `[{"op":"replace","path":"urn:gatehouse:params:scim:schemas:extension:2.0:Administrator","value":{"role":"Super Administrator"}}]`,
		err: Mutability, detail: "read-only"},
	{name: "remove gatehouse extension",
		ops: `[{"op":"remove","path":"urn:gatehouse:params:scim:schemas:extension:2.0:Administrator"}]`,
		err: Mutability},
	{name: "unknown attribute", ops: `[{"op":"replace","path":"favoriteColor","value":"x"}]`, err: InvalidPath, detail: `"favoriteColor"`},
	{name: "unknown attribute on remove", ops: `[{"op":"remove","path":"favoriteColor"}]`, err: InvalidPath, detail: `"favoriteColor"`},
	{name: "unknown sub-attribute", ops: `[{"op":"replace","path":"name.nick","value":"x"}]`, err: InvalidPath, detail: `"name.nick"`},
	{name: "unknown schema", ops: `[{"op":"replace","path":"urn:example:custom:2.0:User:badge","value":"x"}]`, err: InvalidPath, detail: "badge"},
	{name: "unknown sub-attribute after filter", ops: `[{"op":"replace","path":"emails[type eq \"work\"].label","value":"x"}]`, err: InvalidPath, detail: `"label"`},
	{name: "filter on single-valued", ops: `[{"op":"replace","path":"name[givenName eq \"x\"].familyName","value":"y"}]`, err: InvalidPath},
	{name: "filter on unknown sub-attribute", ops: `[{"op":"replace","path":"emails[kind eq \"work\"].value","value":"x"}]`, err: InvalidFilter, detail: `"kind"`},
	{name: "sub-attribute of multi-valued without filter", ops: `[{"op":"add","path":"emails.value","value":"x@y.org"}]`, err: InvalidPath, detail: "value filter"},
	{name: "bad boolean", ops: `[{"op":"Replace","path":"active","value":"maybe"}]`, err: InvalidValue, detail: "active"},
	{name: "bad type in list", ops: `[{"op":"add","path":"emails","value":[{"value":5}]}]`, err: InvalidValue, detail: "emails.value"},
	{name: "list for single-valued", ops: `[{"op":"replace","path":"name","value":[{"givenName":"x"}]}]`, err: InvalidValue, detail: "name"},
	{name: "bad type in map", ops: `[{"op":"replace","value":{"name.givenName":true}}]`, err: InvalidValue, detail: "name.givenName"},
	{name: "bad extension value", ops: `[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":"x"}]`, err: InvalidValue},
	{name: "no-path value not an object", ops: `[{"op":"replace","value":"{\"active\":false}"}]`, err: InvalidValue},
	{name: "no-path value a list", ops: `[{"op":"add","value":[{"active":false}]}]`, err: InvalidValue},
	{name: "filter that cannot describe a new element",
		doc: `{"emails":null}`,
		ops: `[{"op":"replace","path":"emails[type eq \"work\" or type eq \"home\"].value","value":"x@y.org"}]`,
		err: NoTarget, detail: "emails"},
	{name: "filter on a different value than the one set",
		doc: `{"emails":null}`,
		ops: `[{"op":"add","path":"emails[value eq \"a@y.org\"].value","value":"b@y.org"}]`,
		err: NoTarget},
	{name: "error names the operation",
		ops: `[{"op":"replace","path":"displayName","value":"ok"},{"op":"replace","path":"active","value":3}]`,
		err: InvalidValue, detail: "Operations[1]"},
}

var groupTests = []applyTest{
	// Okta group push.
	{name: "okta rename with id in the map",
		ops:  `[{"op":"replace","value":{"id":"e9e30dba-f08f-4109-8486-d5c6a331660a","displayName":"Tour Guides EU"}}]`,
		want: `{"displayName":"Tour Guides EU"}`},
	{name: "okta add members",
		ops:     `[{"op":"add","path":"members","value":[{"value":"u1","display":"Babs"},{"value":"u2"}]}]`,
		members: MemberChange{Add: []string{"u1", "u2"}}},
	{name: "okta rename and remove member by filter",
		ops: `[{"op":"replace","value":{"id":"e9e30dba-f08f-4109-8486-d5c6a331660a","displayName":"Tour Guides"}},
			{"op":"remove","path":"members[value eq \"u1\"]"}]`,
		members: MemberChange{Remove: []string{"u1"}}},
	{name: "okta replace members",
		ops:     `[{"op":"replace","path":"members","value":[{"value":"u3"},{"value":"u4"}]}]`,
		members: MemberChange{RemoveAll: true, Add: []string{"u3", "u4"}}},

	// Entra ID.
	{name: "entra remove with a value list",
		ops:     `[{"op":"Remove","path":"members","value":[{"value":"u1"},{"value":"u2"}]}]`,
		members: MemberChange{Remove: []string{"u1", "u2"}}},
	{name: "entra add one member",
		ops:     `[{"op":"Add","path":"members","value":{"value":"u1"}}]`,
		members: MemberChange{Add: []string{"u1"}}},
	{name: "entra flag remove by filter",
		ops:     `[{"op":"remove","path":"members[value eq \"u9\"]"}]`,
		members: MemberChange{Remove: []string{"u9"}}},
	{name: "entra displayName replace",
		ops:  `[{"op":"Replace","path":"displayName","value":"Guides"}]`,
		want: `{"displayName":"Guides"}`},

	// Members in general.
	{name: "remove by or filter",
		ops:     `[{"op":"remove","path":"members[value eq \"a\" or Value EQ \"b\" or value eq \"c\"]"}]`,
		members: MemberChange{Remove: []string{"a", "b", "c"}}},
	{name: "remove all",
		ops:     `[{"op":"remove","path":"members"}]`,
		members: MemberChange{RemoveAll: true}},
	{name: "replace with empty list",
		ops:     `[{"op":"replace","path":"members","value":[]}]`,
		members: MemberChange{RemoveAll: true}},
	{name: "replace with null",
		ops:     `[{"op":"replace","path":"members","value":null}]`,
		members: MemberChange{RemoveAll: true}},
	{name: "add then remove",
		ops:     `[{"op":"add","path":"members","value":[{"value":"u1"},{"value":"u2"}]},{"op":"remove","path":"members[value eq \"u1\"]"}]`,
		members: MemberChange{Remove: []string{"u1"}, Add: []string{"u2"}}},
	{name: "remove then add",
		ops:     `[{"op":"remove","path":"members","value":[{"value":"u1"},{"value":"u2"}]},{"op":"add","path":"members","value":[{"value":"u1"}]}]`,
		members: MemberChange{Remove: []string{"u2"}, Add: []string{"u1"}}},
	{name: "add, remove, add again keeps first position",
		ops: `[{"op":"add","path":"members","value":[{"value":"u1"},{"value":"u2"}]},
			{"op":"remove","path":"members[value eq \"u1\"]"},
			{"op":"add","path":"members","value":[{"value":"u3"},{"value":"u1"}]}]`,
		members: MemberChange{Add: []string{"u1", "u2", "u3"}}},
	{name: "remove all then add and remove",
		ops: `[{"op":"remove","path":"members[value eq \"u0\"]"},{"op":"remove","path":"members"},
			{"op":"add","path":"members","value":[{"value":"u1"},{"value":"u2"}]},
			{"op":"remove","path":"members[value eq \"u2\" or value eq \"u7\"]"}]`,
		members: MemberChange{RemoveAll: true, Add: []string{"u1"}}},
	{name: "duplicates",
		ops:     `[{"op":"add","path":"members","value":[{"value":"u1"},{"value":"u1"},{"value":"u2"}]},{"op":"remove","path":"members[value eq \"x\" or value eq \"x\"]"}]`,
		members: MemberChange{Remove: []string{"x"}, Add: []string{"u1", "u2"}}},
	{name: "ids are case-sensitive",
		ops:     `[{"op":"add","path":"members","value":[{"value":"U1"},{"value":"u1"}]}]`,
		members: MemberChange{Add: []string{"U1", "u1"}}},
	{name: "members in a no-path map",
		ops:     `[{"op":"add","value":{"members":[{"value":"u1","type":"User"}],"displayName":"G"}}]`,
		want:    `{"displayName":"G"}`,
		members: MemberChange{Add: []string{"u1"}}},
	{name: "members replaced in a no-path map",
		ops:     `[{"op":"replace","value":{"members":[{"value":"u1"}]}}]`,
		members: MemberChange{RemoveAll: true, Add: []string{"u1"}}},
	{name: "bare member ids",
		ops:     `[{"op":"add","path":"members","value":["u1","u2"]}]`,
		members: MemberChange{Add: []string{"u1", "u2"}}},
	{name: "members in the document are dropped",
		doc: `{"members":[{"value":"u1"}]}`,
		ops: `[{"op":"remove","path":"members[value eq \"u1\"]"}]`, want: `{"members":null}`,
		members: MemberChange{Remove: []string{"u1"}}},

	// Errors.
	{name: "filter other than value eq", ops: `[{"op":"remove","path":"members[display eq \"Babs\"]"}]`, err: InvalidFilter, detail: `value eq`},
	{name: "filter with ne", ops: `[{"op":"remove","path":"members[value ne \"u1\"]"}]`, err: InvalidFilter},
	{name: "filter with and", ops: `[{"op":"remove","path":"members[value eq \"a\" and value eq \"b\"]"}]`, err: InvalidFilter},
	{name: "filter with a number", ops: `[{"op":"remove","path":"members[value eq 1]"}]`, err: InvalidFilter},
	{name: "filter with not", ops: `[{"op":"remove","path":"members[not (value eq \"a\")]"}]`, err: InvalidFilter},
	{name: "member without value", ops: `[{"op":"add","path":"members","value":[{"display":"Babs"}]}]`, err: InvalidValue, detail: "members[0]"},
	{name: "member with empty value", ops: `[{"op":"add","path":"members","value":[{"value":"u1"},{"value":""}]}]`, err: InvalidValue, detail: "members[1]"},
	{name: "member value not a string", ops: `[{"op":"replace","path":"members","value":[{"value":7}]}]`, err: InvalidValue, detail: "members[0].value"},
	{name: "add with members filter", ops: `[{"op":"add","path":"members[value eq \"u1\"]","value":{"value":"u1"}}]`, err: InvalidPath},
	{name: "member sub-attribute", ops: `[{"op":"remove","path":"members[value eq \"u1\"].display"}]`, err: Mutability},
	{name: "members.value", ops: `[{"op":"replace","path":"members.value","value":"u1"}]`, err: Mutability},
	{name: "remove group displayName", ops: `[{"op":"remove","path":"displayName"}]`, err: Mutability, detail: "displayName"},
	{name: "user attribute on a group", ops: `[{"op":"replace","path":"userName","value":"x"}]`, err: InvalidPath},
}

func TestApplyUser(t *testing.T)  { runApplyTests(t, schema.Users, userDoc, userTests) }
func TestApplyGroup(t *testing.T) { runApplyTests(t, schema.Groups, groupDoc, groupTests) }

func runApplyTests(t *testing.T, rt *schema.ResourceType, base string, tests []applyTest) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := decode(t, base)
			if tt.doc != "" {
				doc = mergePatch(doc, decode(t, tt.doc))
			}
			before := copyObject(doc)
			ops := mustParse(t, tt.ops)
			got, members, err := Apply(rt, doc, ops)
			if !reflect.DeepEqual(doc, before) {
				t.Fatalf("Apply modified its input:\n%s", toJSON(doc))
			}
			if tt.err != "" {
				checkError(t, err, tt.err, tt.detail)
				if got != nil || !reflect.DeepEqual(members, MemberChange{}) {
					t.Errorf("Apply returned %v, %+v with its error", got, members)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			want := before
			if tt.want != "" {
				want = mergePatch(before, decode(t, tt.want))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Apply =\n%s\nwant\n%s", toJSON(got), toJSON(want))
			}
			if !reflect.DeepEqual(members, tt.members) {
				t.Errorf("members = %+v, want %+v", members, tt.members)
			}
			checkResult(t, rt, doc, before, got)
		})
	}
}

func checkError(t *testing.T, err error, scimType, detail string) {
	t.Helper()
	pe, ok := err.(*Error)
	if !ok {
		t.Fatalf("error = %v (%T), want *Error with scimType %s", err, err, scimType)
	}
	if pe.ScimType != scimType {
		t.Errorf("scimType = %s (%s), want %s", pe.ScimType, pe.Detail, scimType)
	}
	if !strings.Contains(pe.Detail, detail) {
		t.Errorf("detail %q does not contain %q", pe.Detail, detail)
	}
}

// TestApplyAtomic: an error in a later operation leaves nothing of the
// earlier ones, and the input document is never modified.
func TestApplyAtomic(t *testing.T) {
	doc := decode(t, userDoc)
	before := copyObject(doc)
	ops := mustParse(t, `[
		{"op":"replace","path":"displayName","value":"Changed"},
		{"op":"remove","path":"emails[type eq \"home\"]"},
		{"op":"replace","path":"name.givenName","value":"Changed"},
		{"op":"replace","path":"nosuch","value":"x"}]`)
	got, _, err := Apply(schema.Users, doc, ops)
	checkError(t, err, InvalidPath, "Operations[3]")
	if got != nil {
		t.Errorf("Apply returned a document with its error: %v", got)
	}
	if !reflect.DeepEqual(doc, before) {
		t.Errorf("input modified:\n%s", toJSON(doc))
	}
	// The same holds for nested values shared with the result.
	got, _, err = Apply(schema.Users, doc, mustParse(t, `[{"op":"replace","path":"name.givenName","value":"X"}]`))
	if err != nil {
		t.Fatal(err)
	}
	got["emails"].([]any)[0].(map[string]any)["value"] = "mutated"
	if !reflect.DeepEqual(doc, before) {
		t.Errorf("result shares values with the input")
	}
}

// TestApplyImmutable uses a resource type with an immutable attribute:
// it may be set while absent, re-set to the same value, never changed.
func TestApplyImmutable(t *testing.T) {
	badge := &schema.Attribute{Name: "badge", Type: schema.String, Mutability: schema.Immutable}
	rt := &schema.ResourceType{ID: "Thing", Name: "Thing", Schema: &schema.Schema{
		ID: "urn:example:Thing", Attributes: []*schema.Attribute{
			{Name: "title", Type: schema.String, Mutability: schema.ReadWrite},
			badge,
			{Name: "card", Type: schema.Complex, Mutability: schema.ReadWrite, SubAttributes: []*schema.Attribute{
				{Name: "number", Type: schema.String, Mutability: schema.Immutable},
				{Name: "label", Type: schema.String, Mutability: schema.ReadWrite},
			}},
		},
	}}
	for _, tt := range []struct {
		doc, ops, want, err string
	}{
		{`{}`, `[{"op":"add","path":"badge","value":"B1"}]`, `{"badge":"B1"}`, ""},
		{`{"badge":"B1"}`, `[{"op":"replace","path":"badge","value":"b1"}]`, `{"badge":"b1"}`, ""}, // case-insensitive equal
		{`{"badge":"B1"}`, `[{"op":"replace","value":{"badge":"B1","title":"t"}}]`, `{"badge":"B1","title":"t"}`, ""},
		{`{"badge":"B1"}`, `[{"op":"replace","path":"badge","value":"B2"}]`, "", Mutability},
		{`{"badge":"B1"}`, `[{"op":"replace","value":{"badge":"B2"}}]`, "", Mutability},
		{`{"badge":"B1"}`, `[{"op":"remove","path":"badge"}]`, "", Mutability},
		{`{"badge":"B1"}`, `[{"op":"replace","path":"badge","value":null}]`, "", Mutability},
		{`{"card":{"label":"x"}}`, `[{"op":"add","path":"card.number","value":"7"}]`, `{"card":{"label":"x","number":"7"}}`, ""},
		{`{"card":{"number":"7"}}`, `[{"op":"replace","path":"card","value":{"number":"7","label":"y"}}]`, `{"card":{"number":"7","label":"y"}}`, ""},
		{`{"card":{"number":"7"}}`, `[{"op":"replace","path":"card.number","value":"8"}]`, "", Mutability},
		{`{"card":{"number":"7"}}`, `[{"op":"remove","path":"card.number"}]`, "", Mutability},
	} {
		t.Run(tt.ops, func(t *testing.T) {
			got, _, err := Apply(rt, decode(t, tt.doc), mustParse(t, tt.ops))
			if tt.err != "" {
				checkError(t, err, tt.err, "")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := decode(t, tt.want); !reflect.DeepEqual(got, want) {
				t.Errorf("got %s, want %s", toJSON(got), toJSON(want))
			}
		})
	}
}

// TestApplyOperationChecks covers operations built in Go rather than by
// Parse.
func TestApplyOperationChecks(t *testing.T) {
	doc := decode(t, userDoc)
	path, _ := filter.ParsePath("displayName")
	for _, tt := range []struct {
		op  Operation
		err string
	}{
		{Operation{Op: "move", Path: &path, Value: "x"}, InvalidSyntax},
		{Operation{Op: "Remove"}, NoTarget},
		{Operation{Op: "Add", Value: map[string]any{"displayName": "x"}}, ""},
	} {
		_, _, err := Apply(schema.Users, doc, []Operation{tt.op})
		if tt.err == "" {
			if err != nil {
				t.Errorf("%+v: %v", tt.op, err)
			}
			continue
		}
		checkError(t, err, tt.err, "")
	}
}

// TestApplyManyMembers: Entra ID and Okta send thousands of member changes
// in one PATCH; they become id lists in order, without quadratic work.
func TestApplyManyMembers(t *testing.T) {
	const n = 5000
	var add, remove strings.Builder
	for i := range n {
		if i > 0 {
			add.WriteByte(',')
		}
		fmt.Fprintf(&add, `{"value":"user-%04d","display":"User %d"}`, i, i)
	}
	// Remove every other added member, and as many that were never added.
	for i := 0; i < n; i++ {
		if i > 0 {
			remove.WriteByte(',')
		}
		id := fmt.Sprintf("user-%04d", i)
		if i%2 == 1 {
			id = fmt.Sprintf("other-%04d", i)
		}
		fmt.Fprintf(&remove, `{"value":%q}`, id)
	}
	ops := mustParse(t, `[{"op":"Add","path":"members","value":[`+add.String()+`]},
		{"op":"Remove","path":"members","value":[`+remove.String()+`]}]`)
	got, mc, err := Apply(schema.Groups, decode(t, groupDoc), ops)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["members"]; ok || mc.RemoveAll {
		t.Fatalf("unexpected %v %+v", got["members"], mc.RemoveAll)
	}
	if len(mc.Add) != n/2 || len(mc.Remove) != n {
		t.Fatalf("len(Add) = %d, len(Remove) = %d; want %d, %d", len(mc.Add), len(mc.Remove), n/2, n)
	}
	for i, id := range mc.Add {
		if want := fmt.Sprintf("user-%04d", 2*i+1); id != want {
			t.Fatalf("Add[%d] = %s, want %s", i, id, want)
		}
	}
	for i, id := range mc.Remove {
		want := fmt.Sprintf("user-%04d", i)
		if i%2 == 1 {
			want = fmt.Sprintf("other-%04d", i)
		}
		if id != want {
			t.Fatalf("Remove[%d] = %s, want %s", i, id, want)
		}
	}
}

// TestApplyVisitBound: many small operations on one long list are refused
// before their cost grows quadratic; one large operation is fine.
func TestApplyVisitBound(t *testing.T) {
	var many, large strings.Builder
	for i := range 5000 {
		if i > 0 {
			many.WriteByte(',')
			large.WriteByte(',')
		}
		fmt.Fprintf(&many, `{"op":"add","path":"roles","value":"r%d"},{"op":"remove","path":"roles[value eq \"x%d\"]"}`, i, i)
		fmt.Fprintf(&large, `{"value":"r%d"}`, i)
	}
	_, _, err := Apply(schema.Users, decode(t, userDoc), mustParse(t, "["+many.String()+"]"))
	checkError(t, err, TooMany, "split it")

	ops := mustParse(t, `[{"op":"add","path":"roles","value":[`+large.String()+`]},{"op":"remove","path":"roles[value sw \"r1\"]"}]`)
	got, _, err := Apply(schema.Users, decode(t, userDoc), ops)
	if err != nil {
		t.Fatal(err)
	}
	// r1, r10-r19, r100-r199, r1000-r1999 are gone.
	if n := len(got["roles"].([]any)); n != 5000-1-10-100-1000 {
		t.Errorf("%d roles left", n)
	}
}

func BenchmarkApplyManyMembers(b *testing.B) {
	var add strings.Builder
	for i := range 10000 {
		if i > 0 {
			add.WriteByte(',')
		}
		fmt.Fprintf(&add, `{"value":"user-%05d"}`, i)
	}
	ops := mustParse(b, `[{"op":"add","path":"members","value":[`+add.String()+`]}]`)
	doc := decode(b, groupDoc)
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := Apply(schema.Groups, doc, ops); err != nil {
			b.Fatal(err)
		}
	}
}
