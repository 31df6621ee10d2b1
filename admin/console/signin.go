package console

import (
	"fmt"
	"net/http"
	"net/url"

	"gatehouse/admin"
	"gatehouse/admin/web"
)

// SignInPage draws package sso's sign-in pages (sso.Pages) in the
// console's layout and the visitor's language: sso decides what a page
// asks and says; this lays it out. Its texts are English as sso wrote
// them, translated through the catalogue (signin.json holds them;
// TestSignInTextsAreTranslated reads package sso for them).
func (c *Console) SignInPage(w http.ResponseWriter, r *http.Request, status int, sp web.SignInPage) {
	c.parse()
	p := &page{Title: msg("Sign in"), Username: sp.Username, OrgSlug: sp.Org, Data: signInView{SignInPage: sp,
		Forgot: "/forgot-password" + orgQuery(sp.Org)}}
	msgText := sentence(sp.Message)
	switch sp.Kind {
	case web.SignInLogin, web.SignInPassword:
		p.Error = msgText
	default:
		p.Message = msgText
	}
	name := "signin"
	// The login form may go on to an IdP, the consent form to the
	// application: no form-action limit on those pages.
	p.leavesSite = sp.Kind == web.SignInLogin || sp.Kind == web.SignInConsent
	if sp.Kind == web.SignInMessage {
		name = "signin-message"
	}
	c.render(w, r, status, name, p)
}

// signInView is a sign-in page's own values.
type signInView struct {
	web.SignInPage
	// Forgot is the "Forgot your password?" link, with the organization.
	Forgot string
}

func orgQuery(slug string) string {
	if slug == "" {
		return ""
	}
	return "?org=" + url.QueryEscape(slug)
}

// The messages of package admin's sign-in refusals that the console and
// the sign-in pages show (sentence of *admin.Error.Message): render
// translates them like any text marked msg. TestRefusalsAreTranslated
// reads package admin's sign-in files and fails on a fixed message
// missing here. Messages that carry a value (an administrator's id or
// username) stay in English.
var _ = []string{
	msg("The link is not valid: it is unknown, already used or expired."),
	msg("The organization requires two-factor authentication: scan the code and enter the code of your authenticator app."),
	msg("The two-factor setup has expired: reload the page."),
	msg("The username or password is incorrect."),
	msg("Too many failed sign-ins: the account is locked for a while, try again later."),
	msg("The authentication code is incorrect, expired or already used."),
	msg("Too many failed sign-ins from this address: try again later."),
	msg("The account is not activated yet: follow the link of the invitation email."),
	msg("The account is deactivated."),
	msg("This organization signs in through its identity provider: use single sign-on."),
	msg("Enter the code of your authenticator app."),
	msg("The new password is the current one."),
	msg("The current password is incorrect."),
	msg("The password was changed meanwhile: try again."),
	msg("Two-factor authentication is already set up."),
	msg("The two-factor setup has expired: start again."),
	msg("The password is not valid UTF-8 text."),
	msg("The password may not be the username."),
	msg("The session has ended: sign in again."),
	msg("Change your password first."),
	msg("Set up two-factor authentication first."),
	msg("The account is not activated yet."),
}

// refusalFormats are the refusals whose message carries a number of
// the policy: translated with the number put back.
var refusalFormats = []struct {
	english, text string
	n             int
}{
	{"the password is shorter than %d characters", msg("The password is shorter than %d characters."), admin.MinPasswordLen},
	{"the password is longer than %d bytes", msg("The password is longer than %d bytes."), admin.MaxPasswordLen},
}

// translateRefusal is translate, and a refusal carrying a policy's
// number in lang.
func (cat catalogue) translateRefusal(lang, text string) string {
	for _, f := range refusalFormats {
		if text == sentence(fmt.Sprintf(f.english, f.n)) {
			return fmt.Sprintf(cat.translate(lang, f.text), f.n)
		}
	}
	return cat.translate(lang, text)
}

// The sentences of package sso's sign-in pages (TestSignInTextsAreTranslated
// reads sso for them).
var _ = []string{
	msg("This sign-in form was posted from another site."),
	msg("Enter username@organization or your work email address."),
	msg("This sign-in link is not valid."),
	msg("Testing a connection needs a Super Administrator of its organization signed in."),
	msg("Too many sign-ins are in progress for this organization. Try again in a few minutes."),
	msg("Sign-in could not start."),
	msg("This sign-in address is not valid."),
	msg("Sign-in failed."),
	msg("Too many sign-ins from your network. Try again in a few minutes."),
	msg("Sign-in is unavailable. Try again later."),
	msg("Sign-in is unavailable for a moment. Try again in a few seconds."),
}
