package store

import (
	"encoding/json"
	"reflect"
	"testing"
)

// jsonReadSeeds are what the store writes (SQLite's json_group_array has no
// spaces, PostgreSQL's json_agg has) and what it must hand to encoding/json.
var jsonReadSeeds = []string{
	`[{"value":"a@acme.test","type":"work","primary":true}]`,
	`[{"value":"a@acme.test","type":"work","display":"A","primary":true},{"value":"b@acme.test"}]`,
	`[["0193-a","Admins"],["0193-b","Ops"]]`,
	`[["0193-a", "Admins"], ["0193-b", "Ops"]]`,
	`null`, `[]`, ` [ ] `,
	`[{"value":"caf\u00e9@acme.test"}]`,            // an escape: encoding/json reads it
	`[{"Value":"a@acme.test","PRIMARY":true}]`,     // encoding/json matches keys in any case
	`[{"value":"a@acme.test","extra":1}]`,          // unknown keys are ignored
	`[{"value":"a@acme.test",}]`, `[{"value":"a"}`, // not JSON
	"[{\"value\":\"\xff\"}]", // invalid UTF-8 becomes U+FFFD
	`[["a","b","c"]]`, `[["a"]]`, `[null]`, `[{"primary":1}]`,
}

// FuzzDecodeEmails holds the hand readers to encoding/json: the same
// result, and an error exactly when encoding/json has one.
func FuzzDecodeEmails(f *testing.F) {
	for _, s := range jsonReadSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want []Email
		wantErr := json.Unmarshal([]byte(s), &want)
		got, err := decodeEmails(s)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("decodeEmails(%q): error %v, encoding/json: %v", s, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeEmails(%q) = %#v, encoding/json: %#v", s, got, want)
		}

		var pairs [][2]string
		wantErr = json.Unmarshal([]byte(s), &pairs)
		refs, err := decodeGroupRefs(s)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("decodeGroupRefs(%q): error %v, encoding/json: %v", s, err, wantErr)
		}
		if err != nil {
			return
		}
		var wantRefs []GroupRef
		for _, p := range pairs {
			wantRefs = append(wantRefs, GroupRef{ID: p[0], DisplayName: p[1]})
		}
		if !reflect.DeepEqual(refs, wantRefs) {
			t.Fatalf("decodeGroupRefs(%q) = %#v, encoding/json: %#v", s, refs, wantRefs)
		}
	})
}

// TestDecodeWithoutFallback checks that what the store writes is read by
// the hand readers themselves, not by the encoding/json fallback (which
// would be correct but slow, and FuzzDecodeEmails cannot tell).
func TestDecodeWithoutFallback(t *testing.T) {
	for _, s := range jsonReadSeeds[:7] {
		w := jsonWalk{s: s, ok: true}
		w.list(func() {
			if w.next('[') {
				w.str()
				w.expect(',')
				w.str()
				w.expect(']')
				return
			}
			w.object(func(key string) {
				if key == "primary" {
					w.boolean()
				} else {
					w.str()
				}
			})
		})
		if !w.end() {
			t.Errorf("%s: the hand reader gave up at byte %d", s, w.i)
		}
	}
}
