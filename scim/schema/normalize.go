package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// ValueError is input that does not fit the schema; the SCIM layer answers
// it with 400 and scimType invalidValue.
type ValueError struct {
	Path string // the attribute, as the client should read it
	Msg  string
}

func (e *ValueError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func valueErr(path, format string, args ...any) error {
	return &ValueError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Normalize turns a resource as a client sent it (decoded with UseNumber)
// into gatehouse's canonical form: attribute names spelled as in the schema,
// extension attributes under their URN, booleans as bool (Entra ID sends
// "True"/"False" strings), empty values removed. Following RFC 7644 §3.3 and
// what Okta and Entra ID need:
//   - unknown attributes are ignored, not refused;
//   - read-only attributes (id, meta, groups, ...) are ignored on input;
//   - write-only ones (password) are dropped: gatehouse never stores them;
//   - "schemas" is ignored: the server writes its own;
//   - an extension attribute may also come as a flat key
//     "urn:...:enterprise:2.0:User:employeeNumber".
//
// A value of the wrong type is a *ValueError. Required attributes are
// checked separately (CheckRequired), since PATCH normalizes fragments.
func Normalize(rt *ResourceType, doc map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		if strings.EqualFold(k, "schemas") {
			continue
		}
		if ext := rt.Extension(k); ext != nil {
			m, ok := v.(map[string]any)
			if v == nil {
				continue
			}
			if !ok {
				return nil, valueErr(ext.ID, "must be an object")
			}
			for name, sv := range m {
				if err := setNormalized(out, ext, ext.Attribute(name), ext.ID+":", sv); err != nil {
					return nil, err
				}
			}
			continue
		}
		var ext *Schema
		a := rt.Attribute(k)
		if i := strings.LastIndexByte(k, ':'); a == nil && i > 0 {
			urn, name := k[:i], k[i+1:]
			if ext = rt.Extension(urn); ext != nil {
				a = ext.Attribute(name)
			} else if strings.EqualFold(urn, rt.Schema.ID) {
				a = rt.Attribute(name)
			}
		}
		prefix := ""
		if ext != nil {
			prefix = ext.ID + ":"
		}
		if err := setNormalized(out, ext, a, prefix, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// setNormalized coerces v for a and stores it in out (under the extension's
// URN when ext is set). Unknown and read-only attributes are skipped.
func setNormalized(out map[string]any, ext *Schema, a *Attribute, prefix string, v any) error {
	if a == nil || a.Mutability == ReadOnly || a.Mutability == WriteOnly {
		return nil
	}
	cv, err := Coerce(a, v, prefix+a.Name)
	if err != nil || cv == nil {
		return err
	}
	target := out
	if ext != nil {
		m, _ := out[ext.ID].(map[string]any)
		if m == nil {
			m = map[string]any{}
			out[ext.ID] = m
		}
		target = m
	}
	target[a.Name] = cv
	return nil
}

// Coerce checks v against a and returns it in canonical form; nil means
// unassigned (null, an empty list, an empty object). path names the
// attribute in errors. A multi-valued attribute given a single value is
// taken as a list of one; read-only sub-attributes are dropped.
func Coerce(a *Attribute, v any, path string) (any, error) {
	if v == nil {
		return nil, nil
	}
	if a.MultiValued {
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		out := make([]any, 0, len(list))
		for _, e := range list {
			ce, err := CoerceValue(a, e, path)
			if err != nil {
				return nil, err
			}
			if ce != nil {
				out = append(out, ce)
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
	if _, ok := v.([]any); ok {
		return nil, valueErr(path, "is single-valued; got a list")
	}
	return CoerceValue(a, v, path)
}

// CoerceValue coerces one value of a (one element when a is multi-valued).
func CoerceValue(a *Attribute, v any, path string) (any, error) {
	if v == nil {
		return nil, nil
	}
	if a.Type == Complex {
		m, ok := v.(map[string]any)
		if _, isList := v.([]any); !ok && !isList && a.Sub("value") != nil {
			// Entra ID sends the enterprise manager as a bare id, and some
			// clients send a bare address for an email: take a scalar as
			// the "value" sub-attribute.
			m, ok = map[string]any{"value": v}, true
		}
		if !ok {
			return nil, valueErr(path, "must be an object")
		}
		out := make(map[string]any, len(m))
		for k, sv := range m {
			sub := a.Sub(k)
			if sub == nil || sub.Mutability == ReadOnly {
				continue
			}
			cv, err := CoerceValue(sub, sv, path+"."+sub.Name)
			if err != nil {
				return nil, err
			}
			if cv != nil {
				out[sub.Name] = cv
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
	if _, ok := v.([]any); ok {
		return nil, valueErr(path, "must be a single %s, not a list", a.Type)
	}
	if _, ok := v.(map[string]any); ok {
		return nil, valueErr(path, "must be a %s, not an object", a.Type)
	}
	switch a.Type {
	case Boolean:
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			// Entra ID without aadOptscim062020 sends "True" and "False".
			switch strings.ToLower(b) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return nil, valueErr(path, "must be a boolean")
	case Integer, Decimal:
		n, ok := number(v)
		if !ok {
			return nil, valueErr(path, "must be a number")
		}
		if a.Type == Integer && n != math.Trunc(n) {
			return nil, valueErr(path, "must be an integer")
		}
		return json.Number(fmt.Sprint(v)), nil
	case DateTime:
		s, ok := v.(string)
		if !ok {
			return nil, valueErr(path, "must be a dateTime string")
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, valueErr(path, "must be an xsd:dateTime such as 2026-11-23T10:00:00Z")
		}
		return s, nil
	default: // String, Reference, Binary
		s, ok := v.(string)
		if !ok {
			return nil, valueErr(path, "must be a string")
		}
		if strings.ContainsRune(s, 0) {
			return nil, valueErr(path, "must not contain NUL characters")
		}
		return s, nil
	}
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// CheckRequired reports the first required attribute of the core schema or
// a required extension that doc (normalized) lacks. Read-only required
// attributes (id) are the server's to set and are not checked.
func CheckRequired(rt *ResourceType, doc map[string]any) error {
	check := func(s *Schema, m map[string]any, prefix string) error {
		for _, a := range s.Attributes {
			if a.Required && a.Mutability != ReadOnly && empty(m[a.Name]) {
				return valueErr(prefix+a.Name, "is required")
			}
		}
		return nil
	}
	if err := check(rt.Schema, doc, ""); err != nil {
		return err
	}
	for _, e := range rt.Extensions {
		if e.Required {
			m, _ := doc[e.Schema.ID].(map[string]any)
			if err := check(e.Schema, m, e.Schema.ID+":"); err != nil {
				return err
			}
		}
	}
	return nil
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}
