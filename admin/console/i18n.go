package console

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"

	"gatehouse/admin"
)

// The console speaks English and Russian (seed 002's "Language"). English
// is the source: a text in a template is written {{t "English text"}}
// (with arguments, {{t "%d of %d" .A .B}}, formatted after translation),
// and a text set in Go is marked msg("English text"). The Russian
// catalogue, messages/ru/*.json (one flat object per area of the
// console, English → Russian), must hold every such text:
// TestRussianCatalogueIsComplete reads the templates and the Go files
// and fails on a text without a translation.

// Languages the console offers, the first the default: the languages an
// administrator may choose (admin.Languages).
var Languages = admin.Languages

// LangCookie remembers a signed-out visitor's choice of language.
const LangCookie = "gatehouse_lang"

//go:embed messages
var messageFS embed.FS

// catalogue maps a language to its translations of the English texts.
type catalogue map[string]map[string]string

// loadCatalogue reads messages/<lang>/*.json. The same English text in
// two files must have the same translation.
func loadCatalogue() (catalogue, error) {
	cat := catalogue{}
	for _, lang := range Languages[1:] {
		m := map[string]string{}
		names, err := fs.Glob(messageFS, "messages/"+lang+"/*.json")
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			b, err := messageFS.ReadFile(n)
			if err != nil {
				return nil, err
			}
			var part map[string]string
			if err := json.Unmarshal(b, &part); err != nil {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			for en, tr := range part {
				if old, ok := m[en]; ok && old != tr {
					return nil, fmt.Errorf("%s: %q translated twice, differently", n, en)
				}
				m[en] = tr
			}
		}
		cat[lang] = m
	}
	return cat, nil
}

// translate is text in lang: its translation, or text itself in English
// or when the catalogue has none (a refusal's message naming a value).
func (cat catalogue) translate(lang, text string) string {
	if tr, ok := cat[lang][text]; ok {
		return tr
	}
	return text
}

// msg marks an English text set in Go for the catalogue; render
// translates it.
func msg(s string) string { return s }

// langOf is the language a request's pages are in: the signed-in
// administrator's choice (pref, "" when none), else the visitor's cookie,
// else the browser's Accept-Language, else English.
func langOf(r *http.Request, pref string) string {
	if known(pref) {
		return pref
	}
	if ck, err := r.Cookie(LangCookie); err == nil && known(ck.Value) {
		return ck.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if known(base) {
			return base
		}
	}
	return Languages[0]
}

func known(lang string) bool { return slices.Contains(Languages, lang) }
