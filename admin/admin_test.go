package admin_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// assertNotStored fails if the secret, as text or as its decoded random
// bytes, appears in any column of any row.
func assertNotStored(t *testing.T, s *store.SQL, secret string, raw []byte) {
	t.Helper()
	d := storetest.Dump(t, s)
	if _, ok := d["invitations"]; !ok {
		t.Fatalf("dump found no invitations table, only %v", d)
	}
	for table, rows := range d {
		for _, row := range rows {
			for _, v := range row {
				var b []byte
				switch v := v.(type) {
				case []byte:
					b = v
				case string:
					b = []byte(v)
				default:
					b = []byte(fmt.Sprint(v))
				}
				if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, raw) {
					t.Errorf("table %s stores the secret in clear: %q", table, b)
				}
			}
		}
	}
}

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func decodeSecret(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("secret %q is not unpadded base64url: %v", s, err)
	}
	if len(b) != 32 {
		t.Fatalf("secret carries %d random bytes, want 32", len(b))
	}
	return b
}

func assertCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
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

func mustNotFound(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v, want store.ErrNotFound", err)
	}
}
