package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// HashSecret is the only form in which gatehouse stores a bearer secret
// (SCIM tokens, activation links): SHA-256 of the secret's text. The
// secrets carry 256 random bits, so a fast unsalted hash is enough; a
// database leak does not reveal usable secrets.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// newSecret returns 32 random bytes from crypto/rand as unpadded base64url.
func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+); it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}
