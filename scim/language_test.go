package scim_test

import (
	"context"
	"testing"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

// TestPreferredLanguageSetsTheLanguage: SCIM's preferredLanguage (core
// User, RFC 7643 §4.1.2) sets the administrator's language, Russian for
// "ru" in any region and English for any other tag; a document without
// it leaves the language as it is; the IdP reads back what it sent.
func TestPreferredLanguageSetsTheLanguage(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, st *store.SQL) {
		e := newEnv(t, st)
		lang := func(id string) string {
			a, err := st.Administrator(context.Background(), e.org.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			return a.Language
		}
		body := user("ru@acme.test")
		body["preferredLanguage"] = "ru-RU"
		c := e.do("POST", "/Users", body).must(t, 201)
		id := c.str("id")
		if lang(id) != "ru" || c.str("preferredLanguage") != "ru-RU" {
			t.Fatalf("ru-RU: stored %q, sent back %q", lang(id), c.str("preferredLanguage"))
		}
		for _, tc := range []struct{ tag, want string }{{"en-US", "en"}, {"de", "en"}, {"ru", "ru"}, {"RU_ru", "ru"}} {
			put := user("ru@acme.test")
			put["preferredLanguage"] = tc.tag
			e.do("PUT", "/Users/"+id, put).must(t, 200)
			if got := lang(id); got != tc.want {
				t.Errorf("%s: language %q, want %q", tc.tag, got, tc.want)
			}
		}
		// Without preferredLanguage the administrator's choice stays.
		e.do("PUT", "/Users/"+id, user("ru@acme.test")).must(t, 200)
		if got := lang(id); got != "ru" {
			t.Errorf("after a PUT without preferredLanguage: %q, want ru kept", got)
		}
	})
}
