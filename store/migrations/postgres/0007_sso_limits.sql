-- Limits on what unauthenticated browsers can make gatehouse write:
-- counting windows shared by every instance (sign-ins started and answers
-- posted per client address, refused sign-ins audited per connection),
-- and an index to count a connection's sign-in requests in flight.

CREATE TABLE rate_windows (
    key          TEXT PRIMARY KEY,
    window_start TIMESTAMPTZ NOT NULL,
    hits         INTEGER NOT NULL
);
CREATE INDEX rate_windows_start ON rate_windows (window_start);

CREATE INDEX sso_requests_connection ON sso_requests (connection_id, expires_at);
