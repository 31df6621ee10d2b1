package console

import (
	"net/http"
	"net/url"

	"gatehouse/admin"
	"gatehouse/admin/web"
	"gatehouse/store"
)

// signedIn returns the request's active session's administrator and
// organization. When there is none it has answered: a redirect to the
// sign-in page, to the step the session must take first (change the
// password, enrol TOTP), or an error page; ok is then false.
func (c *Console) signedIn(w http.ResponseWriter, r *http.Request) (a store.Administrator, org store.Org, ok bool) {
	_, a, err := c.SignIn.Authenticate(r.Context(), sessionToken(r))
	if e := refusal(err); e != nil {
		switch e.Code {
		case admin.CodePasswordChangeRequired:
			http.Redirect(w, r, PathChangePassword+nextQuery(returnTo(r)), http.StatusSeeOther)
		case admin.CodeTOTPEnrolmentRequired:
			http.Redirect(w, r, PathTwoFactor+nextQuery(returnTo(r)), http.StatusSeeOther)
		default:
			http.Redirect(w, r, PathSignIn+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		}
		return a, org, false
	}
	if err != nil {
		c.failure(w, r, err)
		return a, org, false
	}
	org, err = c.Store.Org(r.Context(), a.OrgID)
	if err != nil {
		c.failure(w, r, err)
		return a, org, false
	}
	return a, org, true
}

// returnTo is the page a session sent to a step first (a password
// change, a TOTP enrolment) comes back to once it is done: the page of a
// GET other than the home page (a step's own page passes its next on),
// "" otherwise.
func returnTo(r *http.Request) string {
	switch {
	case r.Method != http.MethodGet || r.URL.Path == PathHome:
		return ""
	case r.URL.Path == PathChangePassword || r.URL.Path == PathTwoFactor:
		return stepNext(r.URL.Query().Get("next"))
	}
	return stepNext(r.URL.RequestURI())
}

// stepNext is the next= a step page was given (its link, its form): a
// local path (web.SafeRedirect), or "" when none or not one.
func stepNext(v string) string {
	if next := web.SafeRedirect(v); next == v && next != PathHome {
		return next
	}
	return ""
}

// nextQuery is "?next=next", or "" for no next.
func nextQuery(next string) string {
	if next == "" {
		return ""
	}
	return "?next=" + url.QueryEscape(next)
}

// home is the console's first page: the Administration page (seed 001)
// for a signed-in administrator, the sign-in page otherwise.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := c.signedIn(w, r); !ok {
		return
	}
	http.Redirect(w, r, PathAdministrators, http.StatusSeeOther)
}

// signOut ends the session and clears the cookie.
func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	if err := c.SignIn.Logout(r.Context(), sessionToken(r)); err != nil {
		c.failure(w, r, err)
		return
	}
	c.setSession(w, "")
	http.Redirect(w, r, PathSignIn, http.StatusSeeOther)
}

// linkInvalid is the page of an activation or reset link that cannot be
// used, saying what to do instead.
func (c *Console) linkInvalid(w http.ResponseWriter, r *http.Request, activation bool) {
	p := &page{Title: msg("This link can no longer be used")}
	if activation {
		p.Message = msg("This activation link has expired, has already been used, or was replaced by a newer invitation. If you already set your password, sign in. Otherwise ask an administrator of your organization to resend your invitation.")
	} else {
		p.Message = msg("This password-reset link has expired, has already been used, or was replaced by a newer one. Ask for a new link: each link works once, for a limited time.")
	}
	p.Done = !activation // offers "Request a new link"
	c.render(w, r, http.StatusGone, "link", p)
}

// activatePage shows an activation link's form: a password, and a TOTP
// enrolment when the organization requires one.
func (c *Console) activatePage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	info, err := c.SignIn.ActivationInfo(r.Context(), token)
	if e := refusal(err); e != nil {
		c.linkInvalid(w, r, true)
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	p := &page{Title: msg("Activate your account"), Token: token, Username: info.Administrator.UserName, OrgName: info.Org.Name,
		OrgSlug: info.Org.Slug, TOTPRequired: info.TOTPRequired, LDAPUser: info.LDAPUser}
	if info.TOTPRequired {
		if p.TOTP, err = newTOTPView(info.TOTP.Secret, info.TOTP.URL, info.TOTP.Ticket); err != nil {
			c.failure(w, r, err)
			return
		}
	}
	c.render(w, r, http.StatusOK, "activate", p)
}

// activate uses the link: the password (twice) and, when asked, the TOTP
// code. Then it signs the administrator in with that password, through
// the same rules as the sign-in form (admin.SignIn.Login), and lands on
// the console; when a second factor is set, Login needs a new code (the
// one just used cannot serve twice), so the page asks for it.
func (c *Console) activate(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("token")
	password, confirm := r.PostFormValue("password"), r.PostFormValue("confirm")
	p := &page{Title: msg("Activate your account"), Token: token, Username: r.PostFormValue("username"),
		OrgName: r.PostFormValue("org_name"), OrgSlug: r.PostFormValue("org_slug"), TOTPRequired: r.PostFormValue("ticket") != ""}
	if p.TOTPRequired {
		var err error
		if p.TOTP, err = newTOTPView(r.PostFormValue("secret"), r.PostFormValue("totp_url"), r.PostFormValue("ticket")); err != nil {
			c.failure(w, r, err)
			return
		}
	}
	p.Note = retype
	// An LDAP user types the directory's password once: it is checked
	// by a bind, not chosen (admin.SignIn.Activate decides by the
	// account, whatever the form says).
	p.LDAPUser = r.PostFormValue("ldap") == "1"
	if password != confirm && !p.LDAPUser {
		p.Fields = map[string]string{"confirm": msg("The two passwords differ: type the same password twice.")}
		c.render(w, r, http.StatusBadRequest, "activate", p)
		return
	}
	act, err := c.SignIn.ActivateAndSignIn(r.Context(), token, password, r.PostFormValue("ticket"), r.PostFormValue("code"),
		web.ClientIP(r, c.TrustForwardedFor), r.UserAgent())
	if e := refusal(err); e != nil {
		switch e.Code {
		case admin.CodeInvalidToken:
			c.linkInvalid(w, r, true)
		case admin.CodeWeakPassword, admin.CodeInvalidCredentials, admin.CodeDirectoryUnavailable:
			p.Fields = map[string]string{"password": sentence(e.Message)}
			c.render(w, r, http.StatusBadRequest, "activate", p)
		case admin.CodeInvalidTOTP:
			p.Fields = map[string]string{"code": sentence(e.Message)}
			c.render(w, r, http.StatusBadRequest, "activate", p)
		default:
			p.Error = sentence(e.Message)
			c.render(w, r, http.StatusBadRequest, "activate", p)
		}
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	if !act.SSORequired {
		c.setSession(w, act.Session.Token)
		http.Redirect(w, r, PathHome, http.StatusSeeOther)
		return
	}
	// Active, but the organization signs in through its identity
	// provider: the sign-in page takes it from there.
	org, err := c.Store.Org(r.Context(), act.Administrator.OrgID)
	if err != nil {
		c.failure(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "activated", &page{Title: msg("Your account is active"), Username: act.Administrator.UserName,
		OrgSlug: org.Slug, OrgName: org.Name, Message: msg("Your organization signs in through its identity provider: use single sign-on.")})
}

// retype is the note of a form shown again after a refusal: passwords
// are never sent back to the browser.
var retype = msg("Nothing was changed. Passwords are not kept on a refused form: type them again.")

// resetPage asks for a new password for a reset link that is still
// usable; one that is not says so before anything is typed.
func (c *Console) resetPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	err := c.SignIn.CheckResetLink(r.Context(), token)
	if e := refusal(err); e != nil {
		c.linkInvalid(w, r, false)
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "reset", &page{Title: msg("Choose a new password"), Token: token})
}

func (c *Console) reset(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("token")
	password, confirm := r.PostFormValue("password"), r.PostFormValue("confirm")
	p := &page{Title: msg("Choose a new password"), Token: token, Note: retype}
	if password != confirm {
		p.Fields = map[string]string{"confirm": msg("The two passwords differ: type the same password twice.")}
		c.render(w, r, http.StatusBadRequest, "reset", p)
		return
	}
	err := c.SignIn.ResetPassword(r.Context(), token, password)
	if e := refusal(err); e != nil {
		if e.Code == admin.CodeInvalidToken {
			c.linkInvalid(w, r, false)
			return
		}
		p.Fields = map[string]string{"password": sentence(e.Message)}
		c.render(w, r, http.StatusBadRequest, "reset", p)
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "message", &page{Title: msg("Password changed"), Done: true,
		Message: msg("Your password is changed, and every session of your account has ended. Sign in with the new password.")})
}

// forgotPage asks for the organization and the username or email address
// that a reset link is sent for.
func (c *Console) forgotPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "forgot", &page{Title: msg("Reset your password"), OrgSlug: orgParam(r.URL.Query().Get("org"))})
}

// forgot answers the same whether or not the account exists
// (admin.SignIn.RequestPasswordReset tells nothing either).
func (c *Console) forgot(w http.ResponseWriter, r *http.Request) {
	p := &page{Title: msg("Reset your password"), OrgSlug: orgParam(r.PostFormValue("organization")), Login: r.PostFormValue("username")}
	if p.Login == "" {
		p.Fields = map[string]string{"username": msg("Enter your username or email address.")}
		c.render(w, r, http.StatusBadRequest, "forgot", p)
		return
	}
	if err := c.SignIn.RequestPasswordReset(r.Context(), p.OrgSlug, p.Login); err != nil {
		c.failure(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "message", &page{Title: msg("Check your email"),
		Message: msg("If an active account matches, we have sent it a link to choose a new password. The link works once, for a limited time.")})
}

// changePasswordPage is the must-change-password step (and, in an active
// session, the change of one's own password).
func (c *Console) changePasswordPage(w http.ResponseWriter, r *http.Request) {
	p, ok := c.stepPage(w, r, admin.CodePasswordChangeRequired)
	if !ok {
		return
	}
	p.Title, p.Next = msg("Change your password"), stepNext(r.URL.Query().Get("next"))
	c.render(w, r, http.StatusOK, "password", p)
}

// stepPage authenticates a page that a session may use in the step named
// by code (password_change_required or totp_enrolment_required) as well
// as when active.
func (c *Console) stepPage(w http.ResponseWriter, r *http.Request, code string) (*page, bool) {
	_, a, err := c.SignIn.Authenticate(r.Context(), sessionToken(r))
	if e := refusal(err); e != nil && e.Code != code {
		if e.Code == admin.CodePasswordChangeRequired || e.Code == admin.CodeTOTPEnrolmentRequired {
			c.signedIn(w, r) // redirects to the session's step
			return nil, false
		}
		http.Redirect(w, r, PathSignIn, http.StatusSeeOther)
		return nil, false
	}
	if err != nil && refusal(err) == nil {
		c.failure(w, r, err)
		return nil, false
	}
	p := &page{Username: a.UserName}
	if err == nil {
		org, oerr := c.Store.Org(r.Context(), a.OrgID)
		if oerr != nil {
			c.failure(w, r, oerr)
			return nil, false
		}
		p.Me, p.Org = &a, &org
	}
	return p, true
}

func (c *Console) changePassword(w http.ResponseWriter, r *http.Request) {
	p, ok := c.stepPage(w, r, admin.CodePasswordChangeRequired)
	if !ok {
		return
	}
	p.Title, p.Note, p.Next = msg("Change your password"), retype, stepNext(r.PostFormValue("next"))
	password, confirm := r.PostFormValue("password"), r.PostFormValue("confirm")
	if password != confirm {
		p.Fields = map[string]string{"confirm": msg("The two passwords differ: type the same password twice.")}
		c.render(w, r, http.StatusBadRequest, "password", p)
		return
	}
	ss, err := c.SignIn.ChangePassword(r.Context(), sessionToken(r), r.PostFormValue("current"), password)
	if e := refusal(err); e != nil {
		switch e.Code {
		case admin.CodeWeakPassword:
			p.Fields = map[string]string{"password": sentence(e.Message)}
		case admin.CodeInvalidCredentials, admin.CodeAccountLocked:
			p.Fields = map[string]string{"current": sentence(e.Message)}
		case admin.CodeInvalidSession:
			http.Redirect(w, r, PathSignIn, http.StatusSeeOther)
			return
		default:
			p.Error = sentence(e.Message)
		}
		c.render(w, r, http.StatusBadRequest, "password", p)
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	next := PathHome
	switch {
	case ss.Stage == store.SessionEnrolTOTP:
		next = PathTwoFactor + nextQuery(p.Next)
	case p.Next != "":
		next = p.Next
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// twoFactorPage offers a TOTP secret to enrol (the step of a session
// whose organization requires TOTP, or one's own choice).
func (c *Console) twoFactorPage(w http.ResponseWriter, r *http.Request) {
	p, ok := c.stepPage(w, r, admin.CodeTOTPEnrolmentRequired)
	if !ok {
		return
	}
	p.Title, p.Next = msg("Set up two-factor authentication"), stepNext(r.URL.Query().Get("next"))
	enrol, err := c.SignIn.BeginTOTP(r.Context(), sessionToken(r))
	replace := false
	if e := refusal(err); e != nil && e.Code == admin.CodeTOTPAlreadyEnabled {
		p.Title, replace = msg("Move two-factor authentication to a new app"), true
		enrol, err = c.SignIn.BeginTOTPReplacement(r.Context(), sessionToken(r))
	}
	if e := refusal(err); e != nil {
		if e.Code == admin.CodeInvalidSession {
			http.Redirect(w, r, PathSignIn, http.StatusSeeOther)
			return
		}
		p.Message, p.Done = sentence(e.Message), true
		c.render(w, r, http.StatusOK, "twofactor", p)
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	if p.TOTP, err = newTOTPView(enrol.Secret, enrol.URL, enrol.Ticket); err != nil {
		c.failure(w, r, err)
		return
	}
	p.TOTP.Replace = replace
	c.render(w, r, http.StatusOK, "twofactor", p)
}

// twoFactor confirms an enrolment, or a replacement (the form's replace
// field) with the code of the app in use.
func (c *Console) twoFactor(w http.ResponseWriter, r *http.Request) {
	p, ok := c.stepPage(w, r, admin.CodeTOTPEnrolmentRequired)
	if !ok {
		return
	}
	p.Title, p.Next = msg("Set up two-factor authentication"), stepNext(r.PostFormValue("next"))
	var err error
	if p.TOTP, err = newTOTPView(r.PostFormValue("secret"), r.PostFormValue("totp_url"), r.PostFormValue("ticket")); err != nil {
		c.failure(w, r, err)
		return
	}
	next := PathHome
	if p.Next != "" {
		next = p.Next
	}
	if p.TOTP.Replace = r.PostFormValue("replace") == "1"; p.TOTP.Replace {
		p.Title, next = msg("Move two-factor authentication to a new app"), PathUserPreferences+"?totp=replaced"
		_, err = c.SignIn.ReplaceTOTP(r.Context(), sessionToken(r), r.PostFormValue("current_code"), r.PostFormValue("ticket"), r.PostFormValue("code"))
	} else {
		_, err = c.SignIn.ConfirmTOTP(r.Context(), sessionToken(r), r.PostFormValue("ticket"), r.PostFormValue("code"))
	}
	if e := refusal(err); e != nil {
		switch e.Code {
		case admin.CodeInvalidSession:
			http.Redirect(w, r, PathSignIn, http.StatusSeeOther)
			return
		case admin.CodeInvalidCurrentTOTP, admin.CodeAccountLocked:
			p.Fields = map[string]string{"current_code": sentence(e.Message)}
		case admin.CodeTOTPNotEnabled:
			p.Error = sentence(e.Message)
		default:
			p.Fields = map[string]string{"code": sentence(e.Message)}
		}
		c.render(w, r, http.StatusBadRequest, "twofactor", p)
		return
	}
	if err != nil {
		c.failure(w, r, err)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// orgParam is an organization slug from a link or a form, cut to a sane
// length; it is only ever compared with stored slugs.
func orgParam(s string) string {
	if len(s) > 128 {
		return ""
	}
	return s
}

// sentence is a refusal's one line of text as a sentence: capitalized,
// with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	b := []byte(s)
	if 'a' <= b[0] && b[0] <= 'z' {
		b[0] -= 'a' - 'A'
	}
	if last := b[len(b)-1]; last != '.' && last != '!' && last != '?' {
		b = append(b, '.')
	}
	return string(b)
}
