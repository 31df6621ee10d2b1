package scim

import (
	"bytes"
	"encoding/json"
)

// decodeJSONValue decodes stored JSON keeping numbers as json.Number, as
// request bodies are decoded.
func decodeJSONValue(b []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(dst)
}

// decoded returns v as Go data: a json.RawMessage (an attribute left raw by
// renderUser) is decoded, anything else returned as it is.
func decoded(v any) any {
	raw, ok := v.(json.RawMessage)
	if !ok {
		return v
	}
	var out any
	if decodeJSONValue(raw, &out) != nil {
		return nil
	}
	return out
}

// asObject returns v as a fresh object to modify: a copy of a decoded
// object, the decoding of a raw one, or an empty one when v is absent.
func asObject(v any) (map[string]any, error) {
	switch x := v.(type) {
	case nil:
		return map[string]any{}, nil
	case json.RawMessage:
		m := map[string]any{}
		if err := decodeJSONValue(x, &m); err != nil {
			return nil, err
		}
		return m, nil
	case map[string]any:
		return shallowCopy(x), nil
	}
	return map[string]any{}, nil
}
