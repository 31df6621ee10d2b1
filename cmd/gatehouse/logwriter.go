package main

import (
	"io"
	"sync"
	"time"
)

// logWriter buffers the server's log and writes it out every interval, or
// at once when the buffer grows past logBufferSize: one write system call
// per request (the access log line) cost more than the line's formatting.
// Close writes what is buffered, so a clean shutdown loses no line; a crash
// loses at most the last interval's lines.
type logWriter struct {
	mu      sync.Mutex
	w       io.Writer
	buf     []byte
	err     error // the first write error, reported by Close
	closed  bool
	stop    chan struct{}
	stopped chan struct{}
}

const logBufferSize = 64 << 10

func newLogWriter(w io.Writer, interval time.Duration) *logWriter {
	l := &logWriter{w: w, buf: make([]byte, 0, logBufferSize), stop: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(l.stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l.mu.Lock()
				l.flushLocked()
				l.mu.Unlock()
			case <-l.stop:
				return
			}
		}
	}()
	return l
}

// Write buffers p, one log record (slog handlers write a record at once).
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf)+len(p) > logBufferSize {
		l.flushLocked()
	}
	if l.closed || len(p) > logBufferSize {
		_, err := l.w.Write(p)
		return len(p), err
	}
	l.buf = append(l.buf, p...)
	return len(p), nil
}

func (l *logWriter) flushLocked() {
	if len(l.buf) == 0 {
		return
	}
	if _, err := l.w.Write(l.buf); err != nil && l.err == nil {
		l.err = err
	}
	l.buf = l.buf[:0]
}

// Close stops the periodic writes and writes what is buffered. Later
// records are written through at once.
func (l *logWriter) Close() error {
	close(l.stop)
	<-l.stopped
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	l.closed = true
	return l.err
}
