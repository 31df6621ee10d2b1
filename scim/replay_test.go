package scim_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gatehouse/store/storetest"
)

// Recorded IdP traffic: each file under testdata/scim/<idp>/ is one
// exchange sequence written from the IdP's published provisioning docs.
// A sequence runs against a fresh organization; "{{name}}" in a request is
// replaced by a value captured from an earlier answer, and an expected
// body is a pattern:
//   - objects: every key given must be there and match (other keys are free);
//   - arrays: same length, element by element;
//   - "{{*}}": any value that is present; "{{absent}}": the key must be missing;
//   - "{{name}}": the captured value.
type exchangeFile struct {
	Description string     `json:"description"`
	Source      string     `json:"source"`
	Exchanges   []exchange `json:"exchanges"`
}

type exchange struct {
	Note    string `json:"note"`
	Request struct {
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"request"`
	Response struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"response"`
	// Capture names values of the answer for later exchanges: name → dotted
	// path into the body ("id", "Resources.0.id"), or "header:ETag".
	Capture map[string]string `json:"capture"`
}

var placeholder = regexp.MustCompile(`\{\{([A-Za-z0-9_]+)\}\}`)

func TestRecordedTraffic(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "scim", "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded exchanges found")
	}
	sort.Strings(files)
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, filepath.Join("..", "testdata", "scim")+string(filepath.Separator)), ".json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var xf exchangeFile
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&xf); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if xf.Source == "" || len(xf.Exchanges) == 0 {
				t.Fatalf("%s: needs a source and exchanges", f)
			}
			replay(t, newEnv(t, storetest.SQLite(t)), xf)
		})
	}
}

func replay(t *testing.T, e *env, xf exchangeFile) {
	vars := map[string]string{}
	subst := func(s string) string {
		return placeholder.ReplaceAllStringFunc(s, func(m string) string {
			k := placeholder.FindStringSubmatch(m)[1]
			v, ok := vars[k]
			if !ok {
				t.Fatalf("placeholder %s used before it was captured", m)
			}
			return v
		})
	}
	for i, x := range xf.Exchanges {
		where := fmt.Sprintf("exchange %d (%s %s) %s", i, x.Request.Method, x.Request.Path, x.Note)
		var body any
		if len(x.Request.Body) > 0 {
			body = subst(string(x.Request.Body))
		}
		var headers []string
		for k, v := range x.Request.Headers {
			headers = append(headers, k, subst(v))
		}
		r := e.do(x.Request.Method, subst(x.Request.Path), body, headers...)
		if r.status != x.Response.Status {
			t.Fatalf("%s: status %d, want %d\n%s", where, r.status, x.Response.Status, r.raw)
		}
		for k, v := range x.Response.Headers {
			if got := r.header.Get(k); !strings.HasPrefix(got, subst(v)) {
				t.Errorf("%s: header %s = %q, want %q", where, k, got, v)
			}
		}
		if len(x.Response.Body) > 0 {
			var want any
			if err := json.Unmarshal(x.Response.Body, &want); err != nil {
				t.Fatalf("%s: expected body: %v", where, err)
			}
			if err := matchPattern(want, r.body, "", vars); err != nil {
				t.Fatalf("%s: %v\ngot %s", where, err, r.raw)
			}
		}
		for k, path := range x.Capture {
			var v string
			if h, ok := strings.CutPrefix(path, "header:"); ok {
				v = r.header.Get(h)
			} else {
				v = r.str(path)
			}
			if v == "" {
				t.Fatalf("%s: nothing to capture at %s", where, path)
			}
			vars[k] = v
		}
	}
}

func matchPattern(want, got any, at string, vars map[string]string) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %v", at, got)
		}
		for k, wv := range w {
			gv, present := g[k]
			if wv == "{{absent}}" {
				if present {
					return fmt.Errorf("%s.%s: want absent, got %v", at, k, gv)
				}
				continue
			}
			if !present {
				return fmt.Errorf("%s.%s: missing", at, k)
			}
			if err := matchPattern(wv, gv, at+"."+k, vars); err != nil {
				return err
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: want %d elements, got %v", at, len(w), got)
		}
		for i := range w {
			if err := matchPattern(w[i], g[i], fmt.Sprintf("%s[%d]", at, i), vars); err != nil {
				return err
			}
		}
	case string:
		if w == "{{*}}" {
			if got == nil {
				return fmt.Errorf("%s: want a value", at)
			}
			return nil
		}
		w = placeholder.ReplaceAllStringFunc(w, func(m string) string {
			if v, ok := vars[placeholder.FindStringSubmatch(m)[1]]; ok {
				return v
			}
			return m
		})
		if got != w {
			return fmt.Errorf("%s: got %v, want %q", at, got, w)
		}
	default:
		if got != want {
			return fmt.Errorf("%s: got %v, want %v", at, got, want)
		}
	}
	return nil
}
