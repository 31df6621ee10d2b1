package patch

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string // each operation as op|path|value (%v)
	}{
		{"okta",
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`,
			[]string{"replace||map[active:false]"}},
		{"entra capitalised ops",
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
				{"op":"Add","path":"emails[type eq \"work\"].value","value":"x@y.org"},
				{"op":"Replace","path":"active","value":"False"},
				{"op":"Remove","path":"members","value":[{"value":"u1"}]},
				{"op":"REMOVE","path":"members[value eq \"u1\"]"}]}`,
			[]string{`add|emails[type eq "work"].value|x@y.org`, "replace|active|False",
				"remove|members|[map[value:u1]]", `remove|members[value eq "u1"]|<nil>`}},
		{"no schemas, keys in any case",
			`{"operations":[{"OP":"replace","PATH":"displayName","Value":"x"}]}`,
			[]string{"replace|displayName|x"}},
		{"schemas URN in any case",
			`{"schemas":["URN:IETF:PARAMS:SCIM:API:MESSAGES:2.0:PATCHOP"],"Operations":[{"op":"add","path":"title","value":"t"}]}`,
			[]string{"add|title|t"}},
		{"empty path is no path",
			`{"Operations":[{"op":"replace","path":"","value":{"active":true}},{"op":"replace","path":null,"value":{}}]}`,
			[]string{"replace||map[active:true]", "replace||map[]"}},
		{"null value is a value",
			`{"Operations":[{"op":"replace","path":"title","value":null}]}`,
			[]string{"replace|title|<nil>"}},
		{"value holding JSON text stays text",
			`{"Operations":[{"op":"replace","value":"{\"active\":false}"}]}`,
			[]string{`replace||{"active":false}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := Parse(decode(t, tt.body))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, op := range ops {
				path := ""
				if op.Path != nil {
					path = op.Path.String()
				}
				got = append(got, fmt.Sprintf("%s|%s|%v", op.Op, path, op.Value))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tooMany := `{"Operations":[` + strings.Repeat(`{"op":"remove","path":"title"},`, MaxOperations) + `{"op":"remove","path":"title"}]}`
	tests := []struct {
		name, body, scimType, detail string
	}{
		{"wrong schemas", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[{"op":"add","path":"a","value":1}]}`, InvalidSyntax, "PatchOp"},
		{"schemas not a list", `{"schemas":"urn:ietf:params:scim:api:messages:2.0:PatchOp","Operations":[{"op":"add","path":"a","value":1}]}`, InvalidSyntax, "schemas"},
		{"no operations", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`, InvalidSyntax, "Operations"},
		{"operations not a list", `{"Operations":{"op":"add"}}`, InvalidSyntax, "array"},
		{"empty operations", `{"Operations":[]}`, InvalidSyntax, "at least one"},
		{"too many operations", tooMany, InvalidSyntax, "10000"},
		{"operation not an object", `{"Operations":["add"]}`, InvalidSyntax, "Operations[0]"},
		{"no op", `{"Operations":[{"path":"title","value":"x"}]}`, InvalidSyntax, `"op"`},
		{"unknown op", `{"Operations":[{"op":"add","path":"a","value":1},{"op":"move","path":"title"}]}`, InvalidSyntax, `Operations[1]: "op" must be "add", "replace" or "remove", not "move"`},
		{"remove without path", `{"Operations":[{"op":"remove","value":{"title":"x"}}]}`, NoTarget, "path"},
		{"remove with empty path", `{"Operations":[{"op":"Remove","path":" "}]}`, NoTarget, "path"},
		{"add without value", `{"Operations":[{"op":"add","path":"title"}]}`, InvalidValue, "value"},
		{"replace without value", `{"Operations":[{"op":"Replace"}]}`, InvalidValue, "value"},
		{"unparsable path", `{"Operations":[{"op":"replace","path":"emails[type eq \"work\"","value":"x"}]}`, InvalidPath, "position 21"},
		{"bad path characters", `{"Operations":[{"op":"remove","path":"name..givenName"}]}`, InvalidPath, "position 5"},
		{"path not a string", `{"Operations":[{"op":"remove","path":5}]}`, InvalidPath, "string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := Parse(decode(t, tt.body))
			if ops != nil {
				t.Errorf("Parse returned operations with its error")
			}
			checkError(t, err, tt.scimType, tt.detail)
		})
	}
}

func TestParseMaxOperations(t *testing.T) {
	body := `{"Operations":[` + strings.Repeat(`{"op":"remove","path":"title"},`, MaxOperations-1) + `{"op":"remove","path":"title"}]}`
	ops, err := Parse(decode(t, body))
	if err != nil || len(ops) != MaxOperations {
		t.Fatalf("Parse of %d operations: %d, %v", MaxOperations, len(ops), err)
	}
}
