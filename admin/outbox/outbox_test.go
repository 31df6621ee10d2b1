package outbox_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"gatehouse/admin"
	"gatehouse/admin/outbox"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

func assertCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *admin.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T %v, want *admin.Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("got code %s (%s), want %s", e.Code, e.Message, code)
	}
	if e.Message == "" || strings.ContainsAny(e.Message, "\n\r") {
		t.Fatalf("message %q is not one line of text", e.Message)
	}
}

// smtpServer is a real SMTP server on loopback (emersion/go-smtp) that
// records the messages it accepts. It can be stopped and started again on
// the same address, to play an SMTP server that is down for a while.
type smtpServer struct {
	t         *testing.T
	addr      string
	tlsConfig *tls.Config       // offer STARTTLS with it
	users     map[string]string // require AUTH PLAIN with one of these
	// allowInsecureAuth offers AUTH without TLS.
	allowInsecureAuth bool
	// hold, when set, makes the next DATA wait until it is closed, then
	// refuse the message; entered is closed when that DATA starts.
	hold, entered chan struct{}

	mu           sync.Mutex
	srv          *smtp.Server
	listener     net.Listener
	msgs         []smtpMessage
	conns        int
	authAttempts int
}

type smtpMessage struct {
	From string
	To   []string
	Data []byte
	User string // who authenticated; "" nobody
	TLS  bool
	At   time.Time
}

// startSMTP starts srv on host (an address of its own the first time).
func startSMTP(t *testing.T, srv *smtpServer, host string) *smtpServer {
	t.Helper()
	srv.t = t
	if srv.addr == "" {
		srv.addr = net.JoinHostPort(host, "0")
	}
	srv.start()
	t.Cleanup(srv.stop)
	return srv
}

func (s *smtpServer) start() {
	s.t.Helper()
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("smtp listen %s: %v", s.addr, err)
	}
	s.addr = l.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
		return &smtpSession{srv: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = s.tlsConfig
	srv.AllowInsecureAuth = s.allowInsecureAuth
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.mu.Lock()
	s.srv, s.listener = srv, l
	s.mu.Unlock()
	go srv.Serve(l)
}

// stop closes the listener and every connection: the SMTP server is down.
func (s *smtpServer) stop() {
	s.mu.Lock()
	srv, l := s.srv, s.listener
	s.srv, s.listener = nil, nil
	s.mu.Unlock()
	if srv != nil {
		// Closed here too: Close does not know a listener Serve has not
		// started on yet.
		l.Close()
		srv.Close()
	}
}

func (s *smtpServer) port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

func (s *smtpServer) messages() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

func (s *smtpServer) stats() (conns, authAttempts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, s.authAttempts
}

type smtpSession struct {
	srv  *smtpServer
	conn *smtp.Conn
	user string
	msg  smtpMessage
}

func (x *smtpSession) AuthMechanisms() []string {
	if x.srv.users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		x.srv.mu.Lock()
		x.srv.authAttempts++
		x.srv.mu.Unlock()
		if want, ok := x.srv.users[user]; !ok || want != pass {
			return errors.New("invalid credentials")
		}
		x.user = user
		return nil
	}), nil
}

func (x *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if x.srv.users != nil && x.user == "" {
		return smtp.ErrAuthRequired
	}
	x.msg = smtpMessage{From: from, User: x.user}
	return nil
}

func (x *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.msg.To = append(x.msg.To, to)
	return nil
}

func (x *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.srv.mu.Lock()
	hold, entered := x.srv.hold, x.srv.entered
	x.srv.hold = nil
	x.srv.mu.Unlock()
	if hold != nil {
		close(entered)
		select {
		case <-hold:
		case <-time.After(10 * time.Second):
		}
		return &smtp.SMTPError{Code: 451, Message: "held, then refused"}
	}
	x.msg.Data = b
	_, x.msg.TLS = x.conn.TLSConnectionState()
	x.msg.At = time.Now()
	x.srv.mu.Lock()
	x.srv.msgs = append(x.srv.msgs, x.msg)
	x.srv.mu.Unlock()
	return nil
}

func (x *smtpSession) Reset()        { x.msg = smtpMessage{} }
func (x *smtpSession) Logout() error { return nil }

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gatehouse test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}, pool
}

func newSealer(t *testing.T) *admin.Sealer {
	t.Helper()
	key := make([]byte, admin.SecretKeySize)
	rand.Read(key)
	s, err := admin.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// runningSender is a Sender running in the background with test timings:
// polls every few milliseconds, short backoff.
type runningSender struct {
	*outbox.Sender
	cancel context.CancelFunc
	done   chan struct{}
}

func newTestSender(t *testing.T, s store.Store, sealer *admin.Sealer, cfg *outbox.SMTPConfig, logger *slog.Logger) *outbox.Sender {
	t.Helper()
	if logger == nil {
		logger = testLogger(t)
	}
	snd, err := outbox.NewSender(s, sealer, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	snd.PollInterval = 5 * time.Millisecond
	snd.BackoffBase, snd.BackoffMax = 10*time.Millisecond, 40*time.Millisecond
	snd.Lease = 10 * time.Second
	snd.SendTimeout, snd.DialTimeout = 5*time.Second, 2*time.Second
	return snd
}

func run(t *testing.T, snd *outbox.Sender) *runningSender {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningSender{Sender: snd, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		snd.Run(ctx)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits (a bounded time) for it to return.
func (r *runningSender) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Sender.Run did not return after its context was cancelled")
	}
}

func smtpConfig(srv *smtpServer) *outbox.SMTPConfig {
	host, _, _ := net.SplitHostPort(srv.addr)
	return &outbox.SMTPConfig{Host: host, Port: srv.port(), From: "Gatehouse <noreply@gatehouse.example>", StartTLS: outbox.StartTLSNone}
}

// queue writes a message as a store transaction would, and returns its ID.
func queue(t *testing.T, s store.Store, sealer *admin.Sealer, to, subject, body string) string {
	t.Helper()
	m := &outbox.Queue{Store: s, Sealer: sealer}
	msg, err := m.Message("org-1", to, subject, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueEmail(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	return msg.ID
}

func outboxEmail(t *testing.T, s *store.SQL, id string) store.OutboxMessage {
	t.Helper()
	m, err := s.OutboxEmail(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func pending(t *testing.T, s store.Store) int {
	t.Helper()
	n, err := s.PendingEmails(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds, failing the test after 15 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func messageIDs(msgs []smtpMessage) []string {
	var ids []string
	for _, m := range msgs {
		p, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			ids = append(ids, "unparsable")
			continue
		}
		ids = append(ids, p.Header.Get("Message-ID"))
	}
	return ids
}

func TestMailDelivery(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		srv := startSMTP(t, &smtpServer{}, "127.0.0.1")
		sealer := newSealer(t)
		subject := "Activez votre compte Gatehouse — Zoë ✓ " + strings.Repeat("é", 60)
		link := "https://gatehouse.example/activate?token=Zm9v=YmFy&org=acme"
		body := "Bonjour Zoë,\n\nPour activer votre compte : " + link + "\n.\n..une ligne qui commence par un point\n" +
			strings.Repeat("une très longue ligne ", 20) + "\r\nFrom the end, trailing space \nfin ✓"
		to := "Zoë Ünïcode <zoe@example.com>"
		id := queue(t, s, sealer, to, subject, body)

		stored := outboxEmail(t, s, id)
		if !strings.HasPrefix(stored.Body, "v1.") || strings.Contains(stored.Body, "token") || stored.Subject != subject || stored.Recipient != to {
			t.Fatalf("queued row = %+v, want the body sealed", stored)
		}

		run(t, newTestSender(t, s, sealer, smtpConfig(srv), nil))
		waitFor(t, "the delivery", func() bool { return len(srv.messages()) == 1 })
		waitFor(t, "the message marked sent", func() bool { return outboxEmail(t, s, id).SentAt != nil })
		got := srv.messages()[0]
		if got.From != "noreply@gatehouse.example" || !slices.Equal(got.To, []string{"zoe@example.com"}) {
			t.Fatalf("envelope from %q to %q", got.From, got.To)
		}
		inBody := false
		for i, line := range strings.Split(string(got.Data), "\r\n") {
			// RFC 5322 §2.1.1: at most 998 characters; quoted-printable
			// lines at most 76 (RFC 2045 §6.7).
			if len(line) > 998 || inBody && len(line) > 76 || strings.ContainsFunc(line, func(r rune) bool { return r > 0x7e || r < 0x20 && r != '\t' }) {
				t.Errorf("line %d is not 7-bit text of a fitting length: %q", i, line)
			}
			inBody = inBody || line == ""
		}
		p, err := mail.ReadMessage(bytes.NewReader(got.Data))
		if err != nil {
			t.Fatalf("the message does not parse: %v\n%s", err, got.Data)
		}
		h := p.Header
		dec := new(mime.WordDecoder)
		if subj, err := dec.DecodeHeader(h.Get("Subject")); err != nil || subj != subject {
			t.Errorf("Subject decodes to %q, %v; want %q (raw %q)", subj, err, subject, h.Get("Subject"))
		}
		if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Name != "Gatehouse" || from[0].Address != "noreply@gatehouse.example" {
			t.Errorf("From = %v, %v", from, err)
		}
		if rcpt, err := h.AddressList("To"); err != nil || len(rcpt) != 1 || rcpt[0].Name != "Zoë Ünïcode" || rcpt[0].Address != "zoe@example.com" {
			t.Errorf("To = %v, %v (raw %q)", rcpt, err, h.Get("To"))
		}
		if date, err := h.Date(); err != nil || time.Since(date) > time.Minute || time.Since(date) < -time.Minute {
			t.Errorf("Date = %v, %v", date, err)
		}
		for k, want := range map[string]string{
			"Message-Id":                "<" + id + "@gatehouse.example>",
			"Mime-Version":              "1.0",
			"Content-Type":              "text/plain; charset=utf-8",
			"Content-Transfer-Encoding": "quoted-printable",
		} {
			if h.Get(k) != want {
				t.Errorf("%s = %q, want %q", k, h.Get(k), want)
			}
		}
		decoded, err := io.ReadAll(quotedprintable.NewReader(p.Body))
		if err != nil {
			t.Fatal(err)
		}
		// The body ends with a line break, as RFC 5321 §4.1.1.4 requires.
		if want := strings.ReplaceAll(body, "\r\n", "\n") + "\n"; strings.ReplaceAll(string(decoded), "\r\n", "\n") != want {
			t.Errorf("body decodes to\n%q\nwant\n%q", decoded, want)
		}

		sent := outboxEmail(t, s, id)
		if sent.Body != "" || sent.Attempts != 0 || sent.ClaimedUntil != nil || pending(t, s) != 0 {
			t.Fatalf("after delivery: %+v", sent)
		}
	})
}

func TestMailStartTLS(t *testing.T) {
	sealer := newSealer(t)
	t.Run("RequiredButNotOffered", func(t *testing.T) {
		s := storetest.SQLite(t)
		srv := startSMTP(t, &smtpServer{}, "127.0.0.1")
		cfg := smtpConfig(srv)
		cfg.StartTLS = "" // the default: required
		id := queue(t, s, sealer, "ann@example.com", "Hello", "body")
		run(t, newTestSender(t, s, sealer, cfg, nil))
		waitFor(t, "two failed attempts", func() bool { return outboxEmail(t, s, id).Attempts >= 2 })
		m := outboxEmail(t, s, id)
		if !strings.Contains(m.LastError, "STARTTLS") || m.SentAt != nil || m.Body == "" {
			t.Fatalf("after the failures: %+v", m)
		}
		if conns, _ := srv.stats(); conns < 2 || len(srv.messages()) != 0 {
			t.Fatalf("the server saw %d connections and got %d messages; want ≥ 2 and none", conns, len(srv.messages()))
		}
	})
	t.Run("OpportunisticNotOffered", func(t *testing.T) {
		s := storetest.SQLite(t)
		srv := startSMTP(t, &smtpServer{}, "127.0.0.1")
		cfg := smtpConfig(srv)
		cfg.StartTLS = outbox.StartTLSOpportunistic
		queue(t, s, sealer, "ann@example.com", "Hello", "body")
		run(t, newTestSender(t, s, sealer, cfg, nil))
		waitFor(t, "the delivery", func() bool { return len(srv.messages()) == 1 })
		if srv.messages()[0].TLS {
			t.Fatal("delivered over TLS by a server without it")
		}
	})
	t.Run("InvalidMode", func(t *testing.T) {
		cfg := &outbox.SMTPConfig{Host: "127.0.0.1", From: "a@example.com", StartTLS: "maybe"}
		if _, err := outbox.NewSender(storetest.SQLite(t), sealer, cfg, nil); err == nil {
			t.Fatal("NewSender accepted StartTLS \"maybe\"")
		}
	})
}

// AUTH PLAIN after STARTTLS against a server with a self-signed
// certificate that the client trusts through RootCAs.
func TestMailAuthOverTLS(t *testing.T) {
	sealer := newSealer(t)
	serverTLS, roots := selfSigned(t)
	newServer := func(t *testing.T) *smtpServer {
		return startSMTP(t, &smtpServer{tlsConfig: serverTLS, users: map[string]string{"mailer": "s3cret pass"}}, "127.0.0.1")
	}
	t.Run("Delivered", func(t *testing.T) {
		s, srv := storetest.SQLite(t), newServer(t)
		cfg := smtpConfig(srv)
		cfg.StartTLS, cfg.TLSConfig = outbox.StartTLSRequired, &tls.Config{RootCAs: roots}
		cfg.Username, cfg.Password = "mailer", "s3cret pass"
		id := queue(t, s, sealer, "ann@example.com", "Hello", "body")
		run(t, newTestSender(t, s, sealer, cfg, nil))
		waitFor(t, "the delivery", func() bool { return len(srv.messages()) == 1 })
		if m := srv.messages()[0]; !m.TLS || m.User != "mailer" {
			t.Fatalf("delivered with TLS %v as %q", m.TLS, m.User)
		}
		waitFor(t, "the message marked sent", func() bool { return outboxEmail(t, s, id).SentAt != nil })
	})
	t.Run("WrongPassword", func(t *testing.T) {
		s, srv := storetest.SQLite(t), newServer(t)
		cfg := smtpConfig(srv)
		cfg.StartTLS, cfg.TLSConfig = outbox.StartTLSRequired, &tls.Config{RootCAs: roots}
		cfg.Username, cfg.Password = "mailer", "wrong"
		id := queue(t, s, sealer, "ann@example.com", "Hello", "body")
		run(t, newTestSender(t, s, sealer, cfg, nil))
		waitFor(t, "a failed attempt", func() bool { return outboxEmail(t, s, id).Attempts >= 1 })
		if m := outboxEmail(t, s, id); !strings.Contains(m.LastError, "AUTH") || len(srv.messages()) != 0 {
			t.Fatalf("last error %q, %d delivered", m.LastError, len(srv.messages()))
		}
		if _, auths := srv.stats(); auths == 0 {
			t.Fatal("the server saw no AUTH attempt")
		}
	})
	t.Run("UntrustedCertificate", func(t *testing.T) {
		s, srv := storetest.SQLite(t), newServer(t)
		cfg := smtpConfig(srv)
		cfg.StartTLS = outbox.StartTLSOpportunistic // offered, so used, so verified
		cfg.TLSConfig = &tls.Config{RootCAs: x509.NewCertPool()}
		cfg.Username, cfg.Password = "mailer", "s3cret pass"
		id := queue(t, s, sealer, "ann@example.com", "Hello", "body")
		run(t, newTestSender(t, s, sealer, cfg, nil))
		waitFor(t, "a failed attempt", func() bool { return outboxEmail(t, s, id).Attempts >= 1 })
		if m := outboxEmail(t, s, id); !strings.Contains(m.LastError, "certificate") || len(srv.messages()) != 0 {
			t.Fatalf("last error %q, %d delivered", m.LastError, len(srv.messages()))
		}
		if _, auths := srv.stats(); auths != 0 {
			t.Fatal("the password was sent to a server whose certificate does not verify")
		}
	})
}

// net/smtp's PlainAuth refuses to send credentials without TLS to any host
// but localhost; 127.0.0.2 is loopback too, but not a name it exempts.
func TestMailPlainAuthRefusedWithoutTLS(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	l.Close()
	sealer := newSealer(t)
	for _, tc := range []struct {
		host      string
		delivered bool
	}{{"127.0.0.2", false}, {"127.0.0.1", true}} {
		t.Run(tc.host, func(t *testing.T) {
			s := storetest.SQLite(t)
			srv := startSMTP(t, &smtpServer{users: map[string]string{"mailer": "pw"}, allowInsecureAuth: true}, tc.host)
			cfg := smtpConfig(srv)
			cfg.StartTLS, cfg.Username, cfg.Password = outbox.StartTLSOpportunistic, "mailer", "pw"
			id := queue(t, s, sealer, "ann@example.com", "Hello", "body")
			run(t, newTestSender(t, s, sealer, cfg, nil))
			if tc.delivered {
				waitFor(t, "the delivery", func() bool { return len(srv.messages()) == 1 })
				return
			}
			waitFor(t, "a failed attempt", func() bool { return outboxEmail(t, s, id).Attempts >= 1 })
			if m := outboxEmail(t, s, id); !strings.Contains(m.LastError, "unencrypted connection") {
				t.Fatalf("last error %q, want net/smtp's refusal", m.LastError)
			}
			if _, auths := srv.stats(); auths != 0 || len(srv.messages()) != 0 {
				t.Fatalf("%d AUTH attempts and %d messages reached the server", auths, len(srv.messages()))
			}
		})
	}
}

// A message queued while the SMTP server is down stays queued, with its
// attempts and last error, and is delivered once the server is back.
func TestMailSMTPDown(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		srv := startSMTP(t, &smtpServer{}, "127.0.0.1")
		srv.stop()
		sealer := newSealer(t)
		snd := run(t, newTestSender(t, s, sealer, smtpConfig(srv), nil))
		m := &outbox.Queue{Store: s, Sealer: sealer, Notify: snd.Notify}
		if err := m.Enqueue(context.Background(), "org-1", "ann@example.com", "While down", "the body"); err != nil {
			t.Fatal(err)
		}
		var id string
		reader, _ := s.DB()
		if err := reader.QueryRow(`SELECT id FROM outbox`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "failed attempts", func() bool { return outboxEmail(t, s, id).Attempts >= 2 })
		if m := outboxEmail(t, s, id); m.SentAt != nil || m.LastError == "" || pending(t, s) != 1 {
			t.Fatalf("while down: %+v", m)
		}
		srv.start()
		waitFor(t, "the delivery", func() bool { return len(srv.messages()) == 1 })
		waitFor(t, "the message marked sent", func() bool { return pending(t, s) == 0 })
		time.Sleep(20 * time.Millisecond) // a few more polls: nothing is sent twice
		if ids := messageIDs(srv.messages()); !slices.Equal(ids, []string{"<" + id + "@gatehouse.example>"}) {
			t.Fatalf("delivered %v", ids)
		}
	})
}

// dsns gives a test the two backends as database names it can open as often
// as it likes: a SQLite file and a PostgreSQL database.
func forEachDSN(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, storetest.PostgresURL(t))
	})
}

func openStore(t *testing.T, dsn string) *store.SQL {
	t.Helper()
	s, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Across a restart: one gatehouse queues two messages while the SMTP server
// is down, fails one, claims the other and dies holding the claim. A new
// gatehouse on the same database delivers both, each once, the claimed one
// only after its lease ended.
func TestMailAcrossRestart(t *testing.T) {
	forEachDSN(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		sealer := newSealer(t) // the server key outlives the process
		srv := startSMTP(t, &smtpServer{}, "127.0.0.1")
		srv.stop()

		first := openStore(t, dsn)
		failed := queue(t, first, sealer, "ann@example.com", "Failed before the restart", "body one")
		snd := run(t, newTestSender(t, first, sealer, smtpConfig(srv), nil))
		waitFor(t, "a failed attempt", func() bool { return outboxEmail(t, first, failed).Attempts >= 1 })
		snd.stop(t)
		claimed := queue(t, first, sealer, "bob@example.com", "Claimed before the restart", "body two")
		const lease = 300 * time.Millisecond
		ms, err := first.ClaimEmails(ctx, time.Now(), lease, 10)
		i := slices.IndexFunc(ms, func(m store.OutboxMessage) bool { return m.ID == claimed })
		if err != nil || i < 0 {
			t.Fatalf("claim = %v, %v", ms, err)
		}
		claimedUntil := *ms[i].ClaimedUntil
		first.Close()

		srv.start()
		second := openStore(t, dsn)
		run(t, newTestSender(t, second, sealer, smtpConfig(srv), nil))
		waitFor(t, "both deliveries", func() bool { return len(srv.messages()) == 2 })
		waitFor(t, "both marked sent", func() bool { return pending(t, second) == 0 })
		time.Sleep(20 * time.Millisecond) // a few more polls: nothing is sent twice
		got := srv.messages()
		ids := messageIDs(got)
		slices.Sort(ids)
		want := []string{"<" + failed + "@gatehouse.example>", "<" + claimed + "@gatehouse.example>"}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Fatalf("delivered %v, want %v once each", ids, want)
		}
		for _, m := range got {
			if slices.Contains(m.To, "bob@example.com") && m.At.Before(claimedUntil) {
				t.Fatalf("the claimed message was sent at %v, before its lease ended at %v", m.At, claimedUntil)
			}
		}
	})
}

// Two gatehouse instances on one database deliver each message once.
func TestMailTwoSenders(t *testing.T) {
	forEachDSN(t, func(t *testing.T, dsn string) {
		sealer := newSealer(t)
		srv := startSMTP(t, &smtpServer{}, "127.0.0.1")
		a, b := openStore(t, dsn), openStore(t, dsn)
		const n = 30
		want := map[string]bool{}
		for i := range n {
			want["<"+queue(t, a, sealer, "ann@example.com", "Message "+strconv.Itoa(i), "body")+"@gatehouse.example>"] = true
		}
		for _, s := range []store.Store{a, b} {
			snd := newTestSender(t, s, sealer, smtpConfig(srv), nil)
			snd.BatchSize = 2
			run(t, snd)
		}
		waitFor(t, "every delivery", func() bool { return len(srv.messages()) >= n })
		waitFor(t, "every message marked sent", func() bool { return pending(t, a) == 0 })
		time.Sleep(20 * time.Millisecond) // a few more polls: nothing is sent twice
		ids := messageIDs(srv.messages())
		seen := map[string]int{}
		for _, id := range ids {
			seen[id]++
			if !want[id] || seen[id] > 1 {
				t.Errorf("delivered %s (%d times)", id, seen[id])
			}
		}
		if len(ids) != n {
			t.Fatalf("delivered %d messages, want %d", len(ids), n)
		}
	})
}

// A Sender stopped while the SMTP server holds its message returns at once
// and leaves the message claimed; another Sender sends it when the lease
// ends, not before.
func TestMailStopMidSend(t *testing.T) {
	s, sealer := storetest.SQLite(t), newSealer(t)
	srv := startSMTP(t, &smtpServer{hold: make(chan struct{}), entered: make(chan struct{})}, "127.0.0.1")
	hold, entered := srv.hold, srv.entered
	t.Cleanup(func() { close(hold) })
	id := queue(t, s, sealer, "ann@example.com", "Held", "body")
	snd := newTestSender(t, s, sealer, smtpConfig(srv), nil)
	snd.SendTimeout = 5 * time.Second
	r := run(t, snd)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the message never reached DATA")
	}
	start := time.Now()
	r.stop(t)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Run took %v to stop", d)
	}
	m := outboxEmail(t, s, id)
	if m.SentAt != nil || m.Attempts != 0 || m.ClaimedUntil == nil || !m.ClaimedUntil.After(time.Now()) || m.Body == "" {
		t.Fatalf("after stopping mid-send: %+v, want it unsent and still claimed", m)
	}

	var offset atomic.Int64 // the second Sender's clock runs ahead by this
	second := newTestSender(t, s, sealer, smtpConfig(srv), nil)
	second.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	run(t, second)
	time.Sleep(30 * time.Millisecond) // several polls while the lease runs
	if n := len(srv.messages()); n != 0 {
		t.Fatalf("%d messages sent while the first Sender's lease ran", n)
	}
	offset.Store(int64(time.Until(*m.ClaimedUntil) + time.Millisecond))
	waitFor(t, "the delivery after the lease", func() bool { return len(srv.messages()) == 1 })
	waitFor(t, "the message marked sent", func() bool { return outboxEmail(t, s, id).SentAt != nil })
}

// The wait after each failure: 30s, 1m, 2m ... capped at 1h, ±10%.
func TestMailBackoff(t *testing.T) {
	s, sealer := storetest.SQLite(t), newSealer(t)
	srv := startSMTP(t, &smtpServer{}, "127.0.0.1")
	srv.stop()
	snd, err := outbox.NewSender(s, sealer, smtpConfig(srv), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if snd.BackoffBase != 30*time.Second || snd.BackoffMax != time.Hour || snd.PollInterval != time.Second {
		t.Fatalf("defaults: base %v, max %v, poll %v", snd.BackoffBase, snd.BackoffMax, snd.PollInterval)
	}
	snd.PollInterval = 5 * time.Millisecond
	var mu sync.Mutex
	fakeNow := time.Now().Add(time.Second)
	snd.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return fakeNow }
	id := queue(t, s, sealer, "ann@example.com", "Backoff", "body")
	r := run(t, snd)
	jittered := false
	for i := range 10 {
		waitFor(t, "attempt "+strconv.Itoa(i+1), func() bool { return outboxEmail(t, s, id).Attempts == i+1 })
		m := outboxEmail(t, s, id)
		mu.Lock()
		now := fakeNow
		mu.Unlock()
		wait := m.NextAttemptAt.Sub(now)
		want := min(30*time.Second<<i, time.Hour)
		lo, hi := want*9/10-time.Microsecond, min(want*11/10, time.Hour)+time.Microsecond
		if wait < lo || wait > hi {
			t.Fatalf("wait after failure %d = %v, want %v ±10%% and at most 1h", i+1, wait, want)
		}
		if wait.Round(time.Millisecond) != want {
			jittered = true
		}
		// Just before the next attempt is due, nothing happens.
		mu.Lock()
		fakeNow = m.NextAttemptAt.Add(-time.Millisecond)
		mu.Unlock()
		r.Notify()
		time.Sleep(15 * time.Millisecond)
		if a := outboxEmail(t, s, id).Attempts; a != i+1 {
			t.Fatalf("attempt %d came before the next attempt was due", a)
		}
		mu.Lock()
		fakeNow = m.NextAttemptAt
		mu.Unlock()
		r.Notify()
	}
	if !jittered {
		t.Fatal("every wait was exactly the nominal backoff: no jitter")
	}
}

func TestMailHeaderInjection(t *testing.T) {
	s, sealer := storetest.SQLite(t), newSealer(t)
	m := &outbox.Queue{Store: s, Sealer: sealer}
	for _, tc := range []struct{ to, subject, code string }{
		{"ann@example.com\r\nBcc: eve@evil.example", "Hello", admin.CodeInvalidEmail},
		{"ann@example.com\nBcc: eve@evil.example", "Hello", admin.CodeInvalidEmail},
		{"Ann\r\n <ann@example.com>", "Hello", admin.CodeInvalidEmail},
		{"not an address", "Hello", admin.CodeInvalidEmail},
		{"ann@example.com, eve@evil.example", "Hello", admin.CodeInvalidEmail},
		{"ann@example.com", "Hello\r\nBcc: eve@evil.example", admin.CodeInvalidSubject},
		{"ann@example.com", "Hello\nBcc: eve@evil.example", admin.CodeInvalidSubject},
		{"ann@example.com", "Hello\rX", admin.CodeInvalidSubject},
		{"ann@example.com", "Hello\x00", admin.CodeInvalidSubject},
		{"ann@example.com", "", admin.CodeInvalidSubject},
		{"ann@example.com", strings.Repeat("x", 501), admin.CodeInvalidSubject},
	} {
		_, err := m.Message("org-1", tc.to, tc.subject, "body")
		assertCode(t, err, tc.code)
		assertCode(t, m.Enqueue(context.Background(), "org-1", tc.to, tc.subject, "body"), tc.code)
	}
	if _, err := m.Message("org-1", "ann@example.com", "Hello", ""); err == nil {
		t.Fatal("Message accepted an empty body")
	}
	if n := pending(t, s); n != 0 {
		t.Fatalf("%d refused messages were queued", n)
	}
	for _, from := range []string{"noreply@gatehouse.example\r\nBcc: eve@evil.example", "not an address", ""} {
		cfg := &outbox.SMTPConfig{Host: "127.0.0.1", From: from}
		if _, err := outbox.NewSender(s, sealer, cfg, nil); err == nil {
			t.Errorf("NewSender accepted From %q", from)
		}
	}
}

// syncBuffer is a bytes.Buffer that a logger writes while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Without an SMTP server the message goes to the log, body included, so
// that a local install shows its activation link.
func TestMailNoSMTPLogs(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		var logs syncBuffer
		logger := slog.New(slog.NewTextHandler(&logs, nil))
		sealer := newSealer(t)
		link := "https://gatehouse.example/activate?token=c2VjcmV0LXRva2Vu"
		id := queue(t, s, sealer, "ann@example.com", "Activate your account", "Hello Ann,\n\nActivate: "+link+"\n")
		run(t, newTestSender(t, s, sealer, nil, logger))
		waitFor(t, "the message marked sent", func() bool { return outboxEmail(t, s, id).SentAt != nil })
		out := logs.String()
		var line string
		for l := range strings.Lines(out) {
			if strings.Contains(l, link) {
				line = l
			}
		}
		if line == "" || !strings.Contains(line, "level=INFO") || !strings.Contains(line, "ann@example.com") || !strings.Contains(line, "Activate your account") {
			t.Fatalf("no INFO line with the recipient, subject and link in the log:\n%s", out)
		}
		if m := outboxEmail(t, s, id); m.Body != "" || pending(t, s) != 0 {
			t.Fatalf("after logging: %+v", m)
		}
	})
}
