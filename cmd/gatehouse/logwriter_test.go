package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the flusher goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLogWriterFlushes(t *testing.T) {
	t.Run("on Close", func(t *testing.T) {
		var out lockedBuffer
		w := newLogWriter(&out, time.Hour)
		w.Write([]byte("one\n"))
		w.Write([]byte("two\n"))
		if got := out.String(); got != "" {
			t.Fatalf("written before a flush: %q", got)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != "one\ntwo\n" {
			t.Fatalf("after Close: %q", got)
		}
		w.Write([]byte("three\n"))
		if got := out.String(); got != "one\ntwo\nthree\n" {
			t.Fatalf("a write after Close is not written through: %q", got)
		}
	})
	t.Run("every interval", func(t *testing.T) {
		var out lockedBuffer
		w := newLogWriter(&out, 5*time.Millisecond)
		defer w.Close()
		w.Write([]byte("line\n"))
		deadline := time.Now().Add(5 * time.Second)
		for out.String() != "line\n" {
			if time.Now().After(deadline) {
				t.Fatalf("not flushed within 5s: %q", out.String())
			}
			time.Sleep(time.Millisecond)
		}
	})
	t.Run("when full", func(t *testing.T) {
		var out lockedBuffer
		w := newLogWriter(&out, time.Hour)
		defer w.Close()
		line := strings.Repeat("x", 1000) + "\n"
		for range logBufferSize/len(line) + 1 {
			w.Write([]byte(line))
		}
		if got := out.String(); len(got) == 0 || len(got)%len(line) != 0 {
			t.Fatalf("a full buffer wrote %d bytes", len(got))
		}
		big := strings.Repeat("y", logBufferSize+1)
		w.Write([]byte(big))
		if !strings.HasSuffix(out.String(), big) {
			t.Fatal("a record larger than the buffer is not written at once, in order")
		}
	})
}
