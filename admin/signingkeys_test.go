package admin_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// ctx names the test as the actor of its writes.
var ctx = storetest.Context(context.Background())

func testSealer(t *testing.T) *admin.Sealer {
	t.Helper()
	key := make([]byte, admin.SecretKeySize)
	rand.Read(key)
	s, err := admin.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwkPublic rebuilds the RSA key a JWK publishes from its n and e alone.
func jwkPublic(t *testing.T, k admin.JWK) *rsa.PublicKey {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct{ Kty, Use, Alg, Kid, N, E string }
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Kty != "RSA" || raw.Use != "sig" || raw.Alg != "RS256" || raw.Kid != k.KeyID {
		t.Fatalf("JWK %s", b)
	}
	n, err1 := base64.RawURLEncoding.DecodeString(raw.N)
	e, err2 := base64.RawURLEncoding.DecodeString(raw.E)
	if err1 != nil || err2 != nil {
		t.Fatalf("JWK n/e not base64url: %s", b)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
}

// signsFor checks that the active key's signatures verify with the
// published key of its kid.
func signsFor(t *testing.T, active admin.ActiveSigningKey, set admin.JWKS) {
	t.Helper()
	digest := sha256.Sum256([]byte("header.payload"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, active.Key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.KeyID == active.ID {
			if err := rsa.VerifyPKCS1v15(jwkPublic(t, k), crypto.SHA256, digest[:], sig); err != nil {
				t.Fatalf("the published key %s does not verify the signing key's signature: %v", k.KeyID, err)
			}
			return
		}
	}
	t.Fatalf("the signing key %s is not published in %+v", active.ID, set)
}

func states(t *testing.T, keys *admin.SigningKeys) []string {
	t.Helper()
	list, err := keys.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range list {
		out = append(out, k.State)
	}
	return out
}

func TestSigningKeysRotation(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		keys := &admin.SigningKeys{Store: s, Sealer: testSealer(t), Now: func() time.Time { return clock }, RotateEvery: 7 * 24 * time.Hour}
		if _, err := keys.Active(ctx); !errors.Is(err, admin.ErrNoSigningKey) {
			t.Fatalf("no key yet: %v", err)
		}
		if created, err := keys.Ensure(ctx); err != nil || !created {
			t.Fatalf("first Ensure: %v, %v", created, err)
		}
		if created, err := keys.Ensure(ctx); err != nil || created {
			t.Fatalf("second Ensure made a key: %v, %v", created, err)
		}
		first, err := keys.Active(ctx)
		if err != nil || first.Algorithm != "RS256" || first.Key.N.BitLen() != 2048 {
			t.Fatalf("active %+v, %v", first, err)
		}
		set, _ := keys.PublicKeys(ctx)
		if len(set.Keys) != 1 {
			t.Fatalf("JWKS %+v", set)
		}
		signsFor(t, first, set)

		// Not due a minute before the schedule; due at it.
		clock = clock.Add(7*24*time.Hour - time.Minute)
		if rotated, err := keys.RotateIfDue(ctx); err != nil || rotated {
			t.Fatalf("rotated early: %v, %v", rotated, err)
		}
		clock = clock.Add(time.Minute)
		if rotated, err := keys.RotateIfDue(ctx); err != nil || !rotated {
			t.Fatalf("did not rotate when due: %v, %v", rotated, err)
		}
		rotatedAt := clock
		second, err := keys.Active(ctx)
		if err != nil || second.ID == first.ID {
			t.Fatalf("after rotation the signing key is %s (was %s): %v", second.ID, first.ID, err)
		}
		set, _ = keys.PublicKeys(ctx)
		if len(set.Keys) != 2 || set.Keys[0].KeyID != second.ID || set.Keys[1].KeyID != first.ID {
			t.Fatalf("JWKS after rotation %+v", set)
		}
		signsFor(t, second, set)
		if got := states(t, keys); len(got) != 2 || got[0] != admin.KeySigning || got[1] != admin.KeyPublished {
			t.Fatalf("states %v", got)
		}
		list, _ := keys.List(ctx)
		wantRetire := rotatedAt.Add(admin.MaxSignedTokenLifetime + admin.KeyRetireMargin)
		if list[1].RetireAfter == nil || !list[1].RetireAfter.Equal(wantRetire) {
			t.Fatalf("the replaced key retires at %v, want %v", list[1].RetireAfter, wantRetire)
		}

		// Still published while a token it signed may be valid; gone after.
		clock = wantRetire.Add(-time.Second)
		if set, _ = keys.PublicKeys(ctx); len(set.Keys) != 2 {
			t.Fatalf("the replaced key left the JWKS before its tokens expired: %+v", set)
		}
		clock = wantRetire
		if set, _ = keys.PublicKeys(ctx); len(set.Keys) != 1 || set.Keys[0].KeyID != second.ID {
			t.Fatalf("the retired key is still published: %+v", set)
		}
		if got := states(t, keys); got[1] != admin.KeyRetired {
			t.Fatalf("states %v", got)
		}

		// The operator's rotation: at once, whatever the schedule.
		third, err := keys.Rotate(ctx)
		if err != nil || third.State != admin.KeySigning {
			t.Fatalf("Rotate: %+v, %v", third, err)
		}
		if got := states(t, keys); len(got) != 3 || got[0] != admin.KeySigning || got[1] != admin.KeyPublished || got[2] != admin.KeyRetired {
			t.Fatalf("states after Rotate %v", got)
		}
		if log, _ := s.AuditLog(ctx, store.ServerAudit, store.AuditQuery{Action: store.AuditSigningKeyCreate}); len(log) != 3 {
			t.Fatalf("%d audit entries, want 3", len(log))
		}

		// Another server key cannot open the keys: an error, never a
		// key that signs with garbage.
		wrong := &admin.SigningKeys{Store: s, Sealer: testSealer(t), Now: func() time.Time { return clock }}
		if _, err := wrong.Active(ctx); !errors.Is(err, admin.ErrUnseal) {
			t.Fatalf("Active with another server key: %v", err)
		}
	})
}

// TestSigningKeysTwoInstances starts two instances at once on one
// database, many times over: exactly one first key, and of rotations due
// at the same moment exactly one.
func TestSigningKeysTwoInstances(t *testing.T) {
	for _, db := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "gatehouse.db") }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresURL(t) }},
	} {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			dsn := db.dsn(t)
			sealer := testSealer(t)
			clock := time.Now()
			var instances []*admin.SigningKeys
			for range 2 {
				s, err := store.Open(context.Background(), dsn, store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				instances = append(instances, &admin.SigningKeys{Store: s, Sealer: sealer, Now: func() time.Time { return clock }, RotateEvery: time.Hour})
			}
			run := func(do func(k *admin.SigningKeys, ctx context.Context) (bool, error)) int {
				var wg sync.WaitGroup
				var mu sync.Mutex
				made := 0
				for i := range 8 {
					wg.Go(func() {
						did, err := do(instances[i%2], ctx)
						if err != nil {
							t.Error(err)
						}
						if did {
							mu.Lock()
							made++
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				return made
			}
			if made := run((*admin.SigningKeys).Ensure); made != 1 {
				t.Fatalf("%d first keys made, want 1", made)
			}
			clock = clock.Add(time.Hour)
			if made := run((*admin.SigningKeys).RotateIfDue); made != 1 {
				t.Fatalf("%d rotations, want 1", made)
			}
			list, err := instances[0].List(ctx)
			if err != nil || len(list) != 2 {
				t.Fatalf("keys %+v, %v", list, err)
			}
		})
	}
}

// TestSigningKeyNeverInClear looks for the private key, in every form it
// could be written, in every row and, on SQLite, in the files themselves.
func TestSigningKeyNeverInClear(t *testing.T) {
	for _, db := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "gatehouse.db") }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresURL(t) }},
	} {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			dsn := db.dsn(t)
			s, err := store.Open(context.Background(), dsn, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			keys := &admin.SigningKeys{Store: s, Sealer: testSealer(t)}
			if _, err := keys.Ensure(ctx); err != nil {
				t.Fatal(err)
			}
			active, err := keys.Active(ctx)
			if err != nil {
				t.Fatal(err)
			}
			forms := privateKeyForms(t, active.Key)
			for table, rows := range storetest.Dump(t, s) {
				for _, row := range rows {
					for _, v := range row {
						var b []byte
						switch v := v.(type) {
						case []byte:
							b = v
						case string:
							b = []byte(v)
						}
						for name, form := range forms {
							if bytes.Contains(b, form) {
								t.Errorf("table %s holds the private key in clear (%s)", table, name)
							}
						}
					}
				}
			}
			if s.Dialect() == "sqlite" {
				s.Close()
				files, _ := filepath.Glob(dsn + "*") // the database, its WAL and shared memory
				if len(files) == 0 {
					t.Fatal("no database files found")
				}
				for _, f := range files {
					b, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					for name, form := range forms {
						if bytes.Contains(b, form) {
							t.Errorf("%s holds the private key in clear (%s)", f, name)
						}
					}
				}
			}
		})
	}
}

// privateKeyForms are the encodings of a private key a careless write
// would store: DER (PKCS#8, PKCS#1), their base64, the private exponent
// and a prime.
func privateKeyForms(t *testing.T, k *rsa.PrivateKey) map[string][]byte {
	t.Helper()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(k)
	return map[string][]byte{
		"pkcs8":           pkcs8,
		"pkcs1":           pkcs1,
		"pkcs8 base64":    []byte(base64.StdEncoding.EncodeToString(pkcs8)),
		"pkcs1 base64":    []byte(base64.StdEncoding.EncodeToString(pkcs1)),
		"pkcs8 base64url": []byte(base64.RawURLEncoding.EncodeToString(pkcs8)),
		"d":               k.D.Bytes(),
		"d base64url":     []byte(base64.RawURLEncoding.EncodeToString(k.D.Bytes())),
		"p":               k.Primes[0].Bytes(),
	}
}
