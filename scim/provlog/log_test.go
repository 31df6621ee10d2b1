package provlog

import (
	"context"
	"sync"
	"testing"
	"time"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

// TestLogKeepsFewerOfNAndSevenDays: the writer prunes an organization to
// its last Keep entries when it writes to it, and every organization's
// entries older than MaxAge, written or not; Close writes what is queued.
func TestLogKeepsFewerOfNAndSevenDays(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := storetest.Context(context.Background())
	now := time.Now()
	old := []store.SCIMExchange{
		{OrgID: "quiet", At: now.Add(-MaxAge - time.Hour), Method: "GET", Path: "/scim/v2/Users", Status: 200},
		{OrgID: "quiet", At: now.Add(-MaxAge + time.Hour), Method: "GET", Path: "/scim/v2/Users", Status: 200},
	}
	if err := st.AppendSCIMLog(ctx, old); err != nil {
		t.Fatal(err)
	}
	l := New(st, Config{Keep: 5, Now: func() time.Time { return now }})
	go l.Run(ctx)
	for i := range 12 {
		l.Record(Exchange{OrgID: "busy", At: now, Method: "GET", Path: "/scim/v2/Users/" + string(rune('a'+i)), Status: 404,
			Response: []byte(`{"status":"404"}`)})
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	busy, _ := st.SCIMLog(ctx, "busy", store.SCIMLogQuery{})
	if len(busy) != 5 || busy[0].Path != "/scim/v2/Users/l" || l.Written() != 12 || l.Dropped() != 0 {
		t.Fatalf("busy keeps %d (newest %v), written %d, dropped %d", len(busy), busy, l.Written(), l.Dropped())
	}
	quiet, _ := st.SCIMLog(ctx, "quiet", store.SCIMLogQuery{})
	if len(quiet) != 1 || quiet[0].At.Before(now.Add(-MaxAge)) {
		t.Fatalf("quiet keeps %+v", quiet)
	}
	// Closed: nothing more is taken, and the refusal is counted.
	l.Record(Exchange{OrgID: "busy"})
	if l.Dropped() != 1 {
		t.Fatalf("after Close: dropped %d", l.Dropped())
	}
}

// TestRecordBoundsTheQueue: what waits for the writer is bounded in
// entries and in bytes, with many requests recording at once; each is
// queued or counted.
func TestRecordBoundsTheQueue(t *testing.T) {
	for _, tc := range []struct {
		queue      int
		queueBytes int64
		body       int
		want       int // queued
	}{{100, 1000, 400, 2}, {7, 1 << 20, 10, 7}} {
		l := New(nil, Config{Queue: tc.queue, QueueBytes: tc.queueBytes}) // never run: everything waits
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				for range 10 {
					l.Record(Exchange{OrgID: "o", Request: make([]byte, tc.body)})
				}
			})
		}
		wg.Wait()
		if len(l.queue) != tc.want || int(l.Dropped()) != 500-tc.want || l.bytes.Load() != int64(tc.want*tc.body) {
			t.Fatalf("%+v: queued %d (%d bytes), dropped %d", tc, len(l.queue), l.bytes.Load(), l.Dropped())
		}
	}
}
