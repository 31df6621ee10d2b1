package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// unavailable wraps err so that errors.Is(err, ErrUnavailable) holds when
// it says the database cannot serve now through no fault of the request,
// and returns err unchanged otherwise (nil stays nil). Every path from a
// Store method to the driver passes its error through here (the helpers
// of sql.go, inTx, dynamic); TestUnavailablePostgres holds every method of
// the Store interface to it.
func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !databaseDown(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// databaseDown reports whether err is a driver's or the pool's way of
// saying the database is unreachable, shutting down, not yet accepting
// connections, or too busy to answer in time. The error types of the two
// drivers are distinct, so one function serves both dialects.
func databaseDown(err error) bool {
	// A deadline of the caller's passed while a connection was awaited or
	// the database did not answer. A cancelled context is not here: the
	// caller left, and no one reads the answer.
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	// PostgreSQL: no connection could be made (refused, reset, DNS,
	// connect_timeout), or an open one was lost mid-query.
	var connect *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connect) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case len(pg.Code) == 5 && pg.Code[:2] == "08": // connection_exception
			return true
		case pg.Code == "57P01", // admin_shutdown: pg_ctl stop -m fast, a failover
			pg.Code == "57P02", // crash_shutdown
			pg.Code == "57P03", // cannot_connect_now: starting up, recovering
			pg.Code == "53300", // too_many_connections
			pg.Code == "57014", // query_canceled: statement_timeout set by the operator
			pg.Code == "25006": // read_only_sql_transaction: a standby, during a failover
			return true
		}
		return false
	}
	// SQLite: another process (a CLI command, a backup) held the lock past
	// the busy timeout. Disk and I/O failures are not here: they need an
	// operator, and stay 500s with their cause in the log.
	var lite sqlite3.Error
	if errors.As(err, &lite) {
		return lite.Code == sqlite3.ErrBusy || lite.Code == sqlite3.ErrLocked
	}
	return false
}
