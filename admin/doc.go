// Package admin holds gatehouse's administration rules, which SCIM, the
// management API, the SSO bridge, the console and the operator CLI all
// call; it knows no HTTP and no protocol:
//
//   - organizations (Orgs): creation with the first Super Administrator,
//     preferences (SSO or TOTP required), registered email domains, the
//     SCIM switch and the designated Super Administrator group, and the
//     checks of usernames and email addresses;
//   - the one lifecycle of administrators (Lifecycle, lifecycle.go): the
//     identity provider's provisioning, sync and deprovisioning (with the
//     expected version checked inside the write) and the manual edits,
//     role changes, deactivation, reactivation and removal under the SCIM
//     lock; the Super Administrator rule (never blocked for the IdP, which
//     flags the organization instead; never one demoted or deactivated by
//     another by hand); IdPRole, the role an IdP's roles attribute grants;
//   - administrators managed by hand (Administrators, seed 001): listing,
//     invitation and its activation email, and the manual paths, which it
//     hands to Lifecycle; Principal is who acts, and Mailer is how these
//     rules queue an email (package admin/outbox implements it);
//   - sign-in (SignIn): password sign-in with lockout and per-address
//     limits, TOTP enrolment and codes, password changes, operator resets
//     and unlocks (credentials.go); sessions and the SSO sign-in that opens
//     one (sessions.go); activation and password-reset links
//     (activation.go); password hashing and strength (password.go), TOTP
//     itself (totp.go);
//   - SCIM tokens (SCIMTokens) and management API keys (APIKeys);
//   - the S3 export preference (S3Exports, seed 000): the destination of
//     an organization's audit log and login history, its secret sealed,
//     and the export's status (admin/export runs it);
//   - the OpenID Provider's records, which its protocol code will read:
//     signing keys (SigningKeys: made on first start, rotated on a
//     schedule, published until the tokens they signed expire, the JWKS)
//     and clients (OIDCClients: exact redirect URIs, hashed secrets,
//     allowed organizations);
//   - secrets: hashes of the bearer secrets gatehouse stores (HashSecret),
//     and the Sealer that encrypts what must be read back (TOTP secrets,
//     queued email bodies, SSO keys, signing keys, S3 secret access keys)
//     with the server's key;
//   - the contract of SSO connection management (SSOConnections), which
//     package sso implements;
//   - refusals: Error with stable codes, which every front end maps to its
//     protocol's error format; RetryAfterUnavailable, the Retry-After of
//     every front end's 503 while the database is unavailable; and
//     ScanJSON, the pre-decode check of JSON bodies (nesting depth, lone
//     surrogates).
//
// Services validate their input completely before they write, so a
// refused request leaves the store as it was.
//
// Its subpackages: admin/api is the management JSON API, admin/outbox the
// email outbox and its SMTP sender, admin/export the S3 exporter (and
// admin/export/s3test the S3 server of its tests), admin/web the session
// cookie and client address that the HTTP front ends share.
package admin
