-- LDAP sign-in (issue #15, seed 002 "Is LDAP user"): an organization's one
-- LDAP connection, and the administrators whose password is checked by a
-- bind to it instead of a local hash.

-- bind_password is sealed with the server key by the caller (the store
-- never sees it in clear). user_filter holds the placeholder {username},
-- replaced by the typed username escaped per RFC 4515.
CREATE TABLE ldap_connections (
    org_id             TEXT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    url                TEXT NOT NULL,
    start_tls          BOOLEAN NOT NULL DEFAULT 0,
    ca_pem             TEXT NOT NULL,
    bind_dn            TEXT NOT NULL,
    bind_password      TEXT NOT NULL,
    base_dn            TEXT NOT NULL,
    user_filter        TEXT NOT NULL,
    username_attribute TEXT NOT NULL,
    timeout_ms         INTEGER NOT NULL,
    enabled            BOOLEAN NOT NULL DEFAULT 1,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL,
    version            INTEGER NOT NULL DEFAULT 1
);

-- An LDAP user has no local password: its sign-in binds to the directory.
ALTER TABLE credentials ADD COLUMN ldap_user BOOLEAN NOT NULL DEFAULT 0;
