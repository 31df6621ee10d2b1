-- The provisioning log (issue #15, part 4): the last SCIM requests of each
-- organization's identity provider and gatehouse's answers, written in
-- batches off the request path. request and response are the bodies with
-- secrets redacted, cut to a cap (*_truncated says so; *_size is the size
-- of the body as sent). Pruned by count per organization and by age.
CREATE TABLE scim_log (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id             TEXT NOT NULL,
    at                 TIMESTAMP NOT NULL,
    method             TEXT NOT NULL,
    path               TEXT NOT NULL,
    filter             TEXT NOT NULL DEFAULT '',
    status             INTEGER NOT NULL,
    scim_type          TEXT NOT NULL DEFAULT '',
    detail             TEXT NOT NULL DEFAULT '',
    resource_id        TEXT NOT NULL DEFAULT '',
    user_name          TEXT NOT NULL DEFAULT '',
    display_name       TEXT NOT NULL DEFAULT '',
    duration_us        INTEGER NOT NULL,
    token_prefix       TEXT NOT NULL DEFAULT '',
    request            TEXT NOT NULL DEFAULT '',
    request_size       INTEGER NOT NULL DEFAULT 0,
    request_truncated  BOOLEAN NOT NULL DEFAULT 0,
    response           TEXT NOT NULL DEFAULT '',
    response_size      INTEGER NOT NULL DEFAULT 0,
    response_truncated BOOLEAN NOT NULL DEFAULT 0
);
CREATE INDEX scim_log_org_seq ON scim_log (org_id, seq);
CREATE INDEX scim_log_at ON scim_log (at);
