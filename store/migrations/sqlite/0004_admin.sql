-- Administration: organization preferences, sign-in credentials, sessions,
-- login history, API keys, the audit log and the email outbox. (0003 is
-- the SCIM performance migration.)

-- Seed 000: an organization-wide two-factor requirement.
ALTER TABLE orgs ADD COLUMN require_totp BOOLEAN NOT NULL DEFAULT 0;

-- Activation and password-reset links share one table.
ALTER TABLE invitations ADD COLUMN purpose TEXT NOT NULL DEFAULT 'activation';

-- What an administrator signs in with, apart from the record SCIM and the
-- API show: the password as an argon2id hash (PHC string), the TOTP secret
-- sealed with the server key, the lockout counters.
CREATE TABLE credentials (
    administrator_id     TEXT PRIMARY KEY REFERENCES administrators(id) ON DELETE CASCADE,
    password_hash        TEXT NOT NULL DEFAULT '',
    password_changed_at  TIMESTAMP,
    must_change_password BOOLEAN NOT NULL DEFAULT 0,
    totp_secret          TEXT NOT NULL DEFAULT '',
    totp_enabled         BOOLEAN NOT NULL DEFAULT 0,
    totp_last_step       INTEGER NOT NULL DEFAULT 0,
    failed_logins        INTEGER NOT NULL DEFAULT 0,
    locked_until         TIMESTAMP
);

-- Browser sessions of the console and the API, by the SHA-256 of the
-- cookie's secret, so any instance can serve any request.
CREATE TABLE sessions (
    hash             BLOB PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    administrator_id TEXT NOT NULL REFERENCES administrators(id) ON DELETE CASCADE,
    method           TEXT NOT NULL,
    stage            TEXT NOT NULL,
    ip               TEXT NOT NULL DEFAULT '',
    user_agent       TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMP NOT NULL,
    last_seen_at     TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL
);
CREATE INDEX sessions_administrator ON sessions (administrator_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Seed 002: login history per administrator.
CREATE TABLE login_history (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id           TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    administrator_id TEXT NOT NULL REFERENCES administrators(id) ON DELETE CASCADE,
    at               TIMESTAMP NOT NULL,
    method           TEXT NOT NULL,
    ip               TEXT NOT NULL DEFAULT '',
    user_agent       TEXT NOT NULL DEFAULT '',
    result           TEXT NOT NULL
);
CREATE INDEX login_history_administrator ON login_history (administrator_id, seq);

-- Failed sign-ins per client address in a fixed window, shared by every
-- instance.
CREATE TABLE login_throttle (
    key          TEXT PRIMARY KEY,
    window_start TIMESTAMP NOT NULL,
    failures     INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP,
    last_used_at TIMESTAMP,
    revoked_at   TIMESTAMP
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at);

-- Every change by any path, written in the transaction of the change.
-- before/after hold the changed fields only, as JSON objects; never secrets.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      TEXT NOT NULL,
    at          TIMESTAMP NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT NOT NULL DEFAULT '',
    actor_name  TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL DEFAULT '',
    target_id   TEXT NOT NULL DEFAULT '',
    target_name TEXT NOT NULL DEFAULT '',
    before      TEXT,
    after       TEXT
);
CREATE INDEX audit_log_org_seq ON audit_log (org_id, seq);
CREATE INDEX audit_log_org_target ON audit_log (org_id, target_id, seq);
-- No index by actor: every create over SCIM writes an entry, and a filter
-- by actor (rare) reads the organization's entries newest first.

-- Emails waiting for the SMTP server. The body is sealed with the server
-- key (it may carry an activation link) and cleared once sent.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    org_id          TEXT NOT NULL DEFAULT '',
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_until   TIMESTAMP,
    last_error      TEXT NOT NULL DEFAULT '',
    sent_at         TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (sent_at, next_attempt_at);
