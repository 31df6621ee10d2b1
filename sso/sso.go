// Package sso is gatehouse's SSO bridge. It holds the sign-in flow (Flow:
// the browser routes /login, /sso/start, the SAML ACS and SP metadata,
// the OIDC callback, the pages they render, the limits on starts,
// answers and audit entries per address and connection, and the test
// results of a connection), the matching of the identity provider's
// username to an administrator — exactly, byte for byte (Match) — and
// the Manager, which keeps an organization's SSO connections
// (admin.SSOConnections: creating, changing, deleting, testing) and makes
// their connectors. And the bridge's other end for an application behind
// a reverse proxy: forward auth (ForwardAuth, /auth/verify), which tells
// the proxy whose gatehouse session a request carries.
//
// The protocols are packages of their own, behind the interface of
// sso/protocol: sso/saml (the SAML 2.0 service provider, and the refresh
// of IdP metadata) and sso/oidc (the OpenID Connect relying party).
// sso/fetch is the SSRF-guarded client that fetches what an identity
// provider publishes. Dependencies point one way (TestPackageLayers):
// sso → sso/saml, sso/oidc → sso/protocol, and sso, sso/saml →
// sso/fetch; none of them imports sso.
package sso
