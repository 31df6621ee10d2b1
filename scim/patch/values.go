package patch

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"gatehouse/scim/filter"
	"gatehouse/scim/schema"
)

// projectKey is the valueKey of e restricted to the sub-attributes subs
// ([""] for a simple value).
func projectKey(attr *schema.Attribute, e any, subs []string) string {
	el, ok := e.(map[string]any)
	if !ok {
		if len(subs) == 1 && subs[0] == "" {
			return valueKey(attr, e)
		}
		return "\x00"
	}
	var b strings.Builder
	for _, s := range subs {
		v, found := filter.Lookup(el, s)
		if !found {
			return "\x00"
		}
		b.WriteString(strconv.Quote(strings.ToLower(s)))
		b.WriteByte(':')
		writeKey(&b, attr.Sub(s), v)
		b.WriteByte(',')
	}
	return b.String()
}

// valueKey returns a string that is equal for two values exactly when
// they are equal for the schema: object keys in any case and order,
// strings compared in lower case unless the (sub-)attribute is case-exact.
func valueKey(attr *schema.Attribute, v any) string {
	var b strings.Builder
	writeKey(&b, attr, v)
	return b.String()
}

func writeKey(b *strings.Builder, attr *schema.Attribute, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case []any:
		b.WriteByte('[')
		for _, e := range x {
			writeKey(b, attr, e)
			b.WriteByte(',')
		}
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		for _, k := range sortedKeys(x) {
			b.WriteString(strconv.Quote(strings.ToLower(k)))
			b.WriteByte(':')
			var sub *schema.Attribute
			if attr != nil {
				sub = attr.Sub(k)
			}
			writeKey(b, sub, x[k])
			b.WriteByte(',')
		}
		b.WriteByte('}')
	case string:
		if attr == nil || !attr.CaseExact {
			x = strings.ToLower(x)
		}
		b.WriteString(strconv.Quote(x))
	case json.Number:
		b.WriteString(string(x))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	default:
		fmt.Fprintf(b, "%T:%v", x, x)
	}
}

// present reports whether v is a value rather than unassigned (RFC 7643
// §2.5: null, an empty list or object).
func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// get returns m's value for key, matched case-insensitively; m may be nil.
func get(m map[string]any, key string) any {
	v, _ := filter.Lookup(m, key)
	return v
}

// setKey stores v under key, spelled as given, replacing the entries whose
// keys differ from it only in case; v nil deletes them.
func setKey(m map[string]any, key string, v any) {
	if m == nil {
		return
	}
	for k := range m {
		if k != key && strings.EqualFold(k, key) {
			delete(m, k)
		}
	}
	if v == nil {
		delete(m, key)
		return
	}
	m[key] = v
}

// prune removes unassigned values (null, empty lists and objects), as
// schema.Normalize leaves none.
func prune(m map[string]any) {
	for k, v := range m {
		if v = pruned(v); v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
}

func pruned(v any) any {
	switch x := v.(type) {
	case map[string]any:
		prune(x)
		if len(x) == 0 {
			return nil
		}
	case []any:
		out := x[:0]
		for _, e := range x {
			if e = pruned(e); e != nil {
				out = append(out, e)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return v
}

func copyObject(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return copyObject(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = copyValue(e)
		}
		return out
	}
	return v
}
