// Package protocol is the contract between gatehouse's sign-in flow
// (package sso) and the sign-in protocols (packages sso/saml and
// sso/oidc): the Connector interface a protocol implements, the Identity
// it returns, the StartRequest it is given, the Error every refusal is
// (with ErrRefused for errors.Is), how long a request sent to an identity
// provider may take (RequestTTL), the bound on an answer's body
// (MaxAnswerBody), and the context a connection's sealed secret is bound
// to (SealContext).
//
// It holds types only, so that sso can build connectors from sso/saml and
// sso/oidc while they return and refuse in terms sso understands: the
// dependencies point one way, sso → sso/saml, sso/oidc → sso/protocol.
package protocol

import (
	"context"
	"errors"
	"net/http"
	"time"

	"gatehouse/store"
)

// Identity is what an identity provider asserted, after every check of
// the protocol passed.
type Identity struct {
	// Username is the value the connection's UsernameFrom names (the SAML
	// NameID or an attribute, an OIDC claim), exactly as the IdP sent it.
	Username string
	// Subject is the SAML NameID or the OIDC "sub".
	Subject string
	Issuer  string
	// Attributes are the SAML attributes or the OIDC claims (ID token and
	// userinfo merged), for the test page; values as sent.
	Attributes map[string][]string
	// Certificate describes the IdP certificate that verified a SAML
	// signature (subject and SHA-256 fingerprint); "" for OIDC.
	Certificate string
	// Times the IdP stated: when it authenticated the user, and the
	// validity window of the assertion or ID token.
	IssuedAt     time.Time
	NotBefore    time.Time
	NotOnOrAfter time.Time
}

// StartRequest is a sign-in a browser begins at gatehouse.
type StartRequest struct {
	// Browser is the SHA-256 of the secret of the browser-binding cookie
	// the caller set: the answer must come back in the same browser.
	Browser []byte
	// RedirectTo is the relative path to land on after sign-in.
	RedirectTo string
	// Test: a Super Administrator's test of the connection; no session is
	// made, the result is kept on the request.
	Test bool
	// LoginHint is the username or email the browser typed, passed to
	// IdPs that take one; "" for none.
	LoginHint string
}

// Connector is one connection's protocol.
type Connector interface {
	// Start records a store.SSORequest for req (bound to req.Browser and
	// the connection, expiring in RequestTTL) and sends the browser to
	// the identity provider: a redirect, or for SAML's POST binding a
	// page that posts itself.
	Start(ctx context.Context, w http.ResponseWriter, r *http.Request, req StartRequest) error
	// Finish validates the identity provider's answer arriving at the ACS
	// (SAML) or callback (OIDC) URL, in the browser whose binding is
	// browser, uses the request it answers (once), and returns the
	// identity and that request. An IdP-initiated SAML response, where
	// the connection allows it, has no request: the zero SSORequest.
	// Refusals are *Error; a refusal returns the request too once it is
	// known to be the browser's, so that a test shows the reason.
	Finish(ctx context.Context, r *http.Request, browser []byte) (Identity, store.SSORequest, error)
}

// Error is a refused sign-in. Reason is the full explanation for the
// organization's administrators (the audit log, the test page); the
// browser is shown only a plain message and a reference.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "sso: " + e.Reason + ": " + e.Err.Error()
	}
	return "sso: " + e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// Refuse is an *Error with reason, wrapping err (which may be nil).
func Refuse(err error, reason string) *Error { return &Error{Reason: reason, Err: err} }

// ErrRefused marks every refusal for errors.Is.
var ErrRefused = errors.New("sso: sign-in refused")

// Is makes errors.Is(err, ErrRefused) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrRefused }

// RequestTTL is how long a sign-in sent to an identity provider may take
// to come back.
const RequestTTL = 10 * time.Minute

// MaxAnswerBody bounds what an ACS or callback request may carry.
const MaxAnswerBody = 1 << 20

// SealContext is the context a connection's secret (the SAML SP key, the
// OIDC client secret) is sealed in with admin.Sealer: binding it to the
// connection ID, so that a sealed secret copied to another connection
// does not open there.
func SealContext(connectionID string) string { return "sso:" + connectionID }
