-- Where a sign-in came from (seed 002's login history: "date, browser, IP
-- and location"): the country and city the server's GeoIP database gave
-- for the address at the time of the sign-in, as JSON (store.Location);
-- '' when there was no database, or the address was private or unknown.
ALTER TABLE login_history ADD COLUMN location TEXT NOT NULL DEFAULT '';
