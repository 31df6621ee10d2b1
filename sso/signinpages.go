package sso

import (
	"net/http"

	"gatehouse/admin/web"
)

// Pages draws the sign-in pages (/login, /login/password, and the page
// of a message): the console implements it, so that they look like the
// console and speak the visitor's language. The Flow decides everything
// a page asks and says, and its status; Pages only lays it out.
type Pages interface {
	SignInPage(w http.ResponseWriter, r *http.Request, status int, p web.SignInPage)
}

// page answers one of the sign-in pages through f.Pages, or the
// package's own plain templates when there is none.
func (f *Flow) page(w http.ResponseWriter, r *http.Request, status int, kind web.SignInPageKind, d pageData, code string) {
	if f.Pages != nil {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		f.Pages.SignInPage(w, r, status, web.SignInPage{Kind: kind, Next: d.Next, Username: d.Username, Org: d.Org,
			OrgFixed: d.OrgFixed, Message: d.Message, RefusalCode: code, Reference: d.Reference, AskTOTP: d.AskTOTP})
		return
	}
	t := messageTemplate
	switch kind {
	case web.SignInLogin:
		t = loginTemplate
	case web.SignInPassword:
		t = passwordTemplate
	}
	render(w, status, t, d)
}

// message answers the page of a message.
func (f *Flow) message(w http.ResponseWriter, r *http.Request, status int, d pageData) {
	f.page(w, r, status, web.SignInMessage, d, "")
}
