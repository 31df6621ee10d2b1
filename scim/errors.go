package scim

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"gatehouse/admin"
	"gatehouse/scim/filter"
	"gatehouse/scim/patch"
	"gatehouse/scim/schema"
	"gatehouse/store"
)

// scimType values of RFC 7644 §3.12 that this package sets itself (the
// PATCH engine sets its own).
const (
	invalidFilter = "invalidFilter"
	uniqueness    = "uniqueness"
	invalidSyntax = "invalidSyntax"
	invalidValue  = "invalidValue"
	invalidCursor = "invalidCursor" // RFC 9865 §2.3
)

// Error is a SCIM error response (RFC 7644 §3.12). Detail is written for
// the IdP's administrator; it never carries internal error text.
type Error struct {
	Status   int
	ScimType string
	Detail   string
	// RetryAfter, in seconds, is sent as Retry-After (with a 429 or 503).
	RetryAfter int
}

func (e *Error) Error() string { return fmt.Sprintf("scim: %d %s: %s", e.Status, e.ScimType, e.Detail) }

func errorf(status int, scimType, format string, args ...any) *Error {
	return &Error{Status: status, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

// body is the JSON form of e.
func (e *Error) body() map[string]any {
	b := map[string]any{
		"schemas": []string{schema.ErrorURN},
		"status":  strconv.Itoa(e.Status),
		"detail":  e.Detail,
	}
	if e.ScimType != "" {
		b["scimType"] = e.ScimType
	}
	return b
}

// asError maps any error of a handler to the SCIM error the client sees.
// Errors it does not know are internal: logged with the request's logger,
// answered with a generic 500.
func asError(err error, log *slog.Logger) *Error {
	var se *Error
	var ve *schema.ValueError
	var fe *filter.Error
	var pe *patch.Error
	var ae *admin.Error
	var ee *store.ExistsError
	var taken *admin.UsernameTakenError
	switch {
	case errors.As(err, &se):
		return se
	case errors.Is(err, store.ErrUnavailable):
		// Identity providers retry a 503 (Entra ID after Retry-After);
		// a 500 is kept for gatehouse's own faults.
		log.Warn("scim request: database unavailable", "err", err)
		return &Error{Status: http.StatusServiceUnavailable, RetryAfter: admin.RetryAfterUnavailable,
			Detail: "the service is temporarily unavailable; retry after the number of seconds in Retry-After"}
	case errors.As(err, &ve):
		return errorf(http.StatusBadRequest, invalidValue, "%s", ve.Error())
	case errors.As(err, &fe):
		return errorf(http.StatusBadRequest, invalidFilter, "%s", fe.Error())
	case errors.As(err, &pe):
		return errorf(http.StatusBadRequest, pe.ScimType, "%s", pe.Detail)
	case errors.As(err, &taken):
		return errorf(http.StatusConflict, uniqueness, "%s", taken.Error())
	case errors.As(err, &ae):
		return errorf(http.StatusBadRequest, invalidValue, "%s", ae.Message)
	case errors.As(err, &ee):
		return errorf(http.StatusConflict, uniqueness, "%s %q is already taken by an existing user (usernames are unique regardless of case)", ee.Field, ee.Existing)
	case errors.Is(err, store.ErrInvalidQuery):
		return errorf(http.StatusBadRequest, invalidFilter, "the filter or sort cannot be applied to this resource type")
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "", "resource not found")
	case errors.Is(err, store.ErrConflict), errors.Is(err, errPrecondition), errors.Is(err, admin.ErrVersionMismatch):
		return errorf(http.StatusPreconditionFailed, "", "the resource changed since the version given in If-Match")
	}
	log.Error("scim request failed", "err", err)
	return errorf(http.StatusInternalServerError, "", "internal server error")
}

// errPrecondition is an If-Match that does not match.
var errPrecondition = errors.New("scim: precondition failed")
