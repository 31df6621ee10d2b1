package provlog

import "testing"

// userJSON is a typical SCIM User as gatehouse answers it (~600 bytes).
var userJSON = []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"2819c223-7f76-453a-919d-413861904646","externalId":"bjensen","userName":"bjensen@example.com","name":{"formatted":"Ms. Barbara J Jensen III","familyName":"Jensen","givenName":"Barbara"},"emails":[{"value":"bjensen@example.com","type":"work","primary":true}],"active":true,"meta":{"resourceType":"User","created":"2010-01-23T04:56:22Z","lastModified":"2011-05-13T04:42:34Z","version":"W/\"3694e05e9dff591\"","location":"https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"}}`)

// BenchmarkEntry is the writer's work for one GET of a User: redacting
// and reading the response (the insert aside).
func BenchmarkEntry(b *testing.B) {
	for b.Loop() {
		Entry(Exchange{OrgID: "o", Method: "GET", Path: "/scim/v2/Users/x", Status: 200, Response: userJSON})
	}
}
