package admin

import (
	"crypto/subtle"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP second factor (RFC 6238) with what every authenticator app
// supports: HMAC-SHA1, 6 digits, 30-second steps, a 160-bit secret. A code
// is accepted for the current step and one step either side (clock skew),
// and only once: its step must be later than the last step accepted
// (credentials.totp_last_step), which the store checks and moves in the
// transaction of the sign-in, so a code seen over a shoulder or replayed
// within its 90-second window is refused.
const (
	totpIssuer = "gatehouse"
	totpPeriod = 30
	totpSkew   = 1
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Skew: totpSkew, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPEnrolment is a new TOTP secret offered to an administrator: Secret
// (base32) and URL (otpauth://, for a QR code) are shown to them; Ticket
// is the same secret sealed with the server key for that administrator,
// with an expiry, and comes back with the first code to confirm the
// enrolment. The server thus keeps no state between the two steps, and
// only a secret it generated can be enrolled.
type TOTPEnrolment struct {
	Secret    string
	URL       string
	Ticket    string
	ExpiresAt time.Time
}

// totpEnrolmentTTL is how long an enrolment offer may be confirmed.
const totpEnrolmentTTL = time.Hour

// ticketContext binds an enrolment ticket to its administrator.
func ticketContext(administratorID string) string { return "totp-enrol:" + administratorID }

// totpContext binds a stored (sealed) TOTP secret to its administrator.
func totpContext(administratorID string) string { return "totp:" + administratorID }

// newTOTPEnrolment generates a secret for the account "orgSlug:username"
// of issuer gatehouse.
func newTOTPEnrolment(sealer *Sealer, administratorID, orgSlug, username string, now time.Time) (TOTPEnrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: orgSlug + ":" + username, Period: totpPeriod,
		SecretSize: 20, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return TOTPEnrolment{}, err
	}
	exp := now.Add(totpEnrolmentTTL)
	ticket := sealer.Seal(key.Secret()+"|"+strconv.FormatInt(exp.Unix(), 10), ticketContext(administratorID))
	return TOTPEnrolment{Secret: key.Secret(), URL: key.URL(), Ticket: ticket, ExpiresAt: exp}, nil
}

// errTicket: an enrolment ticket that does not open for this
// administrator, or has expired.
var errTicket = errors.New("admin: invalid TOTP enrolment ticket")

// openTicket returns the secret of a ticket issued to administratorID and
// not expired at now.
func openTicket(sealer *Sealer, ticket, administratorID string, now time.Time) (string, error) {
	plain, err := sealer.Open(ticket, ticketContext(administratorID))
	if err != nil {
		return "", errTicket
	}
	secret, exp, ok := strings.Cut(plain, "|")
	unix, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || !now.Before(time.Unix(unix, 0)) || secret == "" {
		return "", errTicket
	}
	return secret, nil
}

// totpStep is the RFC 6238 time step of t.
func totpStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// validTOTPCode reports whether code is six ASCII digits.
func validTOTPCode(code string) bool {
	if len(code) != 6 {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// matchTOTP returns the step, later than lastStep and within the skew of
// now, whose code is code; ok is false when there is none (a wrong code,
// or a replay of an accepted one).
func matchTOTP(secret, code string, now time.Time, lastStep int64) (step int64, ok bool) {
	if !validTOTPCode(code) {
		return 0, false
	}
	cur := totpStep(now)
	for s := cur + totpSkew; s >= cur-totpSkew; s-- { // latest first
		if s <= lastStep {
			break
		}
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}
