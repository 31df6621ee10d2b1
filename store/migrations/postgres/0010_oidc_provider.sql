-- The OpenID Provider's own records (issue #14), server-wide: not owned by
-- an organization. Their changes go to the server's audit log (org_id '').

-- Keys that sign ID tokens. generation orders them and is unique, so that
-- of two instances creating the first key or rotating at once exactly one
-- wins. The private key is sealed with the server key (never in clear);
-- the public key is PKIX DER. A key signs from active_from until a newer
-- one's active_from, and stays published until retire_after (the moment
-- the last token it signed has expired); NULL while it is the newest.
CREATE TABLE oidc_signing_keys (
    id           TEXT PRIMARY KEY,
    generation   BIGINT NOT NULL UNIQUE,
    algorithm    TEXT NOT NULL,
    private_key  TEXT NOT NULL,
    public_key   BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    active_from  TIMESTAMPTZ NOT NULL,
    retire_after TIMESTAMPTZ
);

-- The product's applications (relying parties). redirect_uris is a JSON
-- array of exact strings; org_ids a JSON array of the organizations the
-- client serves when all_orgs is false. secret_hash is the SHA-256 of a
-- confidential client's secret, empty for a public client.
CREATE TABLE oidc_clients (
    seq                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                     TEXT NOT NULL UNIQUE,
    name                   TEXT NOT NULL,
    public                 BOOLEAN NOT NULL,
    secret_hash            BYTEA NOT NULL,
    redirect_uris          TEXT NOT NULL,
    backchannel_logout_uri TEXT NOT NULL DEFAULT '',
    all_orgs               BOOLEAN NOT NULL,
    org_ids                TEXT NOT NULL,
    first_party            BOOLEAN NOT NULL DEFAULT FALSE,
    created_at             TIMESTAMPTZ NOT NULL,
    disabled               BOOLEAN NOT NULL DEFAULT FALSE
);
