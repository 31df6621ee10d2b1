package api

import (
	"errors"
	"net/http"
	"time"

	"gatehouse/admin"
	"gatehouse/admin/web"
	"gatehouse/store"
)

// Sign-in over the API: the console (and any client holding a cookie jar)
// signs in with a username and password (and a TOTP code), and gets the
// session cookie. The rules are admin.SignIn's.

// clientIP is the address a request comes from (see web.ClientIP).
func (a *API) clientIP(r *http.Request) string { return web.ClientIP(r, a.TrustForwardedFor) }

// setSession sets (token != "") or clears the session cookie.
func (a *API) setSession(c *call, token string, maxAge time.Duration) {
	http.SetCookie(c.w, web.SessionCookieFor(token, maxAge, a.BaseURL))
}

func sessionToken(r *http.Request) string {
	if ck, err := r.Cookie(SessionCookie); err == nil {
		return ck.Value
	}
	return ""
}

type signInBody struct {
	Organization string `json:"organization"` // slug; optional when the username is in one organization only
	UserName     string `json:"username"`
	Password     string `json:"password"`
	TOTPCode     string `json:"totpCode"`
}

func (a *API) signIn(c *call) error {
	var b signInBody
	if err := c.decode(&b); err != nil {
		return err
	}
	res, err := a.SignIn.Login(c.r.Context(), admin.LoginRequest{OrgSlug: b.Organization, Username: b.UserName, Password: b.Password,
		TOTPCode: b.TOTPCode, IP: a.clientIP(c.r), UserAgent: c.r.UserAgent()})
	if err != nil {
		return err
	}
	a.setSession(c, res.Token, a.SignIn.SessionAbsolute()) // the server ends it sooner when idle
	return c.reply(http.StatusOK, map[string]any{"stage": res.Stage, "administrator": toAdministrator(res.Administrator)})
}

func (a *API) signOut(c *call) error {
	if err := a.SignIn.Logout(c.r.Context(), sessionToken(c.r)); err != nil {
		return err
	}
	a.setSession(c, "", 0)
	return c.noContent()
}

func (a *API) activationInfo(c *call) error {
	info, err := a.SignIn.ActivationInfo(c.r.Context(), c.r.URL.Query().Get("token"))
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, map[string]any{
		"username":     info.Administrator.UserName,
		"organization": info.Org.Name,
		"totpRequired": info.TOTPRequired,
		"totp":         map[string]any{"secret": info.TOTP.Secret, "url": info.TOTP.URL, "ticket": info.TOTP.Ticket},
	})
}

func (a *API) activate(c *call) error {
	var b struct {
		Token      string `json:"token"`
		Password   string `json:"password"`
		TOTPTicket string `json:"totpTicket"`
		TOTPCode   string `json:"totpCode"`
	}
	if err := c.decode(&b); err != nil {
		return err
	}
	adm, err := a.SignIn.Activate(c.r.Context(), b.Token, b.Password, b.TOTPTicket, b.TOTPCode)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, toAdministrator(adm))
}

func (a *API) requestPasswordReset(c *call) error {
	var b struct {
		Organization string `json:"organization"`
		UserName     string `json:"username"` // or the email address
	}
	if err := c.decode(&b); err != nil {
		return err
	}
	if err := a.SignIn.RequestPasswordReset(c.r.Context(), b.Organization, b.UserName); err != nil {
		return err
	}
	// The same answer whether or not the account exists.
	return c.reply(http.StatusAccepted, map[string]string{"status": "if the account exists, a reset link is on its way"})
}

func (a *API) resetPassword(c *call) error {
	var b struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if err := c.decode(&b); err != nil {
		return err
	}
	if err := a.SignIn.ResetPassword(c.r.Context(), b.Token, b.Password); err != nil {
		return err
	}
	return c.noContent()
}

// The signed-in administrator's own credentials. These take the cookie
// directly: a session that must change its password or enrol TOTP first
// may call them and nothing else.

func (a *API) changePassword(c *call) error {
	var b struct {
		Current string `json:"currentPassword"`
		New     string `json:"newPassword"`
	}
	if err := c.decode(&b); err != nil {
		return err
	}
	ss, err := a.SignIn.ChangePassword(c.r.Context(), sessionToken(c.r), b.Current, b.New)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, map[string]string{"stage": ss.Stage})
}

func (a *API) beginTOTP(c *call) error {
	enrol, err := a.SignIn.BeginTOTP(c.r.Context(), sessionToken(c.r))
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, map[string]any{"secret": enrol.Secret, "url": enrol.URL, "ticket": enrol.Ticket, "expires": enrol.ExpiresAt})
}

func (a *API) confirmTOTP(c *call) error {
	var b struct {
		Ticket string `json:"ticket"`
		Code   string `json:"code"`
	}
	if err := c.decode(&b); err != nil {
		return err
	}
	ss, err := a.SignIn.ConfirmTOTP(c.r.Context(), sessionToken(c.r), b.Ticket, b.Code)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, map[string]string{"stage": ss.Stage})
}

// loginHistory is seed 002's login history of one administrator.
func (a *API) loginHistory(c *call) error {
	adm, err := a.Administrators.Get(c.r.Context(), c.p, c.r.PathValue("id"))
	if err != nil {
		return err
	}
	limit, err := c.intParam("limit", 100)
	if err != nil {
		return err
	}
	if limit < 1 || limit > 1000 {
		return &admin.Error{Code: admin.CodeInvalidQuery, Message: "limit must be 1 to 1000"}
	}
	before, err := c.intParam("before", 0)
	if err != nil {
		return err
	}
	events, err := a.Store.LoginHistory(c.r.Context(), c.p.OrgID, adm.ID, limit, int64(before))
	if err != nil {
		return err
	}
	// location is where the address was at the time of the sign-in, in
	// English (the console shows the Russian names); absent when unknown
	// (no GeoIP database, a private address, none in the database).
	type location struct {
		Country     string `json:"country,omitempty"`
		CountryCode string `json:"countryCode,omitempty"`
		City        string `json:"city,omitempty"`
	}
	type event struct {
		Seq       int64     `json:"seq"`
		At        time.Time `json:"at"`
		Method    string    `json:"method"`
		IP        string    `json:"ip"`
		Location  *location `json:"location,omitempty"`
		UserAgent string    `json:"browser"`
		Result    string    `json:"result"`
	}
	out := make([]event, len(events))
	for i, e := range events {
		out[i] = event{Seq: e.Seq, At: e.At, Method: e.Method, IP: e.IP, UserAgent: e.UserAgent, Result: e.Result}
		if l := e.Location; !l.IsZero() {
			out[i].Location = &location{Country: l.CountryName("en"), CountryCode: l.CountryCode, City: l.CityName("en")}
		}
	}
	page := map[string]any{"items": out}
	if len(out) == limit {
		page["nextBefore"] = out[len(out)-1].Seq
	}
	return c.reply(http.StatusOK, page)
}

// setPassword is seed 002's safety settings: a Super Administrator sets an
// administrator's password, may require a change at the next sign-in, and
// may send the administrator an email with access (the sign-in address
// and the username; never the password).
func (a *API) setPassword(c *call) error {
	var b struct {
		Password        string `json:"password"`
		MustChange      bool   `json:"mustChangePassword"`
		SendAccessEmail bool   `json:"sendAccessEmail"`
	}
	if err := c.decode(&b); err != nil {
		return err
	}
	if !c.p.Super() {
		return admin.MaySetPassword(c.p, store.Administrator{}) // refused before telling whether the id exists
	}
	adm, err := a.Administrators.Get(c.r.Context(), c.p, c.r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := admin.MaySetPassword(c.p, adm); err != nil {
		return err
	}
	if err := a.SignIn.SetPassword(c.p.Context(c.r.Context()), c.p.OrgID, adm.ID, b.Password, b.MustChange); err != nil {
		return err
	}
	if b.SendAccessEmail {
		if err := a.Administrators.SendAccess(c.r.Context(), c.p, adm); err != nil {
			return err
		}
	}
	return c.noContent()
}

// sessions authenticates console cookies for authenticate.
func (a *API) sessionPrincipal(r *http.Request, token string) (admin.Principal, error) {
	_, adm, err := a.SignIn.Authenticate(r.Context(), token)
	var refused *admin.Error
	if errors.As(err, &refused) && (refused.Code == admin.CodePasswordChangeRequired || refused.Code == admin.CodeTOTPEnrolmentRequired) ||
		errors.Is(err, store.ErrUnavailable) {
		// An outage is a 503, not a reason to sign the console out.
		return admin.Principal{}, err
	}
	if err != nil {
		return admin.Principal{}, errUnauthenticated
	}
	return admin.PrincipalOf(adm), nil
}
