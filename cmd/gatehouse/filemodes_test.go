package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestDatabaseFileModes: the SQLite database holds password hashes,
// personal data and sign-in history, so org create and serve create it
// and its -wal and -shm files 0600 and its folder 0700, whatever the
// umask. It changes the process umask, so it must not run in parallel.
func TestDatabaseFileModes(t *testing.T) {
	for _, umask := range []int{0o022, 0} {
		old := syscall.Umask(umask)
		t.Cleanup(func() { syscall.Umask(old) })
		root := t.TempDir()
		wantMode := func(t *testing.T, path string, want os.FileMode) {
			t.Helper()
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("umask %03o: %s is %04o, want %04o", umask, filepath.Base(path), got, want)
			}
		}

		// org create makes the database and two levels of folders.
		dir := filepath.Join(root, "cli", "data")
		db := filepath.Join(dir, "gatehouse.db")
		if r := gatehouse(t, map[string]string{"GATEHOUSE_DB": db}, orgArgs("acme")...); r.code != 0 {
			t.Fatalf("org create: %s", r.stderr)
		}
		wantMode(t, filepath.Join(root, "cli"), 0o700)
		wantMode(t, dir, 0o700)
		wantMode(t, db, 0o600)

		// serve creates the database; the WAL and shared memory files
		// exist while it runs, the secret key file beside them.
		dir = filepath.Join(root, "serve", "data")
		db = filepath.Join(dir, "gatehouse.db")
		addr := freeAddr(t)
		srv := startServe(t, addr, map[string]string{"GATEHOUSE_DB": db}, "--addr", addr)
		if r := gatehouse(t, map[string]string{"GATEHOUSE_DB": db}, orgArgs("beta")...); r.code != 0 {
			t.Fatalf("org create: %s", r.stderr)
		}
		wantMode(t, dir, 0o700)
		for _, f := range []string{"gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm", "secret.key"} {
			wantMode(t, filepath.Join(dir, f), 0o600)
		}
		if code := srv.shutdown(t); code != 0 {
			t.Fatalf("serve exited %d", code)
		}
	}
}
