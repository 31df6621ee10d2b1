// Package patch reads SCIM PATCH requests and applies them to a resource
// (RFC 7644 §3.5.2), accepting the shapes Okta and Microsoft Entra ID really
// send.
//
// Parse checks the PatchOp message and parses every path; Apply resolves the
// operations against a resource type's schema and applies them, in order and
// all-or-nothing, to a copy of the resource. Operations on a group's members
// come out as a MemberChange, never as a member list. Every error is an
// *Error whose Detail is safe to send to the client.
//
// # Where gatehouse departs from RFC 7644
//
// Each of these is deliberate, for a named client or a stated reason:
//
//   - "op" is matched in any case: Entra ID without the aadOptscim062020
//     flag sends "Add", "Replace", "Remove".
//   - "schemas" may be absent, and the "Operations", "op", "path" and
//     "value" keys are matched in any case; a "path" that is "" counts as no
//     path.
//   - Boolean attributes accept the strings "True" and "False" (Entra ID),
//     and a complex attribute with a "value" sub-attribute accepts a bare
//     value as {"value": ...} (Entra ID sends the enterprise manager as a
//     bare id), both through schema.Coerce.
//   - In the value map of an add or replace without a path, keys may be
//     dotted ("name.givenName"), URN-prefixed
//     ("urn:...:enterprise:2.0:User:employeeNumber") or value-filtered
//     paths, as Entra ID sends with aadOptscim062020; and read-only keys
//     (id, meta, groups, schemas) and unknown keys are ignored rather than
//     refused, because Okta sends the group's "id" with every rename. A
//     path that names a read-only attribute is still a mutability error.
//   - An add or replace whose value-filtered path
//     (emails[type eq "work"].value) matches no element appends a new element
//     built from the filter's "eq" comparisons plus the value, instead of
//     failing with noTarget (RFC 7644 §3.5.2.3): Entra ID sends exactly that,
//     with "Add" or "Replace", for a user who has no work email yet.
//   - A replace of value-filtered elements without a sub-attribute merges
//     the value into each element, as a replace of a complex attribute does
//     (RFC 7644 §3.5.2.3), rather than swapping the element whole.
//   - A replace with a null value unassigns the target, as null does in a
//     PUT (RFC 7644 §3.5.1); an add with null, or with [], changes nothing.
//   - A remove whose path is a multi-valued attribute may carry a "value":
//     the elements having the sub-attributes of one of the given values are
//     removed ({"value": "x@example.com"} removes that address whatever its
//     type). Entra ID removes group members this way:
//     {"op":"Remove","path":"members","value":[{"value":"id"}]}.
//   - "schemas" as a path is accepted and ignored: the server derives a
//     resource's schemas from the attributes it has (RFC 7643 §3).
//   - Write-only attributes (password) are checked and then discarded:
//     gatehouse never stores a SCIM password.
//
// And where it is stricter:
//
//   - A filter on members must be value eq "id", or several joined by "or",
//     and is accepted only with remove: anything else would need the member
//     list, which a PATCH does not load (invalidFilter, invalidPath).
//   - A sub-attribute of a multi-valued attribute without a value filter
//     (emails.value) is refused for add and replace (invalidPath); remove
//     takes it from every value.
//   - One request may make Apply examine at most 100,000 values of
//     multi-valued attributes (tooMany), so that 10,000 small operations on
//     one long list cannot cost quadratic time.
package patch

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"gatehouse/scim/filter"
	"gatehouse/scim/schema"
)

// MaxOperations bounds the operations of one PATCH request.
const MaxOperations = 10000

// Operation kinds, as Parse spells them.
const (
	Add     = "add"
	Replace = "replace"
	Remove  = "remove"
)

// Operation is one PATCH operation.
type Operation struct {
	Op    string       // Add, Replace or Remove (Apply accepts any case)
	Path  *filter.Path // nil when the operation has no path
	Value any          // the decoded JSON value; nil for none or null
}

// The scimType values of RFC 7644 §3.12 that this package returns.
const (
	InvalidPath   = "invalidPath"
	NoTarget      = "noTarget"
	InvalidValue  = "invalidValue"
	Mutability    = "mutability"
	InvalidFilter = "invalidFilter"
	InvalidSyntax = "invalidSyntax"
	TooMany       = "tooMany"
)

// Error is a PATCH request the server refuses; the SCIM layer answers it
// with 400 and this scimType (RFC 7644 §3.12). Detail names the operation
// and the attribute and is meant for the client.
type Error struct {
	ScimType string
	Detail   string
}

func (e *Error) Error() string { return "patch: " + e.Detail + " (" + e.ScimType + ")" }

func errorf(scimType, format string, args ...any) *Error {
	return &Error{ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

// Parse reads a PatchOp request body (RFC 7644 §3.5.2) decoded with
// json.Decoder.UseNumber. The "Operations" array must hold between one and
// MaxOperations operations; each needs an "op", a "path" for remove
// (noTarget otherwise) and a "value" for add and replace (invalidValue
// otherwise). A "value" is taken as decoded: a JSON string that happens to
// contain an object stays a string.
func Parse(body map[string]any) ([]Operation, error) {
	if v, ok := filter.Lookup(body, "schemas"); ok && v != nil {
		if !hasPatchOpURN(v) {
			return nil, errorf(InvalidSyntax, `"schemas" must contain %q`, schema.PatchOpURN)
		}
	}
	v, ok := filter.Lookup(body, "Operations")
	if !ok || v == nil {
		return nil, errorf(InvalidSyntax, `the request has no "Operations"`)
	}
	list, ok := v.([]any)
	switch {
	case !ok:
		return nil, errorf(InvalidSyntax, `"Operations" must be an array`)
	case len(list) == 0:
		return nil, errorf(InvalidSyntax, `"Operations" must hold at least one operation`)
	case len(list) > MaxOperations:
		return nil, errorf(InvalidSyntax, `"Operations" holds %d operations; at most %d are accepted`, len(list), MaxOperations)
	}
	ops := make([]Operation, len(list))
	for i, x := range list {
		op, err := parseOperation(x)
		if err != nil {
			err.Detail = fmt.Sprintf("Operations[%d]: %s", i, err.Detail)
			return nil, err
		}
		ops[i] = op
	}
	return ops, nil
}

func hasPatchOpURN(v any) bool {
	list, _ := v.([]any)
	for _, s := range list {
		if s, ok := s.(string); ok && strings.EqualFold(s, schema.PatchOpURN) {
			return true
		}
	}
	return false
}

func parseOperation(x any) (Operation, *Error) {
	m, ok := x.(map[string]any)
	if !ok {
		return Operation{}, errorf(InvalidSyntax, "an operation must be an object")
	}
	var op Operation
	name, _ := filter.Lookup(m, "op")
	s, ok := name.(string)
	switch {
	case !ok:
		return Operation{}, errorf(InvalidSyntax, `"op" must be "add", "replace" or "remove"`)
	case strings.EqualFold(s, Add), strings.EqualFold(s, Replace), strings.EqualFold(s, Remove):
		op.Op = strings.ToLower(s)
	default:
		return Operation{}, errorf(InvalidSyntax, `"op" must be "add", "replace" or "remove", not %s`, quote(s))
	}
	switch p, _ := filter.Lookup(m, "path"); p := p.(type) {
	case nil:
	case string:
		if strings.TrimSpace(p) != "" {
			parsed, err := filter.ParsePath(p)
			if err != nil {
				return Operation{}, pathError(err)
			}
			op.Path = &parsed
		}
	default:
		return Operation{}, errorf(InvalidPath, `"path" must be a string`)
	}
	v, hasValue := filter.Lookup(m, "value")
	op.Value = v
	switch {
	case op.Op == Remove && op.Path == nil:
		// RFC 7644 §3.5.2.2: remove without a path is noTarget.
		return Operation{}, errorf(NoTarget, `"remove" needs a "path"`)
	case op.Op != Remove && !hasValue:
		return Operation{}, errorf(InvalidValue, "%q needs a \"value\"", op.Op)
	}
	return op, nil
}

func pathError(err error) *Error {
	var ferr *filter.Error
	if errors.As(err, &ferr) {
		return errorf(InvalidPath, `invalid "path" at position %d: %s`, ferr.Pos, ferr.Msg)
	}
	return errorf(InvalidPath, `invalid "path"`)
}

// maxQuoted bounds how much of a client's text one error detail echoes.
const maxQuoted = 128

// truncate cuts s to maxQuoted bytes, on a rune boundary.
func truncate(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// quote returns s, cut to maxQuoted bytes, as a quoted string.
func quote(s string) string { return strconv.Quote(truncate(s)) }
