package storetest

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/store"
)

// testS3Export checks the S3 export's contract: settings audited without
// the secret, a new destination restarting the cursors, one claimer of a
// lease among many, cursors advanced only by the lease's holder, and the
// entries to export read in seq order after a cursor.
func testS3Export(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "export")
	if _, err := s.S3Export(ctx, o.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("S3Export before any = %v, want ErrNotFound", err)
	}
	dest := func(bucket string) func(*store.S3Export) error {
		return func(e *store.S3Export) error {
			e.Enabled, e.Endpoint, e.Region, e.Bucket, e.Prefix = true, "http://127.0.0.1:9", "us-east-1", bucket, "logs"
			e.AccessKeyID, e.SecretAccessKey, e.PathStyle = "AKID", "v1.sealed-secret", true
			e.AuditCursor, e.LeaseToken = 99, "forged" // the store's, not fn's
			return nil
		}
	}
	e, err := s.PutS3Export(ctx, o.ID, dest("one"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Version != 1 || e.AuditCursor != 0 || e.LeaseToken != "" || !e.Enabled || e.NextRunAt.IsZero() {
		t.Fatalf("created %+v", e)
	}
	if _, err := s.PutS3Export(ctx, "no-such-org", dest("x")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutS3Export of an unknown org = %v, want ErrNotFound", err)
	}
	log, err := s.AuditLog(ctx, o.ID, store.AuditQuery{Action: "s3_export."})
	if err != nil || len(log) != 1 || log[0].Action != store.AuditS3ExportCreate {
		t.Fatalf("audit = %+v, %v", log, err)
	}
	if strings.Contains(string(log[0].After), "sealed-secret") {
		t.Fatalf("the audit log shows the secret: %s", log[0].After)
	}

	// Claims: of many at once, one wins; the lease excludes the others.
	now := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []store.S3Export
	for range 8 {
		wg.Go(func() {
			c, err := s.ClaimS3Export(ctx, now, time.Minute)
			if errors.Is(err, store.ErrNotFound) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			won = append(won, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(won) != 1 || won[0].LeaseToken == "" || won[0].OrgID != o.ID {
		t.Fatalf("claims won = %+v, want exactly one", won)
	}
	token := won[0].LeaseToken
	if err := s.AdvanceS3Export(ctx, o.ID, token, store.ExportAudit, 5, now); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceS3Export(ctx, o.ID, token, store.ExportAudit, 3, now); err != nil { // never back
		t.Fatal(err)
	}
	if err := s.AdvanceS3Export(ctx, o.ID, "other", store.ExportAudit, 50, now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("advance without the lease = %v, want ErrConflict", err)
	}
	if err := s.RenewS3Export(ctx, o.ID, token, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Past the lease another instance claims it, and the first one's
	// writes are refused.
	after := now.Add(2 * time.Minute)
	second, err := s.ClaimS3Export(ctx, after, time.Minute)
	if err != nil || second.LeaseToken == token || second.AuditCursor != 5 {
		t.Fatalf("claim after the lease = %+v, %v", second, err)
	}
	if err := s.AdvanceS3Export(ctx, o.ID, token, store.ExportLogins, 9, after); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("advance by the old holder = %v, want ErrConflict", err)
	}
	if err := s.ReleaseS3Export(ctx, o.ID, token, after, after, "late"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("release by the old holder = %v, want ErrConflict", err)
	}
	if err := s.ReleaseS3Export(ctx, o.ID, second.LeaseToken, after, after.Add(time.Hour), "S3 refused the credentials: InvalidAccessKeyId"); err != nil {
		t.Fatal(err)
	}
	got, err := s.S3Export(ctx, o.ID)
	if err != nil || got.LeaseToken != "" || got.Failures != 1 || !strings.Contains(got.LastError, "InvalidAccessKeyId") ||
		got.LastErrorAt == nil || got.LastSuccessAt != nil {
		t.Fatalf("after a failed run: %+v, %v", got, err)
	}
	if _, err := s.ClaimS3Export(ctx, after.Add(time.Minute), time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim before next run = %v, want ErrNotFound", err)
	}
	third, err := s.ClaimS3Export(ctx, after.Add(2*time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseS3Export(ctx, o.ID, third.LeaseToken, after, after, ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.S3Export(ctx, o.ID); got.LastError != "" || got.Failures != 0 || got.LastSuccessAt == nil {
		t.Fatalf("after a success: %+v", got)
	}

	// Same destination: cursors stay; a new bucket starts them again.
	if got, err := s.PutS3Export(ctx, o.ID, func(e *store.S3Export) error { e.Enabled = false; return nil }); err != nil ||
		got.AuditCursor != 5 || got.Enabled {
		t.Fatalf("disabled: %+v, %v", got, err)
	}
	if _, err := s.ClaimS3Export(ctx, after.Add(3*time.Hour), time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim of a disabled export = %v, want ErrNotFound", err)
	}
	if got, err := s.PutS3Export(ctx, o.ID, dest("two")); err != nil || got.AuditCursor != 0 || got.Version != 3 {
		t.Fatalf("new bucket: %+v, %v", got, err)
	}

	// Entries after a cursor, oldest first, of this organization only.
	other, _ := newOrg(t, s, "export-other")
	for _, org := range []string{o.ID, other.ID, o.ID} {
		if err := s.RecordAudit(ctx, store.AuditEntry{OrgID: org, Action: "test.export"}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ExportAuditAfter(ctx, o.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range all {
		if a.OrgID != o.ID || (i > 0 && a.Seq <= all[i-1].Seq) {
			t.Fatalf("export audit = %+v", all)
		}
	}
	rest, err := s.ExportAuditAfter(ctx, o.ID, all[0].Seq, 1)
	if err != nil || len(rest) != 1 || rest[0].Seq != all[1].Seq {
		t.Fatalf("after %d: %+v, %v", all[0].Seq, rest, err)
	}
	if _, err := s.ExportAuditAfter(ctx, o.ID, 0, 0); err == nil {
		t.Fatal("a batch of 0 entries was accepted")
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	if _, err := s.RecordSignIn(ctx, store.SignInAttempt{OrgID: o.ID, AdministratorID: owner.ID, At: at, Method: store.SignInPassword,
		IP: "192.0.2.1", UserAgent: "test", Result: store.LoginInvalidPassword}); err != nil {
		t.Fatal(err)
	}
	logins, err := s.ExportLoginsAfter(ctx, o.ID, 0, 10)
	if err != nil || len(logins) != 1 || logins[0].UserName != "owner" || logins[0].IP != "192.0.2.1" || !logins[0].At.Equal(at) {
		t.Fatalf("export logins = %+v, %v", logins, err)
	}
}
