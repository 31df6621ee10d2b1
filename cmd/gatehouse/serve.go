package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/term"

	"gatehouse/admin"
	"gatehouse/admin/api"
	"gatehouse/admin/console"
	"gatehouse/admin/export"
	"gatehouse/admin/geoip"
	"gatehouse/admin/outbox"
	"gatehouse/scim"
	"gatehouse/scim/provlog"
	"gatehouse/sso"
	"gatehouse/sso/fetch"
	"gatehouse/sso/provider"
	"gatehouse/sso/saml"
	"gatehouse/store"
)

const (
	shutdownTimeout  = 15 * time.Second
	readinessTimeout = 2 * time.Second
)

func runServe(ctx context.Context, c *cli, args []string) error {
	fs := newFlagSet("serve")
	addr := fs.String("addr", defaultAddr, "listen address (env GATEHOUSE_ADDR)")
	db := fs.String("db", defaultDB, "database: a SQLite file path, sqlite:PATH, or a postgres:// URL; migrated on start (env GATEHOUSE_DB)")
	baseURL := fs.String("base-url", "", "public URL of this server, used in links and SSO redirects (env GATEHOUSE_BASE_URL; default http://ADDR)")
	logFormat := fs.String("log-format", "auto", "auto (text on a terminal, JSON otherwise), text or json (env GATEHOUSE_LOG_FORMAT)")
	scimRate := fs.Float64("scim-rate-limit", scim.DefaultRateLimit, "SCIM requests per second each organization may make on this instance (bursts of twice that); negative disables (env GATEHOUSE_SCIM_RATE_LIMIT)")
	secretKey := fs.String("secret-key", "", "base64 of the 32-byte key that encrypts stored secrets (TOTP seeds, queued emails); prefer the environment (env GATEHOUSE_SECRET_KEY; default: read or create the file of --secret-key-file)")
	secretKeyFile := fs.String("secret-key-file", "", "file holding the secret key, created with a new key on first start (env GATEHOUSE_SECRET_KEY_FILE; default: secret.key beside a SQLite database, data/secret.key otherwise)")
	smtpHost := fs.String("smtp-host", "", "SMTP server for invitations and password resets; empty: emails are written to the log (env GATEHOUSE_SMTP_HOST)")
	smtpPort := fs.Int("smtp-port", 587, "SMTP port (env GATEHOUSE_SMTP_PORT)")
	smtpUser := fs.String("smtp-username", "", "SMTP user, authenticated with AUTH PLAIN over TLS (env GATEHOUSE_SMTP_USERNAME)")
	smtpPassword := fs.String("smtp-password", "", "SMTP password; prefer the environment (env GATEHOUSE_SMTP_PASSWORD)")
	smtpFrom := fs.String("smtp-from", "", "the From address of emails, e.g. \"Acme admin <noreply@acme.com>\" (env GATEHOUSE_SMTP_FROM)")
	smtpTLS := fs.String("smtp-starttls", outbox.StartTLSRequired, "required, opportunistic or none (env GATEHOUSE_SMTP_STARTTLS)")
	reuseGrace := fs.Duration("oidc-refresh-reuse-grace", provider.DefaultRefreshReuseGrace, "how long an application may exchange a refresh token again after exchanging it (its parallel requests, a lost answer) before a reuse revokes the sign-in; 0 for none (env GATEHOUSE_OIDC_REFRESH_REUSE_GRACE)")
	trustXFF := fs.Bool("trust-forwarded-for", false, "take the client's address from the last X-Forwarded-For entry (behind a load balancer that appends it) for sign-in limits and login history (env GATEHOUSE_TRUST_FORWARDED_FOR)")
	geoipDB := fs.String("geoip-db", "", "MaxMind-format database (GeoLite2-City, GeoIP2-City) placing each sign-in's address in the login history; reopened on SIGHUP (env GATEHOUSE_GEOIP_DB; default: none, locations empty)")
	exportEvery := fs.Duration("s3-export-interval", time.Minute, "how soon an organization's new audit and login entries are exported to its S3 bucket again (env GATEHOUSE_S3_EXPORT_INTERVAL)")
	exportTimeout := fs.Duration("s3-export-timeout", time.Minute, "bound of the requests to S3 for one exported object; an instance's claim on an organization's export lasts twice as long (env GATEHOUSE_S3_EXPORT_TIMEOUT)")
	exportBatch := fs.Int("s3-export-batch", 5000, "audit or login entries an S3 export reads and writes at once, 1 to 10000 (env GATEHOUSE_S3_EXPORT_BATCH)")
	scimLogKeep := fs.Int("scim-log-keep", provlog.DefaultKeep, "SCIM requests each organization's provisioning log keeps (also at most 7 days); 0 keeps none (env GATEHOUSE_SCIM_LOG_KEEP)")
	scimLogQueue := fs.Int("scim-log-queue", provlog.DefaultQueue, "SCIM requests that may wait to be written to the provisioning log; when full, more are dropped and counted (env GATEHOUSE_SCIM_LOG_QUEUE)")
	sqliteSync := fs.String("sqlite-synchronous", "FULL", "SQLite durability: FULL (a committed write survives power loss) or NORMAL (survives a crash of gatehouse only) (env GATEHOUSE_SQLITE_SYNCHRONOUS)")
	pos, err := c.parse(fs, "[flags]",
		"Runs the HTTP server until SIGINT or SIGTERM, then drains requests for up to\n"+
			"15 seconds. Health: /healthz, /readyz; metrics: /metrics.", args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("serve: unexpected argument %q", pos[0])
	}
	err = c.fromEnv(fs, map[string]string{
		"addr":                     "GATEHOUSE_ADDR",
		"db":                       "GATEHOUSE_DB",
		"base-url":                 "GATEHOUSE_BASE_URL",
		"log-format":               "GATEHOUSE_LOG_FORMAT",
		"sqlite-synchronous":       "GATEHOUSE_SQLITE_SYNCHRONOUS",
		"oidc-refresh-reuse-grace": "GATEHOUSE_OIDC_REFRESH_REUSE_GRACE",
		"scim-rate-limit":          "GATEHOUSE_SCIM_RATE_LIMIT",
		"secret-key":               "GATEHOUSE_SECRET_KEY",
		"secret-key-file":          "GATEHOUSE_SECRET_KEY_FILE",
		"smtp-host":                "GATEHOUSE_SMTP_HOST",
		"smtp-port":                "GATEHOUSE_SMTP_PORT",
		"smtp-username":            "GATEHOUSE_SMTP_USERNAME",
		"smtp-password":            "GATEHOUSE_SMTP_PASSWORD",
		"smtp-from":                "GATEHOUSE_SMTP_FROM",
		"smtp-starttls":            "GATEHOUSE_SMTP_STARTTLS",
		"trust-forwarded-for":      "GATEHOUSE_TRUST_FORWARDED_FOR",
		"geoip-db":                 "GATEHOUSE_GEOIP_DB",
		"s3-export-interval":       "GATEHOUSE_S3_EXPORT_INTERVAL",
		"s3-export-batch":          "GATEHOUSE_S3_EXPORT_BATCH",
		"s3-export-timeout":        "GATEHOUSE_S3_EXPORT_TIMEOUT",
		"scim-log-keep":            "GATEHOUSE_SCIM_LOG_KEEP",
		"scim-log-queue":           "GATEHOUSE_SCIM_LOG_QUEUE",
	})
	if err != nil {
		return err
	}
	if *scimRate == 0 {
		return usagef("--scim-rate-limit: give a positive rate, or a negative one to disable the limit")
	}
	if *exportEvery < time.Second {
		return usagef("--s3-export-interval: %v is shorter than a second", *exportEvery)
	}
	if *exportTimeout < time.Second {
		return usagef("--s3-export-timeout: %v is shorter than a second", *exportTimeout)
	}
	if *exportBatch < 1 || *exportBatch > 10000 {
		return usagef("--s3-export-batch: %d is not 1 to 10000", *exportBatch)
	}
	if *scimLogKeep < 0 {
		return usagef("--scim-log-keep: give a number of requests, or 0 to keep none")
	}
	if *scimLogQueue < 1 {
		return usagef("--scim-log-queue: give a positive number of requests")
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return usagef("--addr: %q is not HOST:PORT", *addr)
	}
	if err := checkDSN("db", *db); err != nil {
		return err
	}
	if *baseURL != "" {
		if err := checkBaseURL(*baseURL); err != nil {
			return err
		}
	}
	switch *logFormat {
	case "auto", "text", "json":
	default:
		return usagef("--log-format: %q is not auto, text or json", *logFormat)
	}
	syncMode := strings.ToUpper(*sqliteSync)
	if syncMode != "FULL" && syncMode != "NORMAL" {
		return usagef("--sqlite-synchronous: %q is not FULL or NORMAL", *sqliteSync)
	}
	var smtpConfig *outbox.SMTPConfig
	if *smtpHost != "" {
		if *smtpFrom == "" {
			return usagef("--smtp-from is required with --smtp-host")
		}
		smtpConfig = &outbox.SMTPConfig{Host: *smtpHost, Port: *smtpPort, Username: *smtpUser, Password: *smtpPassword,
			From: *smtpFrom, StartTLS: *smtpTLS}
	}
	// A database given and not readable stops the start: an operator who
	// asked for locations would otherwise get none without noticing.
	var geo *geoip.DB
	if *geoipDB != "" {
		if geo, err = geoip.Open(*geoipDB, admin.Languages); err != nil {
			return fmt.Errorf("--geoip-db: %w", err)
		}
	}
	logOut := newLogWriter(c.stderr, logFlushInterval)
	defer logOut.Close() // last: after the final lines below
	logger := newLogger(c.stderr, logOut, *logFormat)
	tuneGC(c.getenv)
	if geo != nil && c.getenv("GOMEMLIMIT") == "" {
		// The GeoIP database is held in memory: room for it, and for its
		// successor while a reload reads it, beside the heap's own limit.
		debug.SetMemoryLimit(debug.SetMemoryLimit(-1) + 2*geo.Size())
	}

	// What serve writes on its own (start-up, housekeeping, metadata
	// refresh) is gatehouse's, not the operator's who started it. Requests
	// do not inherit ctx: each handler names its own actor.
	ctx = store.WithActor(ctx, store.System)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one ends the process at once.
	context.AfterFunc(ctx, stop)

	s, err := openStore(ctx, *db, store.Options{SQLiteSynchronous: syncMode})
	if err != nil {
		return err
	}
	defer func() {
		if err := s.Close(); err != nil {
			logger.Error("closing the database", "err", err)
		}
	}()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *baseURL == "" {
		_, port, _ := net.SplitHostPort(ln.Addr().String()) // the real port when --addr asked for :0
		host, _, _ := net.SplitHostPort(*addr)
		*baseURL = defaultBaseURL(net.JoinHostPort(host, port))
	}

	// The command line prints links (org create's activation link) to the
	// URL the server really runs at, given or derived.
	if err := s.SetBaseURL(ctx, *baseURL); err != nil {
		return err
	}

	sealer, err := loadSealer(*secretKey, *secretKeyFile, *db, logger)
	if err != nil {
		return err
	}
	// The OpenID Provider's first signing key, made by whichever instance
	// starts first; every instance checks the rotation schedule.
	signingKeys := &admin.SigningKeys{Store: s, Sealer: sealer}
	if created, err := signingKeys.Ensure(ctx); err != nil {
		return fmt.Errorf("OpenID Provider signing key: %w", err)
	} else if created {
		logger.Info("created the OpenID Provider's first signing key")
	}
	// Instances on one database must share the secret key; one that does
	// not could not sign. Said at start, not at the first sign-in.
	if _, err := signingKeys.Active(ctx); err != nil {
		logger.Error("the OpenID Provider's signing key does not open: give every instance the same secret key (GATEHOUSE_SECRET_KEY)", "err", err)
	}
	sender, err := outbox.NewSender(s, sealer, smtpConfig, logger)
	if err != nil {
		return usagef("%v", err)
	}
	// The sender and housekeeping stop before the store closes (defers
	// run last first).
	background, stopBackground := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { sender.Run(background) })
	wg.Go(func() { prune(background, s, logger) })
	wg.Go(func() { rotateSigningKeys(background, signingKeys, logger) })
	hup := make(chan os.Signal, 1) // registered before the server listens
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Go(func() { reloadOnHangup(background, hup, geo, logger) })
	// The S3 export: each instance looks for an organization due for
	// export; the lease makes one of them export it. The endpoint is a URL
	// an organization's administrator typed: reached through the
	// SSRF-guarded client (https to public addresses, or loopback).
	exporter := export.New(s, sealer, logger)
	exporter.Interval, exporter.Batch, exporter.OpTimeout = *exportEvery, *exportBatch, *exportTimeout
	exporter.HTTPClient = fetch.NewClient(fetch.Options{AllowLoopback: true, Timeout: exporter.OpTimeout, MaxBytes: 1 << 30})
	wg.Go(func() { exporter.Run(background) })
	defer func() { stopBackground(); wg.Wait() }()
	mail := &outbox.Queue{Store: s, Sealer: sealer, Logger: logger, Notify: sender.Notify}

	signIn := &admin.SignIn{Store: s, Sealer: sealer, Mail: mail, BaseURL: *baseURL, Log: logger}
	if geo != nil {
		signIn.Locator = geo
		logger.Info("placing sign-ins with a GeoIP database", "file", *geoipDB, "database", geo.Describe())
	}
	// IdP metadata and OIDC discovery are fetched over https, or from
	// loopback, and never from private, link-local or metadata addresses.
	fetcher := fetch.NewClient(fetch.Options{AllowLoopback: true})
	connections := &sso.Manager{Store: s, Sealer: sealer, BaseURL: *baseURL, Fetch: fetcher}
	flow := &sso.Flow{Store: s, SignIn: signIn, BaseURL: *baseURL, New: connections.NewConnector, Metadata: connections.Metadata,
		TrustForwardedFor: *trustXFF, Logger: func(r *http.Request) *slog.Logger { return loggerFrom(r.Context()) }}
	wg.Go(func() {
		saml.RefreshIdPMetadata(background, s, func(ctx context.Context) ([]store.SSOConnection, error) {
			return s.AllSSOConnections(ctx, store.SSOSAML)
		}, fetcher, metadataRefresh, nil, logger)
	})

	reg := newRegistry(s)
	// The provisioning log's writer stops after the HTTP server has
	// drained (defers run last first) and flushes what is queued, before
	// the store closes.
	var scimLog *provlog.Log
	if *scimLogKeep > 0 {
		scimLog = provlog.New(s, provlog.Config{Keep: *scimLogKeep, Queue: *scimLogQueue, Logger: logger})
		registerSCIMLogMetrics(reg, scimLog)
		go scimLog.Run(ctx) // Close waits for it, up to shutdownTimeout
		defer func() {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
			defer cancel()
			if err := scimLog.Close(fctx); err != nil {
				logger.Warn("provisioning log: not every queued request was written before the shutdown timeout", "err", err)
			}
		}()
	}
	management := &api.API{
		Store:             s,
		Orgs:              &admin.Orgs{Store: s, BaseURL: *baseURL},
		Administrators:    &admin.Administrators{Store: s, BaseURL: *baseURL, Mail: mail},
		APIKeys:           &admin.APIKeys{Store: s},
		SCIMTokens:        &admin.SCIMTokens{Store: s},
		OIDCClients:       &admin.OIDCClients{Store: s},
		S3Exports:         &admin.S3Exports{Store: s, Sealer: sealer},
		SCIMLog:           &admin.ProvisioningLog{Store: s},
		SSO:               connections,
		LDAP:              &admin.LDAP{Store: s, Sealer: sealer},
		SignIn:            signIn,
		BaseURL:           *baseURL,
		TrustForwardedFor: *trustXFF,
		Logger:            func(r *http.Request) *slog.Logger { return loggerFrom(r.Context()) },
	}
	scimServer := scim.New(s, &admin.Lifecycle{Store: s}, scim.Config{
		BaseURL:   *baseURL,
		RateLimit: *scimRate,
		Logger:    func(r *http.Request) *slog.Logger { return loggerFrom(r.Context()) },
		Log:       scimLog,
	})
	webConsole := &console.Console{Store: s, Orgs: management.Orgs, Administrators: management.Administrators,
		APIKeys: management.APIKeys, SCIMTokens: management.SCIMTokens, OIDCClients: management.OIDCClients, S3Exports: management.S3Exports,
		SCIMLog: management.SCIMLog, SSO: connections, LDAP: management.LDAP, SignIn: signIn,
		BaseURL: *baseURL, TrustForwardedFor: *trustXFF,
		Logger: func(r *http.Request) *slog.Logger { return loggerFrom(r.Context()) }}
	// A connection's test ends on the console's page of its result.
	flow.TestResultURL = console.SSOTestResultPath
	flow.Pages = webConsole // the sign-in pages in the console's layout and language
	// Forward auth sends a session that must first change its password or
	// enrol TOTP to the console's page of that step.
	forwardAuth := &sso.ForwardAuth{SignIn: signIn, Orgs: s, BaseURL: *baseURL,
		Steps:  map[string]string{admin.CodePasswordChangeRequired: console.PathChangePassword, admin.CodeTOTPEnrolmentRequired: console.PathTwoFactor},
		Logger: func(r *http.Request) *slog.Logger { return loggerFrom(r.Context()) }}
	op := &provider.Provider{Store: s, SignIn: signIn, Keys: signingKeys, Clients: &admin.OIDCClients{Store: s}, Sealer: sealer,
		BaseURL: *baseURL, Logger: logger, Pages: webConsole, RefreshReuseGrace: *reuseGrace}
	if *reuseGrace == 0 {
		op.RefreshReuseGrace = -1 // none
	}
	if err := op.Init(); err != nil {
		return err
	}
	wg.Go(func() { op.DeliverLogouts(background, fetcher) })
	mux := newMux(deps{store: s, metrics: reg, baseURL: *baseURL, scim: scimServer, api: management, sso: flow, forwardAuth: forwardAuth,
		console: webConsole, provider: op})
	handler := instrument(secureHeaders(webConsole.Fallback(mux)), logger, newHTTPMetrics(reg))
	logger.Info("gatehouse listening", "addr", ln.Addr().String(), "base_url", *baseURL, "database", s.Dialect())
	if err := serveUntilDone(ctx, ln, handler, logger); err != nil {
		return err
	}
	logger.Info("gatehouse stopped")
	return nil
}

// deps is what the HTTP handlers need. Handlers of later packages (SCIM,
// management API, SSO) are mounted by newMux from these.
type deps struct {
	store   store.Store
	metrics prometheus.Gatherer
	baseURL string // public URL, for redirects and links
	scim    *scim.Server
	api     *api.API
	sso     *sso.Flow
	// forwardAuth is /auth/verify, for a reverse proxy in front of the
	// product's applications.
	forwardAuth *sso.ForwardAuth
	console     *console.Console
	// provider is the OpenID Provider of the product's applications.
	provider *provider.Provider
}

// newMux routes every endpoint of the server. Routes use Go 1.22 patterns;
// the pattern string is also the route label of the metrics.
func newMux(d deps) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", readyz(d.store))
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics, promhttp.HandlerOpts{}))
	if d.scim != nil {
		d.scim.Register(mux)
	}
	if d.api != nil {
		d.api.Register(mux)
	}
	if d.sso != nil {
		d.sso.Register(mux)
	}
	if d.forwardAuth != nil {
		d.forwardAuth.Register(mux)
	}
	if d.console != nil {
		d.console.Register(mux)
	}
	if d.provider != nil {
		d.provider.Register(mux)
	}
	return mux
}

// pinger is the part of the store readiness needs.
type pinger interface {
	Ping(ctx context.Context) error
}

// readyz answers 200 while the database answers within readinessTimeout,
// else 503. The cause goes to the log, never to the client.
func readyz(db pinger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			loggerFrom(r.Context()).Warn("readiness check failed", "err", err)
			w.Header().Set("Retry-After", strconv.Itoa(admin.RetryAfterUnavailable))
			plain(w, http.StatusServiceUnavailable, "database unreachable")
			return
		}
		plain(w, http.StatusOK, "ready")
	}
}

func plain(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// newRegistry is the server's own Prometheus registry (never the global
// one): Go runtime, process, and database pool figures. The HTTP metrics
// are added by newHTTPMetrics.
func newRegistry(s *store.SQL) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reader, writer := s.DB()
	if reader == writer { // PostgreSQL: one pool
		reg.MustRegister(collectors.NewDBStatsCollector(reader, "main"))
	} else {
		reg.MustRegister(collectors.NewDBStatsCollector(reader, "reader"), collectors.NewDBStatsCollector(writer, "writer"))
	}
	// The outbox's backlog: emails waiting while the SMTP server is down.
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_outbox_pending",
		Help: "Emails queued and not sent yet (SMTP down or retrying)."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), readinessTimeout)
		defer cancel()
		n, err := s.PendingEmails(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	}))
	return reg
}

// registerSCIMLogMetrics publishes the provisioning log's counters: a
// growing dropped count means the writer cannot keep up with the SCIM
// traffic (or the database is slow), a growing shed count that the SCIM
// traffic costs more to log than the writer's share of the CPU, and
// requests go unlogged.
func registerSCIMLogMetrics(reg *prometheus.Registry, l *provlog.Log) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_scim_log_dropped_total",
			Help: "SCIM requests not written to the provisioning log because its queue was full."},
			func() float64 { return float64(l.Dropped()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_scim_log_shed_total",
			Help: "SCIM requests not written to the provisioning log because the writer was over its time budget (2% of a CPU, so that logging does not slow SCIM); successful reads are shed first."},
			func() float64 { return float64(l.Shed()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_scim_log_write_failures_total",
			Help: "SCIM requests not written to the provisioning log because the database refused their batch."},
			func() float64 { return float64(l.Failed()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_scim_log_written_total",
			Help: "SCIM requests written to the provisioning log."},
			func() float64 { return float64(l.Written()) }))
}

// serveUntilDone serves on ln until ctx is done, then shuts down
// gracefully: no new connections, in-flight requests get shutdownTimeout
// to finish.
func serveUntilDone(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// tuneGC trades memory the server has to spare for fewer garbage
// collections: the live heap is small (tens of MB) and requests allocate
// fast, so Go's default GOGC=100 collects very often. A soft limit keeps the
// heap bounded whatever the setting. GOGC and GOMEMLIMIT, when set, win.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(96 << 20)
	}
}

// logFlushInterval is how long a log line may wait in logWriter's buffer.
const logFlushInterval = 100 * time.Millisecond

// newLogger logs to w as text or JSON; auto picks text when dest (where w
// writes to) is a terminal, JSON otherwise (a log collector).
func newLogger(dest, w io.Writer, format string) *slog.Logger {
	if format == "auto" {
		format = "json"
		if f, ok := dest.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// loadSealer builds the Sealer of stored secrets from the key given, else
// from the key file (created with a new key on first start). Instances
// sharing a PostgreSQL database must share the key: give it to each.
func loadSealer(key, file, dsn string, logger *slog.Logger) (*admin.Sealer, error) {
	if key != "" {
		k, err := admin.ParseSecretKey(key)
		if err != nil {
			return nil, usagef("--secret-key: %v", err)
		}
		return admin.NewSealer(k)
	}
	postgres := strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
	if file == "" {
		file = filepath.Join("data", "secret.key")
		if !postgres {
			file = filepath.Join(filepath.Dir(store.SQLitePath(dsn)), "secret.key")
		}
	}
	k, created, err := admin.LoadOrCreateSecretKey(file)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	if created {
		logger.Warn("created a new secret key for stored secrets; back it up with the database", "file", file)
		if postgres {
			logger.Warn("with PostgreSQL, give every instance the same key (GATEHOUSE_SECRET_KEY)", "file", file)
		}
	}
	return admin.NewSealer(k)
}

// Housekeeping: how often expired rows are deleted, and how long what no
// rule reads is kept (sign-in throttle windows: twice the longest window,
// the password-reset one; sent emails, whose bodies are already gone:
// a month, for support questions).
const (
	pruneEvery   = 10 * time.Minute
	keepThrottle = 2 * admin.DefaultResetWindow
	keepSent     = 30 * 24 * time.Hour
	// keepRateWindows: longer than any window of sso.Limits.
	keepRateWindows = time.Hour
	// metadataRefresh is how old fetched SAML IdP metadata may get.
	metadataRefresh = 12 * time.Hour
)

// prune deletes expired sessions, old throttle windows and long-sent
// emails every pruneEvery until ctx ends.
func prune(ctx context.Context, s store.Store, logger *slog.Logger) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.Prune(ctx, time.Now(), keepThrottle, keepSent)
		if m, rerr := s.PruneRateWindows(ctx, time.Now().Add(-keepRateWindows)); rerr != nil {
			err = errors.Join(err, rerr)
		} else {
			n += m
		}
		if err != nil && ctx.Err() == nil {
			logger.Warn("housekeeping failed", "err", err)
		} else if n > 0 {
			logger.Debug("housekeeping", "rows_deleted", n)
		}
	}
}

// keyRotationCheck is how often serve asks whether the signing key is due
// for rotation (admin.DefaultKeyRotation).
const keyRotationCheck = 10 * time.Minute

// rotateSigningKeys rotates the OpenID Provider's signing key when it is
// due, checking every keyRotationCheck until ctx ends.
func rotateSigningKeys(ctx context.Context, keys *admin.SigningKeys, logger *slog.Logger) {
	t := time.NewTicker(keyRotationCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rotated, err := keys.RotateIfDue(ctx)
		if err != nil && ctx.Err() == nil {
			logger.Warn("signing key rotation failed", "err", err)
		} else if rotated {
			logger.Info("rotated the OpenID Provider's signing key")
		}
	}
}

// reloadOnHangup reopens the GeoIP database on SIGHUP (after the operator
// renamed a new file over it) until ctx ends; a file that does not verify
// is refused and the one in use stays. Without a database SIGHUP is only
// logged, so that a service manager's reload never stops the server.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, geo *geoip.DB, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		switch {
		case geo == nil:
			logger.Info("SIGHUP: nothing to reload (no --geoip-db)")
		default:
			if err := geo.Reload(); err != nil {
				logger.Error("SIGHUP: the GeoIP database was not reloaded; the previous one stays in use", "err", err)
			} else {
				logger.Info("SIGHUP: reloaded the GeoIP database", "database", geo.Describe())
			}
		}
	}
}
