package admin

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"gatehouse/store"
)

// S3Exports is the organization preference that exports the audit log and
// the login history to an S3 bucket (seed 000: "Configure S3 buckets to
// export data"): its settings and status, Super Administrators only. The
// export itself runs in every gatehouse serve (package admin/export).
type S3Exports struct {
	Store  store.Store
	Sealer *Sealer // seals the secret access key; required
}

// Codes of the S3 export's refusals.
const (
	CodeInvalidS3Export = "invalid_s3_export" // a field of the destination is missing or malformed
)

// S3ExportSpec is what a Super Administrator sets. Every field but
// SecretAccessKey is the new value; an empty SecretAccessKey keeps the
// stored one (it is never shown back), and is required on the first
// save.
type S3ExportSpec struct {
	Enabled         bool
	Endpoint        string
	Region          string
	Bucket          string
	Prefix          string
	AccessKeyID     string
	SecretAccessKey string
	PathStyle       bool
}

// Export states of S3ExportView.Status.
const (
	S3ExportNotConfigured = "not_configured"
	S3ExportDisabled      = "disabled"
	S3ExportPending       = "pending" // enabled, no run finished yet
	S3ExportOK            = "ok"      // the last run succeeded
	S3ExportFailing       = "failing" // the last run failed: see LastError
)

// S3ExportView is what the API and the console show: the settings without
// the secret, and how the export goes.
type S3ExportView struct {
	Status             string     `json:"status"`
	Enabled            bool       `json:"enabled"`
	Endpoint           string     `json:"endpoint"`
	Region             string     `json:"region"`
	Bucket             string     `json:"bucket"`
	Prefix             string     `json:"prefix"`
	AccessKeyID        string     `json:"accessKeyId"`
	SecretAccessKeySet bool       `json:"secretAccessKeySet"`
	PathStyle          bool       `json:"pathStyle"`
	LastAttemptAt      *time.Time `json:"lastAttemptAt"`
	LastSuccessAt      *time.Time `json:"lastSuccessAt"`
	LastError          string     `json:"lastError"`
	LastErrorAt        *time.Time `json:"lastErrorAt"`
	// AuditExportedThrough and LoginsExportedThrough are the cursors: every
	// entry up to that seq is in the bucket.
	AuditExportedThrough  int64 `json:"auditExportedThrough"`
	LoginsExportedThrough int64 `json:"loginsExportedThrough"`
}

// S3ExportSecretContext is the Sealer context of an organization's secret
// access key.
func S3ExportSecretContext(org string) string { return "s3export:" + org }

// ViewS3Export is what e shows.
func ViewS3Export(e store.S3Export) S3ExportView {
	v := S3ExportView{Enabled: e.Enabled, Endpoint: e.Endpoint, Region: e.Region, Bucket: e.Bucket, Prefix: e.Prefix,
		AccessKeyID: e.AccessKeyID, SecretAccessKeySet: e.SecretAccessKey != "", PathStyle: e.PathStyle,
		LastAttemptAt: e.LastAttemptAt, LastSuccessAt: e.LastSuccessAt, LastError: e.LastError, LastErrorAt: e.LastErrorAt,
		AuditExportedThrough: e.AuditCursor, LoginsExportedThrough: e.LoginCursor}
	switch {
	case !e.Enabled:
		v.Status = S3ExportDisabled
	case e.LastError != "":
		v.Status = S3ExportFailing
	case e.LastSuccessAt == nil:
		v.Status = S3ExportPending
	default:
		v.Status = S3ExportOK
	}
	return v
}

func (x *S3Exports) permit(p Principal) error {
	if !p.Super() {
		return refuse(CodeForbidden, "only a Super Administrator may see or change the S3 export")
	}
	return nil
}

// Get returns the organization's export; Status S3ExportNotConfigured when
// it has none.
func (x *S3Exports) Get(ctx context.Context, p Principal) (S3ExportView, error) {
	if err := x.permit(p); err != nil {
		return S3ExportView{}, err
	}
	e, err := x.Store.S3Export(ctx, p.OrgID)
	if errors.Is(err, store.ErrNotFound) {
		return S3ExportView{Status: S3ExportNotConfigured}, nil
	}
	if err != nil {
		return S3ExportView{}, fmt.Errorf("admin: s3 export: %w", err)
	}
	return ViewS3Export(e), nil
}

// Set validates spec and saves it (audited without the secret); the export
// runs soon after on whichever instance claims it.
func (x *S3Exports) Set(ctx context.Context, p Principal, spec S3ExportSpec) (S3ExportView, error) {
	if err := x.permit(p); err != nil {
		return S3ExportView{}, err
	}
	spec, err := checkS3ExportSpec(spec)
	if err != nil {
		return S3ExportView{}, err
	}
	e, err := x.Store.PutS3Export(p.Context(ctx), p.OrgID, func(e *store.S3Export) error {
		if spec.SecretAccessKey == "" && e.SecretAccessKey == "" {
			return refuse(CodeInvalidS3Export, "give the secret access key")
		}
		e.Enabled, e.Endpoint, e.Region, e.Bucket, e.Prefix = spec.Enabled, spec.Endpoint, spec.Region, spec.Bucket, spec.Prefix
		e.AccessKeyID, e.PathStyle = spec.AccessKeyID, spec.PathStyle
		if spec.SecretAccessKey != "" {
			e.SecretAccessKey = x.Sealer.Seal(spec.SecretAccessKey, S3ExportSecretContext(p.OrgID))
		}
		return nil
	})
	if err != nil {
		return S3ExportView{}, err
	}
	return ViewS3Export(e), nil
}

var (
	// A bucket name as S3 allows it for new buckets (3 to 63 lower-case
	// letters, digits, dots and hyphens, starting and ending with a letter
	// or digit); MinIO and versitygw follow the same rule.
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	regionName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	// An access key id: AWS's are 16 to 128 word characters; MinIO's and
	// versitygw's are any printable text, so printable ASCII.
	accessKeyID = regexp.MustCompile(`^[\x21-\x7e]{3,128}$`)
)

// checkS3ExportSpec trims and checks every field; a refusal names the field
// and the offending value (never the secret's).
func checkS3ExportSpec(s S3ExportSpec) (S3ExportSpec, error) {
	s.Endpoint = strings.TrimSpace(s.Endpoint)
	s.Region = strings.TrimSpace(s.Region)
	s.Bucket = strings.TrimSpace(s.Bucket)
	s.Prefix = strings.Trim(strings.TrimSpace(s.Prefix), "/")
	s.AccessKeyID = strings.TrimSpace(s.AccessKeyID)
	u, err := url.Parse(s.Endpoint)
	switch {
	case s.Endpoint == "":
		return s, refuse(CodeInvalidS3Export, "give the endpoint, such as https://s3.eu-west-1.amazonaws.com")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || len(s.Endpoint) > 500:
		return s, refuse(CodeInvalidS3Export, "the endpoint %q is not an http or https URL of a host alone, such as https://s3.eu-west-1.amazonaws.com", clipText(s.Endpoint, 100))
	case !regionName.MatchString(s.Region):
		return s, refuse(CodeInvalidS3Export, "the region %q is not a region name, such as us-east-1", clipText(s.Region, 100))
	case !bucketName.MatchString(s.Bucket) || strings.Contains(s.Bucket, ".."):
		return s, refuse(CodeInvalidS3Export, "the bucket %q is not a bucket name (3 to 63 lower-case letters, digits, dots and hyphens)", clipText(s.Bucket, 100))
	case !validPrefix(s.Prefix):
		return s, refuse(CodeInvalidS3Export, "the prefix %q is not a key prefix (at most 200 characters, no control characters, no empty, \".\" or \"..\" segment)", clipText(s.Prefix, 100))
	case !accessKeyID.MatchString(s.AccessKeyID):
		return s, refuse(CodeInvalidS3Export, "the access key id %q is not 3 to 128 printable ASCII characters", clipText(s.AccessKeyID, 100))
	case s.SecretAccessKey != "" && (len(s.SecretAccessKey) > 256 || strings.ContainsFunc(s.SecretAccessKey, func(r rune) bool { return r < 0x21 || r > 0x7e })):
		return s, refuse(CodeInvalidS3Export, "the secret access key is not printable ASCII of at most 256 characters")
	}
	s.Endpoint = u.Scheme + "://" + u.Host
	return s, nil
}

func validPrefix(p string) bool {
	if p == "" {
		return true
	}
	if utf8.RuneCountInString(p) > 200 || !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// clipText cuts s to n characters for a refusal's message.
func clipText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
