package provlog

import (
	"net/http"
	"strings"
	"time"
)

// The writer's time budget. On two cores at thousands of SCIM requests a
// second, redacting, inserting and pruning every exchange takes a fifth
// of a CPU (about 40 µs an entry), which the SCIM server feels; an IdP
// sends tens of requests a second. So the writer spends at most
// writerShare of wall time, with writerBurst saved up for a burst: 20 ms a
// second keeps ~500 entries a second at the measured cost, 100 ms keeps a
// burst of ~2,000 above that. (With 250 ms, a 5-second load test's first
// scenario paid for the whole burst: 5% of the server's CPU.)
const (
	writerShare = 0.02
	writerBurst = 100 * time.Millisecond
	// startCost is the first estimate of an entry's cost (redaction and
	// insert), before the writer has timed one of its own.
	startCost = 50 * time.Microsecond
	// storeRowCeiling is the most a store call is charged for each row it
	// inserts or deletes (and one more): a call that takes longer was
	// waiting for another transaction's lock or for the disk, using no
	// CPU. Charged in full, a one-second lock wait would keep the log
	// shut for fifty seconds. At about 30 µs a row measured, the ceiling
	// is some thirty times what a row costs.
	storeRowCeiling = time.Millisecond
)

// budget is the writer's time as a token bucket: it fills at writerShare
// of the clock up to writerBurst, and each write and prune takes what it
// cost (its wall time, the store's part capped by storeRowCeiling). A
// write may cost more than was left (it is sized from an estimate) and a
// prune is never put off, so the bucket can go below zero; nothing is
// written then until the debt is repaid. The writer's time over any span
// is therefore at most writerShare of it, plus writerBurst, plus the
// overrun of one wake (its last write and its prunes). Only the writer
// goroutine uses it.
type budget struct {
	now      func() time.Time
	tokens   time.Duration
	filled   time.Time     // when tokens was last refilled
	perEntry time.Duration // moving average of a written entry's cost
}

func newBudget(now func() time.Time) *budget {
	return &budget{now: now, tokens: writerBurst, filled: now(), perEntry: startCost}
}

// refill adds the share of the time since the last refill.
func (b *budget) refill() {
	now := b.now()
	if d := now.Sub(b.filled); d > 0 {
		b.tokens = min(writerBurst, b.tokens+time.Duration(float64(d)*writerShare))
		b.filled = now
	}
}

// allowance is how many entries the bucket pays for now.
func (b *budget) allowance() int {
	if b.tokens <= 0 {
		return 0
	}
	return int(b.tokens / b.perEntry)
}

// spend takes d from the bucket.
func (b *budget) spend(d time.Duration) { b.tokens -= d }

// learn folds the cost d of writing n entries into the estimate (a
// moving average over about four writes).
func (b *budget) learn(d time.Duration, n int) {
	if n <= 0 {
		return
	}
	b.perEntry = max(time.Microsecond, b.perEntry+(d/time.Duration(n)-b.perEntry)/4)
}

// storeCharge is what a store call that took d and touched rows rows is
// charged (storeRowCeiling).
func storeCharge(d time.Duration, rows int64) time.Duration {
	return min(d, storeRowCeiling*time.Duration(rows+1))
}

// successfulRead reports whether e is a read that succeeded: a GET, or a
// POST .search (RFC 7644 §3.4.3), answered below 300. These are what an
// IdP sends most (it reads each user before changing it) and what an
// administrator debugging provisioning needs least.
func successfulRead(e *Exchange) bool { return isSuccessfulRead(e.Method, e.Path, e.Status) }

func isSuccessfulRead(method, path string, status int) bool {
	if status >= 300 {
		return false
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPost:
		return strings.HasSuffix(path, "/.search")
	}
	return false
}

// keepWithin keeps at most allow exchanges of batch, in their order:
// first those that are not successful reads (failures and writes), then
// successful reads, each class from its oldest. It reuses batch's array
// and returns the kept ones and how many it left out.
func keepWithin(batch []Exchange, allow int) ([]Exchange, int) {
	if allow >= len(batch) {
		return batch, 0
	}
	allow = max(allow, 0)
	others := 0
	for i := range batch {
		if !successfulRead(&batch[i]) {
			others++
		}
	}
	keepOthers := min(others, allow)
	keepReads := allow - keepOthers
	n := 0
	for i := range batch {
		if successfulRead(&batch[i]) {
			if keepReads == 0 {
				continue
			}
			keepReads--
		} else {
			if keepOthers == 0 {
				continue
			}
			keepOthers--
		}
		batch[n] = batch[i]
		n++
	}
	return batch[:n], len(batch) - n
}
