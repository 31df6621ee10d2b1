-- The OpenID Provider's sign-ins and tokens (issue #14). Every step of a
-- flow may reach another instance, so all of it is here.

-- An authorization request, from /authorize until its code is exchanged
-- (and kept until it expires, so that a replayed code is recognised and
-- the tokens it gave are revoked). params is the request as JSON; the
-- administrator, their organization, the console session's sid, auth_time
-- and amr are set once they signed in; code_hash is the SHA-256 of the
-- code.
CREATE TABLE oidc_auth_requests (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL,
    params           TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    org_id           TEXT NOT NULL DEFAULT '',
    administrator_id TEXT NOT NULL DEFAULT '',
    sid              TEXT NOT NULL DEFAULT '',
    auth_time        TIMESTAMPTZ,
    amr              TEXT NOT NULL DEFAULT '[]',
    code_hash        BYTEA UNIQUE,
    code_used_at     TIMESTAMPTZ
);
CREATE INDEX oidc_auth_requests_expiry ON oidc_auth_requests (expires_at);

-- A grant: what one authorization code gave one client for one
-- administrator, the family of every access and refresh token issued
-- from it. Revoked as a whole (refresh token reuse, a replayed code,
-- logout, deprovisioning). Deleted with its administrator or client.
CREATE TABLE oidc_grants (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    org_id           TEXT NOT NULL,
    administrator_id TEXT NOT NULL REFERENCES administrators(id) ON DELETE CASCADE,
    sid              TEXT NOT NULL,
    scopes           TEXT NOT NULL,
    auth_time        TIMESTAMPTZ NOT NULL,
    amr              TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    revoked_at       TIMESTAMPTZ
);
CREATE INDEX oidc_grants_administrator ON oidc_grants (administrator_id);
CREATE INDEX oidc_grants_sid ON oidc_grants (sid);

-- The tokens of a grant. An access token's id is inside the opaque token
-- the client holds (encrypted with a key derived from the server key); a
-- refresh token's id is the SHA-256 of the token. used_at marks a refresh
-- token that was exchanged: presenting it again revokes its grant.
CREATE TABLE oidc_tokens (
    id         TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES oidc_grants(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX oidc_tokens_grant ON oidc_tokens (grant_id);
CREATE INDEX oidc_tokens_expiry ON oidc_tokens (expires_at);

-- Back-channel logout tokens owed to clients (OIDC Back-Channel Logout
-- 1.0): written in the transaction that ends the sign-in (deprovisioning,
-- logout), delivered by every instance under a lease with retries, like
-- the email outbox. Not tied to the administrator's row: a deleted
-- administrator's applications still learn of it.
CREATE TABLE oidc_logouts (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    administrator_id TEXT NOT NULL,
    sid              TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    claimed_until    TIMESTAMPTZ,
    last_error       TEXT NOT NULL DEFAULT '',
    sent_at          TIMESTAMPTZ
);
CREATE INDEX oidc_logouts_due ON oidc_logouts (sent_at, next_attempt_at);

-- The email address an administrator proved they receive mail at, by
-- using a link gatehouse sent there (activation, password reset). The ID
-- token's email_verified is true while it equals their current address.
CREATE TABLE email_verifications (
    administrator_id TEXT PRIMARY KEY REFERENCES administrators(id) ON DELETE CASCADE,
    email            TEXT NOT NULL,
    verified_at      TIMESTAMPTZ NOT NULL
);
