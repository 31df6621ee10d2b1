package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
)

// createQueue is the group commit of CreateAdministrator. One transaction
// per create caps throughput at one commit (one fsync) per create: on
// SQLite, whose one writer runs them one after the other, and on
// PostgreSQL too, where the creates of an organization all increment the
// same few record_counts rows and so wait for each other's commit on their
// row locks. The queue's goroutine instead takes every create waiting (up to
// maxBatch), writes them in one transaction (commitSQLite, commitPostgres),
// commits once, and only then answers each caller. No caller hears of
// success before the commit that made its row durable has returned.
type createQueue struct {
	// write inserts the batch taken in one transaction and fills in the
	// result of each create; an error instead fails every create of it.
	write func(ctx context.Context, taken []*createReq, results []createResult) error

	reqs chan *createReq
	stop chan struct{} // closed by close: drain and exit
	done chan struct{} // closed when the goroutine has exited

	mu     sync.RWMutex // held for reading while a caller enqueues
	closed bool
}

// maxBatch bounds the creates of one transaction, so one commit never
// keeps the writer long from other writes.
const maxBatch = 256

// Request states: a caller that gives up (its context ends) before the
// batch takes its request abandons it, and the batch skips it; once
// taken, the caller waits for the outcome, so an error always means the
// row was not written.
const (
	reqPending int32 = iota
	reqTaken
	reqAbandoned
)

type createReq struct {
	newRow
	actor Actor // for the audit log
	state atomic.Int32
	out   chan createResult // buffered: the batch never waits for a caller
}

type createResult struct {
	a   Administrator
	err error
}

func newCreateQueue(write func(context.Context, []*createReq, []createResult) error) *createQueue {
	q := &createQueue{write: write, reqs: make(chan *createReq, maxBatch), stop: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

// create queues a and waits for its batch.
func (q *createQueue) create(ctx context.Context, s *SQL, a Administrator) (Administrator, error) {
	if err := ctx.Err(); err != nil {
		return Administrator{}, err
	}
	actor, err := actorOf(ctx)
	if err != nil {
		return Administrator{}, err
	}
	r, err := s.newCreateReq(a, actor)
	if err != nil {
		return Administrator{}, err
	}
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return Administrator{}, ErrClosed
	}
	select {
	case q.reqs <- r:
		q.mu.RUnlock()
	case <-ctx.Done():
		q.mu.RUnlock()
		return Administrator{}, ctx.Err()
	}
	var res createResult
	select {
	case res = <-r.out:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqPending, reqAbandoned) {
			return Administrator{}, ctx.Err()
		}
		res = <-r.out
	}
	if res.err != nil {
		return Administrator{}, s.nameTaken(ctx, res.err)
	}
	return res.a, nil
}

// newCreateReq readies a and its audit entry: the batch's goroutine, which
// every create waits for, then has only to write them.
func (s *SQL) newCreateReq(a Administrator, actor Actor) (*createReq, error) {
	row, err := newAdministratorRow(a, actor, s.timestamp())
	if err != nil {
		return nil, err
	}
	return &createReq{newRow: row, actor: actor, out: make(chan createResult, 1)}, nil
}

// close stops taking creates, lets the goroutine finish the queued ones and
// waits for it.
func (q *createQueue) close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.stop)
	}
	q.mu.Unlock()
	<-q.done
}

func (q *createQueue) run() {
	defer close(q.done)
	batch := make([]*createReq, 0, maxBatch)
	for {
		select {
		case r := <-q.reqs:
			batch = append(batch[:0], r)
		case <-q.stop:
			// No caller can enqueue any more (close holds the lock while
			// it sets closed): what is in the channel is all there is.
			for {
				batch = batch[:0]
				for len(batch) < maxBatch && len(q.reqs) > 0 {
					batch = append(batch, <-q.reqs)
				}
				if len(batch) == 0 {
					return
				}
				q.commit(batch)
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-q.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		q.commit(batch)
	}
}

// commit writes a batch in one transaction and answers every request it
// took. Its context is its own: a caller that gives up must not cancel the
// others' transaction.
func (q *createQueue) commit(batch []*createReq) {
	taken := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(reqPending, reqTaken) {
			taken = append(taken, r)
		}
	}
	if len(taken) == 0 {
		return
	}
	results := make([]createResult, len(taken))
	err := q.write(context.Background(), taken, results)
	for i, r := range taken {
		if err != nil {
			results[i] = createResult{err: err}
		}
		r.out <- results[i]
	}
}

// commitSQLite writes a batch on SQLite in one transaction: a create that
// fails on its own (a username clash) fails only its caller (see
// insertAdministrators).
func (s *SQL) commitSQLite(ctx context.Context, taken []*createReq, results []createResult) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		errs, err := s.insertAdministrators(ctx, tx, rowsOf(taken))
		if err != nil {
			// Not a create's own fault (I/O, a full disk): SQLite may have
			// ended the transaction, so every create of the batch fails.
			return err
		}
		for i, r := range taken {
			results[i] = createResult{a: r.a, err: errs[i]}
		}
		return nil
	})
}

// commitPostgres writes a batch on PostgreSQL as one statement, a
// transaction of its own (insertAdministrators with no tx: no BEGIN and
// COMMIT, which would cost two more round trips). The callers whose
// usernames were taken get the clash. If the statement fails (an
// organization deleted meanwhile: a foreign key), nothing of it was
// written, and the batch's creates run again one by one, each in a
// transaction of its own, so each caller gets its own outcome. (Should a
// lost connection hide that the statement committed, they clash with
// their own rows: a caller may hear of a failure, never of a success that
// is not durable.)
//
// Several gatehouse instances may share the database: the unique index
// decides between their batches (ON CONFLICT waits for the other
// transaction holding a name to end, then skips the row or writes it), and
// the counts are increments.
func (s *SQL) commitPostgres(ctx context.Context, taken []*createReq, results []createResult) error {
	errs, err := s.insertAdministrators(ctx, nil, rowsOf(taken))
	for i, r := range taken {
		if err != nil {
			results[i].a, results[i].err = s.createOne(WithActor(ctx, r.actor), r.a)
		} else {
			results[i] = createResult{a: r.a, err: errs[i]}
		}
	}
	return nil
}

func rowsOf(taken []*createReq) []newRow {
	rows := make([]newRow, len(taken))
	for i, r := range taken {
		rows[i] = r.newRow
	}
	return rows
}

// newRow is an administrator readied for its insert (newAdministrator),
// with its audit entry's row.
type newRow struct {
	a     Administrator
	audit []any
}

func newAdministratorRow(a Administrator, actor Actor, now time.Time) (newRow, error) {
	if err := newAdministrator(&a, now); err != nil {
		return newRow{}, err
	}
	audit, _ := auditRow(pendingAudit{actor: actor, org: a.OrgID, change: administratorCreated(&a)}, now)
	return newRow{a: a, audit: audit}, nil
}

// insertAdministrators is the one insert of administrators: their rows,
// email index rows and audit entries, and their count, inside tx. Every
// create goes through it: CreateAdministrator alone or in a group commit,
// CreateAdministrators, an organization's owner, an invitation. The
// caller settles the Super Administrator rule (settleSuper) if a row counts
// as one.
//
// It returns, for each row, nil when it was written or the row's own
// failure, which wrote nothing of it: its username taken (errUsernameTaken)
// or, on SQLite, its organization missing (ErrNotFound). An error instead
// fails them all: on PostgreSQL nothing of the batch was written (a
// missing organization is ErrNotFound), on SQLite the transaction may have
// ended.
//
// On PostgreSQL tx may be nil: the batch's statement is then a transaction
// of its own. PostgreSQL commits it before it reports it complete, and the
// driver reads that report (ReadyForQuery) before it ends the rows, so the
// ids are returned only once the rows are durable.
func (s *SQL) insertAdministrators(ctx context.Context, tx *sqlx.Tx, rows []newRow) ([]error, error) {
	if s.d.name == "postgres" {
		return s.insertAdministratorsPostgres(ctx, tx, rows)
	}
	return s.insertAdministratorsSQLite(ctx, tx, rows)
}

// insertAdministratorsSQLite runs each row as its statements, kept
// prepared on the writer. A statement that fails a constraint (a username
// clash) is undone by SQLite on its own (ON CONFLICT ABORT, the default:
// the statement's changes are backed out, the transaction stays open), so
// it fails only its row.
func (s *SQL) insertAdministratorsSQLite(ctx context.Context, tx *sqlx.Tx, rows []newRow) ([]error, error) {
	st := s.inserts.in(ctx, tx)
	errs := make([]error, len(rows))
	perOrg := map[string]int{}
	for i := range rows {
		a := &rows[i].a
		if _, err := st.administrator.ExecContext(ctx, administratorArgs(a)...); err != nil {
			if !s.d.uniqueViolation(err) && !s.d.foreignKeyViolation(err) {
				return nil, fmt.Errorf("store: insert administrators: %w", err)
			}
			errs[i] = s.administratorWriteError(err, a)
			continue
		}
		for pos, e := range indexedEmails(a) {
			if _, err := st.email.ExecContext(ctx, emailArgs(a, pos, e)...); err != nil {
				return nil, fmt.Errorf("store: index emails: %w", err)
			}
		}
		if _, err := st.audit.ExecContext(ctx, rows[i].audit...); err != nil {
			return nil, fmt.Errorf("store: audit: %w", err)
		}
		perOrg[a.OrgID]++
	}
	for org, n := range perOrg {
		if _, err := st.count.ExecContext(ctx, org, countAdministrators, 0, n); err != nil {
			return nil, fmt.Errorf("store: count %s: %w", countAdministrators, err)
		}
	}
	return errs, nil
}

// insertStatements are SQLite's insert statements, prepared on the writer
// when the store opens (preparing inside a transaction would wait for the
// writer's only connection, which the transaction holds), then bound to a
// transaction by in, which reuses them on its connection: parsing them for
// every batch would cost more than running them.
type insertStatements struct {
	administrator, email, count, audit *sqlx.Stmt
}

var (
	insertAdministratorSQL = `INSERT INTO administrators (` + administratorInsertColumns + `) VALUES ` + placeholders(1, administratorInsertArgs)
	insertEmailSQL         = `INSERT INTO administrator_emails (` + emailInsertColumns + `) VALUES ` + placeholders(1, emailInsertArgs)
)

func (st *insertStatements) prepare(ctx context.Context, s *SQL) error {
	for _, p := range []struct {
		stmt  **sqlx.Stmt
		query string
	}{
		{&st.administrator, insertAdministratorSQL},
		{&st.email, insertEmailSQL},
		{&st.count, addCountSQL}, // slot 0: SQLite has one
		{&st.audit, insertAuditSQL},
	} {
		var err error
		if *p.stmt, err = s.stmt(ctx, s.writer, p.query); err != nil {
			return fmt.Errorf("store: prepare inserts: %w", err)
		}
	}
	return nil
}

func (st insertStatements) in(ctx context.Context, tx *sqlx.Tx) insertStatements {
	return insertStatements{tx.StmtxContext(ctx, st.administrator), tx.StmtxContext(ctx, st.email), tx.StmtxContext(ctx, st.count),
		tx.StmtxContext(ctx, st.audit)}
}

// insertAdministratorsPostgres runs the batch as one statement
// (createBatchSQL) whose insert skips the rows whose username is taken (ON
// CONFLICT names the username index, so a clash on anything else still
// fails it) and returns the ids it wrote. A failed statement aborts a
// PostgreSQL transaction, so a clash cannot be left to fail a statement of
// its own, as on SQLite.
func (s *SQL) insertAdministratorsPostgres(ctx context.Context, tx *sqlx.Tx, rows []newRow) ([]error, error) {
	var admins, emails, audit [][]any
	for i := range rows {
		a := &rows[i].a
		admins = append(admins, administratorArgs(a))
		for pos, e := range indexedEmails(a) {
			emails = append(emails, emailArgs(a, pos, e))
		}
		audit = append(audit, rows[i].audit)
	}
	var on sqlx.QueryerContext = s.writer
	slot := rand.IntN(s.d.countSlots)
	if tx != nil {
		on, slot = tx, s.countSlot(tx)
	}
	args := slices.Concat(arrays(admins, administratorInsertArgs), arrays(emails, emailInsertArgs), arrays(audit, auditColumns),
		[]any{slot})
	ids, err := on.QueryContext(ctx, s.q(createBatchSQL), args...)
	if err != nil {
		return nil, s.batchError(err, rows)
	}
	defer ids.Close()
	written := make(map[string]bool, len(rows))
	for ids.Next() {
		var id string
		if err := ids.Scan(&id); err != nil {
			return nil, unavailable(fmt.Errorf("store: insert administrators: %w", err))
		}
		written[id] = true
	}
	if err := ids.Err(); err != nil {
		return nil, s.batchError(err, rows)
	}
	errs := make([]error, len(rows))
	for i := range rows {
		if !written[rows[i].a.ID] {
			errs[i] = usernameTaken(&rows[i].a)
		}
	}
	return errs, nil
}

// batchError maps the error of a failed batch statement: a missing
// organization (a foreign key) is ErrNotFound, a clash on anything but a
// username (an id given twice) the clash of its first row.
func (s *SQL) batchError(err error, rows []newRow) error {
	switch {
	case s.d.foreignKeyViolation(err):
		return ErrNotFound
	case s.d.uniqueViolation(err):
		return usernameTaken(&rows[0].a)
	}
	return unavailable(fmt.Errorf("store: insert administrators: %w", err))
}

// createBatchSQL is the statement of insertAdministratorsPostgres. Each
// column is sent as one array parameter, expanded into rows by unnest: one
// statement text whatever the size of the batch, which pgx then keeps
// prepared on each connection, and a few dozen parameters where one per
// value would reach PostgreSQL's limit (65,535) at a few thousand rows. It
// is one statement, not one per table, because each round trip costs about
// as much as the work it carries. The email index rows and audit entries of
// the rows skipped are left out by their administrator's id. Rows are
// inserted in username order and counted in organization order, so two
// batches (of two instances) that share names or organizations lock them
// in one order and cannot deadlock.
var createBatchSQL = `WITH created AS (
		INSERT INTO administrators (` + administratorInsertColumns + `)
		` + unnest(administratorInsertColumns, `text, text, text, text, text, text, text, text, text, text, text, text, boolean,
			text, timestamptz, timestamptz, timestamptz, bigint, text, text`) + `
		ORDER BY org_id, username_fold
		ON CONFLICT (org_id, username_fold) DO NOTHING RETURNING id, org_id
	), emails AS (
		INSERT INTO administrator_emails (` + emailInsertColumns + `)
		` + unnest(emailInsertColumns, `text, integer, text, text, text, text, text, boolean`) + `
		WHERE administrator_id IN (SELECT id FROM created)
	), audit AS (
		INSERT INTO audit_log (` + auditInsertColumns + `)
		` + unnest(auditInsertColumns, `text, timestamptz, text, text, text, text, text, text, text, text, text`) + `
		WHERE target_id IN (SELECT id FROM created)
	), counted AS (
		INSERT INTO record_counts (org_id, kind, slot, n)
		SELECT org_id, '` + countAdministrators + `', ?::integer, count(*) FROM created GROUP BY org_id ORDER BY org_id
		ON CONFLICT (org_id, kind, slot) DO UPDATE SET n = record_counts.n + excluded.n
	)
	SELECT id FROM created`

// unnest selects the rows of one array parameter per column, of the given
// element types, named as the columns.
func unnest(columns, types string) string {
	ts := strings.Split(types, ",")
	if len(ts) != len(strings.Split(columns, ",")) {
		panic("store: unnest: one type per column")
	}
	for i, t := range ts {
		ts[i] = "?::" + strings.TrimSpace(t) + "[]"
	}
	return `SELECT * FROM unnest(` + strings.Join(ts, ", ") + `) AS r(` + columns + `)`
}

// arrays turns rows of n arguments into the parameters of unnest: one array
// per column.
func arrays(rows [][]any, n int) []any {
	cols := make([]any, n)
	for c := range cols {
		col := make([]any, len(rows))
		for r, row := range rows {
			col[r] = row[c]
		}
		cols[c] = col
	}
	return cols
}
