-- SSO: connections to an organization's identity providers (SAML and
-- OIDC), the sign-in requests in flight, the replay cache of assertions,
-- the organization's SSO requirement and its break-glass administrators.

ALTER TABLE orgs ADD COLUMN require_sso BOOLEAN NOT NULL DEFAULT FALSE;
-- A break-glass Super Administrator may still sign in with a password when
-- the organization requires SSO.
ALTER TABLE credentials ADD COLUMN break_glass BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE sso_connections (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    username_from TEXT NOT NULL,
    config        TEXT NOT NULL,
    secret        TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    version       BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX sso_connections_org ON sso_connections (org_id, seq);

-- One row per sign-in sent to an IdP: the SAML AuthnRequest ID or the OIDC
-- state, bound to the browser that started it (the SHA-256 of a cookie) and
-- to the connection, used once, expiring in minutes. A test sign-in keeps
-- its result here for the administrator who ran it.
CREATE TABLE sso_requests (
    id            TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES sso_connections(id) ON DELETE CASCADE,
    org_id        TEXT NOT NULL,
    browser       BYTEA NOT NULL,
    nonce         TEXT NOT NULL DEFAULT '',
    verifier      TEXT NOT NULL DEFAULT '',
    redirect_to   TEXT NOT NULL DEFAULT '',
    test          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    used_at       TIMESTAMPTZ,
    result        TEXT
);
CREATE INDEX sso_requests_expires ON sso_requests (expires_at);

-- Assertion IDs seen, until they could no longer be accepted anyway
-- (NotOnOrAfter plus the clock skew), shared by every instance.
CREATE TABLE sso_replay (
    connection_id TEXT NOT NULL,
    assertion_id  TEXT NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connection_id, assertion_id)
);
CREATE INDEX sso_replay_expires ON sso_replay (expires_at);
