package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"gatehouse/store"
)

// A throwaway PostgreSQL cluster for tests, shared by every test of one test
// binary: started on first use, stopped by Main. Each caller gets a fresh
// database in it.
//
// Where the server comes from, in order:
//  1. GATEHOUSE_TEST_POSTGRES=postgres://... : an existing server; the test
//     creates its databases there (the role needs CREATEDB).
//  2. The PostgreSQL binaries (GATEHOUSE_PG_BIN, else pg_config --bindir,
//     else /usr/lib/postgresql/*/bin): initdb into a temporary folder and a
//     server on a free loopback port. PostgreSQL refuses to run as root, so
//     as root the cluster runs as the "postgres" user.
//  3. Neither: the test is skipped, unless CI=true, where it fails.
var cluster struct {
	once    sync.Once
	url     string // URL of the server's maintenance database
	err     error
	dir     string // temporary cluster folder, when we started one
	bin     string
	asUser  string
	counter int
	mu      sync.Mutex
}

// PostgresURL returns the URL of a new, empty database, or skips tb (fails
// it when CI=true) when no PostgreSQL can be had.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	cluster.once.Do(startCluster)
	if cluster.err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("storetest: PostgreSQL is required in CI: %v", cluster.err)
		}
		tb.Skipf("storetest: no PostgreSQL: %v", cluster.err)
	}
	cluster.mu.Lock()
	cluster.counter++
	name := fmt.Sprintf("gh_test_%d_%d", os.Getpid(), cluster.counter)
	cluster.mu.Unlock()

	db, err := sql.Open("pgx", cluster.url)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("storetest: create database: %v", err)
	}
	tb.Cleanup(func() {
		db, err := sql.Open("pgx", cluster.url)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(cluster.url)
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Postgres opens a Store on a new database (see PostgresURL).
func Postgres(tb testing.TB) *store.SQL {
	tb.Helper()
	return open(tb, PostgresURL(tb))
}

// SQLite opens a Store on a new file in tb's temporary folder.
func SQLite(tb testing.TB) *store.SQL {
	tb.Helper()
	return open(tb, filepath.Join(tb.TempDir(), "gatehouse.db"))
}

func open(tb testing.TB, dsn string) *store.SQL {
	tb.Helper()
	s, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		tb.Fatalf("storetest: open %s: %v", dsn, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Main runs the tests of a package that uses PostgresURL and stops the
// cluster afterwards: func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	stopCluster()
	return code
}

func startCluster() {
	if u := os.Getenv("GATEHOUSE_TEST_POSTGRES"); u != "" {
		cluster.url = u
		cluster.err = ping(u, 10*time.Second)
		return
	}
	bin, err := pgBin()
	if err != nil {
		cluster.err = err
		return
	}
	cluster.bin = bin
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			cluster.err = errors.New("running as root and there is no postgres user to run the server as")
			return
		}
		cluster.asUser = "postgres"
	}
	dir, err := os.MkdirTemp("", "gatehouse-pg-")
	if err != nil {
		cluster.err = err
		return
	}
	cluster.dir = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		cluster.err = err
		return
	}
	data := filepath.Join(dir, "data")
	if cluster.asUser != "" {
		if err := os.Mkdir(data, 0o700); err != nil {
			cluster.err = err
			return
		}
		if out, err := exec.Command("chown", "-R", cluster.asUser, dir).CombinedOutput(); err != nil {
			cluster.err = fmt.Errorf("chown: %v: %s", err, out)
			return
		}
	}
	if out, err := pgCommand("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync").CombinedOutput(); err != nil {
		cluster.err = fmt.Errorf("initdb: %v: %s", err, tail(out))
		return
	}
	port, err := freePort()
	if err != nil {
		cluster.err = err
		return
	}
	// fsync stays on, as in production: benchmarks on this cluster measure
	// durable commits.
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=200 -c shared_buffers=128MB", port, dir)
	if out, err := pgCommand("pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-o", opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		cluster.err = fmt.Errorf("pg_ctl start: %v: %s %s", err, tail(out), tail(log))
		return
	}
	cluster.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	cluster.err = ping(cluster.url, 30*time.Second)
}

func stopCluster() {
	if cluster.dir == "" {
		return
	}
	pgCommand("pg_ctl", "-D", filepath.Join(cluster.dir, "data"), "-m", "immediate", "-w", "stop").Run()
	os.RemoveAll(cluster.dir)
}

// pgCommand runs a PostgreSQL binary, as the postgres user when we are root.
func pgCommand(name string, args ...string) *exec.Cmd {
	path := filepath.Join(cluster.bin, name)
	if cluster.asUser == "" {
		return exec.Command(path, args...)
	}
	return exec.Command("runuser", append([]string{"-u", cluster.asUser, "--", path}, args...)...)
}

func pgBin() (string, error) {
	if b := os.Getenv("GATEHOUSE_PG_BIN"); b != "" {
		return b, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		b := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(b, "initdb")); err == nil {
			return b, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", errors.New("no PostgreSQL binaries (set GATEHOUSE_TEST_POSTGRES or install postgresql)")
	}
	// The highest version: /usr/lib/postgresql/15 before /usr/lib/postgresql/9.
	best, bestV := "", -1
	for _, m := range matches {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m))))
		if v > bestV {
			best, bestV = filepath.Dir(m), v
		}
	}
	return best, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func ping(dsn string, within time.Duration) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}
