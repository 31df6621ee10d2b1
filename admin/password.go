package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"gatehouse/store"
)

// Passwords are hashed with argon2id at OWASP's recommended minimum
// (19 MiB, two passes, one lane), a 16-byte random salt and a 32-byte key,
// and stored as a PHC string:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>   (unpadded standard base64)
//
// Before hashing, a password is put in Unicode NFKC form (NIST SP 800-63B
// §5.1.1.2), so the same password typed on systems that compose accents
// differently matches.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32

	// Caps on what VerifyPassword accepts from a stored hash, so a
	// tampered row cannot make a sign-in allocate gigabytes or spin for
	// minutes: 64 MiB, 10 passes, 8 lanes, and sane salt and key sizes.
	maxArgonMemory  = 64 * 1024
	maxArgonTime    = 10
	maxArgonThreads = 8
)

// Password policy (NIST SP 800-63B style: a length floor, no composition
// rules, no forced rotation).
const (
	MinPasswordLen = 12  // characters (code points)
	MaxPasswordLen = 256 // bytes
)

// ErrMalformedHash: a stored password hash is not an argon2id PHC string
// within the caps above.
var ErrMalformedHash = errors.New("admin: malformed password hash")

// hashSlots bounds the argon2 computations running at once to 2×NumCPU:
// each takes 19 MiB, so a flood of sign-ins queues instead of exhausting
// memory. It is a limiter of this process's resources, not configuration.
var hashSlots = make(chan struct{}, 2*runtime.NumCPU())

func argonKey(pw string, salt []byte, t, m uint32, p uint8, keyLen uint32) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey([]byte(norm.NFKC.String(pw)), salt, t, m, p, keyLen)
}

// HashPassword returns the PHC string of pw. It does not apply the policy:
// call CheckPassword first.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key := argonKey(pw, salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// argonParams is a parsed PHC string.
type argonParams struct {
	m, t uint32
	p    uint8
	salt []byte
	key  []byte
}

// parsePHC parses and bounds an argon2id PHC string.
func parsePHC(hash string) (argonParams, error) {
	var a argonParams
	if len(hash) > 256 {
		return a, ErrMalformedHash
	}
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return a, ErrMalformedHash
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return a, ErrMalformedHash
	}
	num := func(s, name string, max uint64) (uint64, error) {
		v, ok := strings.CutPrefix(s, name+"=")
		if !ok || v == "" || len(v) > 10 {
			return 0, ErrMalformedHash
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 || n > max {
			return 0, ErrMalformedHash
		}
		return n, nil
	}
	m, err := num(params[0], "m", maxArgonMemory)
	if err != nil {
		return a, err
	}
	t, err := num(params[1], "t", maxArgonTime)
	if err != nil {
		return a, err
	}
	p, err := num(params[2], "p", maxArgonThreads)
	if err != nil {
		return a, err
	}
	if m < 8*p { // argon2's own minimum
		return a, ErrMalformedHash
	}
	a.m, a.t, a.p = uint32(m), uint32(t), uint8(p)
	if a.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(a.salt) < 8 || len(a.salt) > 64 {
		return a, ErrMalformedHash
	}
	if a.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(a.key) < 16 || len(a.key) > 64 {
		return a, ErrMalformedHash
	}
	return a, nil
}

// VerifyPassword reports whether pw matches hash, comparing in constant
// time. A hash that is not an argon2id PHC string within the caps is
// ErrMalformedHash, refused before any hashing.
func VerifyPassword(hash, pw string) (bool, error) {
	a, err := parsePHC(hash)
	if err != nil {
		return false, err
	}
	if len(pw) > MaxPasswordLen {
		// Never stored (CheckPassword), so never a match; hash anyway so
		// the answer takes as long as any other.
		pw = ""
		argonKey(pw, a.salt, a.t, a.m, a.p, uint32(len(a.key)))
		return false, nil
	}
	key := argonKey(pw, a.salt, a.t, a.m, a.p, uint32(len(a.key)))
	return subtle.ConstantTimeCompare(key, a.key) == 1, nil
}

// dummyHash has the parameters of HashPassword and a random key that no
// password is known to produce. Verifying against it when the username is
// unknown or has no password makes those answers take as long as a wrong
// password. It is a constant, so the first such answer is not slower.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$6FwXnifNyjCCzxsood4vsw$Rbqx8PcpOCuQH1n8+8jlilmLbNOKlZBIRuLKhXBUlJo"

func init() {
	if _, err := parsePHC(dummyHash); err != nil {
		panic("admin: dummyHash does not parse") // caught by any test of the package
	}
}

// dummyVerify spends the time of one verification.
func dummyVerify(pw string) {
	VerifyPassword(dummyHash, pw)
}

// CheckPassword applies the password policy: MinPasswordLen characters to
// MaxPasswordLen bytes of valid UTF-8, not the username (in any case). No
// composition rules (NIST SP 800-63B §5.1.1.2).
func CheckPassword(pw, username string) error {
	switch {
	case !utf8.ValidString(pw):
		return refuse(CodeWeakPassword, "the password is not valid UTF-8 text")
	case len(pw) > MaxPasswordLen:
		return refuse(CodeWeakPassword, "the password is longer than %d bytes", MaxPasswordLen)
	case utf8.RuneCountInString(norm.NFKC.String(pw)) < MinPasswordLen:
		return refuse(CodeWeakPassword, "the password is shorter than %d characters", MinPasswordLen)
	case username != "" && store.Fold(norm.NFKC.String(pw)) == store.Fold(norm.NFKC.String(username)):
		return refuse(CodeWeakPassword, "the password may not be the username")
	}
	return nil
}
