package provlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/store"
)

// TestKeepWithin: over the allowance, failures and writes are kept before
// successful reads, each from its oldest, in their original order.
func TestKeepWithin(t *testing.T) {
	// r: a successful read; s: a successful .search (a read); e: a
	// failed read; w: a write; f: a failed .search.
	batch := func(kinds string) []Exchange {
		out := make([]Exchange, len(kinds))
		for i, k := range kinds {
			e := Exchange{Method: "GET", Path: "/scim/v2/Users/" + strconv.Itoa(i), Status: 200}
			switch k {
			case 's':
				e.Method, e.Path = "POST", "/scim/v2/Users/.search"
			case 'e':
				e.Status = 404
			case 'w':
				e.Method, e.Status = []string{"POST", "PUT", "PATCH", "DELETE"}[i%4], 201
			case 'f':
				e.Method, e.Path, e.Status = "POST", "/scim/v2/.search", 400
			}
			e.Detail = strconv.Itoa(i) // the position, to see the order
			out[i] = e
		}
		return out
	}
	for _, tc := range []struct {
		kinds string
		allow int
		want  string // positions kept
	}{
		{"rrwr", 4, "0 1 2 3"},
		{"rrwr", 9, "0 1 2 3"},
		{"rrwr", 2, "0 2"},
		{"rsewrfr", 3, "2 3 5"},
		{"rsewrfr", 5, "0 1 2 3 5"},
		{"eweww", 2, "0 1"},
		{"rrsr", 2, "0 1"},
		{"rwer", 0, ""},
		{"rwer", -3, ""},
		{"", 0, ""},
	} {
		kept, shed := keepWithin(batch(tc.kinds), tc.allow)
		var got []string
		for _, e := range kept {
			got = append(got, e.Detail)
		}
		if strings.Join(got, " ") != tc.want || shed != len(tc.kinds)-len(kept) {
			t.Errorf("%s within %d: kept %v, shed %d; want %s", tc.kinds, tc.allow, got, shed, tc.want)
		}
	}
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// slowStore is a Store whose calls take a set time of clock: perEntry an
// entry inserted, perCall a call. It keeps what it is given and counts
// the time it took, and fails every failEvery-th insert when set.
type slowStore struct {
	clock     *fakeClock
	perEntry  time.Duration
	perCall   time.Duration
	failEvery int
	stall     time.Duration // the next insert waits this long first (a lock)

	mu      sync.Mutex
	entries []store.SCIMExchange
	calls   int
	prunes  int           // of an organization
	busy    time.Duration // the time all calls took
	longest time.Duration // the longest call
}

func (s *slowStore) took(d time.Duration) {
	s.clock.advance(d)
	s.busy += d
	s.longest = max(s.longest, d)
}

func (s *slowStore) AppendSCIMLog(_ context.Context, entries []store.SCIMExchange) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock.advance(s.stall)
	s.stall = 0
	s.took(s.perCall + s.perEntry*time.Duration(len(entries)))
	s.calls++
	if s.failEvery > 0 && s.calls%s.failEvery == 0 {
		return errors.New("the database is away")
	}
	s.entries = append(s.entries, entries...)
	return nil
}

func (s *slowStore) PruneSCIMLog(context.Context, string, int, int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.took(s.perCall)
	s.prunes++
	return 0, nil
}

func (s *slowStore) PruneSCIMLogBefore(context.Context, time.Time, int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.took(s.perCall)
	return 0, nil
}

// exchange is the i-th exchange of a simulated IdP: every fiftieth a
// failure, every fiftieth (others) a write, the rest successful reads.
// Its Detail is its number.
func exchange(i int) Exchange {
	e := Exchange{OrgID: "o", Method: "GET", Path: "/scim/v2/Users/u", Status: 200, Detail: strconv.Itoa(i),
		Response: userJSON}
	switch i % 50 {
	case 7:
		e.Status, e.Response = 404, []byte(`{"status":"404"}`)
	case 31:
		e.Method, e.Request = "PATCH", []byte(`{"Operations":[{"op":"replace","path":"active","value":false}]}`)
	}
	return e
}

// TestWriterKeepsToItsBudget: with writes taking the measured time per
// entry, a sustained SCIM load is shed down to the writer's share (plus
// the burst and one write), keeping every failure and write and the
// order, and still pruning every pruneEvery; a burst after a quiet spell
// is kept whole, and a realistic IdP's rate is never shed.
func TestWriterKeepsToItsBudget(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perSecond int
		seconds   int
		burst     int // recorded at once after a quiet minute, at the end
		wantShed  bool
	}{
		{"sustained load", 7000, 60, 0, true},
		{"an IdP", 50, 600, 0, false},
		{"a burst after a quiet spell", 7000, 30, 2000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
			st := &slowStore{clock: clock, perEntry: 30 * time.Microsecond, perCall: 500 * time.Microsecond}
			// Keep is large: the organization is pruned for time alone.
			var logged bytes.Buffer // flush runs on this goroutine
			l := New(st, Config{Now: clock.Now, Queue: 8192, Keep: 1 << 30,
				Logger: slog.New(slog.NewTextHandler(&logged, nil))})
			start := clock.Now()
			recorded := 0
			tick := func(n int) {
				for range n {
					l.Record(exchange(recorded))
					recorded++
				}
				l.flush(context.Background(), false)
			}
			for i := range 2 * tc.seconds {
				// Wake every flushEvery, or when the writer is done if it
				// took longer.
				clock.mu.Lock()
				clock.now = later(clock.now, start.Add(time.Duration(i)*flushEvery))
				clock.mu.Unlock()
				tick(tc.perSecond / 2)
			}
			elapsed := clock.Now().Sub(start)
			if limit := time.Duration(float64(elapsed)*writerShare) + writerBurst + st.longest; st.busy > limit {
				t.Errorf("the writer took %v of %v, more than %v", st.busy, elapsed, limit)
			}
			if tc.wantShed && st.busy < time.Duration(float64(elapsed)*writerShare/2) {
				t.Errorf("the writer took %v of %v: it does not use its share", st.busy, elapsed)
			}
			if got := l.Written() + l.Shed(); l.Dropped() != 0 || got != uint64(recorded) || uint64(len(st.entries)) != l.Written() {
				t.Fatalf("recorded %d, written %d (stored %d), shed %d, dropped %d", recorded, l.Written(), len(st.entries), l.Shed(), l.Dropped())
			}
			// The organization is pruned every pruneEvery, however busy
			// the writer, and no more often.
			if want := int(elapsed / pruneEvery); st.prunes < want-1 || st.prunes > want+1 {
				t.Errorf("pruned %d times in %v, want about %d", st.prunes, elapsed, want)
			}
			if tc.wantShed != (l.Shed() > 0) {
				t.Errorf("shed %d of %d", l.Shed(), recorded)
			}
			// Warned at the first shed, then at most once a minute, each
			// time with the count since the last warning.
			warned := uint64(0)
			lines := regexp.MustCompile(`provisioning log over its time budget: (\d+) SCIM requests not kept in the last minute`).
				FindAllStringSubmatch(logged.String(), -1)
			for _, m := range lines {
				n, _ := strconv.ParseUint(m[1], 10, 64)
				warned += n
			}
			if maxLines := int(elapsed/time.Minute) + 1; len(lines) > maxLines || tc.wantShed != (len(lines) > 0) || warned > l.Shed() ||
				tc.wantShed && warned == 0 {
				t.Errorf("%d warnings (at most %d) of %d shed, %d shed in all:\n%s", len(lines), maxLines, warned, l.Shed(), logged.String())
			}
			if tc.burst > 0 {
				clock.advance(time.Minute)
				l.flush(context.Background(), false) // the writer woke in the quiet minute
				if l.Sheds("GET", "/scim/v2/Users/u", 200) {
					t.Fatal("successful reads still shed as they are recorded after a quiet minute")
				}
				before := len(st.entries)
				from := recorded
				tick(tc.burst)
				if got := len(st.entries) - before; got != tc.burst {
					t.Errorf("a burst of %d after a quiet minute: %d kept", tc.burst, got)
				}
				if st.entries[before].Detail != strconv.Itoa(from) {
					t.Errorf("the burst's first kept is %s, want %d", st.entries[before].Detail, from)
				}
			}
			// Every failure and write kept, everything in order.
			kept := map[int]bool{}
			last := -1
			for _, e := range st.entries {
				i, _ := strconv.Atoi(e.Detail)
				if i <= last {
					t.Fatalf("entry %d written after %d", i, last)
				}
				last, kept[i] = i, true
			}
			for i := range recorded {
				if e := exchange(i); !successfulRead(&e) && !kept[i] {
					t.Fatalf("exchange %d (%s %d) was shed", i, e.Method, e.Status)
				}
			}
		})
	}
}

// TestWriterNotChargedForWaiting: an insert that waited two seconds for
// another transaction's lock is charged what its rows may cost, not the
// wait: the next writes are kept.
func TestWriterNotChargedForWaiting(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	st := &slowStore{clock: clock, perEntry: 30 * time.Microsecond, perCall: 500 * time.Microsecond, stall: 2 * time.Second}
	l := New(st, Config{Now: clock.Now})
	for i := range 4 {
		l.Record(exchange(i))
		l.flush(context.Background(), false)
		clock.advance(flushEvery)
	}
	if l.Written() != 4 || l.Shed() != 0 {
		t.Fatalf("after a lock wait: written %d, shed %d", l.Written(), l.Shed())
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// TestWriterBudgetUnderConcurrentRecords: many requests record while the
// writer runs with its budget spent, paid only by the time that passes,
// and every other batch fails; every exchange is written, shed, dropped
// or failed, exactly once.
func TestWriterBudgetUnderConcurrentRecords(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	st := &slowStore{clock: clock, perEntry: 300 * time.Microsecond, perCall: time.Millisecond, failEvery: 2}
	l := New(st, Config{Now: clock.Now, Queue: 256})
	l.budget.tokens = 0 // spent: what the writer keeps is paid by the time that passes
	done := make(chan struct{})
	go func() { l.Run(context.Background()); close(done) }()
	var recorded atomic.Uint64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				e := exchange(i)
				e.Detail = fmt.Sprint(g, i)
				l.Record(e)
				recorded.Add(1)
				clock.advance(100 * time.Microsecond) // the requests' own time
				if i%10 == 0 {
					runtime.Gosched() // two cores: let the writer in
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
	accounted := l.Written() + l.Shed() + l.Dropped() + l.Failed()
	if accounted != recorded.Load() || uint64(len(st.entries)) != l.Written() {
		t.Fatalf("recorded %d: written %d (stored %d) + shed %d + dropped %d + failed %d = %d", recorded.Load(),
			l.Written(), len(st.entries), l.Shed(), l.Dropped(), l.Failed(), accounted)
	}
	t.Logf("written %d, shed %d, dropped %d, failed %d", l.Written(), l.Shed(), l.Dropped(), l.Failed())
	if l.Shed() == 0 || l.Written()+l.Failed() == 0 {
		t.Fatalf("the budget did not bind: written %d, shed %d, dropped %d, failed %d", l.Written(), l.Shed(), l.Dropped(), l.Failed())
	}
}

// TestCloseWritesWhatIsQueued: at shutdown the server answers no more
// SCIM, so what is queued is written even with the budget in debt.
func TestCloseWritesWhatIsQueued(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	st := &slowStore{clock: clock, perEntry: 300 * time.Microsecond, perCall: time.Millisecond}
	l := New(st, Config{Now: clock.Now})
	l.budget.tokens = -time.Hour
	done := make(chan struct{})
	go func() { l.Run(context.Background()); close(done) }()
	for i := range 100 {
		l.Record(exchange(i))
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
	if l.Written() != 100 || l.Shed() != 0 || len(st.entries) != 100 {
		t.Fatalf("written %d (stored %d), shed %d", l.Written(), len(st.entries), l.Shed())
	}
}

// TestShedsReadsAsRecorded: once the writer has shed successful reads,
// further ones are counted shed as they are recorded, never queued, until
// its budget is half full again; failures and writes are still queued.
func TestShedsReadsAsRecorded(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	st := &slowStore{clock: clock, perEntry: 30 * time.Microsecond, perCall: 500 * time.Microsecond}
	l := New(st, Config{Now: clock.Now})
	l.budget.tokens = 0
	read := Exchange{OrgID: "o", Method: "GET", Path: "/scim/v2/Users/u", Status: 200, Response: userJSON}
	if l.Sheds(read.Method, read.Path, read.Status) {
		t.Fatal("shedding before the writer shed anything")
	}
	for range 100 {
		l.Record(read)
	}
	l.flush(context.Background(), false)
	if l.Shed() == 0 {
		t.Fatalf("an empty budget shed nothing: written %d", l.Written())
	}
	for _, c := range []struct {
		method, path string
		status       int
		sheds        bool
	}{
		{"GET", "/scim/v2/Users/u", 200, true},
		{"HEAD", "/scim/v2/Users/u", 200, true},
		{"POST", "/scim/v2/Users/.search", 200, true},
		{"GET", "/scim/v2/Users/u", 404, false},
		{"POST", "/scim/v2/Users", 201, false},
		{"PATCH", "/scim/v2/Users/u", 200, false},
		{"POST", "/scim/v2/Users/.search", 400, false},
	} {
		if got := l.Sheds(c.method, c.path, c.status); got != c.sheds {
			t.Errorf("Sheds(%s %s %d) = %v", c.method, c.path, c.status, got)
		}
	}
	shed := l.Shed()
	l.Record(read)
	if len(l.queue) != 0 || l.Shed() != shed+1 {
		t.Fatalf("a read recorded while shedding: queued %d, shed %d → %d", len(l.queue), shed, l.Shed())
	}
	l.Record(exchange(31)) // a PATCH
	if len(l.queue) != 1 {
		t.Fatalf("a write recorded while shedding was not queued")
	}
	// Time refills the budget: reads are recorded again.
	clock.advance(time.Duration(float64(writerBurst) / writerShare))
	l.flush(context.Background(), false)
	if l.Sheds(read.Method, read.Path, read.Status) {
		t.Fatalf("still shedding with the budget full (%v)", l.budget.tokens)
	}
	l.Record(read)
	if len(l.queue) != 1 {
		t.Fatal("a read recorded after the budget refilled was not queued")
	}
}
