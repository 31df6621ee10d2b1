package admin

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"time"

	"gatehouse/store"
)

// The OpenID Provider's signing keys (issue #14). They live here, not in
// sso/provider, because the operator's command line rotates and lists them
// and the provider only reads them: the rule of which key signs and which
// are published is one, whoever asks.

// Signing key policy.
const (
	// SigningAlgorithm is the JWS algorithm of every key: RS256, the one
	// every relying party must support (OpenID Connect Core §15.1).
	SigningAlgorithm = "RS256"
	// DefaultKeyRotation is how long a key signs before RotateIfDue
	// replaces it.
	DefaultKeyRotation = 30 * 24 * time.Hour
	// MaxSignedTokenLifetime is the longest lifetime of a token the
	// OpenID Provider signs (ID tokens, JWT access tokens): a replaced key
	// stays published this long, plus KeyRetireMargin, after its
	// successor starts signing. The provider must not sign tokens that
	// live longer.
	MaxSignedTokenLifetime = time.Hour
	// KeyRetireMargin covers relying parties whose clocks run behind.
	KeyRetireMargin = 5 * time.Minute
	rsaKeyBits      = 2048
)

// SigningKeys creates, rotates and lists the OpenID Provider's signing
// keys. The private keys are stored sealed with the server key.
type SigningKeys struct {
	Store  store.Store
	Sealer *Sealer
	Now    func() time.Time
	// RotateEvery is how long a key signs before RotateIfDue replaces
	// it; zero means DefaultKeyRotation.
	RotateEvery time.Duration
}

// States of a signing key (SigningKeyInfo.State).
const (
	KeySigning   = "signing"   // signs new tokens; published
	KeyPublished = "published" // replaced, published until the tokens it signed expire
	KeyRetired   = "retired"   // no longer published: every token it signed has expired
)

// SigningKeyInfo is what a list shows of a key: never the private key.
type SigningKeyInfo struct {
	ID          string
	Generation  int64
	Algorithm   string
	CreatedAt   time.Time
	ActiveFrom  time.Time
	RetireAfter *time.Time
	State       string
}

// ActiveSigningKey is the key that signs now, opened.
type ActiveSigningKey struct {
	ID        string // the JWS "kid"
	Algorithm string // the JWS "alg"
	Key       *rsa.PrivateKey
}

// JWK is a public key as RFC 7517 §4 and RFC 7518 §6.3.1 write an RSA
// one; JWKS the set (RFC 7517 §5) the provider publishes at its jwks_uri.
type JWK struct {
	KeyType   string         `json:"kty"`
	Use       string         `json:"use"`
	Algorithm string         `json:"alg"`
	KeyID     string         `json:"kid"`
	N         string         `json:"n"`
	E         string         `json:"e"`
	Public    *rsa.PublicKey `json:"-"`
}

type JWKS struct {
	Keys []JWK `json:"keys"`
}

// ErrNoSigningKey: no key has been created yet (Ensure was not called).
var ErrNoSigningKey = errors.New("admin: no OpenID Provider signing key yet")

func (k *SigningKeys) rotateEvery() time.Duration {
	if k.RotateEvery > 0 {
		return k.RotateEvery
	}
	return DefaultKeyRotation
}

// state is the state of key at now among keys (newest first).
func state(key store.SigningKey, signing string, t time.Time) string {
	switch {
	case key.ID == signing:
		return KeySigning
	case key.RetireAfter != nil && !t.Before(*key.RetireAfter):
		return KeyRetired
	}
	return KeyPublished
}

// signingID is the id of the key that signs at t: the newest that has
// started.
func signingID(keys []store.SigningKey, t time.Time) string {
	for _, key := range keys {
		if !t.Before(key.ActiveFrom) {
			return key.ID
		}
	}
	return ""
}

// Ensure creates the first key when there is none and reports whether it
// did. Instances starting at once on one database make exactly one.
func (k *SigningKeys) Ensure(ctx context.Context) (bool, error) {
	keys, err := k.Store.SigningKeys(ctx)
	if err != nil || len(keys) > 0 {
		return false, err
	}
	_, err = k.add(ctx, 1)
	if errors.Is(err, store.ErrAlreadyExists) { // another instance made it
		return false, nil
	}
	return err == nil, err
}

// Rotate makes a new key the signing key at once; the one it replaces
// stays published for MaxSignedTokenLifetime + KeyRetireMargin. Two
// rotations at the same moment make one key: the other fails with
// store.ErrAlreadyExists.
func (k *SigningKeys) Rotate(ctx context.Context) (SigningKeyInfo, error) {
	keys, err := k.Store.SigningKeys(ctx)
	if err != nil {
		return SigningKeyInfo{}, err
	}
	var next int64 = 1
	if len(keys) > 0 {
		next = keys[0].Generation + 1
	}
	key, err := k.add(ctx, next)
	if errors.Is(err, store.ErrAlreadyExists) {
		return SigningKeyInfo{}, &Error{Code: CodeConflict, Message: "another rotation of the signing key happened at the same moment; list the keys", Err: err}
	}
	if err != nil {
		return SigningKeyInfo{}, err
	}
	return SigningKeyInfo{ID: key.ID, Generation: key.Generation, Algorithm: key.Algorithm, CreatedAt: key.CreatedAt,
		ActiveFrom: key.ActiveFrom, State: KeySigning}, nil
}

// RotateIfDue rotates when the signing key has signed for RotateEvery,
// creating the first key when there is none, and reports whether it made
// a key. Every instance may call it on its own schedule: of instances
// that find it due at once, one rotates.
func (k *SigningKeys) RotateIfDue(ctx context.Context) (bool, error) {
	keys, err := k.Store.SigningKeys(ctx)
	if err != nil {
		return false, err
	}
	if len(keys) == 0 {
		return k.Ensure(ctx)
	}
	if now(k.Now).Before(keys[0].ActiveFrom.Add(k.rotateEvery())) {
		return false, nil
	}
	_, err = k.add(ctx, keys[0].Generation+1)
	if errors.Is(err, store.ErrAlreadyExists) {
		return false, nil
	}
	return err == nil, err
}

// add generates and stores the key of generation gen, signing from now.
func (k *SigningKeys) add(ctx context.Context, gen int64) (store.SigningKey, error) {
	if k.Sealer == nil {
		return store.SigningKey{}, errors.New("admin: signing keys need the server key (Sealer)")
	}
	priv, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("admin: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("admin: encode signing key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("admin: encode signing key: %w", err)
	}
	kid := make([]byte, 16)
	rand.Read(kid)
	id := base64.RawURLEncoding.EncodeToString(kid)
	t := now(k.Now)
	key := store.SigningKey{
		ID:         id,
		Generation: gen,
		Algorithm:  SigningAlgorithm,
		PrivateKey: k.Sealer.Seal(base64.StdEncoding.EncodeToString(der), signingKeyContext(id)),
		PublicKey:  pub,
		ActiveFrom: t,
	}
	return k.Store.AddSigningKey(ctx, key, t.Add(MaxSignedTokenLifetime+KeyRetireMargin))
}

// signingKeyContext binds a sealed private key to its kid.
func signingKeyContext(kid string) string { return "oidc-signing-key:" + kid }

// List returns every key, newest first, with its state now.
func (k *SigningKeys) List(ctx context.Context) ([]SigningKeyInfo, error) {
	keys, err := k.Store.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	t := now(k.Now)
	signing := signingID(keys, t)
	out := make([]SigningKeyInfo, len(keys))
	for i, key := range keys {
		out[i] = SigningKeyInfo{ID: key.ID, Generation: key.Generation, Algorithm: key.Algorithm, CreatedAt: key.CreatedAt,
			ActiveFrom: key.ActiveFrom, RetireAfter: key.RetireAfter, State: state(key, signing, t)}
	}
	return out, nil
}

// Active returns the key that signs now, opened with the server key.
func (k *SigningKeys) Active(ctx context.Context) (ActiveSigningKey, error) {
	keys, err := k.Store.SigningKeys(ctx)
	if err != nil {
		return ActiveSigningKey{}, err
	}
	id := signingID(keys, now(k.Now))
	for _, key := range keys {
		if key.ID != id {
			continue
		}
		text, err := k.Sealer.Open(key.PrivateKey, signingKeyContext(key.ID))
		if err != nil {
			return ActiveSigningKey{}, fmt.Errorf("admin: signing key %s does not open with the server key (is GATEHOUSE_SECRET_KEY the one it was made with?): %w", key.ID, err)
		}
		der, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return ActiveSigningKey{}, fmt.Errorf("admin: signing key %s: %w", key.ID, err)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(der)
		priv, ok := parsed.(*rsa.PrivateKey)
		if err != nil || !ok {
			return ActiveSigningKey{}, fmt.Errorf("admin: signing key %s is not an RSA key", key.ID)
		}
		return ActiveSigningKey{ID: key.ID, Algorithm: key.Algorithm, Key: priv}, nil
	}
	return ActiveSigningKey{}, ErrNoSigningKey
}

// PublicKeys returns the keys published now (the signing key first, then
// the replaced ones whose tokens may still be valid): the provider's
// JWKS. It needs no server key.
func (k *SigningKeys) PublicKeys(ctx context.Context) (JWKS, error) {
	keys, err := k.Store.SigningKeys(ctx)
	if err != nil {
		return JWKS{}, err
	}
	t := now(k.Now)
	signing := signingID(keys, t)
	set := JWKS{Keys: []JWK{}}
	for _, key := range keys {
		if state(key, signing, t) == KeyRetired {
			continue
		}
		parsed, err := x509.ParsePKIXPublicKey(key.PublicKey)
		pub, ok := parsed.(*rsa.PublicKey)
		if err != nil || !ok {
			return JWKS{}, fmt.Errorf("admin: signing key %s: stored public key is not RSA", key.ID)
		}
		set.Keys = append(set.Keys, JWK{KeyType: "RSA", Use: "sig", Algorithm: key.Algorithm, KeyID: key.ID,
			N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()), Public: pub})
	}
	return set, nil
}
