-- Issue #15, part 2: an organization's export of its audit log and login
-- history to an S3 bucket. One row an organization: the destination (the
-- secret access key sealed with the server key), how far each stream is in
-- the bucket (the cursors: every entry up to that seq is there), the lease
-- of the one instance exporting it, and the status shown to its Super
-- Administrators.
CREATE TABLE s3_exports (
    org_id            TEXT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    enabled           BOOLEAN NOT NULL,
    endpoint          TEXT NOT NULL,
    region            TEXT NOT NULL,
    bucket            TEXT NOT NULL,
    prefix            TEXT NOT NULL DEFAULT '',
    access_key_id     TEXT NOT NULL,
    secret_access_key TEXT NOT NULL,
    path_style        BOOLEAN NOT NULL,
    audit_cursor      INTEGER NOT NULL DEFAULT 0,
    login_cursor      INTEGER NOT NULL DEFAULT 0,
    lease_token       TEXT NOT NULL DEFAULT '',
    lease_until       TIMESTAMP,
    next_run_at       TIMESTAMP NOT NULL,
    last_attempt_at   TIMESTAMP,
    last_success_at   TIMESTAMP,
    last_error        TEXT NOT NULL DEFAULT '',
    last_error_at     TIMESTAMP,
    failures          INTEGER NOT NULL DEFAULT 0,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    version           INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX s3_exports_due ON s3_exports (next_run_at) WHERE enabled;

-- The export reads an organization's login history in seq order.
CREATE INDEX login_history_org_seq ON login_history (org_id, seq);
