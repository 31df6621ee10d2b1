-- Foundation: organizations, registered domains, administrators, groups and
-- their members, SCIM tokens, invitations. Times are UTC. Every list is
-- ordered by seq, a monotonic integer, so paging stays stable while rows are
-- inserted; the public id is a random string.

CREATE TABLE orgs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    slug         TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    scim_enabled BOOLEAN NOT NULL DEFAULT 0,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE registered_domains (
    org_id     TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    domain     TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, domain)
);

CREATE TABLE administrators (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    username      TEXT NOT NULL,
    username_fold TEXT NOT NULL,
    external_id   TEXT NOT NULL DEFAULT '',
    given_name    TEXT NOT NULL DEFAULT '',
    family_name   TEXT NOT NULL DEFAULT '',
    email         TEXT NOT NULL DEFAULT '',
    phone         TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL,
    status        TEXT NOT NULL,
    scim_managed  BOOLEAN NOT NULL DEFAULT 0,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP,
    version       INTEGER NOT NULL DEFAULT 1,
    attributes    TEXT
);
CREATE UNIQUE INDEX administrators_org_username_fold ON administrators (org_id, username_fold);
CREATE INDEX administrators_org_username ON administrators (org_id, username);
CREATE INDEX administrators_org_seq ON administrators (org_id, seq);
CREATE INDEX administrators_org_external_id ON administrators (org_id, external_id);
CREATE INDEX administrators_org_email ON administrators (org_id, email);

CREATE TABLE groups (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    external_id  TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,
    attributes   TEXT
);
CREATE INDEX groups_org_seq ON groups (org_id, seq);
CREATE INDEX groups_org_display_name ON groups (org_id, display_name);
CREATE INDEX groups_org_external_id ON groups (org_id, external_id);

-- One row per member: adding or removing one never rewrites the group.
CREATE TABLE group_members (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id         TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    administrator_id TEXT NOT NULL REFERENCES administrators(id) ON DELETE CASCADE,
    UNIQUE (group_id, administrator_id)
);
CREATE INDEX group_members_group_seq ON group_members (group_id, seq);
CREATE INDEX group_members_administrator ON group_members (administrator_id);

-- Row counts kept beside the rows, so a list's total costs one small read
-- instead of counting 100,000 rows. A count may be spread over several slots
-- (summed on read) so concurrent inserts on PostgreSQL do not all wait for
-- one row lock.
CREATE TABLE record_counts (
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    kind   TEXT NOT NULL,
    slot   INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (org_id, kind, slot)
);

CREATE TABLE scim_tokens (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    prefix       TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    description  TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP,
    last_used_at TIMESTAMP,
    revoked_at   TIMESTAMP
);
CREATE INDEX scim_tokens_org ON scim_tokens (org_id, created_at);

CREATE TABLE invitations (
    hash             BLOB PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    administrator_id TEXT NOT NULL REFERENCES administrators(id) ON DELETE CASCADE,
    created_at       TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    used_at          TIMESTAMP
);
CREATE INDEX invitations_administrator ON invitations (administrator_id);
