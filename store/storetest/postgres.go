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
var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Cluster is a PostgreSQL server run for tests.
type Cluster struct {
	url     string // URL of the server's maintenance database
	dir     string // temporary cluster folder, when we started one
	opts    string // the server's options (port, socket folder)
	bin     string
	asUser  string
	mu      sync.Mutex
	counter int
}

// PostgresURL returns the URL of a new, empty database, or skips tb (fails
// it when CI=true) when no PostgreSQL can be had.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	shared.once.Do(func() { shared.c, shared.err = startShared() })
	if shared.err != nil {
		noPostgres(tb, shared.err)
	}
	return shared.c.URL(tb)
}

func noPostgres(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("storetest: PostgreSQL is required in CI: %v", err)
	}
	tb.Skipf("storetest: no PostgreSQL: %v", err)
}

// NewPostgresCluster starts a cluster of tb's own, for a test that stops
// and restarts the server (see Stop); it is removed when tb ends. It needs
// the PostgreSQL binaries: with only GATEHOUSE_TEST_POSTGRES, tb is skipped
// (fails when CI=true).
func NewPostgresCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := startCluster()
	if c != nil {
		tb.Cleanup(c.remove)
	}
	if err != nil {
		noPostgres(tb, err)
	}
	return c
}

// URL returns the URL of a new, empty database in c.
func (c *Cluster) URL(tb testing.TB) string {
	tb.Helper()
	c.mu.Lock()
	c.counter++
	name := fmt.Sprintf("gh_test_%d_%d", os.Getpid(), c.counter)
	c.mu.Unlock()

	db, err := sql.Open("pgx", c.url)
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
		db, err := sql.Open("pgx", c.url)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(c.url)
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Stop stops the server as an operator would (pg_ctl stop -m fast: the
// sessions are ended with SQLSTATE 57P01, the port closes) and waits until
// it is down.
func (c *Cluster) Stop(tb testing.TB) {
	tb.Helper()
	if out, err := c.pgCommand("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "fast", "-w", "-t", "60", "stop").CombinedOutput(); err != nil {
		tb.Fatalf("storetest: pg_ctl stop: %v: %s", err, tail(out))
	}
}

// Start starts a stopped server again on the same port and waits until it
// answers.
func (c *Cluster) Start(tb testing.TB) {
	tb.Helper()
	if err := c.start(); err != nil {
		tb.Fatalf("storetest: %v", err)
	}
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
	if shared.c != nil {
		shared.c.remove()
	}
	return code
}

func startShared() (*Cluster, error) {
	if u := os.Getenv("GATEHOUSE_TEST_POSTGRES"); u != "" {
		return &Cluster{url: u}, ping(u, 10*time.Second)
	}
	return startCluster()
}

// startCluster makes and starts a new cluster; when it returns a Cluster,
// even with an error, remove cleans up after it.
func startCluster() (*Cluster, error) {
	bin, err := pgBin()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return nil, errors.New("running as root and there is no postgres user to run the server as")
		}
		c.asUser = "postgres"
	}
	dir, err := os.MkdirTemp("", "gatehouse-pg-")
	if err != nil {
		return nil, err
	}
	c.dir = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		return c, err
	}
	data := filepath.Join(dir, "data")
	if c.asUser != "" {
		if err := os.Mkdir(data, 0o700); err != nil {
			return c, err
		}
		if out, err := exec.Command("chown", "-R", c.asUser, dir).CombinedOutput(); err != nil {
			return c, fmt.Errorf("chown: %v: %s", err, out)
		}
	}
	if out, err := c.pgCommand("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync").CombinedOutput(); err != nil {
		return c, fmt.Errorf("initdb: %v: %s", err, tail(out))
	}
	port, err := freePort()
	if err != nil {
		return c, err
	}
	// fsync stays on, as in production: benchmarks on this cluster measure
	// durable commits.
	c.opts = fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=200 -c shared_buffers=128MB", port, dir)
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return c, c.start()
}

func (c *Cluster) start() error {
	data := filepath.Join(c.dir, "data")
	if out, err := c.pgCommand("pg_ctl", "-D", data, "-l", filepath.Join(c.dir, "server.log"), "-o", c.opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		return fmt.Errorf("pg_ctl start: %v: %s %s", err, tail(out), tail(log))
	}
	return ping(c.url, 30*time.Second)
}

// remove stops the server of a cluster we started and deletes its folder.
func (c *Cluster) remove() {
	if c.dir == "" {
		return
	}
	c.pgCommand("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop").Run()
	os.RemoveAll(c.dir)
}

// pgCommand runs a PostgreSQL binary, as the postgres user when we are root.
func (c *Cluster) pgCommand(name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, name)
	if c.asUser == "" {
		return exec.Command(path, args...)
	}
	return exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
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

// EachBackend runs fn, in parallel subtests named "sqlite" and "postgres",
// on a fresh SQLite store and a fresh PostgreSQL one.
func EachBackend(t *testing.T, fn func(t *testing.T, s *store.SQL)) {
	t.Helper()
	for _, b := range []struct {
		name string
		open func(testing.TB) *store.SQL
	}{{"sqlite", SQLite}, {"postgres", Postgres}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.open(t))
		})
	}
}
