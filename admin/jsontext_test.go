package admin

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestScanJSON(t *testing.T) {
	tests := []struct {
		in    string
		depth int
		lone  bool
	}{
		{`{}`, 1, false},
		{`{"a":[{"b":"[[["}]}`, 3, false},
		{`{"u":"sur\ud800x"}`, 1, true},
		{`{"u":"sur\uDBFFx"}`, 1, true},
		{`{"u":"sur\udc00x"}`, 1, true},
		{`{"u":"\ud800"}`, 1, true},
		{`{"u":"\ud800\u0041"}`, 1, true},
		{`{"u":"\ud800\ud800\udc00"}`, 1, true},
		{`{"u":"\udc00\ud800"}`, 1, true},
		{`{"sur\ud800":"x"}`, 1, true},
		{`{"u":"\ud83d\ude00 ok"}`, 1, false},
		{`{"u":"\uD83D\uDE00\u00e9"}`, 1, false},
		{`{"u":"\\ud800"}`, 1, false}, // an escaped backslash, then text
		{`{"u":"\"\ud800"}`, 1, true},
		{`{"u":"\ud7ff\ue000"}`, 1, false},
		{`{"u":"\ud800`, 1, true}, // cut short: the decoder refuses it anyway
		{`{"u":"\ud8`, 1, false},
	}
	for _, tt := range tests {
		got := ScanJSON([]byte(tt.in))
		if got.Depth != tt.depth || got.LoneSurrogate != tt.lone {
			t.Errorf("ScanJSON(%s) = %+v, want depth %d lone %v", tt.in, got, tt.depth, tt.lone)
		}
	}
}

// FuzzScanJSON: for every text encoding/json decodes, ScanJSON finds a lone
// surrogate exactly when the decoded strings differ from what an exact
// decoder would give, which shows as a U+FFFD the text did not spell.
func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{`{"a":"\ud800"}`, `["\ud83d\ude00"]`, `"\ufffd"`, `"\\ud800"`, `"�"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var v any
		if !utf8.ValidString(in) || json.Unmarshal([]byte(in), &v) != nil {
			return
		}
		spelled := strings.Count(in, "\ufffd") + strings.Count(strings.ToLower(in), `\ufffd`)
		got := strings.Count(fmtJSON(v), "\ufffd")
		if lone := ScanJSON([]byte(in)).LoneSurrogate; lone != (got > spelled) {
			t.Errorf("ScanJSON(%q).LoneSurrogate = %v; U+FFFD decoded %d, spelled %d", in, lone, got, spelled)
		}
	})
}

func fmtJSON(v any) string {
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			b.WriteString(v)
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for k, x := range v {
				b.WriteString(k)
				walk(x)
			}
		}
	}
	walk(v)
	return b.String()
}

// BenchmarkScanJSON: the pass over a SCIM create body (the body of
// scim's BenchmarkSCIM/CreateUserParallel).
func BenchmarkScanJSON(b *testing.B) {
	body := []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"new-1@acme.test","name":{"givenName":"N","familyName":"U"},"emails":[{"value":"n@acme.test","type":"work","primary":true}],"active":true,"externalId":"x","password":"p"}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if ScanJSON(body).LoneSurrogate {
			b.Fatal("lone surrogate")
		}
	}
}
