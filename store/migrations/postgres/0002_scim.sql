-- SCIM: email addresses as indexed rows, the role the IdP grants, the group
-- that makes its members Super Administrators, case-insensitive group names.
-- The *_fold columns hold store.Fold of their source, computed in Go; rows
-- that exist before this migration get theirs from the Go step that runs
-- in the same transaction (see backfills in migrate.go).

ALTER TABLE orgs ADD COLUMN super_admin_group TEXT NOT NULL DEFAULT '';

ALTER TABLE administrators ADD COLUMN emails TEXT;
ALTER TABLE administrators ADD COLUMN scim_role TEXT NOT NULL DEFAULT '';

ALTER TABLE groups ADD COLUMN display_name_fold TEXT NOT NULL DEFAULT '';
CREATE INDEX groups_org_display_name_fold ON groups (org_id, display_name_fold);

-- One row per address of administrators.emails (JSON, what reads return),
-- rewritten with it, so that a filter on an address is an index lookup.
CREATE TABLE administrator_emails (
    administrator_id TEXT NOT NULL REFERENCES administrators(id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    org_id           TEXT NOT NULL,
    value            TEXT NOT NULL,
    value_fold       TEXT NOT NULL,
    type             TEXT NOT NULL DEFAULT '',
    display          TEXT NOT NULL DEFAULT '',
    is_primary       BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (administrator_id, position)
);
CREATE INDEX administrator_emails_org_value_fold ON administrator_emails (org_id, value_fold);
