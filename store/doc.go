// Package store holds gatehouse's records and the persistence contract every
// backend implements. The one implementation, SQL, serves both SQLite (the
// embedded default) and PostgreSQL, with per-dialect migrations embedded
// from migrations/<dialect>; store/storetest is the conformance suite both
// must pass.
//
// Errors: backends map their driver errors to the sentinels of store.go.
// Callers compare with errors.Is; where they need detail (which username
// clashed) they use errors.As with *ExistsError. A database that cannot be
// reached, or is busy past its timeout, is ErrUnavailable.
//
// Decisions every backend keeps:
//
//   - Usernames are stored exactly and looked up exactly. Uniqueness inside
//     an organization is case-insensitive through username_fold, a column
//     computed in Go (Unicode full case folding, then NFC), so SQLite and
//     PostgreSQL agree whatever their collations; a clash returns an
//     *ExistsError naming the existing username. Comparisons and sorts of
//     attributes that are not case-exact use the same folding in SQL
//     (fold.go).
//   - Updates are read-modify-write in one transaction holding the row
//     (SQLite's single writer connection with BEGIN IMMEDIATE; PostgreSQL
//     FOR NO KEY UPDATE), so concurrent writers never lose each other's
//     changes; every record carries a version (the SCIM ETag) that callers
//     check for If-Match.
//   - Lists are ordered by an insertion sequence, so offset pages do not
//     overlap or skip while rows are inserted; totals come from counts kept
//     beside the rows, not from counting them.
//   - Group members are rows of their own: adding or removing one touches
//     only that row, whatever the group's size.
//   - Concurrent creates of administrators share one commit (commit.go), on
//     both databases; a caller hears of success only once its row is
//     durable.
//   - Every write records its audit entry in the transaction of the change;
//     the server-wide records (the OpenID Provider's signing keys and
//     clients, oidc.go) in the server's own log, ServerAudit.
//   - Of writers racing to make one thing once (the first signing key, a
//     rotation), a unique column decides: the losers get ErrAlreadyExists.
//   - SQLite runs in WAL mode with foreign keys on, a busy timeout, one
//     writer connection and a pool of read-only readers; its files are
//     created 0600.
//   - State that a second instance needs (sessions, sign-in counts, SAML
//     request IDs, the assertion replay cache, OIDC state, rate windows,
//     the outbox) lives in the database, never only in a process.
package store
