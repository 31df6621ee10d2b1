package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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
	r := &createReq{a: a, out: make(chan createResult, 1)}
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
	t0 := time.Now()
	var tcommit time.Time
	defer func() { DebugStats(len(taken), tcommit.Sub(t0), time.Since(tcommit)) }()
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		defer func() { tcommit = time.Now() }()
		now := s.timestamp()
		perOrg := map[string]int{}
		for i, r := range taken {
			a, err, txErr := s.createInSavepoint(ctx, tx, r.a, now)
			if txErr != nil {
				return txErr
			}
			if err != nil {
				results[i] = createResult{err: err}
				continue
			}
			results[i] = createResult{a: a}
			perOrg[a.OrgID]++
		}
		for org, n := range perOrg {
			if err := s.addCount(ctx, tx, org, countAdministrators, n); err != nil {
				return err
			}
		}
		return nil
	})
	for i, r := range taken {
		if err != nil {
			results[i] = createResult{err: err}
		}
		r.out <- results[i]
	}
}

// createInSavepoint inserts one administrator of a batch. If the insert
// fails (err), the savepoint takes back whatever part of it was written;
// if the savepoint itself fails (txErr), the whole batch must roll back.
func (s *SQL) createInSavepoint(ctx context.Context, tx *sqlx.Tx, a Administrator, now time.Time) (_ Administrator, err, txErr error) {
	if err := newAdministrator(&a, now); err != nil {
		return a, err, nil
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT create_administrator`); err != nil {
		return a, nil, fmt.Errorf("store: savepoint: %w", err)
	}
	if err = s.insertAdministratorRow(ctx, tx, &a); err != nil {
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT create_administrator`); rerr != nil {
			return a, nil, fmt.Errorf("store: rollback to savepoint: %w", rerr)
		}
	}
	if _, rerr := tx.ExecContext(ctx, `RELEASE SAVEPOINT create_administrator`); rerr != nil {
		return a, nil, fmt.Errorf("store: release savepoint: %w", rerr)
	}
	return a, err, nil
}

var DebugStats = func(n int, work, commit time.Duration) {}
