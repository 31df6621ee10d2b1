-- The server's own settings, shared by every instance and read by the
-- command line: base_url, the public URL gatehouse serve last started with,
-- so that a command printing a link (org create) points where the server is.
CREATE TABLE server_settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
