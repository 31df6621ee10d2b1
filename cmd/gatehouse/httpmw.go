package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type loggerKey struct{}

// requestLogger is the logger of one request: the server's with the
// request's ID, made on first use (most requests log only their access
// line, which names the ID itself).
type requestLogger struct {
	base *slog.Logger
	id   string
	once sync.Once
	log  *slog.Logger
}

func (rl *requestLogger) logger() *slog.Logger {
	rl.once.Do(func() { rl.log = rl.base.With("request_id", rl.id) })
	return rl.log
}

// withLogger returns ctx carrying the request's logger.
func withLogger(ctx context.Context, rl *requestLogger) context.Context {
	return context.WithValue(ctx, loggerKey{}, rl)
}

// loggerFrom returns the logger of the request ctx belongs to: it carries
// request_id, so handlers log detail there and send clients generic text.
func loggerFrom(ctx context.Context) *slog.Logger {
	if rl, ok := ctx.Value(loggerKey{}).(*requestLogger); ok {
		return rl.logger()
	}
	return slog.Default()
}

// httpMetrics are the request metrics. Their labels are bounded: route is
// a registered pattern or "unmatched", never the raw path; method is one
// of the standard methods or "OTHER".
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// instrument wraps the mux: it gives each request an ID (X-Request-ID on
// the response, request_id in the context's logger), logs one line per
// request, records the metrics and turns a panic into a 500 whose body
// says nothing of the cause.
func instrument(next http.Handler, logger *slog.Logger, m *httpMetrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-ID", id)
		rl := &requestLogger{base: logger, id: id}
		// The mux sets r.Pattern on the request it is given: keep that
		// same *Request to read the route afterwards.
		r = r.WithContext(withLogger(r.Context(), rl))
		rec := &responseRecorder{ResponseWriter: w}

		defer func() {
			p := recover()
			abort := false
			if p != nil {
				if p != http.ErrAbortHandler {
					rl.logger().Error("panic serving request", "panic", p, "method", r.Method, "path", r.URL.Path, "stack", string(debug.Stack()))
				}
				if rec.status == 0 {
					h := w.Header()
					for k := range h {
						if k != "X-Request-Id" {
							delete(h, k)
						}
					}
					h.Set("Content-Type", "text/plain; charset=utf-8")
					h.Set("X-Content-Type-Options", "nosniff")
					rec.WriteHeader(http.StatusInternalServerError)
					rec.Write([]byte("internal server error\n"))
				} else {
					// Part of the answer is out: abort the connection so the
					// client cannot take it for a complete one.
					abort = true
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			method := metricMethod(r.Method)
			elapsed := time.Since(start)
			m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
			logger.LogAttrs(r.Context(), slog.LevelInfo, "http request",
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", elapsed),
				slog.Int64("bytes", rec.bytes),
			)
			if abort {
				panic(http.ErrAbortHandler)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// secureHeaders sets X-Content-Type-Options: nosniff on every response,
// so no browser runs a JSON, text or XML answer that echoes its input as
// HTML or script; and Cache-Control: no-store, whatever the handler set,
// on every response that sets a cookie (a session, the SSO browser
// binding; the password sign-in's 303 included), so no cache on the way
// keeps it. Answers whose body carries a secret (a new API key or SCIM
// token, a session) set no-store themselves: every JSON answer of the
// management API and of SCIM does.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(&cookieGuard{ResponseWriter: w}, r)
	})
}

// cookieGuard adds Cache-Control: no-store to a response that sets a
// cookie, when its header is sent: the cookie may be set at any time
// before.
type cookieGuard struct {
	http.ResponseWriter
	sent bool
}

func (g *cookieGuard) guard() {
	if h := g.Header(); len(h["Set-Cookie"]) > 0 {
		h.Set("Cache-Control", "no-store")
	}
}

func (g *cookieGuard) WriteHeader(code int) {
	if !g.sent {
		g.guard() // 1xx answers send the header too
		g.sent = code >= 200
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *cookieGuard) Write(b []byte) (int, error) {
	if !g.sent {
		g.WriteHeader(http.StatusOK)
	}
	return g.ResponseWriter.Write(b)
}

// Flush sends the header, guarded, before the body so far.
func (g *cookieGuard) Flush() {
	if !g.sent {
		g.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(g.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (g *cookieGuard) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// validRequestID accepts a client's request ID only when it is short and
// plain, so it cannot inject into logs or headers.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}

func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// responseRecorder notes the status and the size of the body.
type responseRecorder struct {
	http.ResponseWriter
	status int // the final status; 0 until one is written
	bytes  int64
}

func (r *responseRecorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 { // 1xx are interim answers
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *responseRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush lets handlers that assert http.Flusher stream through the recorder.
func (r *responseRecorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (r *responseRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
