// Package api is gatehouse's management JSON API at /api/v1: the
// administration rules of package admin over HTTP, for API keys and for
// the console's sessions. Errors are RFC 9457 problem details carrying the
// rule's stable code; the routes are listed once (routes) and documented
// in openapi.json, which a test holds to them.
package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gatehouse/admin"
	"gatehouse/admin/web"
	"gatehouse/store"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// maxBody bounds a request body: every request of this API is small.
const maxBody = 64 << 10

//go:embed openapi.json
var openAPI []byte

// OpenAPIDocument is the API's OpenAPI document (the console renders it
// as its API reference page). Callers must not change it.
func OpenAPIDocument() []byte { return openAPI }

// API serves the management API.
type API struct {
	Store          store.Store
	Orgs           *admin.Orgs
	Administrators *admin.Administrators
	APIKeys        *admin.APIKeys
	SCIMTokens     *admin.SCIMTokens
	// OIDCClients manages the OpenID Provider's applications; nil leaves
	// those endpoints answering 404.
	OIDCClients *admin.OIDCClients
	// S3Exports is the S3 export preference; nil leaves its endpoints
	// answering 404.
	S3Exports *admin.S3Exports
	// SCIMLog reads the provisioning log.
	SCIMLog *admin.ProvisioningLog
	// SSO manages SSO connections (package sso); nil leaves those
	// endpoints answering 404.
	SSO admin.SSOConnections
	// LDAP manages the organization's LDAP connection and users; nil
	// leaves those endpoints answering 404.
	LDAP *admin.LDAP
	// SignIn is password sign-in and the console's sessions.
	SignIn *admin.SignIn
	// BaseURL is the server's public URL: the session cookie is Secure
	// when it is https.
	BaseURL string
	// TrustForwardedFor takes the client's address (for the sign-in limits
	// and the login history) from the last X-Forwarded-For entry: set it
	// when gatehouse runs behind a load balancer that appends one.
	TrustForwardedFor bool
	// Logger returns the request's logger; nil logs nowhere.
	Logger func(*http.Request) *slog.Logger
	Now    func() time.Time
}

// CodeNoSuchEndpoint is the 404 of a method and path the API does not
// serve.
const CodeNoSuchEndpoint = "no_such_endpoint"

// SessionCookie is the name of the console's session cookie.
const SessionCookie = web.SessionCookie

// route is one endpoint. auth false: callers need no credentials.
type route struct {
	method, path string
	auth         bool
	handle       func(*API, *call) error
}

// routes are every endpoint of the API, relative to Prefix.
var routes = []route{
	{"GET", "/openapi.json", false, (*API).openAPIDocument},
	{"POST", "/session", false, (*API).signIn},
	{"DELETE", "/session", false, (*API).signOut},
	{"GET", "/activation", false, (*API).activationInfo},
	{"POST", "/activation", false, (*API).activate},
	{"POST", "/password-reset", false, (*API).requestPasswordReset},
	{"POST", "/password-reset/confirm", false, (*API).resetPassword},
	{"POST", "/me/password", false, (*API).changePassword},
	{"POST", "/me/totp", false, (*API).beginTOTP},
	{"POST", "/me/totp/confirm", false, (*API).confirmTOTP},
	{"GET", "/me", true, (*API).me},
	{"GET", "/organization", true, (*API).organization},
	{"PATCH", "/organization", true, (*API).updateOrganization},
	{"GET", "/administrators", true, (*API).listAdministrators},
	{"POST", "/administrators", true, (*API).inviteAdministrator},
	{"GET", "/administrators/{id}", true, (*API).getAdministrator},
	{"PATCH", "/administrators/{id}", true, (*API).updateAdministrator},
	{"DELETE", "/administrators/{id}", true, (*API).deleteAdministrator},
	{"POST", "/administrators/{id}/deactivate", true, (*API).deactivateAdministrator},
	{"POST", "/administrators/{id}/reactivate", true, (*API).reactivateAdministrator},
	{"POST", "/administrators/{id}/invitation", true, (*API).resendInvitation},
	{"PUT", "/administrators/{id}/password", true, (*API).setPassword},
	{"GET", "/administrators/{id}/login-history", true, (*API).loginHistory},
	{"GET", "/scim/tokens", true, (*API).listSCIMTokens},
	{"POST", "/scim/tokens", true, (*API).createSCIMToken},
	{"DELETE", "/scim/tokens/{id}", true, (*API).revokeSCIMToken},
	{"GET", "/api-keys", true, (*API).listAPIKeys},
	{"POST", "/api-keys", true, (*API).createAPIKey},
	{"DELETE", "/api-keys/{id}", true, (*API).revokeAPIKey},
	{"GET", "/audit", true, (*API).auditLog},
	{"GET", "/organization/s3-export", true, (*API).getS3Export},
	{"PUT", "/organization/s3-export", true, (*API).putS3Export},
	{"GET", "/scim-log", true, (*API).scimLog},
	{"GET", "/scim-log/{seq}", true, (*API).scimLogEntry},
	{"PUT", "/administrators/{id}/break-glass", true, (*API).setBreakGlass},
	{"GET", "/sso/connections", true, (*API).listSSOConnections},
	{"POST", "/sso/connections", true, (*API).createSSOConnection},
	{"GET", "/sso/connections/{id}", true, (*API).getSSOConnection},
	{"PATCH", "/sso/connections/{id}", true, (*API).updateSSOConnection},
	{"DELETE", "/sso/connections/{id}", true, (*API).deleteSSOConnection},
	{"POST", "/sso/connections/{id}/test", true, (*API).testSSOConnection},
	{"GET", "/sso/connections/{id}/tests", true, (*API).ssoTestResults},
	{"GET", "/oidc-clients", true, (*API).listOIDCClients},
	{"POST", "/oidc-clients", true, (*API).createOIDCClient},
	{"GET", "/oidc-clients/{id}", true, (*API).getOIDCClient},
	{"PATCH", "/oidc-clients/{id}", true, (*API).updateOIDCClient},
	{"DELETE", "/oidc-clients/{id}", true, (*API).deleteOIDCClient},
	{"POST", "/oidc-clients/{id}/rotate-secret", true, (*API).rotateOIDCClientSecret},
	{"POST", "/oidc-clients/{id}/disable", true, (*API).disableOIDCClient},
	{"POST", "/oidc-clients/{id}/enable", true, (*API).enableOIDCClient},
	{"GET", "/ldap", true, (*API).getLDAP},
	{"PUT", "/ldap", true, (*API).setLDAP},
	{"DELETE", "/ldap", true, (*API).deleteLDAP},
	{"POST", "/ldap/test", true, (*API).testLDAP},
	{"GET", "/ldap/users", true, (*API).listLDAPUsers},
	{"PUT", "/administrators/{id}/ldap", true, (*API).setLDAPUser},
}

// Register mounts every route on mux. Writes authenticated by a cookie are
// refused when they come from another origin (CSRF); requests with an API
// key carry no ambient credentials and are not checked.
func (a *API) Register(mux *http.ServeMux) {
	csrf := http.NewCrossOriginProtection()
	for _, rt := range routes {
		if a.SSO == nil && strings.HasPrefix(rt.path, "/sso/") || a.OIDCClients == nil && strings.HasPrefix(rt.path, "/oidc-clients") ||
			a.S3Exports == nil && rt.path == "/organization/s3-export" {
			continue
		}
		if a.LDAP == nil && (strings.HasPrefix(rt.path, "/ldap") || strings.HasSuffix(rt.path, "/ldap")) {
			continue
		}
		h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.serve(w, r, rt) }))
		mux.Handle(rt.method+" "+Prefix+rt.path, a.guardCSRF(csrf, h))
	}
	// Anything else under the prefix is a problem document, not the
	// mux's plain-text 404, with a code of its own: a route that is not
	// wired is told apart from a handler's "no such record".
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		(&call{w: w, r: r}).problem(&admin.Error{Code: CodeNoSuchEndpoint, Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
}

func (a *API) guardCSRF(csrf *http.CrossOriginProtection, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie(SessionCookie); err == nil && bearer(r) == "" {
			if err := csrf.Check(r); err != nil {
				(&call{w: w, r: r}).problem(&admin.Error{Code: admin.CodeForbidden, Message: "cross-origin request refused (CSRF protection)"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// call is one request being served.
type call struct {
	w http.ResponseWriter
	r *http.Request
	p admin.Principal
}

func (a *API) serve(w http.ResponseWriter, r *http.Request, rt route) {
	c := &call{w: w, r: r}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.logger(r).Error("management API panic", "panic", fmt.Sprint(v))
			c.problem(errors.New("internal error"))
		}
	}()
	if rt.auth {
		p, err := a.authenticate(r)
		if err != nil {
			c.problem(err)
			return
		}
		c.p = p
	}
	if err := rt.handle(a, c); err != nil {
		switch st := status(err); {
		case st == http.StatusServiceUnavailable:
			a.logger(r).Warn("management API: database unavailable", "error", err.Error())
		case st >= 500:
			a.logger(r).Error("management API", "error", err.Error())
		}
		c.problem(err)
	}
}

func (a *API) logger(r *http.Request) *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger(r)
}

// errUnauthenticated is a request without usable credentials.
var errUnauthenticated = &admin.Error{Code: "unauthenticated",
	Message: "sign in, or send an API key as Authorization: Bearer gh_key_..."}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authenticate finds who makes the request: an API key in the
// Authorization header, else the console's session cookie.
func (a *API) authenticate(r *http.Request) (admin.Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		secret := bearer(r)
		if secret == "" {
			return admin.Principal{}, errUnauthenticated
		}
		key, err := a.APIKeys.Authenticate(r.Context(), secret)
		if errors.Is(err, admin.ErrBadKey) {
			return admin.Principal{}, errUnauthenticated
		}
		if err != nil {
			return admin.Principal{}, err
		}
		return admin.KeyPrincipal(key), nil
	}
	if token := sessionToken(r); token != "" && a.SignIn != nil {
		return a.sessionPrincipal(r, token)
	}
	return admin.Principal{}, errUnauthenticated
}

// decode reads a JSON object body into v, refusing unknown fields, a
// second value, invalid UTF-8, escaped lone surrogates, other media types
// and bodies over maxBody.
func (c *call) decode(v any) error {
	if ct := c.r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &admin.Error{Code: "unsupported_media_type", Message: "send the body as application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, maxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &admin.Error{Code: "body_too_large", Message: fmt.Sprintf("the body is larger than %d bytes", maxBody)}
	}
	if err != nil {
		return &admin.Error{Code: "invalid_json", Message: "the body could not be read"}
	}
	// encoding/json would turn both into U+FFFD without an error, so two
	// different usernames would be stored as one.
	if !utf8.Valid(body) {
		return &admin.Error{Code: "invalid_json", Message: "the body is not valid UTF-8"}
	}
	if admin.ScanJSON(body).LoneSurrogate {
		return &admin.Error{Code: "invalid_json", Message: `the body escapes half of a UTF-16 surrogate pair (such as "\ud800" alone); send the character itself or a complete pair`}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &admin.Error{Code: "invalid_json", Message: "the body is not the JSON object this endpoint takes: " + err.Error()}
	}
	if dec.More() {
		return &admin.Error{Code: "invalid_json", Message: "the body holds more than one JSON value"}
	}
	return nil
}

// reply writes v as JSON with status.
func (c *call) reply(status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.w.Header().Set("Content-Type", "application/json")
	c.w.Header().Set("Cache-Control", "no-store")
	c.w.WriteHeader(status)
	c.w.Write(append(b, '\n'))
	return nil
}

func (c *call) noContent() error {
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// problem is an RFC 9457 problem details document with gatehouse's code.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// statuses maps the rules' codes to HTTP statuses; a code not listed is a
// 400 (a refused value).
var statuses = map[string]int{
	"unauthenticated":                http.StatusUnauthorized,
	"unsupported_media_type":         http.StatusUnsupportedMediaType,
	"body_too_large":                 http.StatusRequestEntityTooLarge,
	admin.CodeForbidden:              http.StatusForbidden,
	admin.CodeForbiddenRole:          http.StatusForbidden,
	admin.CodeSuperAdminProtected:    http.StatusForbidden,
	admin.CodeNotFound:               http.StatusNotFound,
	CodeNoSuchEndpoint:               http.StatusNotFound,
	admin.CodeOrgNotFound:            http.StatusNotFound,
	admin.CodeSCIMEnabled:            http.StatusConflict,
	admin.CodeLastSuperAdmin:         http.StatusConflict,
	admin.CodeUsernameTaken:          http.StatusConflict,
	admin.CodeNotPending:             http.StatusConflict,
	admin.CodeAlreadyDeactivated:     http.StatusConflict,
	admin.CodeNotDeactivated:         http.StatusConflict,
	admin.CodeTOTPAlreadyEnabled:     http.StatusConflict,
	admin.CodeInvalidCredentials:     http.StatusUnauthorized,
	admin.CodeTOTPRequired:           http.StatusUnauthorized,
	admin.CodeInvalidTOTP:            http.StatusUnauthorized,
	admin.CodeInvalidSession:         http.StatusUnauthorized,
	admin.CodeAccountLocked:          http.StatusForbidden,
	admin.CodeAccountPending:         http.StatusForbidden,
	admin.CodeAccountDeactivated:     http.StatusForbidden,
	admin.CodePasswordChangeRequired: http.StatusForbidden,
	admin.CodeTOTPEnrolmentRequired:  http.StatusForbidden,
	admin.CodeTooManyAttempts:        http.StatusTooManyRequests,
	admin.CodeSSORequired:            http.StatusForbidden,
	admin.CodeSSONotConfigured:       http.StatusConflict,
	admin.CodePublicClient:           http.StatusConflict,
	admin.CodeLimitReached:           http.StatusConflict,
	admin.CodeLDAPNotConfigured:      http.StatusConflict,
	admin.CodeLDAPUser:               http.StatusConflict,
	admin.CodeDirectoryUnavailable:   http.StatusServiceUnavailable,
}

func status(err error) int {
	if errors.Is(err, store.ErrUnavailable) {
		return http.StatusServiceUnavailable
	}
	var e *admin.Error
	if !errors.As(err, &e) {
		return http.StatusInternalServerError
	}
	if s, ok := statuses[e.Code]; ok {
		return s
	}
	return http.StatusBadRequest
}

func (c *call) problem(err error) {
	st := status(err)
	p := problem{Type: "about:blank", Status: st, Title: http.StatusText(st), Code: "internal_error",
		Detail: "the server failed; the request was not applied"}
	var e *admin.Error
	switch {
	case errors.Is(err, store.ErrUnavailable) || st == http.StatusServiceUnavailable && !errors.As(err, &e):
		p.Code, p.Detail = "unavailable", "the service is temporarily unavailable; retry after the number of seconds in Retry-After"
	case errors.As(err, &e):
		p.Code, p.Detail = e.Code, e.Message
		p.Type = "https://gatehouse.dev/problems/" + e.Code
	}
	b, _ := json.Marshal(p)
	h := c.w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if st == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(admin.RetryAfterUnavailable))
	}
	if st == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
	}
	c.w.WriteHeader(st)
	c.w.Write(append(b, '\n'))
}

func (a *API) openAPIDocument(c *call) error {
	c.w.Header().Set("Content-Type", "application/json")
	c.w.Write(openAPI)
	return nil
}
