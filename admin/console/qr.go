package console

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image/png"
	"strings"

	"github.com/pquerna/otp"
)

// qrSize is the QR code's width and height in pixels.
const qrSize = 200

// newTOTPView renders an enrolment's otpauth:// URL as a QR code, on the
// server (no script, no third party sees the secret), as a data: URL.
func newTOTPView(secret, otpURL, ticket string) (*totpView, error) {
	if !strings.HasPrefix(otpURL, "otpauth://") || len(otpURL) > 1024 {
		return nil, fmt.Errorf("console: not an otpauth URL")
	}
	key, err := otp.NewKeyFromURL(otpURL)
	if err != nil {
		return nil, fmt.Errorf("console: TOTP URL: %w", err)
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return nil, fmt.Errorf("console: QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("console: QR code: %w", err)
	}
	// A PNG this package just encoded: safe as an image source.
	qr := template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()))
	return &totpView{QR: qr, Secret: secret, URL: otpURL, Ticket: ticket}, nil
}
