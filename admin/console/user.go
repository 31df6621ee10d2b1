package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"gatehouse/admin"
)

// Paths of the User preferences and the language switch.
const (
	PathUserPreferences = "/preferences/user"
	PathUserLanguage    = "/preferences/user/language"
	PathLanguage        = "/language"
)

// userView is the User preferences page's own values.
type userView struct {
	TOTPEnabled bool
	Language    string // the administrator's choice, "" none
	Saved       bool
	Replaced    bool // the second factor was just moved to a new app
}

// userPreferences is Preferences → User (seed 000): the password, the
// second factor and the language of the signed-in administrator.
func (c *Console) userPreferences(w http.ResponseWriter, r *http.Request) {
	a, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	creds, err := c.Store.Credentials(r.Context(), a.OrgID, a.ID)
	if err != nil {
		c.failure(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "user", &page{Title: msg("User preferences"), Me: &a, Org: &org, Nav: "preferences", Tab: "user",
		Data: userView{TOTPEnabled: creds.TOTPEnabled, Language: a.Language, Saved: r.URL.Query().Get("saved") == "language",
			Replaced: r.URL.Query().Get("totp") == "replaced"}})
}

// setUserLanguage saves the administrator's language (admin.Edit, the
// rule the management API's PATCH calls), then shows the page again in
// it. The cookie follows, so the sign-in page after signing out is in
// the same language.
func (c *Console) setUserLanguage(w http.ResponseWriter, r *http.Request) {
	a, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	lang := r.PostFormValue("language")
	updated, err := c.Administrators.Update(r.Context(), admin.PrincipalOf(a), a.ID, admin.Edit{Language: &lang})
	if e := refusal(err); e != nil {
		creds, cerr := c.Store.Credentials(r.Context(), a.OrgID, a.ID)
		if cerr != nil {
			c.failure(w, r, cerr)
			return
		}
		text := sentence(e.Message)
		if e.Code == admin.CodeInvalidLanguage {
			text = msg("Choose English or Russian.")
		}
		c.render(w, r, http.StatusBadRequest, "user", &page{Title: msg("User preferences"), Me: &a, Org: &org, Nav: "preferences",
			Tab: "user", Fields: map[string]string{"language": text}, Data: userView{TOTPEnabled: creds.TOTPEnabled, Language: a.Language}})
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	c.setLangCookie(w, updated.Language)
	http.Redirect(w, r, PathUserPreferences+"?saved=language", http.StatusSeeOther)
}

// language is the signed-out pages' language switch: it remembers the
// choice in LangCookie and returns to the page it came from, a path of
// this site only (anything else goes home: no open redirect).
func (c *Console) language(w http.ResponseWriter, r *http.Request) {
	if lang := r.URL.Query().Get("set"); known(lang) {
		c.setLangCookie(w, lang)
	}
	http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
}

func (c *Console) setLangCookie(w http.ResponseWriter, lang string) {
	http.SetCookie(w, &http.Cookie{Name: LangCookie, Value: lang, Path: "/", MaxAge: int((365 * 24 * time.Hour).Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(c.BaseURL, "https://")})
}

// localPath is next when it is a path of this site, else "/". A path
// that a browser would read as another host ("//evil", "/\evil") or
// anything with a scheme or host is refused.
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return PathHome
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return PathHome
	}
	return next
}

// The roles, as the home page shows the signed-in administrator's.
var _ = []string{msg("Administrator"), msg("Super Administrator")}
