// Package s3test runs a real S3 server for tests: versitygw (the Versity
// S3 Gateway) with its posix backend, on loopback, in a folder of the
// test's own. .ci/deps builds it from the Go module proxy at Version into
// a cache (Binary); a test without it skips, and fails when CI=true.
package s3test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"gatehouse/store"
)

// Version is the versitygw that .ci/deps builds.
const Version = "v1.8.0"

// Credentials of the server's root account.
const (
	AccessKey = "gatehouse-test-key"
	SecretKey = "gatehouse-test-secret-0123456789"
	Region    = "us-east-1"
)

// Binary is where the versitygw binary is: $GATEHOUSE_VERSITYGW, else
// $XDG_CACHE_HOME (or ~/.cache)/gatehouse-versitygw/<Version>/versitygw.
func Binary() string {
	if p := os.Getenv("GATEHOUSE_VERSITYGW"); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "gatehouse-versitygw", Version, "versitygw")
}

// Server is a running versitygw.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	Root string // the posix backend's folder: one sub-folder a bucket
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

// Start starts a server with an empty root, stopped when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("no versitygw at %s (bash .ci/deps builds it): %v", bin, err)
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{URL: "http://" + addr, Root: tb.TempDir(), addr: addr}
	s.start(tb)
	tb.Cleanup(func() { s.Stop(tb) })
	return s
}

func (s *Server) start(tb testing.TB) {
	tb.Helper()
	s.log = &bytes.Buffer{}
	s.cmd = exec.Command(Binary(), "--access", AccessKey, "--secret", SecretKey, "--region", Region,
		"--port", s.addr, "--quiet", "posix", s.Root)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-s.done:
			tb.Fatalf("versitygw exited: %s", s.log)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("versitygw does not answer at %s: %v\n%s", s.URL, err, s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (S3 down); its objects stay in Root.
func (s *Server) Stop(tb testing.TB) {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts a stopped server again on the same address and root.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.start(tb)
}

// MakeBucket creates a bucket (a folder of the posix backend).
func (s *Server) MakeBucket(tb testing.TB, name string) {
	tb.Helper()
	if err := os.Mkdir(filepath.Join(s.Root, name), 0o755); err != nil {
		tb.Fatal(err)
	}
}

// Client is an S3 client of the server's root account.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{Region: Region, BaseEndpoint: aws.String(s.URL), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: AccessKey, SecretAccessKey: SecretKey}, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// Objects reads every object of a bucket back through the S3 API: key to
// content.
func (s *Server) Objects(tb testing.TB, bucket string) map[string][]byte {
	tb.Helper()
	ctx := context.Background()
	c := s.Client()
	out := map[string][]byte{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			tb.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				tb.Fatalf("get %s: %v", *o.Key, err)
			}
			b, err := io.ReadAll(obj.Body)
			obj.Body.Close()
			if err != nil {
				tb.Fatal(err)
			}
			out[*o.Key] = b
		}
	}
	return out
}

// Port is the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// ExactlyOnce checks objects (key to JSON Lines, as Objects returns them)
// against the audit log and login history of org in s: each of their
// entries is on a line of an object of its stream (streamOf names a key's
// stream: "audit" or "login") exactly once, and no other entry is. It
// returns the number of entries of each stream.
func ExactlyOnce(tb testing.TB, objects map[string][]byte, streamOf func(key string) string, s store.Store, org string) map[string]int {
	tb.Helper()
	ctx := context.Background()
	audit, err := s.ExportAuditAfter(ctx, org, 0, 10000)
	if err != nil {
		tb.Fatal(err)
	}
	logins, err := s.ExportLoginsAfter(ctx, org, 0, 10000)
	if err != nil {
		tb.Fatal(err)
	}
	want := map[string][]int64{"audit": {}, "login": {}}
	for _, e := range audit {
		want["audit"] = append(want["audit"], e.Seq)
	}
	for _, e := range logins {
		want["login"] = append(want["login"], e.Seq)
	}
	seen := map[string]map[int64]int{}
	for key, body := range objects {
		stream := streamOf(key)
		if seen[stream] == nil {
			seen[stream] = map[int64]int{}
		}
		for _, l := range bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n")) {
			var v struct {
				Seq int64 `json:"seq"`
			}
			if err := json.Unmarshal(l, &v); err != nil || v.Seq == 0 {
				tb.Fatalf("%s: line %q is not an entry: %v", key, l, err)
			}
			seen[stream][v.Seq]++
		}
	}
	bad := 0
	for stream, seqs := range want {
		for _, seq := range seqs {
			if n := seen[stream][seq]; n != 1 && bad < 10 {
				tb.Errorf("%s entry %d is %d times in the bucket, want once", stream, seq, n)
				bad++
			}
		}
		if len(seen[stream]) != len(seqs) {
			tb.Errorf("%s: the bucket holds %d entries, the database %d", stream, len(seen[stream]), len(seqs))
		}
	}
	return map[string]int{"audit": len(want["audit"]), "login": len(want["login"])}
}
