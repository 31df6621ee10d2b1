package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jmoiron/sqlx"
)

// createQueue is the group commit of CreateAdministrator on SQLite. With
// synchronous=FULL every commit is an fsync, and SQLite has one writer, so
// one transaction per create caps throughput at one fsync per create. The
// queue's goroutine instead takes every create waiting (up to maxBatch),
// runs them in one transaction — each create is one INSERT statement, and
// a statement that fails a constraint (a username clash) is undone by
// SQLite on its own (ON CONFLICT ABORT, the default: the statement's
// changes are backed out, the transaction stays open), so it fails only
// its caller — commits once, and only then answers each caller. No caller hears of
// success before the commit that made its row durable has returned.
type createQueue struct {
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
	a     Administrator
	actor Actor // for the audit log
	state atomic.Int32
	out   chan createResult // buffered: the batch never waits for a caller
}

type createResult struct {
	a   Administrator
	err error
}

func newCreateQueue(s *SQL) *createQueue {
	q := &createQueue{reqs: make(chan *createReq, maxBatch), stop: make(chan struct{}), done: make(chan struct{})}
	go q.run(s)
	return q
}

// create queues a and waits for its batch.
func (q *createQueue) create(ctx context.Context, s *SQL, a Administrator) (Administrator, error) {
	if err := ctx.Err(); err != nil {
		return Administrator{}, err
	}
	r := &createReq{a: a, actor: ActorFrom(ctx), out: make(chan createResult, 1)}
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

func (q *createQueue) run(s *SQL) {
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
				s.commitCreates(batch)
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
		s.commitCreates(batch)
	}
}

// commitCreates inserts a batch in one transaction and answers every
// request it took. Its context is its own: a caller that gives up must not
// cancel the others' transaction.
func (s *SQL) commitCreates(batch []*createReq) {
	ctx := context.Background()
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
	var st createStatements
	err := st.prepare(ctx, s)
	if err == nil {
		err = s.inTx(ctx, func(tx *sqlx.Tx) error {
			return s.createAll(ctx, st.in(ctx, tx), taken, results)
		})
	}
	for i, r := range taken {
		if err != nil {
			results[i] = createResult{err: err}
		}
		r.out <- results[i]
	}
}

// createAll inserts the batch's administrators, their email index rows
// and audit entries, then counts them, with the batch's statements.
func (s *SQL) createAll(ctx context.Context, st createStatements, taken []*createReq, results []createResult) error {
	now := s.timestamp()
	perOrg := map[string]int{}
	for i, r := range taken {
		a := r.a
		if err := newAdministrator(&a, now); err != nil {
			results[i] = createResult{err: err}
			continue
		}
		if _, err := st.administrator.ExecContext(ctx, administratorArgs(&a)...); err != nil {
			if !s.d.uniqueViolation(err) && !s.d.foreignKeyViolation(err) {
				// Not this create's own fault (I/O, a full disk): SQLite may
				// have ended the transaction, so every create of the batch
				// fails with it.
				return fmt.Errorf("store: group commit: %w", err)
			}
			results[i] = createResult{err: s.administratorWriteError(err, &a)}
			continue
		}
		for pos, e := range indexedEmails(&a) {
			if _, err := st.email.ExecContext(ctx, emailArgs(&a, pos, e)...); err != nil {
				return fmt.Errorf("store: index emails: %w", err)
			}
		}
		row, _ := auditRow(pendingAudit{actor: r.actor, org: a.OrgID, change: administratorCreated(&a)}, now)
		if _, err := st.audit.ExecContext(ctx, row...); err != nil {
			return fmt.Errorf("store: audit: %w", err)
		}
		results[i] = createResult{a: a}
		perOrg[a.OrgID]++
	}
	for org, n := range perOrg {
		if _, err := st.count.ExecContext(ctx, org, countAdministrators, 0, n); err != nil {
			return fmt.Errorf("store: count %s: %w", countAdministrators, err)
		}
	}
	return nil
}

// createStatements are the group commit's statements, kept prepared on
// the writer: parsing them for every batch would cost more than running
// them. They are prepared before the batch's transaction begins
// (preparing inside it would wait for the writer's only connection, which
// the transaction holds), then bound to the transaction by in, which
// reuses them on its connection.
type createStatements struct {
	administrator, email, count, audit *sqlx.Stmt
}

var (
	insertAdministratorSQL = `INSERT INTO administrators (` + administratorInsertColumns + `) VALUES ` + placeholders(1, administratorInsertArgs)
	insertEmailSQL         = `INSERT INTO administrator_emails (` + emailInsertColumns + `) VALUES ` + placeholders(1, emailInsertArgs)
)

func (st *createStatements) prepare(ctx context.Context, s *SQL) error {
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
			return fmt.Errorf("store: prepare group commit: %w", err)
		}
	}
	return nil
}

func (st createStatements) in(ctx context.Context, tx *sqlx.Tx) createStatements {
	return createStatements{tx.StmtxContext(ctx, st.administrator), tx.StmtxContext(ctx, st.email), tx.StmtxContext(ctx, st.count),
		tx.StmtxContext(ctx, st.audit)}
}
