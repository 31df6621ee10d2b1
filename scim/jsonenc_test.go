package scim

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// trickyStrings are strings whose JSON escaping differs between encoders.
var trickyStrings = []string{
	"", "plain", `quote " and backslash \`, "<script>&amp;</script>", "line\nbreak\ttab\rreturn",
	"\b\f\x00\x01\x1f\x7f", "U+2028 \u2028 U+2029 \u2029", "invalid \xff\xfe UTF-8", "truncated \xe2\x80",
	"lone surrogate \xed\xa0\x80", "emoji 😀 and Ärzte", "\u2027\u202a", "end\\",
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	raws := []json.RawMessage{
		json.RawMessage(`{"b": [1, 2.5, true, null],  "a": "x<y>&z \u2028"}`),
		json.RawMessage("  \"\u2028\u2029 < \\\" \\\\\"  "),
		json.RawMessage(`{"k":"v"}`),
		json.RawMessage(`-12.5e3`),
	}
	values := []any{
		nil, true, false, 0, -42, int64(1) << 60, "x", []string{}, []string(nil), []any(nil), map[string]any(nil),
		[]any{}, map[string]any{}, json.Number("12"), 3.25, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
		map[string]string{"z": "<", "a": "&"},
	}
	for _, s := range trickyStrings {
		values = append(values, s, []string{s, s}, map[string]any{s: s, "z" + s: []any{s}})
	}
	for _, r := range raws {
		values = append(values, r, map[string]any{"raw": r})
	}
	values = append(values, map[string]any{
		"schemas": []any{"urn:a", "urn:b"}, "id": "1", "active": true, "count": 3,
		"meta":   map[string]any{"version": `W/"1"`, "location": "https://h/Users/1?a=b&c=<d>"},
		"nested": []any{map[string]any{"b": 1, "a": []any{nil, "x"}}},
	})
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSON(nil, v)
		if err != nil {
			t.Errorf("appendJSON(%#v): %v", v, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("appendJSON(%#v)\n got %s\nwant %s", v, got, want)
		}
	}
}

func TestAppendJSONInvalidRaw(t *testing.T) {
	for _, raw := range []json.RawMessage{json.RawMessage(`{"a":`), json.RawMessage(`nope`), json.RawMessage{}} {
		if _, err := appendJSON(nil, map[string]any{"a": raw}); err == nil {
			t.Errorf("appendJSON accepted raw %q", raw)
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, []byte(`{"a":"`+s+`"}`))
	}
	f.Add("k", []byte(" [ 1 , \"<\u2028>\" ] "))
	f.Fuzz(func(t *testing.T, s string, raw []byte) {
		v := map[string]any{s: []any{s, true, 7}, "list": []string{s}}
		if json.Valid(raw) {
			v["raw"] = json.RawMessage(raw)
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Skip()
		}
		got, err := appendJSON(nil, v)
		if err != nil {
			t.Fatalf("appendJSON: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("appendJSON(%q, %q)\n got %s\nwant %s", s, raw, got, want)
		}
	})
}
