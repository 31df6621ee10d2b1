package admin_test

import (
	"context"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestSessionExpiry(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		e := newSignInEnv(t, s)
		// Idle: used every 29 minutes it lives on; left 30 minutes it ends.
		r := e.mustLogin(t, "jdoe", goodPassword, "")
		for range 3 {
			e.clock.Add(29 * time.Minute)
			if _, _, err := e.si.Authenticate(ctx, r.Token); err != nil {
				t.Fatalf("within the idle timeout: %v", err)
			}
		}
		e.clock.Add(admin.DefaultSessionIdle)
		_, _, err := e.si.Authenticate(ctx, r.Token)
		assertCode(t, err, admin.CodeInvalidSession)

		// Absolute: used every 20 minutes, it still ends 12 hours after
		// sign-in.
		r = e.mustLogin(t, "jdoe", goodPassword, "")
		start := e.clock.Now()
		for e.clock.Now().Before(start.Add(admin.DefaultSessionAbsolute - 20*time.Minute)) {
			e.clock.Add(20 * time.Minute)
			if _, _, err := e.si.Authenticate(ctx, r.Token); err != nil {
				t.Fatalf("at %v after sign-in: %v", e.clock.Now().Sub(start), err)
			}
		}
		e.clock.Add(start.Add(admin.DefaultSessionAbsolute).Sub(e.clock.Now()))
		_, _, err = e.si.Authenticate(ctx, r.Token)
		assertCode(t, err, admin.CodeInvalidSession)
	})
}
