package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jmoiron/sqlx"
)

// createQueue is the group commit of CreateAdministrator on SQLite. With
// synchronous=FULL every commit is an fsync, and SQLite has one writer, so
// one transaction per create caps throughput at one fsync per create. The
// queue's goroutine instead takes every create waiting (up to maxBatch),
// runs them in one transaction with a savepoint each — a failing insert
// (a username clash) rolls back only itself and fails only its caller —
// commits once, and only then answers each caller. No caller hears of
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
	stmts, err := s.batchStatements(ctx)
	if err == nil {
		err = s.inTx(ctx, func(tx *sqlx.Tx) error {
			return s.createAll(ctx, tx, stmts.in(ctx, tx), taken, results)
		})
	}
	for i, r := range taken {
		if err != nil {
			results[i] = createResult{err: err}
		}
		r.out <- results[i]
	}
}

// createAll inserts the batch's administrators, each in its savepoint, then
// their email index rows and counts.
func (s *SQL) createAll(ctx context.Context, tx *sqlx.Tx, b createBatch, taken []*createReq, results []createResult) error {
	now := s.timestamp()
	perOrg := map[string]int{}
	var created []Administrator
	for i, r := range taken {
		a := r.a
		if err := newAdministrator(&a, now); err != nil {
			results[i] = createResult{err: err}
			continue
		}
		if err := b.insert(ctx, &a); err != nil {
			if errors.Is(err, errBatchBroken) {
				return err
			}
			results[i] = createResult{err: s.administratorWriteError(err, &a)}
			continue
		}
		results[i] = createResult{a: a}
		created = append(created, a)
		perOrg[a.OrgID]++
	}
	if err := s.insertEmails(ctx, tx, created); err != nil {
		return err
	}
	entries := make([]pendingAudit, 0, len(created))
	for i, r := range taken {
		if results[i].err == nil {
			a := results[i].a
			entries = append(entries, pendingAudit{actor: r.actor, org: a.OrgID, change: administratorCreated(&a)})
		}
	}
	if err := s.auditAll(ctx, tx, entries); err != nil {
		return err
	}
	for org, n := range perOrg {
		if err := s.addCount(ctx, tx, org, countAdministrators, n); err != nil {
			return err
		}
	}
	return nil
}

// errBatchBroken marks a failure of the batch's transaction itself (a
// savepoint that cannot be taken or rolled back to): every create of the
// batch fails.
var errBatchBroken = errors.New("store: group commit transaction failed")

// createBatch is the statements of a batch.
type createBatch struct {
	savepoint, rollback, release, insertRow *sqlx.Stmt
}

// batchStatements prepares createBatch's statements once on the writer and
// keeps them: parsing them for every insert would cost more than the
// inserts. They are prepared before the batch's transaction begins
// (preparing inside it would wait for the writer's only connection, which
// the transaction holds); in binds them to the transaction, reusing them
// on its connection.
func (s *SQL) batchStatements(ctx context.Context) (createBatch, error) {
	var b createBatch
	for _, p := range []struct {
		st    **sqlx.Stmt
		query string
	}{
		{&b.savepoint, `SAVEPOINT create_administrator`},
		{&b.rollback, `ROLLBACK TO SAVEPOINT create_administrator`},
		{&b.release, `RELEASE SAVEPOINT create_administrator`},
		{&b.insertRow, `INSERT INTO administrators (` + administratorInsertColumns + `) VALUES ` + placeholders(1, administratorInsertArgs)},
	} {
		st, err := s.stmt(ctx, s.writer, p.query)
		if err != nil {
			return b, fmt.Errorf("store: prepare group commit: %w", err)
		}
		*p.st = st
	}
	return b, nil
}

func (b createBatch) in(ctx context.Context, tx *sqlx.Tx) createBatch {
	return createBatch{tx.StmtxContext(ctx, b.savepoint), tx.StmtxContext(ctx, b.rollback), tx.StmtxContext(ctx, b.release),
		tx.StmtxContext(ctx, b.insertRow)}
}

// insert writes one administrator's row inside a savepoint: if the insert
// fails (a username clash), the savepoint takes back whatever part of it
// was written and only this create fails. Its email index rows are
// written for the whole batch afterwards.
func (b createBatch) insert(ctx context.Context, a *Administrator) error {
	if _, err := b.savepoint.ExecContext(ctx); err != nil {
		return fmt.Errorf("%w: %w", errBatchBroken, err)
	}
	_, err := b.insertRow.ExecContext(ctx, administratorArgs(a)...)
	if err != nil {
		if _, rerr := b.rollback.ExecContext(ctx); rerr != nil {
			return fmt.Errorf("%w: %w", errBatchBroken, rerr)
		}
	}
	if _, rerr := b.release.ExecContext(ctx); rerr != nil {
		return fmt.Errorf("%w: %w", errBatchBroken, rerr)
	}
	return err
}
