package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"gatehouse/store"
)

// testOutbox checks the email outbox contract: claims in order, a lease
// that excludes every other claimer until it ends, retries, and sent
// messages that are never claimed again and keep no body.
func testOutbox(t *testing.T, s store.Store) {
	enqueue := func(t *testing.T, subject string) store.OutboxMessage {
		t.Helper()
		m, err := s.EnqueueEmail(ctx, store.OutboxMessage{Recipient: "to@example.com", Subject: subject, Body: "body of " + subject})
		if err != nil {
			t.Fatalf("EnqueueEmail(%s): %v", subject, err)
		}
		if m.ID == "" || m.NextAttemptAt.IsZero() || m.SentAt != nil {
			t.Fatalf("queued %+v", m)
		}
		return m
	}
	// later is a claim time after every message queued so far is due.
	later := func() time.Time { return time.Now().Add(time.Second) }
	subjects := func(ms []store.OutboxMessage) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Subject)
		}
		return out
	}
	claim := func(t *testing.T, now time.Time, lease time.Duration, limit int) []store.OutboxMessage {
		t.Helper()
		ms, err := s.ClaimEmails(ctx, now, lease, limit)
		if err != nil {
			t.Fatalf("ClaimEmails: %v", err)
		}
		return ms
	}
	// sendAll marks every message sent, so that the next case starts with
	// an empty queue.
	sendAll := func(t *testing.T) {
		t.Helper()
		for _, m := range claim(t, time.Now().Add(100*time.Hour), time.Minute, 1000) {
			if err := s.MarkEmailSent(ctx, m.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := s.PendingEmails(ctx); err != nil || n != 0 {
			t.Fatalf("PendingEmails after sending all = %d, %v", n, err)
		}
	}

	t.Run("Validation", func(t *testing.T) {
		for _, m := range []store.OutboxMessage{{Subject: "s", Body: "b"}, {Recipient: "to@example.com", Subject: "s"}} {
			if _, err := s.EnqueueEmail(ctx, m); err == nil {
				t.Errorf("EnqueueEmail(%+v) succeeded", m)
			}
		}
		for _, bad := range [][2]int{{0, 1}, {1, 0}, {-1, 1}} {
			if _, err := s.ClaimEmails(ctx, time.Now(), time.Duration(bad[1])*time.Minute, bad[0]); err == nil {
				t.Errorf("ClaimEmails(limit %d, lease %dm) succeeded", bad[0], bad[1])
			}
		}
		wantErr(t, s.MarkEmailSent(ctx, "no-such-id", time.Now()), store.ErrNotFound)
		wantErr(t, s.MarkEmailFailed(ctx, "no-such-id", "x", time.Now()), store.ErrNotFound)
		_, err := outboxEmail(t, s, "no-such-id")
		wantErr(t, err, store.ErrNotFound)
		if n, err := s.PendingEmails(ctx); err != nil || n != 0 {
			t.Fatalf("PendingEmails of an empty outbox = %d, %v", n, err)
		}
	})

	t.Run("ClaimOrder", func(t *testing.T) {
		for _, sub := range []string{"first", "second", "third"} {
			enqueue(t, sub)
		}
		if n, _ := s.PendingEmails(ctx); n != 3 {
			t.Fatalf("PendingEmails = %d, want 3", n)
		}
		if got := claim(t, time.Now().Add(-time.Hour), time.Minute, 10); len(got) != 0 {
			t.Fatalf("claim before the messages are due = %v", subjects(got))
		}
		now := later()
		got := claim(t, now, time.Minute, 2)
		if fmt.Sprint(subjects(got)) != "[first second]" {
			t.Fatalf("first claim = %v, want [first second]", subjects(got))
		}
		for _, m := range got {
			if m.ClaimedUntil == nil || !m.ClaimedUntil.Equal(now.Add(time.Minute).UTC().Truncate(time.Microsecond)) {
				t.Fatalf("claimed until %v, want %v", m.ClaimedUntil, now.Add(time.Minute))
			}
			if m.Body != "body of "+m.Subject || m.Recipient != "to@example.com" || m.Attempts != 0 {
				t.Fatalf("claimed %+v", m)
			}
		}
		if got := claim(t, now, time.Minute, 10); fmt.Sprint(subjects(got)) != "[third]" {
			t.Fatalf("second claim = %v, want [third]", subjects(got))
		}
		if got := claim(t, now.Add(30*time.Second), time.Minute, 10); len(got) != 0 {
			t.Fatalf("claim while the leases run = %v", subjects(got))
		}
		if n, _ := s.PendingEmails(ctx); n != 3 {
			t.Fatalf("PendingEmails with every message claimed = %d, want 3", n)
		}
		sendAll(t)
	})

	t.Run("ExpiredLeaseReclaimed", func(t *testing.T) {
		m := enqueue(t, "crash")
		now := later()
		if got := claim(t, now, time.Minute, 10); len(got) != 1 || got[0].ID != m.ID {
			t.Fatalf("claim = %v", subjects(got))
		}
		// The claimer dies without marking the message.
		if got := claim(t, now.Add(time.Minute-time.Millisecond), time.Minute, 10); len(got) != 0 {
			t.Fatalf("claim just before the lease ends = %v", subjects(got))
		}
		got := claim(t, now.Add(time.Minute), time.Minute, 10)
		if len(got) != 1 || got[0].ID != m.ID || got[0].Attempts != 0 || got[0].Body != m.Body {
			t.Fatalf("claim after the lease ended = %+v, want the message again", got)
		}
		sendAll(t)
	})

	t.Run("FailedRetriedLater", func(t *testing.T) {
		m := enqueue(t, "flaky")
		now := later()
		claim(t, now, time.Minute, 10)
		long := "421 service not available " + strings.Repeat("é", 400) + "\x00\xff"
		if err := s.MarkEmailFailed(ctx, m.ID, long, now.Add(5*time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, err := outboxEmail(t, s, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Attempts != 1 || got.ClaimedUntil != nil || got.SentAt != nil || !got.NextAttemptAt.Equal(now.Add(5*time.Minute).UTC().Truncate(time.Microsecond)) {
			t.Fatalf("after a failure: %+v", got)
		}
		if !strings.HasPrefix(got.LastError, "421 service not available é") || len(got.LastError) > 510 || !utf8.ValidString(got.LastError) {
			t.Fatalf("last error (%d bytes) = %q", len(got.LastError), got.LastError)
		}
		// The lease ended with the failure, but the message waits for its
		// next attempt.
		if got := claim(t, now.Add(5*time.Minute-time.Millisecond), time.Minute, 10); len(got) != 0 {
			t.Fatalf("claim before the next attempt = %v", subjects(got))
		}
		again := claim(t, now.Add(5*time.Minute), time.Minute, 10)
		if len(again) != 1 || again[0].ID != m.ID || again[0].Attempts != 1 || again[0].Body != m.Body {
			t.Fatalf("retry claim = %+v", again)
		}
		if err := s.MarkEmailFailed(ctx, m.ID, "second", now.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := outboxEmail(t, s, m.ID); got.Attempts != 2 || got.LastError != "second" {
			t.Fatalf("after a second failure: attempts %d, last error %q", got.Attempts, got.LastError)
		}
		sendAll(t)
	})

	t.Run("SentBodyCleared", func(t *testing.T) {
		m := enqueue(t, "done")
		now := later()
		claim(t, now, time.Minute, 10)
		sentAt := now.Add(time.Second)
		if err := s.MarkEmailSent(ctx, m.ID, sentAt); err != nil {
			t.Fatal(err)
		}
		got, err := outboxEmail(t, s, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Body != "" || got.SentAt == nil || !got.SentAt.Equal(sentAt.UTC().Truncate(time.Microsecond)) || got.ClaimedUntil != nil ||
			got.Subject != "done" || got.Recipient != "to@example.com" {
			t.Fatalf("sent message = %+v, want no body, no lease, sent at %v", got, sentAt)
		}
		if n, _ := s.PendingEmails(ctx); n != 0 {
			t.Fatalf("PendingEmails after sending = %d", n)
		}
		if got := claim(t, now.Add(100*time.Hour), time.Minute, 10); len(got) != 0 {
			t.Fatalf("a sent message was claimed again: %v", subjects(got))
		}
		// A late report from a sender whose lease had expired changes
		// nothing.
		if err := s.MarkEmailFailed(ctx, m.ID, "late", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkEmailSent(ctx, m.ID, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if again, _ := outboxEmail(t, s, m.ID); again.Attempts != 0 || again.LastError != "" || !again.SentAt.Equal(*got.SentAt) {
			t.Fatalf("after late reports: %+v", again)
		}
	})

	t.Run("LeaseExclusive", func(t *testing.T) {
		const messages, claimers = 40, 8
		for i := range messages {
			enqueue(t, fmt.Sprint("m", i))
		}
		now := later()
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		errs := make(chan error, claimers)
		for range claimers {
			wg.Go(func() {
				for {
					ms, err := s.ClaimEmails(ctx, now, time.Minute, 3)
					if err != nil {
						errs <- err
						return
					}
					if len(ms) == 0 {
						return
					}
					mu.Lock()
					for _, m := range ms {
						seen[m.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent ClaimEmails: %v", err)
		}
		if len(seen) != messages {
			t.Fatalf("claimed %d distinct messages, want %d", len(seen), messages)
		}
		var twice []string
		for id, n := range seen {
			if n != 1 {
				twice = append(twice, id)
			}
		}
		if len(twice) > 0 {
			t.Fatalf("messages claimed by two claimers at once: %v", twice)
		}
		sendAll(t)
	})
}

// outboxReader reads one outbox message by id, as stored. It is not part
// of store.Store (no caller but a test needs it); the suite needs it to
// check what the outbox keeps, so a backend under test offers it.
type outboxReader interface {
	OutboxEmail(ctx context.Context, id string) (store.OutboxMessage, error)
}

func outboxEmail(t *testing.T, s store.Store, id string) (store.OutboxMessage, error) {
	t.Helper()
	r, ok := s.(outboxReader)
	if !ok {
		t.Fatalf("storetest: %T cannot read an outbox message by id (OutboxEmail)", s)
	}
	return r.OutboxEmail(ctx, id)
}
