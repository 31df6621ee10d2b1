// Package export copies each organization's audit log and login history
// to the organization's S3 bucket (admin.S3Exports holds the settings).
// An Exporter runs in every gatehouse serve; one at a time exports a given
// organization, under a lease kept in the database.
//
// # Objects
//
// One object per organization, stream and UTC hour, JSON Lines sorted by
// seq, at a key that depends on nothing else:
//
//	<prefix>/<org slug>/audit/2026/12/03/14.jsonl
//	<prefix>/<org slug>/login/2026/12/03/14.jsonl
//
// An entry belongs to the hour of its time, which never changes. The hour
// in progress is written again as it grows (every Interval, a minute by
// default), so entries reach the bucket within minutes; an hour is
// complete once it has passed and its last entries were exported.
//
// # Exactly once
//
// Each run reads the settled entries after the stream's cursor (see
// store.ExportAuditAfter), and for each hour they fall in reads the hour's
// object back, adds the entries it does not hold yet (by seq) and writes
// it; then it advances the cursor. Writing an object is a merge by seq,
// so doing it twice leaves the same object: an instance that dies after
// writing and before advancing the cursor leaves the next run to write the
// same entries again, and the bucket still holds each entry exactly once.
// Nothing is missing: the cursor only passes entries already written.
//
// # The lease
//
// The run holds the organization's lease (store.ClaimS3Export), twice
// OpTimeout long, and renews it before each object, whose requests to S3
// must end within OpTimeout: an instance that stalls cannot write over a
// newer holder's object after losing the lease.
package export

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"gatehouse/admin"
	"gatehouse/store"
)

// Exporter exports the organizations' logs to their buckets. The exported
// fields are defaults set by New; change them before Run.
type Exporter struct {
	PollInterval time.Duration // how often to look for an export that is due; 5s
	Interval     time.Duration // how soon an organization is exported again after a run; 1m
	RetryMax     time.Duration // the longest wait after failures (doubling from Interval); 15m
	Batch        int           // entries read and merged at once; 5000
	// OpTimeout bounds the requests to S3 for one object; 60s. The lease
	// is twice as long (2m).
	OpTimeout time.Duration
	// HTTPClient makes the requests to S3; nil is http.DefaultClient.
	// gatehouse serve gives the SSRF-guarded client of package fetch: an
	// organization's endpoint is a URL its administrator typed.
	HTTPClient *http.Client
	Now        func() time.Time

	store  store.Store
	sealer *admin.Sealer
	log    *slog.Logger
	// beforeAdvance, in tests, runs between writing a batch's objects and
	// advancing the cursor; an error stops the run there, as a crash would.
	beforeAdvance func(stream store.ExportStream) error
}

// New returns an Exporter reading s, opening the secret access keys with
// sealer (the one admin.S3Exports sealed them with).
func New(s store.Store, sealer *admin.Sealer, logger *slog.Logger) *Exporter {
	if logger == nil {
		logger = slog.Default()
	}
	return &Exporter{PollInterval: 5 * time.Second, Interval: time.Minute, RetryMax: 15 * time.Minute,
		Batch: 5000, OpTimeout: time.Minute, Now: time.Now, store: s, sealer: sealer, log: logger}
}

// Run exports until ctx is done. An export interrupted by the end of ctx
// loses nothing: the next run starts from its cursors.
func (x *Exporter) Run(ctx context.Context) {
	for {
		ran, err := x.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			x.log.WarnContext(ctx, "s3 export", "err", err)
		}
		if ran && ctx.Err() == nil {
			continue // another may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(x.PollInterval):
		}
	}
}

// RunOnce claims one export that is due and runs it. It reports whether it
// claimed one; the error is the store's (the run's own outcome is recorded
// as the export's status).
func (x *Exporter) RunOnce(ctx context.Context) (bool, error) {
	e, err := x.store.ClaimS3Export(ctx, x.Now(), x.lease())
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r := &run{x: x, e: e}
	runErr := r.export(ctx)
	if ctx.Err() != nil && runErr != nil {
		return true, nil // stopped: the lease ends by itself, the cursors hold
	}
	if errors.Is(runErr, errLeaseLost) {
		return true, nil // another instance holds it now and records its own outcome
	}
	now := x.Now()
	next, text := now.Add(x.Interval), ""
	if runErr != nil {
		text = runErr.Error()
		wait := x.Interval << min(e.Failures, 16)
		next = now.Add(min(wait, x.RetryMax))
		x.log.WarnContext(ctx, "s3 export failed", "org", e.OrgID, "bucket", e.Bucket, "err", text)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := x.store.ReleaseS3Export(rctx, e.OrgID, e.LeaseToken, now, next, text); err != nil && !errors.Is(err, store.ErrConflict) {
		return true, err
	}
	return true, nil
}

// lease is how long a claim excludes the other instances: the time of one
// object's requests (OpTimeout) and as much again for the store's writes
// around them.
func (x *Exporter) lease() time.Duration { return 2 * x.OpTimeout }

var errLeaseLost = errors.New("s3 export: the lease was lost to another instance")

// run is one export of one organization.
type run struct {
	x      *Exporter
	e      store.S3Export
	client *s3.Client
	slug   string
}

func (r *run) export(ctx context.Context) error {
	secret, err := r.x.sealer.Open(r.e.SecretAccessKey, admin.S3ExportSecretContext(r.e.OrgID))
	if err != nil {
		return errors.New("the secret access key does not open with this instance's secret key; save it again, or give every instance the same GATEHOUSE_SECRET_KEY")
	}
	org, err := r.x.store.Org(ctx, r.e.OrgID)
	if err != nil {
		return fmt.Errorf("reading the organization: %w", err)
	}
	r.slug = org.Slug
	r.client = newClient(r.e, secret, r.x.HTTPClient)
	if err := r.stream(ctx, store.ExportAudit, r.e.AuditCursor); err != nil {
		return err
	}
	return r.stream(ctx, store.ExportLogins, r.e.LoginCursor)
}

// line is one entry as written: its seq, which the merge keys on, and its
// JSON text.
type line struct {
	seq  int64
	text []byte
}

// stream exports the entries of one stream after cursor, a batch at a
// time.
func (r *run) stream(ctx context.Context, stream store.ExportStream, cursor int64) error {
	for {
		hours, last, n, err := r.read(ctx, stream, cursor)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		keys := make([]string, 0, len(hours))
		for k := range hours {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := r.merge(ctx, k, hours[k]); err != nil {
				return err
			}
		}
		if r.x.beforeAdvance != nil {
			if err := r.x.beforeAdvance(stream); err != nil {
				return err
			}
		}
		if err := r.x.store.AdvanceS3Export(ctx, r.e.OrgID, r.e.LeaseToken, stream, last, r.x.Now()); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return errLeaseLost
			}
			return fmt.Errorf("recording the export's progress: %w", err)
		}
		cursor = last
		if n < r.x.Batch {
			return nil
		}
	}
}

// read returns the next batch after cursor as lines grouped by object key,
// the batch's last seq and its size.
func (r *run) read(ctx context.Context, stream store.ExportStream, cursor int64) (map[string][]line, int64, int, error) {
	hours := map[string][]line{}
	add := func(at time.Time, seq int64, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		k := r.key(stream, at)
		hours[k] = append(hours[k], line{seq: seq, text: b})
		return nil
	}
	var last int64
	var n int
	switch stream {
	case store.ExportAudit:
		es, err := r.x.store.ExportAuditAfter(ctx, r.e.OrgID, cursor, r.x.Batch)
		if err != nil {
			return nil, 0, 0, readError(err)
		}
		for _, e := range es {
			e.At = e.At.UTC()
			if err := add(e.At, e.Seq, auditLine{Organization: r.slug, AuditEntry: e}); err != nil {
				return nil, 0, 0, err
			}
			last = e.Seq
		}
		n = len(es)
	case store.ExportLogins:
		es, err := r.x.store.ExportLoginsAfter(ctx, r.e.OrgID, cursor, r.x.Batch)
		if err != nil {
			return nil, 0, 0, readError(err)
		}
		for _, e := range es {
			l := loginLine{Seq: e.Seq, At: e.At.UTC(), Organization: r.slug, AdministratorID: e.AdministratorID,
				UserName: e.UserName, Method: e.Method, IP: e.IP, UserAgent: e.UserAgent, Result: e.Result}
			if err := add(l.At, e.Seq, l); err != nil {
				return nil, 0, 0, err
			}
			last = e.Seq
		}
		n = len(es)
	}
	return hours, last, n, nil
}

func readError(err error) error {
	if errors.Is(err, store.ErrUnsettled) {
		return errors.New("waiting for a database transaction that stays open to end")
	}
	return fmt.Errorf("reading the entries: %w", err)
}

// auditLine is an audit entry as exported: AuditEntry's JSON and the
// organization's slug.
type auditLine struct {
	Organization string `json:"organization"`
	store.AuditEntry
}

// loginLine is a row of the login history as exported.
type loginLine struct {
	Seq             int64     `json:"seq"`
	At              time.Time `json:"at"`
	Organization    string    `json:"organization"`
	AdministratorID string    `json:"administratorId"`
	UserName        string    `json:"userName"`
	Method          string    `json:"method"`
	IP              string    `json:"ip"`
	UserAgent       string    `json:"userAgent"`
	Result          string    `json:"result"`
}

// Key is the object key of an organization's entries of one UTC hour.
func Key(prefix, slug string, stream store.ExportStream, at time.Time) string {
	return path.Join(prefix, slug, string(stream), at.UTC().Format("2006/01/02/15")) + ".jsonl"
}

func (r *run) key(stream store.ExportStream, at time.Time) string {
	return Key(r.e.Prefix, r.slug, stream, at)
}

// merge writes the object at key with the lines it holds and those of add
// it lacks, sorted by seq; an object that already holds every line is left
// alone.
func (r *run) merge(ctx context.Context, key string, add []line) error {
	octx, cancel, err := r.opContext(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	have, err := r.get(octx, key)
	if err != nil {
		return err
	}
	known := make(map[int64]bool, len(have)+len(add))
	for _, l := range have {
		known[l.seq] = true
	}
	all, added := have, 0
	for _, l := range add {
		if !known[l.seq] {
			known[l.seq] = true
			all = append(all, l)
			added++
		}
	}
	if added == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b line) int { return cmp.Compare(a.seq, b.seq) })
	var body bytes.Buffer
	for _, l := range all {
		body.Write(l.text)
		body.WriteByte('\n')
	}
	sum := md5.Sum(body.Bytes())
	_, err = r.client.PutObject(octx, &s3.PutObjectInput{
		Bucket:        aws.String(r.e.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body.Bytes()),
		ContentLength: aws.Int64(int64(body.Len())),
		ContentType:   aws.String("application/x-ndjson"),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	})
	if err != nil {
		return r.s3Error("writing "+key, err)
	}
	return nil
}

// get reads the lines of the object at key; none when it does not exist.
func (r *run) get(ctx context.Context, key string) ([]line, error) {
	out, err := r.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.e.Bucket), Key: aws.String(key)})
	var missing *types.NoSuchKey
	if errors.As(err, &missing) {
		return nil, nil
	}
	if err != nil {
		return nil, r.s3Error("reading "+key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, r.s3Error("reading "+key, err)
	}
	var lines []line
	for i, text := range bytes.Split(b, []byte("\n")) {
		if len(text) == 0 {
			continue
		}
		var v struct {
			Seq *int64 `json:"seq"`
		}
		if err := json.Unmarshal(text, &v); err != nil || v.Seq == nil {
			return nil, fmt.Errorf("the object %s in bucket %s is not gatehouse's export (line %d is not an entry); move it away", key, r.e.Bucket, i+1)
		}
		lines = append(lines, line{seq: *v.Seq, text: slices.Clone(text)})
	}
	return lines, nil
}

// opContext renews the lease and returns the context of one object's
// requests: they end OpTimeout later, half the lease before it ends, so
// that a stalled instance's request cannot land after another instance
// claimed the export. (A process paused longer than that between sending
// a request and S3 storing it could still; S3's conditional writes would
// close that gap where the service offers them.)
func (r *run) opContext(ctx context.Context) (context.Context, context.CancelFunc, error) {
	start := time.Now()
	if err := r.x.store.RenewS3Export(ctx, r.e.OrgID, r.e.LeaseToken, r.x.Now(), r.x.lease()); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, nil, errLeaseLost
		}
		return nil, nil, fmt.Errorf("renewing the lease: %w", err)
	}
	// The deadline counts from before the renewal: the lease may have
	// started as soon as the renewal's statement was sent.
	octx, cancel := context.WithDeadline(ctx, start.Add(r.x.OpTimeout))
	return octx, cancel, nil
}

// newClient is an S3 client of one export's destination. Checksums are
// computed only where S3 requires them (and Content-MD5 is sent): the
// newer default trailers are not understood by every S3-compatible server.
func newClient(e store.S3Export, secret string, hc *http.Client) *s3.Client {
	opts := s3.Options{
		Region:       e.Region,
		BaseEndpoint: aws.String(e.Endpoint),
		UsePathStyle: e.PathStyle,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: e.AccessKeyID, SecretAccessKey: secret, Source: "gatehouse"}, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           3,
	}
	if hc != nil {
		opts.HTTPClient = hc
	}
	return s3.New(opts)
}

// s3Error turns an error of the S3 client into the one line a Super
// Administrator reads in the export's status.
func (r *run) s3Error(doing string, err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		switch code {
		// XAdminUserNotFound: versitygw's InvalidAccessKeyId.
		case "InvalidAccessKeyId", "XAdminUserNotFound", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
			"AuthorizationHeaderMalformed":
			return fmt.Errorf("S3 refused the credentials: %s (%s)", code, doing)
		case "AccessDenied", "AllAccessDisabled":
			return fmt.Errorf("S3 denied access to bucket %s: %s (%s)", r.e.Bucket, code, doing)
		case "NoSuchBucket":
			return fmt.Errorf("the bucket %s does not exist: %s", r.e.Bucket, code)
		case "PermanentRedirect", "AuthorizationQueryParametersError", "IllegalLocationConstraintException":
			return fmt.Errorf("the bucket %s is not in region %s, or needs another endpoint: %s", r.e.Bucket, r.e.Region, code)
		}
		msg := api.ErrorMessage()
		if msg != "" {
			msg = ": " + msg
		}
		return fmt.Errorf("S3 answered %s%s (%s)", code, msg, doing)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("S3 at %s did not answer in time (%s)", r.e.Endpoint, doing)
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return fmt.Errorf("could not reach S3 at %s: %v (%s)", r.e.Endpoint, op.Err, doing)
	}
	text := err.Error()
	if i := strings.LastIndex(text, ": "); i >= 0 && strings.HasPrefix(text, "operation error") {
		text = text[i+2:]
	}
	return fmt.Errorf("S3 at %s: %s (%s)", r.e.Endpoint, text, doing)
}
