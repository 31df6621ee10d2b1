-- RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §3): the
-- URIs a client may send the browser back to after logout, a JSON array
-- of exact strings like redirect_uris. Empty: the provider shows its own
-- signed-out page and never redirects.
ALTER TABLE oidc_clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
