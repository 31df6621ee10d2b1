package scim

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLimiterBucket pins the per-organization limit: a burst of twice the
// rate, then the rate, Retry-After the whole seconds until a token is
// there, each organization on its own bucket, and no more grants than
// that when many goroutines ask at once.
func TestLimiterBucket(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	l := newLimiter(5, now)

	// 40 goroutines race for org-a's burst of 10.
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if l.allow("org-a") == nil {
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	if granted.Load() != 10 {
		t.Fatalf("%d of 40 concurrent requests granted at 5/s with bursts of 10, want 10", granted.Load())
	}
	err := l.allow("org-a")
	var e *Error
	if !errors.As(err, &e) || e.Status != 429 || e.RetryAfter != 1 {
		t.Fatalf("after the burst: %v, want 429 with Retry-After 1", err)
	}
	if err := l.allow("org-b"); err != nil {
		t.Fatalf("another organization is limited by org-a's requests: %v", err)
	}
	advance(time.Second) // 5 tokens
	for i := range 5 {
		if err := l.allow("org-a"); err != nil {
			t.Fatalf("request %d one second later: %v", i, err)
		}
	}
	if l.allow("org-a") == nil {
		t.Fatal("a sixth request in that second was granted")
	}
	advance(time.Hour) // refills to the burst, not beyond
	n := 0
	for l.allow("org-a") == nil {
		n++
	}
	if n != 10 {
		t.Fatalf("after an idle hour %d requests granted, want the burst of 10", n)
	}

	slow := newLimiter(0.1, now) // one request per 10 s, bursts of one
	if err := slow.allow("org-a"); err != nil {
		t.Fatalf("first request at 0.1/s: %v", err)
	}
	if err := slow.allow("org-a"); !errors.As(err, &e) || e.RetryAfter != 10 {
		t.Fatalf("second request at 0.1/s: %v, want Retry-After 10", err)
	}
	if err := newLimiter(-1, now).allow("org-a"); err != nil {
		t.Fatalf("a negative rate limits: %v", err)
	}
}

// handBucket is the token bucket that golang.org/x/time/rate replaced
// (one mutex over every organization's bucket), kept as the baseline of
// BenchmarkLimiter.
type handBucket struct {
	rate float64
	now  func() time.Time
	mu   sync.Mutex
	m    map[string]*struct {
		tokens float64
		last   time.Time
	}
}

func (l *handBucket) allow(org string) bool {
	now := l.now()
	burst := 2 * l.rate
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[org]
	if !ok {
		b = &struct {
			tokens float64
			last   time.Time
		}{tokens: burst, last: now}
		l.m[org] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(burst, b.tokens+dt*l.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// BenchmarkLimiter compares the limiter with the hand-written bucket it
// replaced, under parallel load (go test -bench Limiter -cpu 1,2,8): every
// goroutine on one organization, and spread over 100. The rate is high
// enough that most requests are granted, as in normal operation.
func BenchmarkLimiter(b *testing.B) {
	for _, orgs := range []int{1, 100} {
		names := make([]string, orgs)
		for i := range names {
			names[i] = fmt.Sprintf("org-%d", i)
		}
		b.Run(fmt.Sprintf("x-time-rate/orgs=%d", orgs), func(b *testing.B) {
			l := newLimiter(1e9, time.Now)
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					l.allow(names[i%orgs])
					i++
				}
			})
		})
		b.Run(fmt.Sprintf("hand-bucket/orgs=%d", orgs), func(b *testing.B) {
			l := &handBucket{rate: 1e9, now: time.Now, m: map[string]*struct {
				tokens float64
				last   time.Time
			}{}}
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					l.allow(names[i%orgs])
					i++
				}
			})
		})
	}
}
