package admin

import "fmt"

// Error is a refusal that the caller can show to whoever made the request:
// Code is stable and machine-readable, Message is one line of plain text
// naming the offending value. Err, when set, is the underlying cause (a
// store sentinel, say) for errors.Is; its text is not meant for clients.
type Error struct {
	Code    string // invalid_slug, invalid_email, org_exists, org_not_found, ...
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "admin: " + e.Message + ": " + e.Err.Error()
	}
	return "admin: " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Codes of Error. They are part of the management API's contract: keep them.
const (
	CodeInvalidSlug         = "invalid_slug"
	CodeInvalidName         = "invalid_name"
	CodeInvalidDomain       = "invalid_domain"
	CodeInvalidUsername     = "invalid_username"
	CodeInvalidEmail        = "invalid_email"
	CodeInvalidSubject      = "invalid_subject" // an email's subject: empty, too long, a line break or another control character
	CodeDomainNotRegistered = "domain_not_registered"
	CodeInvalidGivenName    = "invalid_given_name"
	CodeInvalidFamilyName   = "invalid_family_name"
	CodeInvalidPhone        = "invalid_phone"
	CodeInvalidDescription  = "invalid_description"
	CodeInvalidExpiry       = "invalid_expiry"
	CodeInvalidLanguage     = "invalid_language"
	CodeOrgExists           = "org_exists"
	CodeOrgNotFound         = "org_not_found"

	// The management API's rules (issue #4).
	CodeInvalidQuery        = "invalid_query"
	CodeInvalidRole         = "invalid_role"
	CodeForbidden           = "forbidden"
	CodeForbiddenRole       = "forbidden_role"
	CodeSuperAdminProtected = "super_admin_protected"
	CodeSCIMEnabled         = "scim_enabled"
	CodeLastSuperAdmin      = "last_super_admin"
	CodeUsernameTaken       = "username_taken"
	CodeNotFound            = "not_found"
	CodeNotPending          = "not_pending"
	CodeAlreadyDeactivated  = "already_deactivated"
	CodeNotDeactivated      = "not_deactivated"

	// Sign-in (issue #4 item 5).
	CodeWeakPassword           = "weak_password"
	CodeInvalidCredentials     = "invalid_credentials" // unknown username or wrong password: one message
	CodeAccountLocked          = "account_locked"
	CodeAccountPending         = "account_pending"
	CodeAccountDeactivated     = "account_deactivated"
	CodeTOTPRequired           = "totp_required"
	CodeInvalidTOTP            = "invalid_totp"
	CodeTooManyAttempts        = "too_many_attempts"
	CodeInvalidToken           = "invalid_token" // activation or reset link unknown, used or expired
	CodeInvalidSession         = "invalid_session"
	CodePasswordChangeRequired = "password_change_required"
	CodeTOTPEnrolmentRequired  = "totp_enrolment_required"
	CodeTOTPNotEnabled         = "totp_not_enabled"
	CodeInvalidCurrentTOTP     = "invalid_current_totp"
	CodeTOTPAlreadyEnabled     = "totp_already_enabled"

	// SSO (issue #5).
	CodeSSORequired      = "sso_required"       // the organization signs in through its IdP; passwords are refused
	CodeSSONotConfigured = "sso_not_configured" // requiring SSO needs an enabled connection

	// The OpenID Provider (issue #14).
	CodeInvalidRedirectURI = "invalid_redirect_uri" // not absolute https (http for loopback only), a fragment, a wildcard
	CodeConflict           = "conflict"             // a concurrent change won (two key rotations at one moment)
	CodePublicClient       = "public_client"        // a public client has no secret to rotate
	CodeLimitReached       = "limit_reached"        // a bound on stored records (an organization's applications)
)

func refuse(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// RetryAfterUnavailable is the Retry-After, in seconds, of the 503 that
// SCIM, the management API and the sign-in pages answer while the database
// is unavailable (store.ErrUnavailable). A whole number of seconds: the
// form identity providers read (Entra ID and Okta honour it). Five seconds
// covers a PostgreSQL restart or failover without making clients wait
// long once it is back.
const RetryAfterUnavailable = 5
