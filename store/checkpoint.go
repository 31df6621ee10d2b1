package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// walCheckpointer copies SQLite's write-ahead log back into the database
// file from a connection of its own, so that the writer connection does
// not: with the default auto-checkpoint, the commit that takes the WAL past
// 1000 pages also copies them all and syncs the file, holding up every
// create of the group commit behind it. A PASSIVE checkpoint takes no
// write lock; the writer keeps a higher auto-checkpoint of its own
// (walWriterAutoCheckpoint) only as a bound on the WAL should this one
// fall behind.
type walCheckpointer struct {
	db       *sql.DB
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

const (
	walCheckpointInterval   = 50 * time.Millisecond
	walWriterAutoCheckpoint = 10000 // pages: 40 MB of WAL
)

func newWALCheckpointer(db *sql.DB) *walCheckpointer {
	c := &walCheckpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *walCheckpointer) run() {
	defer close(c.done)
	t := time.NewTicker(walCheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			// An error (the database is busy or closing) is retried at the
			// next tick; the writer's auto-checkpoint bounds the WAL.
			c.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// close stops the checkpoints; it may be called more than once.
func (c *walCheckpointer) close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}

// setWriterAutoCheckpoint raises the writer connection's auto-checkpoint.
func setWriterAutoCheckpoint(db *sql.DB) error {
	if _, err := db.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walWriterAutoCheckpoint)); err != nil {
		return fmt.Errorf("store: sqlite: %w", err)
	}
	return nil
}
