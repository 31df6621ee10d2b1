package admin

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// Sealer encrypts the secrets gatehouse must read back (TOTP seeds, queued
// email bodies, SSO client secrets and SP keys, the OpenID Provider's
// signing keys) with the server key: AES-256-GCM, a random nonce per value, the result as
// "v1." + base64url(nonce || ciphertext).
type Sealer struct{ aead cipher.AEAD }

// SecretKeySize is the length of the server key in bytes.
const SecretKeySize = 32

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != SecretKeySize {
		return nil, fmt.Errorf("admin: the secret key must be %d bytes, not %d", SecretKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

const sealedPrefix = "v1."

// Seal encrypts plaintext. context binds the value to where it is stored
// (say "totp:" + administrator id): a sealed value copied elsewhere does
// not open.
func (s *Sealer) Seal(plaintext, context string) string {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	out := s.aead.Seal(nonce, nonce, []byte(plaintext), []byte(context))
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(out)
}

// ErrUnseal: a sealed value is damaged, was sealed with another key, or
// belongs to another context.
var ErrUnseal = errors.New("admin: sealed value does not open with this key")

// Open decrypts a value Seal returned for the same context.
func (s *Sealer) Open(sealed, context string) (string, error) {
	raw, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return "", ErrUnseal
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", ErrUnseal
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(context))
	if err != nil {
		return "", ErrUnseal
	}
	return string(plain), nil
}

// LoadOrCreateSecretKey reads the server key from path (base64, as
// GATEHOUSE_SECRET_KEY takes it), creating the file with a new random key
// (mode 0600) when it does not exist.
func LoadOrCreateSecretKey(path string) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := ParseSecretKey(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key := make([]byte, SecretKeySize)
	rand.Read(key)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process created it first
		return LoadOrCreateSecretKey(path)
	}
	if err != nil {
		return nil, false, err
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// ParseSecretKey decodes a base64 (standard or URL alphabet, padded or
// not) 32-byte key.
func ParseSecretKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != SecretKeySize {
				return nil, fmt.Errorf("the secret key must be %d bytes, not %d", SecretKeySize, len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("the secret key is not base64 (make one with: openssl rand -base64 32)")
}
