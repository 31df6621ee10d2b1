package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"gatehouse/admin"
)

// maxLogoutAdministrators bounds a logout run: each is a sign-in (a
// password hash checked) and a deactivation.
const maxLogoutAdministrators = 10_000

func runLogout(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("logout")
	bases := fs.String("base", "", "gatehouse instances on this machine sharing one database, comma-separated, e.g. http://127.0.0.1:8080,http://127.0.0.1:8081 (required)")
	dsn := fs.String("db", "", "their database, where the administrators and the client are prepared (required)")
	slug := fs.String("org", "", "slug of an existing organization with SCIM enabled (required)")
	token := fs.String("token", "", "the organization's SCIM bearer token (required)")
	n := fs.Int("administrators", 100, "administrators signed in to the client, then deactivated")
	interval := fs.Duration("interval", 0, "pause between two deactivations (0: back to back, an offboarding in bulk)")
	wait := fs.Duration("wait", 30*time.Second, "how long after the last deactivation the logouts may take to arrive")
	jsonOut := fs.String("json", "", "also write the results to this file, as JSON")
	err := parse(fs, stdout, "--base URL[,URL] --db DSN --org SLUG --token TOKEN [flags]",
		"Measures the delay from a SCIM deactivation's 2xx to the application's back-channel\n"+
			"logout endpoint receiving the logout token (issue #14). Listens on a loopback\n"+
			"port as the application, prepares in the database a client logging out there\n"+
			"(removed at the end) and N active administrators with a password, signs each\n"+
			"in to the client (password sign-in, /authorize, code exchange) on the instances\n"+
			"in turn, then deactivates them one after another with SCIM PATCH active=false,\n"+
			"the instances in turn, and matches every logout token to its administrator by\n"+
			"sub. Prints p50, p99 and max. Exits 1 when a logout is missing, repeated or\n"+
			"unexpected.", args)
	if err != nil {
		return err
	}
	var origins []string
	for b := range strings.SplitSeq(*bases, ",") {
		o, err := loopbackBase(strings.TrimSpace(b))
		if err != nil {
			return err
		}
		origins = append(origins, o)
	}
	switch {
	case *dsn == "" || *slug == "" || *token == "":
		return usagef("logout: --db, --org and --token are required (see 'scimload logout --help')")
	case *n < 1 || *n > maxLogoutAdministrators:
		return usagef("logout: --administrators must be from 1 to %d", maxLogoutAdministrators)
	case *interval < 0 || *wait <= 0:
		return usagef("logout: --interval cannot be negative and --wait must be positive")
	}

	rcv, err := startLogoutReceiver()
	if err != nil {
		return err
	}
	defer rcv.close()
	prep, err := openPrep(ctx, *dsn, *slug)
	if err != nil {
		return err
	}
	defer prep.close()
	runID := fmt.Sprintf("%x", time.Now().UnixNano())
	rp, err := prep.client(ctx, "scimload logout "+runID, origins[0], rcv.url)
	if err != nil {
		return err
	}
	defer prep.removeClient(rp.id)
	hash, err := admin.HashPassword(opPassword)
	if err != nil {
		return err
	}
	names := make([]string, *n)
	ids := make([]string, *n)
	for i := range names {
		names[i] = fmt.Sprintf("logout-%s-%05d@example.com", runID, i+1)
		a, err := prep.administrators(ctx, names[i:i+1], hash)
		if err != nil {
			return err
		}
		ids[i] = a.ID
	}
	fmt.Fprintf(stdout, "scimload logout: %d administrators, %d instances, receiver %s\n", *n, len(origins), rcv.url)
	start := time.Now()
	api := newClient(1)
	for i, name := range names {
		on := *rp
		on.origin = origins[i%len(origins)]
		browser := newBrowser()
		if _, err := on.signIn(ctx, browser, *slug, name); err != nil {
			return err
		}
		code, err := on.authorize(ctx, browser)
		if err != nil {
			return err
		}
		on.origin = origins[(i+1)%len(origins)] // the code is redeemed on the other instance
		if _, err := on.exchange(ctx, api, code); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "signed in %d administrators in %s\n", *n, time.Since(start).Round(time.Millisecond))

	deactivated := make(map[string]time.Time, *n)
	body := []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
	for i, id := range ids {
		t := target{base: origins[i%len(origins)] + scimPath, token: *token}
		if err := t.exchange(ctx, api, http.MethodPatch, "/Users/"+url.PathEscape(id), body, nil, http.StatusOK); err != nil {
			return fmt.Errorf("deactivate %s: %w", names[i], err)
		}
		deactivated[id] = time.Now()
		if *interval > 0 {
			time.Sleep(*interval)
		}
	}
	deadline := time.Now().Add(*wait)
	for time.Now().Before(deadline) && ctx.Err() == nil && rcv.count(ids) < len(ids) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // repeats arrive late, if at all
	rep := rcv.report(deactivated)
	rep.Instances, rep.Administrators, rep.IntervalSeconds = len(origins), *n, interval.Seconds()
	rep.print(stdout)
	if *jsonOut != "" {
		if err := writeJSONFile(*jsonOut, rep); err != nil {
			return err
		}
	}
	switch {
	case ctx.Err() != nil:
		return errors.New("interrupted")
	case rep.Missing > 0 || rep.Repeated > 0 || rep.Unexpected > 0:
		return fmt.Errorf("%d logouts missing, %d repeated, %d unexpected", rep.Missing, rep.Repeated, rep.Unexpected)
	}
	return nil
}

// logoutReceiver is the application's back-channel logout endpoint: it
// records when each logout token arrives, by its sub. It does not verify
// the signature (the tests do): it measures delivery.
type logoutReceiver struct {
	url string
	srv *http.Server
	mu  sync.Mutex
	got map[string][]time.Time
	bad int // requests without a readable logout token
}

func startLogoutReceiver() (*logoutReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rcv := &logoutReceiver{url: "http://" + ln.Addr().String() + "/backchannel", got: map[string][]time.Time{}}
	rcv.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(rcv.serve)}
	go rcv.srv.Serve(ln)
	return rcv, nil
}

func (rcv *logoutReceiver) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	sub, err := logoutSubject(r.FormValue("logout_token"))
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if err != nil {
		rcv.bad++
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rcv.got[sub] = append(rcv.got[sub], at)
}

// logoutSubject reads the sub of a logout token (a JWS in compact form)
// without verifying it.
func logoutSubject(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("not a JWS in compact form")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var c struct {
		Sub    string         `json:"sub"`
		Events map[string]any `json:"events"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", err
	}
	if c.Sub == "" || c.Events["http://schemas.openid.net/event/backchannel-logout"] == nil {
		return "", errors.New("no sub or no back-channel logout event")
	}
	return c.Sub, nil
}

// count is how many of ids have received a logout.
func (rcv *logoutReceiver) count(ids []string) int {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	n := 0
	for _, id := range ids {
		if len(rcv.got[id]) > 0 {
			n++
		}
	}
	return n
}

func (rcv *logoutReceiver) close() { rcv.srv.Close() }

// logoutReport is a logout run's figures: the delays of the first logout
// of each administrator from their deactivation's 2xx.
type logoutReport struct {
	Instances       int     `json:"instances"`
	Administrators  int     `json:"administrators"`
	IntervalSeconds float64 `json:"interval_seconds"`
	Received        int     `json:"received"`
	Missing         int     `json:"missing"`
	Repeated        int     `json:"repeated"`   // administrators with more than one logout
	Unexpected      int     `json:"unexpected"` // logouts of no deactivated administrator, or unreadable
	P50Ms           float64 `json:"p50_ms"`
	P99Ms           float64 `json:"p99_ms"`
	MaxMs           float64 `json:"max_ms"`
}

func (rcv *logoutReceiver) report(deactivated map[string]time.Time) logoutReport {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	rep := logoutReport{Unexpected: rcv.bad}
	var delays []time.Duration
	for sub, times := range rcv.got {
		at, ok := deactivated[sub]
		if !ok {
			rep.Unexpected += len(times)
			continue
		}
		if len(times) > 1 {
			rep.Repeated++
		}
		delays = append(delays, times[0].Sub(at)) // times are in arrival order
	}
	rep.Received = len(delays)
	rep.Missing = len(deactivated) - len(delays)
	if len(delays) > 0 {
		slices.Sort(delays)
		rep.P50Ms, rep.P99Ms, rep.MaxMs = percentileMs(delays, 0.50), percentileMs(delays, 0.99), percentileMs(delays, 1)
	}
	return rep
}

func (rep logoutReport) print(w io.Writer) {
	fmt.Fprintf(w, "logouts received %d of %d (missing %d, repeated %d, unexpected %d)\n",
		rep.Received, rep.Administrators, rep.Missing, rep.Repeated, rep.Unexpected)
	fmt.Fprintf(w, "delay from the SCIM 2xx: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", rep.P50Ms, rep.P99Ms, rep.MaxMs)
}
