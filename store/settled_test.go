package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

// TestExportSkipsNoEntryInFlight: on PostgreSQL a transaction that took a
// smaller seq may commit after one that took a larger; the export must not
// hand out the larger one (its cursor would pass the smaller for good)
// until the smaller's transaction has ended. Seen failing without
// settledSeq: the first read returned only the later entry.
func TestExportSkipsNoEntryInFlight(t *testing.T) {
	s := storetest.Postgres(t)
	ctx := storetest.Context(context.Background())
	org, _, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "inflight", Name: "In flight"},
		Owner:      store.Administrator{UserName: "owner", Email: "o@inflight.example", Role: store.RoleSuperAdministrator, Status: store.StatusPending},
		Invitation: store.Invitation{Hash: []byte("h"), ExpiresAt: time.Now().Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.ExportAuditAfter(ctx, org.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	after := base[len(base)-1].Seq

	_, db := s.DB()
	hold := func(t *testing.T) func(commit bool) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (org_id, at, actor_kind, action) VALUES ($1, now(), 'system', 'test.early')`, org.ID); err != nil {
			t.Fatal(err)
		}
		return func(commit bool) {
			if commit {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Error(err)
			}
		}
	}

	end := hold(t) // takes the smaller seq and stays open
	if err := s.RecordAudit(ctx, store.AuditEntry{OrgID: org.ID, Action: "test.late"}); err != nil {
		t.Fatal(err)
	}
	got := make(chan []store.AuditEntry, 1)
	go func() {
		es, err := s.ExportAuditAfter(ctx, org.ID, after, 100)
		if err != nil {
			t.Error(err)
		}
		got <- es
	}()
	select {
	case es := <-got:
		t.Fatalf("the export read %d entries while an earlier one was in flight: %+v", len(es), es)
	case <-time.After(300 * time.Millisecond):
	}
	end(true)
	es := <-got
	if len(es) != 2 || es[0].Action != "test.early" || es[1].Action != "test.late" {
		t.Fatalf("after the commit the export read %+v, want test.early then test.late", es)
	}

	// A transaction open past the wait: the export says so and reads nothing.
	end = hold(t)
	defer end(false)
	if err := s.RecordAudit(ctx, store.AuditEntry{OrgID: org.ID, Action: "test.later"}); err != nil {
		t.Fatal(err)
	}
	if es, err := s.ExportAuditAfter(ctx, org.ID, es[1].Seq, 100); !errors.Is(err, store.ErrUnsettled) {
		t.Fatalf("with a transaction open for long: %+v, %v; want ErrUnsettled", es, err)
	}
}
