package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"
)

// dialect is what differs between SQLite and PostgreSQL; everything else is
// one SQL implementation.
type dialect struct {
	name string
	// forUpdate locks the row read by an update's SELECT. SQLite needs none:
	// its single writer connection opens transactions with BEGIN IMMEDIATE,
	// which already excludes other writers. PostgreSQL takes FOR NO KEY
	// UPDATE, which does not block foreign-key checks of inserts that refer
	// to the row (group members).
	forUpdate string
	// lockGroup ends the read of a group (alias g) joined with its
	// organization (alias o) at the start of a group change: see lockedGroup.
	lockGroup string
	// lockOrg ends the read of an organization row that a change of its
	// designated group must wait for (a new group and its members).
	lockOrg             string
	uniqueViolation     func(error) bool
	foreignKeyViolation func(error) bool
	migrations          string // folder under migrations/
	// countSlots is how many rows a record count is spread over (see
	// record_counts in the migrations): one where writes are serial anyway.
	countSlots int
	// seqCommitsOutOfOrder: a row may become visible after rows of a
	// higher seq (PostgreSQL's identity sequence is taken before commit,
	// by writers in parallel), so an insert can shift the positions of
	// rows already read in creation order (see positionKinds).
	seqCommitsOutOfOrder bool
	// What a Query needs: JSON access, substring tests, and the collation
	// that orders text by code point (SQLite's default, binary, already
	// does; PostgreSQL's default follows the database's locale).
	json      jsonSQL
	strings   stringSQL
	byteOrder string
	// fold is text folded case-insensitively in SQL as textFold does, when
	// foldExact (see fold.go); a value compared with it is folded in Go.
	fold      func(x expr) expr
	foldExact bool
	// groupRefs is a scalar subquery giving the groups of the
	// administrator row aliased "a" as a JSON array of [id, displayName]
	// pairs in the groups' creation order.
	groupRefs string
	// administratorWithGroups reads an administrator by id and org with
	// its groupRefs.
	administratorWithGroups string
}

func withGroupRefs(d dialect) dialect {
	d.administratorWithGroups = `SELECT ` + prefixed(administratorColumns, "a") + `, ` + d.groupRefs + ` AS group_refs
		FROM administrators a WHERE a.id = ? AND a.org_id = ?`
	return d
}

var sqliteDialect = withGroupRefs(dialect{
	name:      "sqlite",
	forUpdate: "",
	lockGroup: "",
	lockOrg:   "",
	uniqueViolation: func(err error) bool {
		var e sqlite3.Error
		return errors.As(err, &e) && (e.ExtendedCode == sqlite3.ErrConstraintUnique || e.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
	},
	foreignKeyViolation: func(err error) bool {
		var e sqlite3.Error
		return errors.As(err, &e) && e.ExtendedCode == sqlite3.ErrConstraintForeignKey
	},
	migrations: "sqlite",
	countSlots: 1,
	json:       sqliteJSON{},
	strings:    sqliteStrings{},
	byteOrder:  "",
	fold:       sqliteFoldSQL,
	foldExact:  true,
	// An ORDER BY inside the aggregate (SQLite 3.44+; go-sqlite3 embeds
	// its own SQLite) costs less than ordering a subquery it reads.
	groupRefs: `(SELECT json_group_array(json_array(g.id, g.display_name) ORDER BY g.seq)
		FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.administrator_id = a.id)`,
})

var postgresDialect = withGroupRefs(dialect{
	name:      "postgres",
	forUpdate: " FOR NO KEY UPDATE",
	lockGroup: " FOR NO KEY UPDATE OF g FOR SHARE OF o",
	lockOrg:   " FOR SHARE",
	uniqueViolation: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
	foreignKeyViolation: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23503"
	},
	migrations:           "postgres",
	countSlots:           8,
	seqCommitsOutOfOrder: true,
	json:                 postgresJSON{},
	strings:              postgresStrings{},
	byteOrder:            ` COLLATE "C"`,
	fold:                 postgresLowerSQL, // until Open finds ICU: usePostgresFold
	groupRefs: `(SELECT json_agg(json_build_array(g.id, g.display_name) ORDER BY g.seq)
		FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.administrator_id = a.id)`,
})

// SQL is the Store on SQLite or PostgreSQL.
type SQL struct {
	d dialect
	// writer takes every write transaction. On SQLite it is one connection,
	// so writes queue in Go instead of failing with SQLITE_BUSY; on
	// PostgreSQL it is the same pool as reader.
	writer *sqlx.DB
	reader *sqlx.DB
	now    func() time.Time

	bound       sync.Map // query with ? placeholders -> query for the dialect
	stmts       sync.Map // stmtKey -> *sqlx.Stmt
	dynamicKept atomic.Int64

	// creates is the group commit of CreateAdministrator; nil only in
	// benchmarks of one transaction per create (WithoutGroupCommit).
	creates *createQueue
	// inserts are SQLite's statements of insertAdministrators.
	inserts insertStatements
	// checkpoints copies the SQLite WAL into the database; nil on
	// PostgreSQL.
	checkpoints *walCheckpointer
}

type stmtKey struct {
	db    *sqlx.DB
	query string
}

// Options tune Open. The zero value is the production default.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SQLiteSynchronous is SQLite's PRAGMA synchronous: "FULL" (the
	// default: a committed write survives power loss) or "NORMAL" (survives
	// a crash of gatehouse, not of the machine).
	SQLiteSynchronous string
	// MaxConns caps the reader pool (and, on PostgreSQL, the writer pool).
	// Zero picks a default from the CPU count.
	MaxConns int
	// ConnectTimeout bounds the first contact with the database, so an
	// unreachable one fails fast; migrations are not bounded by it. Zero
	// means 10 seconds.
	ConnectTimeout time.Duration
	// SQLiteBusyTimeout is how long SQLite waits for a lock that another
	// process holds before the call fails with ErrUnavailable. Zero means
	// 10 seconds.
	SQLiteBusyTimeout time.Duration
}

// postgresConnectTimeout bounds each new PostgreSQL connection when the URL
// sets no connect_timeout: without it, a database host that has gone away
// (no refusal, no answer) holds a request for the operating system's TCP
// timeout, minutes, instead of failing with ErrUnavailable.
const postgresConnectTimeout = "5"

// Open connects to the database named by dsn and migrates it:
// a "postgres://" or "postgresql://" URL selects PostgreSQL; a "sqlite:" URL
// or a plain file path selects SQLite, creating the file and its folder.
func Open(ctx context.Context, dsn string, opt Options) (*SQL, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MaxConns <= 0 {
		opt.MaxConns = max(4, 2*runtime.NumCPU())
	}
	var s *SQL
	var err error
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(dsn, opt)
	case dsn == "":
		return nil, errors.New("store: no database given")
	default:
		s, err = openSQLite(dsn, opt)
	}
	if err != nil {
		return nil, err
	}
	if opt.ConnectTimeout <= 0 {
		opt.ConnectTimeout = 10 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, opt.ConnectTimeout)
	err = s.Ping(pctx)
	cancel()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("store: %s unreachable: %w", s.d.name, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if s.d.name == "postgres" {
		if err := s.usePostgresFold(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("store: postgres: %w", err)
		}
	} else if err := s.inserts.prepare(ctx, s); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func openPostgres(dsn string, opt Options) (*SQL, error) {
	if u, err := url.Parse(dsn); err == nil && !u.Query().Has("connect_timeout") {
		q := u.Query()
		q.Set("connect_timeout", postgresConnectTimeout)
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	db, err := sqlx.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	db.SetMaxOpenConns(opt.MaxConns)
	db.SetMaxIdleConns(opt.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &SQL{d: postgresDialect, writer: db, reader: db, now: opt.Now}
	s.creates = newCreateQueue(s.commitPostgres)
	return s, nil
}

// SQLitePath returns the file a SQLite DSN names ("sqlite:PATH",
// "sqlite://PATH" or PATH, with or without "?query").
func SQLitePath(dsn string) string {
	p := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//")
	p = strings.TrimPrefix(p, "file:")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}

func openSQLite(dsn string, opt Options) (*SQL, error) {
	path := SQLitePath(dsn)
	if path == "" || path == ":memory:" {
		return nil, errors.New("store: sqlite needs a file path (the reader pool and the writer share it)")
	}
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	sync := strings.ToUpper(opt.SQLiteSynchronous)
	switch sync {
	case "":
		sync = "FULL"
	case "FULL", "NORMAL":
	default:
		return nil, fmt.Errorf("store: sqlite synchronous must be FULL or NORMAL, not %q", opt.SQLiteSynchronous)
	}
	params := url.Values{}
	params.Set("_journal_mode", "WAL")
	params.Set("_foreign_keys", "on")
	busy := opt.SQLiteBusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	params.Set("_busy_timeout", strconv.FormatInt(busy.Milliseconds(), 10))
	params.Set("_synchronous", sync)
	// 8 MB of page cache per connection (5 connections): the OS caches the
	// file too, and the SCIM load goal keeps the whole server under 150 MB.
	params.Set("_cache_size", "-8000")
	params.Set("_txlock", "immediate")
	params.Set("_mutex", "no") // database/sql gives a connection to one goroutine at a time
	file := "file:" + (&url.URL{Path: path}).EscapedPath()

	writer, err := sqlx.Open(sqliteDriver, file+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	if err := setWriterAutoCheckpoint(writer.DB); err != nil {
		writer.Close()
		return nil, err
	}

	params.Set("_query_only", "true")
	params.Set("_txlock", "deferred")
	reader, err := sqlx.Open(sqliteDriver, file+"?"+params.Encode())
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	reader.SetMaxOpenConns(opt.MaxConns)
	reader.SetMaxIdleConns(opt.MaxConns)
	reader.SetConnMaxLifetime(0)
	params.Del("_query_only")
	params.Set("_cache_size", "-1000") // a checkpoint reads the WAL, not the cache
	checkpointer, err := sql.Open(sqliteDriver, file+"?"+params.Encode())
	if err != nil {
		writer.Close()
		reader.Close()
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	checkpointer.SetMaxOpenConns(1)
	checkpointer.SetMaxIdleConns(1)
	checkpointer.SetConnMaxLifetime(0)
	s := &SQL{d: sqliteDialect, writer: writer, reader: reader, now: opt.Now, checkpoints: newWALCheckpointer(checkpointer)}
	s.creates = newCreateQueue(s.commitSQLite)
	return s, nil
}

// createPrivate creates the folders of a SQLite database (0700) and its
// file (0600) when they do not exist, whatever the umask: the file holds
// password hashes, personal data and sign-in history, and SQLite creates
// the -wal and -shm files with the mode of the database file. Existing
// folders and files keep the mode their owner gave them.
func createPrivate(path string) error {
	var missing []string
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(dir); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, dir)
		if parent := filepath.Dir(dir); parent == dir {
			break
		}
	}
	for _, dir := range slices.Backward(missing) {
		err := os.Mkdir(dir, 0o700)
		if errors.Is(err, fs.ErrExist) { // made meanwhile by another process
			continue
		}
		if err == nil {
			err = os.Chmod(dir, 0o700)
		}
		if err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// An empty file is an empty SQLite database.
	err = f.Chmod(0o600)
	return errors.Join(err, f.Close())
}

// Dialect names the backend: "sqlite" or "postgres".
func (s *SQL) Dialect() string { return s.d.name }

// DB returns the connection pools (reader and writer are the same on
// PostgreSQL), for metrics.
func (s *SQL) DB() (reader, writer *sql.DB) { return s.reader.DB, s.writer.DB }

// Ping reports whether the database answers.
func (s *SQL) Ping(ctx context.Context) error {
	if err := s.writer.PingContext(ctx); err != nil {
		return unavailable(err)
	}
	if s.reader != s.writer {
		return unavailable(s.reader.PingContext(ctx))
	}
	return nil
}

// Close waits for the creates already queued, then closes the pools.
func (s *SQL) Close() error {
	if s.creates != nil {
		s.creates.close()
	}
	var err error
	if s.checkpoints != nil {
		err = s.checkpoints.close()
	}
	s.stmts.Range(func(_, v any) bool { v.(*sqlx.Stmt).Close(); return true })
	err = errors.Join(err, s.writer.Close())
	if s.reader != s.writer {
		err = errors.Join(err, s.reader.Close())
	}
	return err
}

// q rebinds a query written with ? placeholders for the dialect, once.
func (s *SQL) q(query string) string {
	if v, ok := s.bound.Load(query); ok {
		return v.(string)
	}
	b := s.writer.Rebind(query)
	s.bound.Store(query, b)
	return b
}

// timestamp is the clock reading stored for "now": UTC, microseconds (what
// PostgreSQL keeps), so a record reads back equal to what was written.
func (s *SQL) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// inTx runs fn in one write transaction, committing if it returns nil.
func (s *SQL) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.writer.BeginTxx(ctx, nil)
	if err != nil {
		return unavailable(fmt.Errorf("store: begin: %w", err))
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return unavailable(fmt.Errorf("store: commit: %w", err))
	}
	return nil
}

// stmt returns a statement prepared once on db and kept: mattn/go-sqlite3
// would otherwise compile the SQL on every call of the read hot path (pgx
// caches statements on its own).
func (s *SQL) stmt(ctx context.Context, db *sqlx.DB, query string) (*sqlx.Stmt, error) {
	k := stmtKey{db, query}
	if v, ok := s.stmts.Load(k); ok {
		return v.(*sqlx.Stmt), nil
	}
	st, err := db.PreparexContext(ctx, s.q(query))
	if err != nil {
		return nil, unavailable(err)
	}
	if v, loaded := s.stmts.LoadOrStore(k, st); loaded {
		st.Close()
		return v.(*sqlx.Stmt), nil
	}
	return st, nil
}

// on is where a statement runs: a pool (*sqlx.DB) or a write transaction
// (*sqlx.Tx). Statements on a pool are kept prepared. Statements in a
// transaction are sent as text: preparing through the pool would wait for
// the SQLite writer's only connection, which the transaction holds, and the
// fsync of a write costs far more than parsing its SQL.
type on interface {
	sqlx.QueryerContext
	sqlx.ExecerContext
}

// get reads one row into dst, mapping no rows to ErrNotFound.
func (s *SQL) get(ctx context.Context, where on, dst any, query string, args ...any) error {
	var err error
	if db, ok := where.(*sqlx.DB); ok {
		var st *sqlx.Stmt
		if st, err = s.stmt(ctx, db, query); err == nil {
			err = st.GetContext(ctx, dst, args...)
		}
	} else {
		err = sqlx.GetContext(ctx, where, dst, s.q(query), args...)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return unavailable(fmt.Errorf("store: %w", err))
	}
	return nil
}

// selectAll reads every row of a query into dst, a pointer to a slice.
func (s *SQL) selectAll(ctx context.Context, db *sqlx.DB, dst any, query string, args ...any) error {
	st, err := s.stmt(ctx, db, query)
	if err != nil {
		return err
	}
	return unavailable(st.SelectContext(ctx, dst, args...))
}

// scanRows runs a query statement and calls each for every row.
func scanRows(ctx context.Context, st *sqlx.Stmt, args []any, each func(*sql.Rows) error) error {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return unavailable(err)
		}
	}
	return unavailable(rows.Err())
}

// exec runs a write and returns the rows it affected.
func (s *SQL) exec(ctx context.Context, where on, query string, args ...any) (int64, error) {
	res, err := where.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return 0, unavailable(err)
	}
	n, err := res.RowsAffected()
	return n, unavailable(err)
}

const addCountSQL = `INSERT INTO record_counts (org_id, kind, slot, n) VALUES (?, ?, ?, ?)
	ON CONFLICT (org_id, kind, slot) DO UPDATE SET n = record_counts.n + excluded.n`

// createError maps the error of an insert: a uniqueness clash is exists,
// a missing parent row (the organization, the administrator) ErrNotFound,
// anything else wrapped as the failed creation of what.
func (s *SQL) createError(err error, exists *ExistsError, what string) error {
	switch {
	case err == nil:
		return nil
	case s.d.uniqueViolation(err):
		return exists
	case s.d.foreignKeyViolation(err):
		return ErrNotFound
	}
	return fmt.Errorf("store: create %s: %w", what, err)
}

// addCount changes the stored count of an organization's records of a kind
// (inside the transaction that inserts or deletes them). A removal is also
// counted under removedKind(kind), which only grows: see positionKinds.
//
// Every count a transaction changes is in the same slot, picked by the
// transaction: two slots of one kind locked by one transaction (a group
// change that also recomputes roles counts two changes) could deadlock
// with another transaction locking them in the other order.
func (s *SQL) addCount(ctx context.Context, tx *sqlx.Tx, org, kind string, delta int) error {
	slot := s.countSlot(tx)
	_, err := s.exec(ctx, tx, addCountSQL, org, kind, slot, delta)
	if err == nil && delta < 0 {
		_, err = s.exec(ctx, tx, addCountSQL, org, removedKind(kind), slot, -delta)
	}
	if err != nil {
		return fmt.Errorf("store: count %s: %w", kind, err)
	}
	return nil
}

// countSlot is the slot of the counts tx changes (see addCount).
func (s *SQL) countSlot(tx *sqlx.Tx) int {
	if s.d.countSlots == 1 {
		return 0
	}
	return int(maphash.Comparable(slotSeed, tx) % uint64(s.d.countSlots))
}

// slotSeed spreads transactions over the slots of a count.
var slotSeed = maphash.MakeSeed()

// removedKind is the record_counts kind that counts the removals of the
// records of kind.
func removedKind(kind string) string { return kind + ".removed" }

// countChanged is the record_counts kind that counts the changes of an
// organization's administrators and groups that may change which of them
// a filter matches: every update of an administrator (its columns,
// attributes, emails, role, status, last sign-in) and of a group (its
// fields or members). Nothing else reads it.
const countChanged = "changed"

// changed counts one such change of org's records, inside the
// transaction that makes it (see countChanged).
func (s *SQL) changed(ctx context.Context, tx *sqlx.Tx, org string) error {
	return s.addCount(ctx, tx, org, countChanged, 1)
}

// changing is query, an update of org's records inside tx, with the count
// of the change (see changed) folded in on PostgreSQL as a data-modifying
// WITH: a round trip fewer for every such write. On SQLite, in process,
// folded is false and the caller calls changed itself.
func (s *SQL) changing(tx *sqlx.Tx, org, query string, args ...any) (q string, all []any, folded bool) {
	if s.d.name != "postgres" {
		return query, args, false
	}
	return `WITH counted AS (` + addCountSQL + `) ` + query, append([]any{org, countChanged, s.countSlot(tx), 1}, args...), true
}

// count reads the stored count of an organization's records of a kind.
func (s *SQL) count(ctx context.Context, org, kind string) (int, error) {
	var n int
	err := s.get(ctx, s.reader, &n, `SELECT COALESCE(SUM(n), 0) FROM record_counts WHERE org_id = ? AND kind = ?`, org, kind)
	return n, err
}

// updateRecord is the read-modify-write every Update method shares: lock
// and read the row, let fn change a copy, restore the fields fn may not
// change, and write it back only if the version is still the one read.
func updateRecord[T any](ctx context.Context, s *SQL, sel string, args []any,
	fn func(*T) error, fix func(before, after *T), write func(tx *sqlx.Tx, rec *T) (int64, error)) (T, error) {
	var out T
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var before T
		if err := s.get(ctx, tx, &before, sel+s.d.forUpdate, args...); err != nil {
			return err
		}
		rec := before
		if err := fn(&rec); err != nil {
			return err
		}
		fix(&before, &rec)
		n, err := write(tx, &rec)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrConflict
		}
		out = rec
		return nil
	})
	return out, err
}

// chunks splits ids into slices of at most n, for IN lists and multi-row
// inserts that must stay under the drivers' parameter limits.
func chunks[T any](ids []T, n int) [][]T {
	var out [][]T
	for len(ids) > n {
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

func placeholders(n, per int) string {
	var b strings.Builder
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", per), ",") + ")"
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

func checkPage(p Page) error {
	if p.Offset < 0 || p.Limit < 0 {
		return fmt.Errorf("store: invalid page offset=%d limit=%d", p.Offset, p.Limit)
	}
	return nil
}

var _ Store = (*SQL)(nil)
