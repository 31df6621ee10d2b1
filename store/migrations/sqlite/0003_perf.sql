-- Indexes for the SCIM read and write paths.
--
-- The groups of an administrator (the "groups" of every SCIM User read)
-- come from group_members by administrator_id: an index on both columns
-- answers that without reading the member rows. It also serves the
-- foreign key's ON DELETE CASCADE, as the one-column index did.
CREATE INDEX group_members_administrator_group ON group_members (administrator_id, group_id);
DROP INDEX group_members_administrator;

-- No statement looks administrators up by their primary email any more
-- (filters on addresses use administrator_emails), nor by the username as
-- typed: exact matches go through the unique username_fold index and then
-- compare username, and a sort by username cannot use an index that starts
-- with an expression. Only an ordering filter on userName (gt, lt...),
-- which identity providers do not send, could still have used it on
-- SQLite. Every insert paid for both.
DROP INDEX administrators_org_email;
DROP INDEX administrators_org_username;
