package admin_test

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestHashSecret(t *testing.T) {
	// FIPS 180-2 test vector.
	want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := hex.EncodeToString(admin.HashSecret("abc")); got != want {
		t.Fatalf("HashSecret(abc) = %s, want %s", got, want)
	}
}

func TestSCIMTokensCreate(t *testing.T) {
	tests := []struct {
		name        string
		description string
		ttl         time.Duration
	}{
		{"no expiry", "", 0},
		{"90 days", "Okta production", 90 * 24 * time.Hour},
		{"odd lifetime", "Entra ID — test tenant", 90*time.Minute + 1500*time.Nanosecond},
	}
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		org, _, _, err := (&admin.Orgs{Store: s, BaseURL: "http://localhost:8080"}).Create(ctx, validSpec("acme"))
		if err != nil {
			t.Fatal(err)
		}
		tokens := &admin.SCIMTokens{Store: s, Now: fixedClock}
		seen := map[string]bool{}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				secret, tok, err := tokens.Create(ctx, org.ID, tt.description, tt.ttl)
				if err != nil {
					t.Fatal(err)
				}
				if seen[secret] {
					t.Fatal("the same secret twice")
				}
				seen[secret] = true
				rest, ok := strings.CutPrefix(secret, "gh_scim_")
				if !ok {
					t.Fatalf("secret %q lacks the gh_scim_ prefix", secret)
				}
				raw := decodeSecret(t, rest)

				stored, err := s.SCIMTokenByHash(ctx, sha(secret))
				if err != nil {
					t.Fatalf("no token under sha256(secret): %v", err)
				}
				if stored.ID != tok.ID || stored.OrgID != org.ID || stored.Prefix != secret[:16] ||
					stored.Description != tt.description || !slices.Equal(stored.Hash, admin.HashSecret(secret)) ||
					stored.RevokedAt != nil || stored.LastUsedAt != nil {
					t.Errorf("stored %+v, returned %+v", stored, tok)
				}
				switch {
				case tt.ttl == 0:
					if stored.ExpiresAt != nil || tok.ExpiresAt != nil {
						t.Errorf("expiry %v, want none", stored.ExpiresAt)
					}
					if !stored.Usable(clock.Add(100 * 365 * 24 * time.Hour)) {
						t.Error("a token without expiry is not usable in a hundred years")
					}
				default:
					want := clock.Add(tt.ttl).Truncate(time.Microsecond)
					if stored.ExpiresAt == nil || !stored.ExpiresAt.Equal(want) || !tok.ExpiresAt.Equal(*stored.ExpiresAt) {
						t.Errorf("expiry stored %v, returned %v, want %v", stored.ExpiresAt, tok.ExpiresAt, want)
					}
					if !stored.Usable(clock) || stored.Usable(clock.Add(tt.ttl)) {
						t.Error("expiry does not bound the token's use")
					}
				}
				assertNotStored(t, s, secret, raw)
				assertNotStored(t, s, rest, raw)
			})
		}
	})
}

func TestSCIMTokensRefused(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		org, _, _, err := (&admin.Orgs{Store: s, BaseURL: "http://localhost:8080"}).Create(ctx, validSpec("acme"))
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, org, description string
			ttl                    time.Duration
			code                   string
		}{
			{"negative lifetime", org.ID, "", -time.Hour, admin.CodeInvalidExpiry},
			{"description with control character", org.ID, "okta\r\nX-Injected: 1", 0, admin.CodeInvalidDescription},
			{"description too long", org.ID, strings.Repeat("d", 201), 0, admin.CodeInvalidDescription},
			{"unknown organization", "no-such-org", "", 0, admin.CodeOrgNotFound},
		}
		tokens := &admin.SCIMTokens{Store: s}
		before := storetest.TakeSnapshot(t, s)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				secret, tok, err := tokens.Create(ctx, tt.org, tt.description, tt.ttl)
				assertCode(t, err, tt.code)
				if secret != "" || tok.ID != "" {
					t.Errorf("refusal returned secret %q, token %+v", secret, tok)
				}
				storetest.AssertUnchanged(t, s, before)
			})
		}
	})
}
