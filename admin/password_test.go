package admin_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"gatehouse/admin"
)

func TestHashPassword(t *testing.T) {
	h, err := admin.HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Count(h, "$") != 5 {
		t.Fatalf("hash %q is not the expected PHC string", h)
	}
	h2, _ := admin.HashPassword("correct horse battery staple")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{
		"correct horse battery staple":  true,
		"correct horse battery staple ": false,
		"Correct horse battery staple":  false,
		"":                              false,
		strings.Repeat("x", 10000):      false,
	} {
		ok, err := admin.VerifyPassword(h, pw)
		if err != nil || ok != want {
			t.Errorf("VerifyPassword(%.20q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	// NFKC: a composed and a decomposed "é" are the same password.
	hc, _ := admin.HashPassword("caf\u00e9 au lait please")
	if ok, _ := admin.VerifyPassword(hc, "cafe\u0301 au lait please"); !ok {
		t.Fatal("decomposed form of the password does not match")
	}
}

func TestVerifyPasswordRefusesTamperedHashes(t *testing.T) {
	good, _ := admin.HashPassword("correct horse battery staple")
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	for name, h := range map[string]string{
		"huge memory":  "$argon2id$v=19$m=4194304,t=2,p=1$" + salt + "$" + key,
		"huge time":    "$argon2id$v=19$m=19456,t=1000000,p=1$" + salt + "$" + key,
		"many lanes":   "$argon2id$v=19$m=19456,t=2,p=255$" + salt + "$" + key,
		"overflow":     "$argon2id$v=19$m=99999999999999999999,t=2,p=1$" + salt + "$" + key,
		"zero time":    "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key,
		"argon2i":      "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"version":      "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key,
		"order":        "$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key,
		"short salt":   "$argon2id$v=19$m=19456,t=2,p=1$YWJj$" + key,
		"huge key":     "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 200),
		"bad base64":   "$argon2id$v=19$m=19456,t=2,p=1$!!!!$" + key,
		"extra field":  good + "$x",
		"empty":        "",
		"plain":        "correct horse battery staple",
		"sign":         "$argon2id$v=19$m=+19456,t=2,p=1$" + salt + "$" + key,
		"long garbage": strings.Repeat("$", 10000),
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		ok, err := admin.VerifyPassword(h, "correct horse battery staple")
		runtime.ReadMemStats(&after)
		if ok || !errors.Is(err, admin.ErrMalformedHash) {
			t.Errorf("%s: VerifyPassword = %v, %v; want ErrMalformedHash", name, ok, err)
		}
		// Refused before hashing: nothing near argon2's memory allocated.
		if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
			t.Errorf("%s: %d bytes allocated to refuse a tampered hash", name, d)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		pw, username string
		ok           bool
	}{
		{"correct horse battery staple", "jdoe", true},
		{"aaaaaaaaaaaa", "jdoe", true}, // no composition rules
		{"short", "jdoe", false},
		{"elevenchars", "jdoe", false},
		{"日本語のパスワードです。長い", "jdoe", true},
		{"日本語のパス", "jdoe", false}, // 18 bytes but 6 characters
		{strings.Repeat("x", 256), "jdoe", true},
		{strings.Repeat("x", 257), "jdoe", false},
		{"invalid utf8 \xff\xfe here", "jdoe", false},
		{"JDoe-the-admin", "jdoe-the-admin", false},
		{"jdoe-the-admin", "JDOE-THE-ADMIN", false},
		{"jdoe-the-admin!", "jdoe-the-admin", true},
	} {
		err := admin.CheckPassword(tc.pw, tc.username)
		if tc.ok && err != nil {
			t.Errorf("CheckPassword(%.30q) = %v, want ok", tc.pw, err)
		}
		if !tc.ok {
			assertCode(t, err, admin.CodeWeakPassword)
		}
	}
}
