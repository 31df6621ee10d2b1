// Package outbox holds gatehouse's email: Queue validates an email and
// turns it into an outbox row (the body sealed) for the write that sends
// it to queue in its own transaction, and Sender, in every gatehouse
// instance, claims due messages for a lease and delivers them over SMTP
// (STARTTLS, AUTH PLAIN, quoted-printable UTF-8 bodies, RFC 2047 subjects),
// retrying failures with capped exponential backoff. Without an SMTP server
// it writes the messages to the log. Nothing is lost while the SMTP server
// is down or gatehouse restarts, and instances sharing a PostgreSQL
// database send each message once in the normal case.
//
// Delivery is at least once, not exactly once: an instance that stops after
// the SMTP server accepted a message but before it recorded the fact sends
// it again once its lease ends. The Message-ID header stays the same on
// every attempt, so a mail client can recognise the duplicate.
//
// The texts of the emails belong to the rules that send them (package
// admin: invitations, activation, password reset); they reach this package
// through admin.Mailer, which *Queue implements.
package outbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"gatehouse/admin"
	"gatehouse/store"
)

// maxSubject bounds a subject, in characters: room for an organization
// name (200) and the text around it, while the header line of an ASCII
// subject stays under SMTP's 998 bytes (a non-ASCII one is folded).
const maxSubject = 500

// Queue queues emails in the outbox.
type Queue struct {
	Store  store.Store
	Sealer *admin.Sealer // seals queued bodies, which may carry a secret link; required
	// Now is the clock; nil means time.Now. The outbox stamps its own
	// queue time, so Queue does not use it yet.
	Now    func() time.Time
	Logger *slog.Logger // nil: slog.Default()
	// Notify, when set, is called after Enqueue committed a message:
	// Sender.Notify, so that the local Sender sends it at once.
	Notify func()
}

// Message validates an email and returns it as an outbox row for a store
// transaction to write: a new ID, and the body sealed with the context
// "outbox:" + ID so that a body copied to another row does not open. A
// recipient that is not one address, or a subject or recipient with a line
// break in it (header injection), is an *admin.Error.
func (m *Queue) Message(orgID, to, subject, body string) (store.OutboxMessage, error) {
	if _, err := parseRecipient(to); err != nil {
		return store.OutboxMessage{}, err
	}
	if err := checkSubject(subject); err != nil {
		return store.OutboxMessage{}, err
	}
	if body == "" {
		return store.OutboxMessage{}, errors.New("outbox: an email needs a body")
	}
	if !utf8.ValidString(body) {
		return store.OutboxMessage{}, errors.New("outbox: an email body must be UTF-8 text")
	}
	id := uuid.NewString()
	return store.OutboxMessage{
		ID:        id,
		OrgID:     orgID,
		Recipient: to,
		Subject:   subject,
		Body:      m.Sealer.Seal(body, outboxContext(id)),
	}, nil
}

// Enqueue queues one email on its own transaction (see Message).
func (m *Queue) Enqueue(ctx context.Context, orgID, to, subject, body string) error {
	msg, err := m.Message(orgID, to, subject, body)
	if err != nil {
		return err
	}
	if _, err := m.Store.EnqueueEmail(ctx, msg); err != nil {
		return err
	}
	m.logger().DebugContext(ctx, "email queued", "id", msg.ID, "org", orgID, "to", to)
	if m.Notify != nil {
		m.Notify()
	}
	return nil
}

func (m *Queue) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

func outboxContext(id string) string { return "outbox:" + id }

// parseRecipient accepts one address, with or without a display name, and
// no line break anywhere (net/mail would unfold one).
func parseRecipient(to string) (*mail.Address, error) {
	if strings.ContainsAny(to, "\r\n") {
		return nil, refuse(admin.CodeInvalidEmail, "the recipient %q contains a line break", to)
	}
	a, err := mail.ParseAddress(to)
	if err != nil || hasControl(a.Name) || hasControl(a.Address) {
		return nil, refuse(admin.CodeInvalidEmail, "the recipient %q is not an email address", to)
	}
	return a, nil
}

func checkSubject(subject string) error {
	switch {
	case strings.ContainsAny(subject, "\r\n"):
		return refuse(admin.CodeInvalidSubject, "the subject %q contains a line break", subject)
	case strings.TrimSpace(subject) == "":
		return refuse(admin.CodeInvalidSubject, "the subject is empty")
	case !utf8.ValidString(subject) || hasControl(subject):
		return refuse(admin.CodeInvalidSubject, "the subject %q contains a control character", subject)
	case utf8.RuneCountInString(subject) > maxSubject:
		return refuse(admin.CodeInvalidSubject, "the subject is longer than %d characters", maxSubject)
	}
	return nil
}

func refuse(code, format string, args ...any) *admin.Error {
	return &admin.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

// SMTPConfig is how a Sender reaches the SMTP server.
type SMTPConfig struct {
	Host string
	Port int // 0 means 587 (submission)
	// Username and Password, when Username is set, authenticate with AUTH
	// PLAIN. net/smtp refuses to send them over a connection without TLS
	// unless Host is "localhost", "127.0.0.1" or "::1".
	Username, Password string
	From               string // the From header, "Name <address>" or an address
	// StartTLS is "required" (the default: a server that does not offer
	// STARTTLS, or whose certificate does not verify, gets nothing),
	// "opportunistic" (TLS when the server offers it; the credentials are
	// still never sent in clear to a remote host), or "none".
	StartTLS string
	// TLSConfig verifies the server (tests set RootCAs); nil verifies
	// Host against the system roots.
	TLSConfig *tls.Config
}

// StartTLS modes.
const (
	StartTLSRequired      = "required"
	StartTLSOpportunistic = "opportunistic"
	StartTLSNone          = "none"
)

// Sender delivers the outbox: it claims due messages, sends each, and
// records the outcome; a failed message is retried with exponential backoff
// (BackoffBase, doubling, capped at BackoffMax, ±10% jitter) for as long as
// it takes. Any number of Senders may serve one database.
//
// The exported fields are defaults set by NewSender; change them before Run.
type Sender struct {
	PollInterval time.Duration // how often to look for due messages; 1s
	Lease        time.Duration // how long a claim excludes other Senders; 5m
	BackoffBase  time.Duration // the wait after a first failure; 30s
	BackoffMax   time.Duration // the longest wait between attempts; 1h
	BatchSize    int           // messages claimed at once; 10
	DialTimeout  time.Duration // to connect to the SMTP server; 10s
	SendTimeout  time.Duration // for the whole SMTP conversation of a message; 30s
	Now          func() time.Time

	store  store.Store
	sealer *admin.Sealer
	smtp   *SMTPConfig // nil: log the messages instead
	from   *mail.Address
	log    *slog.Logger
	wake   chan struct{}
}

// NewSender returns a Sender that delivers through cfg, or, with cfg nil,
// writes each message (body included, so a local install shows its
// activation links) to the log at INFO level and counts it as sent. The
// store and sealer must be those the messages were queued with.
func NewSender(s store.Store, sealer *admin.Sealer, cfg *SMTPConfig, logger *slog.Logger) (*Sender, error) {
	if s == nil || sealer == nil {
		return nil, errors.New("outbox: a Sender needs a store and the sealer of the queued bodies")
	}
	if logger == nil {
		logger = slog.Default()
	}
	snd := &Sender{
		PollInterval: time.Second,
		Lease:        5 * time.Minute,
		BackoffBase:  30 * time.Second,
		BackoffMax:   time.Hour,
		BatchSize:    10,
		DialTimeout:  10 * time.Second,
		SendTimeout:  30 * time.Second,
		Now:          time.Now,
		store:        s,
		sealer:       sealer,
		log:          logger,
		wake:         make(chan struct{}, 1),
	}
	if cfg == nil {
		return snd, nil
	}
	c := *cfg
	if c.Host == "" {
		return nil, errors.New("outbox: smtp: no host")
	}
	if c.Port == 0 {
		c.Port = 587
	}
	if c.Port < 0 || c.Port > 65535 {
		return nil, fmt.Errorf("outbox: smtp: invalid port %d", c.Port)
	}
	switch c.StartTLS {
	case "":
		c.StartTLS = StartTLSRequired
	case StartTLSRequired, StartTLSOpportunistic, StartTLSNone:
	default:
		return nil, fmt.Errorf("outbox: smtp: StartTLS must be %q, %q or %q, not %q",
			StartTLSRequired, StartTLSOpportunistic, StartTLSNone, c.StartTLS)
	}
	from, err := mail.ParseAddress(c.From)
	if err != nil || strings.ContainsAny(c.From, "\r\n") {
		return nil, fmt.Errorf("outbox: smtp: the sender address %q is not an email address", c.From)
	}
	if c.TLSConfig == nil {
		c.TLSConfig = &tls.Config{}
	}
	c.TLSConfig = c.TLSConfig.Clone()
	if c.TLSConfig.ServerName == "" {
		c.TLSConfig.ServerName = c.Host
	}
	if c.TLSConfig.MinVersion == 0 {
		c.TLSConfig.MinVersion = tls.VersionTLS12
	}
	snd.smtp, snd.from = &c, from
	return snd, nil
}

// Notify wakes Run to look for due messages now (after a message was
// queued). It never blocks.
func (s *Sender) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx is done. A message claimed when ctx ends is not
// lost: it is sent by whichever Sender claims it after its lease.
func (s *Sender) Run(ctx context.Context) {
	timer := time.NewTimer(s.PollInterval)
	defer timer.Stop()
	for {
		full := s.deliverBatch(ctx)
		if ctx.Err() != nil {
			return
		}
		if full { // more may be due
			continue
		}
		timer.Reset(s.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// deliverBatch claims and sends one batch; it reports whether the batch
// was full.
func (s *Sender) deliverBatch(ctx context.Context) bool {
	msgs, err := s.store.ClaimEmails(ctx, s.Now(), s.Lease, s.BatchSize)
	if err != nil {
		if ctx.Err() == nil {
			s.log.ErrorContext(ctx, "outbox: claim", "err", err)
		}
		return false
	}
	for _, m := range msgs {
		if ctx.Err() != nil {
			return false
		}
		// Send only while the lease lasts, or another Sender may claim
		// the message meanwhile and send it too.
		if m.ClaimedUntil != nil && s.Now().Add(s.SendTimeout).After(*m.ClaimedUntil) {
			continue
		}
		s.deliver(ctx, m)
	}
	return len(msgs) == s.BatchSize
}

func (s *Sender) deliver(ctx context.Context, m store.OutboxMessage) {
	err := s.send(ctx, m)
	if ctx.Err() != nil && err != nil {
		return // stopped: the message waits for its lease to end
	}
	// Record the outcome even if ctx ended just now: a message the server
	// accepted must not be sent again for want of this write.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err == nil {
		if err := s.store.MarkEmailSent(rctx, m.ID, s.Now()); err != nil {
			s.log.ErrorContext(ctx, "outbox: mark sent", "id", m.ID, "err", err)
		}
		return
	}
	wait := s.backoff(m.Attempts)
	level := slog.LevelWarn
	if m.Attempts >= 5 {
		level = slog.LevelError
	}
	s.log.Log(ctx, level, "outbox: email not sent", "id", m.ID, "to", m.Recipient, "attempts", m.Attempts+1, "retry_in", wait, "err", err)
	if err := s.store.MarkEmailFailed(rctx, m.ID, err.Error(), s.Now().Add(wait)); err != nil {
		s.log.ErrorContext(ctx, "outbox: mark failed", "id", m.ID, "err", err)
	}
}

// backoff is the wait after the failure of attempt number attempts+1:
// BackoffBase doubled per earlier failure, capped at BackoffMax, then
// spread by ±10% so that messages that failed together do not retry
// together (still capped).
func (s *Sender) backoff(attempts int) time.Duration {
	d := s.BackoffBase
	for range min(attempts, 62) {
		if d >= s.BackoffMax {
			break
		}
		d *= 2
	}
	d = min(d, s.BackoffMax)
	d = time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
	return min(d, s.BackoffMax)
}

// send delivers one message, or logs it when no SMTP server is configured.
func (s *Sender) send(ctx context.Context, m store.OutboxMessage) error {
	body, err := s.sealer.Open(m.Body, outboxContext(m.ID))
	if err != nil {
		return fmt.Errorf("outbox: body: %w", err)
	}
	if s.smtp == nil {
		s.log.InfoContext(ctx, "email (no SMTP server configured)", "id", m.ID, "to", m.Recipient, "subject", m.Subject, "body", body)
		return nil
	}
	to, err := parseRecipient(m.Recipient)
	if err != nil {
		return err
	}
	if err := checkSubject(m.Subject); err != nil {
		return err
	}
	msg := s.render(m, to, body)
	return s.transmit(ctx, to.Address, msg)
}

// render builds the RFC 5322 message: UTF-8 text, quoted-printable so that
// every line stays short and 7-bit whatever the body holds, the subject and
// display names as RFC 2047 encoded words when they are not ASCII.
func (s *Sender) render(m store.OutboxMessage, to *mail.Address, body string) []byte {
	domain := s.from.Address[strings.LastIndexByte(s.from.Address, '@')+1:]
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", s.from.String())
	header("To", to.String())
	header("Subject", foldEncodedWords(mime.QEncoding.Encode("utf-8", m.Subject)))
	header("Date", s.Now().Format(time.RFC1123Z))
	// The same on every attempt: a duplicate (at-least-once delivery) is
	// recognisable.
	header("Message-ID", "<"+m.ID+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(body)) // writes to a bytes.Buffer do not fail
	qp.Close()
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		// The message ends with a line break (RFC 5321 §4.1.1.4); net/smtp
		// would add it, but then the message sent is not the one built.
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// foldEncodedWords puts each RFC 2047 encoded word mime produced on a
// line of its own (RFC 2047 §2: a header line with encoded words stays
// under 76 characters), so a long subject does not make a long line.
func foldEncodedWords(v string) string {
	return strings.ReplaceAll(v, "?= =?", "?=\r\n =?")
}

// transmit runs one SMTP conversation within SendTimeout.
func (s *Sender) transmit(ctx context.Context, to string, msg []byte) error {
	cfg := s.smtp
	ctx, cancel := context.WithTimeout(ctx, s.SendTimeout)
	defer cancel()
	d := net.Dialer{Timeout: s.DialTimeout}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("outbox: smtp: %w", err)
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, cfg.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("outbox: smtp %s: %w", addr, err)
	}
	defer c.Close()
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("outbox: smtp %s: %s: %w", addr, what, err)
		}
		return nil
	}
	if err := step("EHLO", c.Hello("localhost")); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok && cfg.StartTLS != StartTLSNone {
		if err := step("STARTTLS", c.StartTLS(cfg.TLSConfig)); err != nil {
			return err
		}
	} else if cfg.StartTLS == StartTLSRequired {
		return fmt.Errorf("outbox: smtp %s: the server does not offer STARTTLS, which the configuration requires", addr)
	}
	if cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("outbox: smtp %s: the server does not offer AUTH, and a username is configured", addr)
		}
		// PlainAuth refuses a connection without TLS to a host other
		// than localhost: the password never travels in clear.
		if err := step("AUTH", c.Auth(smtp.PlainAuth("", cfg.Username, cfg.Password, cfg.Host))); err != nil {
			return err
		}
	}
	if err := step("MAIL FROM", c.Mail(s.from.Address)); err != nil {
		return err
	}
	if err := step("RCPT TO", c.Rcpt(to)); err != nil {
		return err
	}
	w, err := c.Data()
	if err := step("DATA", err); err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return step("DATA", err)
	}
	if err := step("end of DATA", w.Close()); err != nil {
		return err
	}
	// The server has the message; a failing QUIT changes nothing.
	c.Quit()
	return nil
}
