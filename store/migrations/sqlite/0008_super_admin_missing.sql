-- Organizations that lost their last Super Administrator (Pending or
-- Active) to a deprovisioning by the IdP, and since when; a row is removed
-- when the organization has one again. Support finds them (gatehouse org
-- show) and restores one (gatehouse administrator set-role). A table of its
-- own, written only under the organization's super lock (store/roles.go),
-- so that flagging never waits for the organization's row.
CREATE TABLE super_admin_missing (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    since  TIMESTAMP NOT NULL
);
