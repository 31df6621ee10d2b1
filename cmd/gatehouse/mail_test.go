package main

import (
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// inbox is a real SMTP server on loopback that keeps what it accepts.
type inbox struct {
	mu   sync.Mutex
	msgs [][]byte
	rcpt []string
}

func (in *inbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &inboxSession{in: in}, nil }

type inboxSession struct {
	in *inbox
	to []string
}

func (x *inboxSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *inboxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}
func (x *inboxSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.in.mu.Lock()
	x.in.msgs, x.in.rcpt = append(x.in.msgs, b), append(x.in.rcpt, x.to...)
	x.in.mu.Unlock()
	return nil
}
func (x *inboxSession) Reset()        { x.to = nil }
func (x *inboxSession) Logout() error { return nil }

// TestServeEmailOverSMTP: with --smtp-host, an invitation made through the
// management API of a running gatehouse serve reaches the SMTP server from
// the outbox (the configured From, the invitee as the only recipient), and
// the link it carries activates the account: the body was sealed when
// queued and opened by the sender with the same key.
func TestServeEmailOverSMTP(t *testing.T) {
	in, port := smtpInbox(t)

	env := map[string]string{"GATEHOUSE_DB": "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")}
	if r := gatehouse(t, env, orgArgs("acme", "--domain", "example.com")...); r.code != 0 {
		t.Fatal(r.stderr)
	}
	key := strings.TrimSpace(gatehouse(t, env, "api-key", "create", "--org", "acme", "--name", "test").stdout)
	addr := freeAddr(t)
	srv := startServe(t, addr, env, "--addr", addr, "--smtp-host", "127.0.0.1", "--smtp-port", port,
		"--smtp-starttls", "none", "--smtp-from", "Acme admin <noreply@example.com>")
	call := func(method, path, body string, header map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest(method, srv.base+"/api/v1"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		return do(t, req)
	}
	res, body := call("POST", "/administrators", `{"username":"JDoe","firstName":"Jane","lastName":"Doe","email":"jdoe@example.com"}`,
		map[string]string{"Authorization": "Bearer " + key})
	if res.StatusCode != 201 {
		t.Fatalf("invite: %d %s", res.StatusCode, body)
	}
	var raw []byte
	for deadline := time.Now().Add(10 * time.Second); raw == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		in.mu.Lock()
		if len(in.msgs) > 0 {
			raw = in.msgs[0]
		}
		in.mu.Unlock()
	}
	if raw == nil {
		t.Fatalf("no email reached the SMTP server; serve's log:\n%s", srv.stderr.String())
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("the email is not a message: %v\n%s", err, raw)
	}
	text, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	in.mu.Lock()
	rcpt := in.rcpt
	in.mu.Unlock()
	if from := msg.Header.Get("From"); from != `"Acme admin" <noreply@example.com>` || len(rcpt) != 1 || rcpt[0] != "jdoe@example.com" {
		t.Errorf("From %q, recipients %q", from, rcpt)
	}
	m := regexp.MustCompile(`activate\?token=([A-Za-z0-9_-]+)`).FindSubmatch(text)
	if m == nil {
		t.Fatalf("no activation link in the email:\n%s", text)
	}
	res, body = call("POST", "/activation", `{"token":"`+string(m[1])+`","password":"a very good passphrase"}`, nil)
	if res.StatusCode != 200 || !strings.Contains(body, `"status":"Active"`) {
		t.Fatalf("activate with the emailed link: %d %s", res.StatusCode, body)
	}
}

// smtpInbox starts a loopback SMTP server and returns it with its port.
func smtpInbox(t *testing.T) (*inbox, string) {
	t.Helper()
	in := &inbox{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := smtp.NewServer(in)
	s.Domain = "localhost"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return in, port
}
