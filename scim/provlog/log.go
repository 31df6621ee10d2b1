// Package provlog is the provisioning log: for each organization, the
// last SCIM requests its identity provider sent and gatehouse's answers
// (method, path, filter, status, the SCIM error, the User or Group, the
// duration, the token's prefix, and both bodies with their secrets
// redacted and cut to BodyCap), which Okta and Entra administrators ask
// for when they debug provisioning from their side.
//
// It costs the SCIM request nothing but a copy of its response: Record
// puts the exchange on a bounded queue and returns at once, dropping it
// (and counting the drop, Dropped) when the queue is full; one writer
// goroutine redacts, inserts in batches and prunes (Run). Close flushes
// what is queued, for a graceful shutdown.
//
// The writer itself never takes more than a small, fixed share of a CPU
// from the SCIM server: it spends at most 2% of the time writing (about
// 500 requests a second), with 100 ms saved up for a burst. When the
// traffic would cost more, it sheds (Shed): it keeps first the failures
// and the writes, then the successful reads (GET, POST .search), up to
// what the budget pays for, and leaves out the rest; until its budget is
// half full again, successful reads are left out as they are recorded
// (Sheds), before anything of them is copied. At the tens of requests a
// second an IdP sends, nothing is shed.
package provlog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/store"
)

// Defaults of Config.
const (
	// DefaultKeep is how many entries an organization keeps.
	DefaultKeep = 10000
	// MaxAge is how long an entry is kept at most: an organization keeps
	// its last Keep entries or its last 7 days, whichever is fewer.
	MaxAge = 7 * 24 * time.Hour
	// DefaultQueue is how many exchanges may wait for the writer.
	DefaultQueue = 4096
	// DefaultQueueBytes bounds the bodies waiting for the writer (a SCIM
	// body may be 1 MiB): the queue's memory, whatever its length.
	DefaultQueueBytes = 64 << 20
	// BodyCap is the most of a body kept, after redaction: a User or a
	// PATCH fits whole, a long list or member PATCH is cut (and marked).
	BodyCap = 16 << 10
	// MaxCapture is the largest response body copied on the request
	// path; a larger one (a long list page) is kept as its size only.
	MaxCapture = 1 << 20
)

// Writer tuning: the writer wakes every flushEvery, or when the queue is
// half full, and writes what is queued in one transaction (batchSize
// entries at most). It prunes an organization it wrote to (pruneRows rows
// a statement, pruneRounds statements at most) once it has a tenth of
// Keep new entries (pruneSlack) or pruneEvery after its last prune,
// whichever comes first, not after every write: each prune reads down
// the organization's newest Keep entries, and pruning every 500 ms cost
// a sixth of the writer's time. An organization may thus hold a tenth
// more than Keep (and one batch) for up to pruneEvery. Every
// agePruneEvery, entries older than MaxAge go, in as bounded steps.
// Prunes are charged to the writer's time budget but never put off by it
// (the writes that follow wait instead), so the bounds hold under any
// load. A request never wakes the writer by itself: on two cores, a
// goroutine woken per request costs the SCIM server more than the log's
// writes.
const (
	batchSize     = 2048
	flushEvery    = 500 * time.Millisecond
	pruneEvery    = 5 * time.Second
	pruneSlack    = 10
	pruneRows     = 1000
	pruneRounds   = 10
	agePruneEvery = time.Minute
	// warnEvery is how often, at most, the writer logs that it sheds.
	warnEvery = time.Minute
)

// Exchange is one SCIM request and its answer, as the SCIM server hands
// it over. Request and Response are not copied: the caller must not
// change them after Record.
type Exchange struct {
	OrgID       string
	TokenPrefix string
	At          time.Time
	Duration    time.Duration
	Method      string
	Path        string
	// Filter is the query's filter parameter; a POST .search body's is
	// found by the writer.
	Filter string
	// ResourceID is the id of the path (/Users/{id}), "" for a create or
	// a list.
	ResourceID string
	Status     int
	SCIMType   string
	Detail     string
	// Request is the body as received (not redacted yet); Response the
	// body as sent, nil with ResponseSize set when it was larger than
	// MaxCapture.
	Request      []byte
	Response     []byte
	ResponseSize int
}

// Store is the part of store.Store the log writes with.
type Store interface {
	AppendSCIMLog(ctx context.Context, entries []store.SCIMExchange) error
	PruneSCIMLog(ctx context.Context, org string, keep, limit int) (int64, error)
	PruneSCIMLogBefore(ctx context.Context, before time.Time, limit int) (int64, error)
}

// Config configures a Log. The zero value of each field is its default.
type Config struct {
	// Keep is how many entries each organization keeps (DefaultKeep).
	Keep int
	// Queue is how many exchanges may wait for the writer (DefaultQueue);
	// QueueBytes how many bytes of bodies (DefaultQueueBytes).
	Queue      int
	QueueBytes int64
	// Logger receives the writer's failures; nil discards them.
	Logger *slog.Logger
	// Now is the writer's clock (its time budget, pruning); nil means
	// time.Now.
	Now func() time.Time
}

// Log is an organization-partitioned provisioning log being written.
type Log struct {
	st     Store
	cfg    Config
	queue  chan Exchange
	bytes  atomic.Int64 // bodies in queue
	closed atomic.Bool
	wake   chan struct{} // the queue is half full
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	dropped atomic.Uint64 // refused: queue full (or closed)
	shed    atomic.Uint64 // left out: over the writer's time budget
	// shedding: the writer's last wake left out successful reads, and
	// its budget is not half full again yet (Sheds).
	shedding atomic.Bool
	failed   atomic.Uint64 // lost: their batch could not be written
	written  atomic.Uint64

	// The writer's own (Run).
	pending   []Exchange // taken from the queue, up to its length
	budget    *budget
	dirty     map[string]int       // organizations written to since their prune: how many entries
	pruned    map[string]time.Time // when each organization was last pruned
	agePruned time.Time
	reported  uint64 // Shed at the last warning
	warned    time.Time
}

// New returns a Log writing to st; Run writes it.
func New(st Store, cfg Config) *Log {
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultKeep
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Log{st: st, cfg: cfg, queue: make(chan Exchange, cfg.Queue),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		budget: newBudget(cfg.Now), dirty: map[string]int{}, pruned: map[string]time.Time{}}
}

// Record queues e for the writer without waiting: when the queue is
// full (in entries or in bytes) or the log is closed, e is dropped and
// counted (Dropped).
func (l *Log) Record(e Exchange) {
	if l.Sheds(e.Method, e.Path, e.Status) {
		l.shed.Add(1)
		return
	}
	size := int64(len(e.Request) + len(e.Response))
	if l.closed.Load() || l.bytes.Add(size) > l.cfg.QueueBytes {
		l.bytes.Add(-size)
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- e:
		if len(l.queue) >= cap(l.queue)/2 {
			select {
			case l.wake <- struct{}{}:
			default: // already told
			}
		}
	default:
		l.bytes.Add(-size)
		l.dropped.Add(1)
	}
}

// Sheds reports whether the log would leave out an exchange of method
// and path answered with status, were it recorded now: the writer is over
// its time budget and leaves out successful reads. The SCIM server then
// copies nothing of the answer, and Record counts the exchange shed at
// once: under a load the log cannot keep, a request pays for it no more
// than this check.
func (l *Log) Sheds(method, path string, status int) bool {
	return l.shedding.Load() && isSuccessfulRead(method, path, status)
}

// Dropped counts the exchanges refused because the queue was full.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Shed counts the exchanges left out because writing them would have
// taken the writer over its time budget (successful reads first).
func (l *Log) Shed() uint64 { return l.shed.Load() }

// Failed counts the exchanges lost because the database refused their
// batch.
func (l *Log) Failed() uint64 { return l.failed.Load() }

// Written counts the exchanges written.
func (l *Log) Written() uint64 { return l.written.Load() }

// Run writes queued exchanges until Close, then flushes what is queued
// (whatever the budget: the server answers no more SCIM) and returns.
// Writes use ctx for their values (the database's actor is not needed:
// the log is not audited) but never its cancellation, so that the last
// batch still goes in while the server stops.
func (l *Log) Run(ctx context.Context) {
	defer close(l.done)
	ctx = context.WithoutCancel(ctx)
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	for {
		stopping := false
		select {
		case <-tick.C:
		case <-l.wake:
		case <-l.stop:
			stopping = true
		}
		l.flush(ctx, stopping)
		if stopping {
			return
		}
	}
}

// flush is one wake of the writer: what is queued is taken (as much as
// the queue holds at a time), the budget chooses what to keep of it, that
// is written in batches, and the prunes that are due follow (when
// stopping, of every organization written to).
func (l *Log) flush(ctx context.Context, stopping bool) {
	if l.pending == nil {
		l.pending = make([]Exchange, 0, cap(l.queue))
	}
	for full := true; full; {
		taken := l.pending
		for len(taken) < cap(taken) {
			select {
			case e := <-l.queue:
				l.bytes.Add(-int64(len(e.Request) + len(e.Response)))
				taken = append(taken, e)
				continue
			default:
			}
			break
		}
		full = len(taken) == cap(taken)
		l.budget.refill()
		if l.budget.tokens >= writerBurst/2 {
			l.shedding.Store(false) // successful reads are recorded again
		}
		allow := l.budget.allowance()
		if stopping {
			// The server no longer answers SCIM: nothing to give the
			// time to, and what is queued is written.
			allow = len(taken)
		}
		kept, shed := keepWithin(taken, allow)
		if shed > 0 {
			l.shed.Add(uint64(shed))
			l.shedding.Store(true) // successful reads went first
		}
		for len(kept) > 0 {
			n := min(len(kept), batchSize)
			l.write(ctx, kept[:n])
			kept = kept[n:]
		}
		clear(taken)
	}
	l.prune(ctx, stopping)
	l.warnShed()
}

// Close stops taking exchanges and waits until Run has written the
// queued ones, or ctx ends.
func (l *Log) Close(ctx context.Context) error {
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.stop)
	})
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write writes batch in one transaction and charges it to the budget.
func (l *Log) write(ctx context.Context, batch []Exchange) {
	t0 := l.cfg.Now()
	entries := make([]store.SCIMExchange, len(batch))
	for i, e := range batch {
		entries[i] = Entry(e)
		l.dirty[e.OrgID]++
	}
	t1 := l.cfg.Now()
	err := l.st.AppendSCIMLog(ctx, entries)
	cost := t1.Sub(t0) + storeCharge(l.cfg.Now().Sub(t1), int64(len(entries)))
	l.budget.spend(cost)
	l.budget.learn(cost, len(entries))
	if err != nil {
		l.failed.Add(uint64(len(entries)))
		l.cfg.Logger.Warn("provisioning log: a batch could not be written", "entries", len(entries), "err", err)
		return
	}
	l.written.Add(uint64(len(entries)))
}

// prune prunes the organizations written to whose prune is due, all of
// them when final, and every organization's entries older than MaxAge
// when that is due.
func (l *Log) prune(ctx context.Context, final bool) {
	now := l.cfg.Now()
	for org, n := range l.dirty {
		if !final && n < max(1, l.cfg.Keep/pruneSlack) && now.Sub(l.pruned[org]) < pruneEvery {
			continue
		}
		delete(l.dirty, org)
		l.pruned[org] = now
		l.rounds(func() (int64, error) { return l.st.PruneSCIMLog(ctx, org, l.cfg.Keep, pruneRows) },
			"provisioning log: pruning failed") // another instance pruning the same rows, or the database away: the next prune tries again
	}
	if now.Sub(l.agePruned) >= agePruneEvery {
		l.agePruned = now
		l.rounds(func() (int64, error) { return l.st.PruneSCIMLogBefore(ctx, now.Add(-MaxAge), pruneRows) },
			"provisioning log: pruning old entries failed")
	}
}

// rounds calls prune until it deletes fewer than pruneRows rows, at most
// pruneRounds times, and charges each call to the budget.
func (l *Log) rounds(prune func() (int64, error), failure string) {
	for range pruneRounds {
		t0 := l.cfg.Now()
		n, err := prune()
		l.budget.spend(storeCharge(l.cfg.Now().Sub(t0), n))
		if err != nil {
			l.cfg.Logger.Warn(failure, "err", err)
			return
		}
		if n < pruneRows {
			return
		}
	}
}

// warnShed logs, at most every warnEvery, how many exchanges were shed
// since the last warning.
func (l *Log) warnShed() {
	shed := l.shed.Load()
	if shed == l.reported {
		return
	}
	now := l.cfg.Now()
	if !l.warned.IsZero() && now.Sub(l.warned) < warnEvery {
		return
	}
	n := shed - l.reported
	l.cfg.Logger.Warn(fmt.Sprintf("provisioning log over its time budget: %d SCIM requests not kept in the last minute", n),
		"shed", n, "share", writerShare)
	l.reported, l.warned = shed, now
}

// Entry is what the log stores of e: its bodies redacted (a body that is
// not JSON is not kept, only its size) and cut to BodyCap, and the User
// or Group it was about read from them.
func Entry(e Exchange) store.SCIMExchange {
	out := store.SCIMExchange{OrgID: e.OrgID, At: e.At, Method: e.Method, Path: e.Path, Filter: e.Filter,
		Status: e.Status, SCIMType: e.SCIMType, Detail: e.Detail, ResourceID: e.ResourceID,
		DurationMicros: e.Duration.Microseconds(), TokenPrefix: e.TokenPrefix,
		RequestSize: len(e.Request), ResponseSize: len(e.Response)}
	if e.Response == nil {
		out.ResponseSize = e.ResponseSize
	}
	var req, resp topFields
	out.Request, out.RequestTruncated, req = keep(e.Request)
	out.Response, out.ResponseTruncated, resp = keep(e.Response)
	if e.Status >= 300 {
		resp = topFields{} // an error names nothing
	}
	// Which User or Group: the answer's resource (a create's new id), else
	// the request's.
	out.UserName = first(resp.userName, req.userName)
	out.DisplayName = first(resp.displayName, req.displayName)
	if out.ResourceID == "" && e.Method == "POST" && e.Status == 201 {
		out.ResourceID = resp.id
	}
	if out.Filter == "" {
		out.Filter = req.filter // POST .search (RFC 7644 §3.4.3)
	}
	return out
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// keep is a body as the log keeps it, and the members that name what it
// is about.
func keep(body []byte) (string, bool, topFields) {
	if len(body) == 0 {
		return "", false, topFields{}
	}
	red, top, err := redact(body)
	if err != nil {
		return "", false, topFields{}
	}
	b, cut := capBody(red, BodyCap)
	return string(b), cut, top
}
