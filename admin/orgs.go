package admin

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gatehouse/store"
)

// OrgSpec is what creating an organization takes.
type OrgSpec struct {
	Slug    string
	Name    string
	Domains []string // registered email domains; may be empty
	Owner   OwnerSpec
}

// OwnerSpec is the organization's first administrator, who becomes its
// super administrator once they follow the activation link.
type OwnerSpec struct {
	UserName   string
	Email      string
	GivenName  string
	FamilyName string
	Phone      string // optional
}

// Orgs creates and looks up organizations.
type Orgs struct {
	Store store.Store
	// BaseURL is the server's public URL; activation links point under it.
	BaseURL string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// InvitationTTL is how long an activation link is valid; zero means
	// DefaultInvitationTTL.
	InvitationTTL time.Duration
}

// DefaultInvitationTTL is the life of an activation link.
const DefaultInvitationTTL = 7 * 24 * time.Hour

const (
	maxNameLen     = 200 // characters, for the organization's and people's names
	maxUsernameLen = 256 // bytes
	maxEmailLen    = 254 // RFC 5321 forward-path limit
	maxPhoneLen    = 64
)

var slugPattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// Create validates spec completely, then writes the organization, its
// registered domains, its first administrator (a Pending super
// administrator) and that administrator's invitation in one transaction.
// It returns the activation URL, which carries the invitation's secret: the
// secret is not stored and cannot be shown again.
func (o *Orgs) Create(ctx context.Context, spec OrgSpec) (store.Org, store.Administrator, string, error) {
	domains, err := validateOrgSpec(spec)
	if err != nil {
		return store.Org{}, store.Administrator{}, "", err
	}
	if o.BaseURL == "" {
		return store.Org{}, store.Administrator{}, "", errors.New("admin: Orgs.BaseURL is not set")
	}
	ttl := o.InvitationTTL
	if ttl <= 0 {
		ttl = DefaultInvitationTTL
	}
	secret := newSecret()
	org, owner, err := o.Store.CreateOrg(ctx, store.NewOrg{
		Org:     store.Org{Slug: spec.Slug, Name: spec.Name},
		Domains: domains,
		Owner: store.Administrator{
			UserName:   spec.Owner.UserName,
			Email:      spec.Owner.Email,
			GivenName:  spec.Owner.GivenName,
			FamilyName: spec.Owner.FamilyName,
			Phone:      spec.Owner.Phone,
			Role:       store.RoleSuperAdministrator,
			Status:     store.StatusPending,
		},
		Invitation: store.Invitation{
			Hash:      HashSecret(secret),
			ExpiresAt: now(o.Now).Add(ttl),
		},
	})
	// In a new organization every record is new, and its ids and the
	// invitation hash are random: the one uniqueness rule a request can
	// break is the slug.
	if errors.Is(err, store.ErrAlreadyExists) {
		return store.Org{}, store.Administrator{}, "", &Error{Code: CodeOrgExists,
			Message: fmt.Sprintf("organization %q already exists", spec.Slug), Err: err}
	}
	if err != nil {
		return store.Org{}, store.Administrator{}, "", fmt.Errorf("admin: create organization: %w", err)
	}
	link := strings.TrimRight(o.BaseURL, "/") + "/activate?token=" + secret
	return org, owner, link, nil
}

// BySlug returns the organization with that slug.
func (o *Orgs) BySlug(ctx context.Context, slug string) (store.Org, error) {
	org, err := o.Store.OrgBySlug(ctx, slug)
	if errors.Is(err, store.ErrNotFound) {
		return store.Org{}, &Error{Code: CodeOrgNotFound, Message: fmt.Sprintf("organization %q not found", slug), Err: err}
	}
	if err != nil {
		return store.Org{}, fmt.Errorf("admin: organization %q: %w", slug, err)
	}
	return org, nil
}

// SetSCIM turns SCIM provisioning on or off for the organization. While it
// is on, the identity provider owns the administrators' lifecycle.
func (o *Orgs) SetSCIM(ctx context.Context, orgID string, enabled bool) (store.Org, error) {
	org, err := o.Store.UpdateOrg(ctx, orgID, func(org *store.Org) error {
		org.SCIMEnabled = enabled
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Org{}, &Error{Code: CodeOrgNotFound, Message: fmt.Sprintf("organization with id %q not found", orgID), Err: err}
	}
	if err != nil {
		return store.Org{}, fmt.Errorf("admin: set SCIM: %w", err)
	}
	return org, nil
}

// Preferences are the organization preferences a Super Administrator
// changes (seed 000); nil fields stay as they are.
type Preferences struct {
	SCIMEnabled *bool // the SCIM switch: while on, the IdP owns the lifecycle and the manual paths lock
	RequireTOTP *bool // every administrator signs in with a second factor
	// RequireSSO: sign-in through the organization's SSO connections only;
	// passwords are refused but for break-glass Super Administrators.
	RequireSSO *bool
	// SuperAdminGroup designates the SCIM group (by displayName, compared
	// exactly) whose members are Super Administrators; "" designates none.
	SuperAdminGroup *string
}

// SetPreferences changes the organization's preferences. Super
// Administrators only.
func (o *Orgs) SetPreferences(ctx context.Context, p Principal, prefs Preferences) (store.Org, error) {
	if !p.Super() {
		return store.Org{}, refuse(CodeForbidden, "only a Super Administrator may change the organization's preferences")
	}
	if prefs.SuperAdminGroup != nil {
		if err := checkGroupName(*prefs.SuperAdminGroup); err != nil {
			return store.Org{}, err
		}
	}
	if prefs.RequireSSO != nil && *prefs.RequireSSO {
		conns, err := o.Store.SSOConnections(ctx, p.OrgID)
		if err != nil {
			return store.Org{}, fmt.Errorf("admin: preferences: %w", err)
		}
		if !slices.ContainsFunc(conns, func(c store.SSOConnection) bool { return c.Enabled }) {
			return store.Org{}, refuse(CodeSSONotConfigured, "requiring SSO needs an enabled SSO connection first")
		}
	}
	org, err := o.Store.UpdateOrg(p.Context(ctx), p.OrgID, func(org *store.Org) error {
		if prefs.RequireSSO != nil {
			org.RequireSSO = *prefs.RequireSSO
		}
		if prefs.SCIMEnabled != nil {
			org.SCIMEnabled = *prefs.SCIMEnabled
		}
		if prefs.RequireTOTP != nil {
			org.RequireTOTP = *prefs.RequireTOTP
		}
		if prefs.SuperAdminGroup != nil {
			org.SuperAdminGroup = *prefs.SuperAdminGroup
		}
		return nil
	})
	if err != nil {
		return store.Org{}, fmt.Errorf("admin: preferences: %w", err)
	}
	return org, nil
}

// AddDomain registers an email domain for the organization (the operator
// CLI only: "contact support", seed 001).
func (o *Orgs) AddDomain(ctx context.Context, orgID, domain string) (string, error) {
	norm, err := normalizeDomain(domain)
	if err != nil {
		return "", err
	}
	err = o.Store.AddRegisteredDomain(ctx, orgID, norm)
	if errors.Is(err, store.ErrAlreadyExists) {
		return "", &Error{Code: CodeInvalidDomain, Message: fmt.Sprintf("domain %q is already registered", norm), Err: err}
	}
	return norm, err
}

// RemoveDomain unregisters an email domain. Administrators already using
// it keep their addresses; new invitations and email changes are checked
// against the domains that remain.
func (o *Orgs) RemoveDomain(ctx context.Context, orgID, domain string) error {
	err := o.Store.RemoveRegisteredDomain(ctx, orgID, asciiLower(domain))
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Code: CodeNotFound, Message: fmt.Sprintf("domain %q is not registered", domain), Err: err}
	}
	return err
}

// SetSuperAdminGroup designates the SCIM group (by displayName, compared
// exactly) whose members are Super Administrators; "" designates none.
// The operator CLI's; a management request sets Preferences.SuperAdminGroup.
func (o *Orgs) SetSuperAdminGroup(ctx context.Context, orgID, group string) (store.Org, error) {
	if err := checkGroupName(group); err != nil {
		return store.Org{}, err
	}
	org, err := o.Store.UpdateOrg(ctx, orgID, func(org *store.Org) error {
		org.SuperAdminGroup = group
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Org{}, &Error{Code: CodeOrgNotFound, Message: fmt.Sprintf("organization with id %q not found", orgID), Err: err}
	}
	if err != nil {
		return store.Org{}, fmt.Errorf("admin: set super-administrator group: %w", err)
	}
	return org, nil
}

// checkGroupName checks the name of a designated Super Administrator
// group ("" designates none).
func checkGroupName(group string) error {
	if group == "" {
		return nil
	}
	return checkText(group, maxNameLen, CodeInvalidName, "group name")
}

func now(clock func() time.Time) time.Time {
	if clock == nil {
		return time.Now()
	}
	return clock()
}

// validateOrgSpec checks every field of spec and returns the registered
// domains normalised to lower case.
func validateOrgSpec(spec OrgSpec) ([]string, error) {
	if !slugPattern.MatchString(spec.Slug) {
		return nil, refuse(CodeInvalidSlug, "invalid organization slug %q: use 1 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit", spec.Slug)
	}
	if err := checkText(spec.Name, maxNameLen, CodeInvalidName, "organization name"); err != nil {
		return nil, err
	}
	domains := make([]string, 0, len(spec.Domains))
	seen := make(map[string]bool, len(spec.Domains))
	for _, d := range spec.Domains {
		norm, err := normalizeDomain(d)
		if err != nil {
			return nil, err
		}
		if seen[norm] {
			return nil, refuse(CodeInvalidDomain, "domain %q is given twice", norm)
		}
		seen[norm] = true
		domains = append(domains, norm)
	}
	if err := CheckUsername(spec.Owner.UserName); err != nil {
		return nil, err
	}
	if err := CheckEmail(spec.Owner.Email, domains); err != nil {
		return nil, err
	}
	if err := checkText(spec.Owner.GivenName, maxNameLen, CodeInvalidGivenName, "administrator first name"); err != nil {
		return nil, err
	}
	if err := checkText(spec.Owner.FamilyName, maxNameLen, CodeInvalidFamilyName, "administrator last name"); err != nil {
		return nil, err
	}
	if spec.Owner.Phone != "" {
		if err := checkText(spec.Owner.Phone, maxPhoneLen, CodeInvalidPhone, "administrator phone"); err != nil {
			return nil, err
		}
	}
	return domains, nil
}

// checkText requires a required one-line text field: not blank, valid
// UTF-8, no control characters, at most max characters.
func checkText(s string, max int, code, what string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return refuse(code, "%s is required", what)
	case !utf8.ValidString(s):
		return refuse(code, "%s is not valid UTF-8", what)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return refuse(code, "%s %q contains control characters", what, s)
	case utf8.RuneCountInString(s) > max:
		return refuse(code, "%s is longer than %d characters", what, max)
	}
	return nil
}

// CheckUsername enforces the few rules a username has, on every path that
// sets one (CLI, management API, SCIM). It is otherwise
// stored exactly as given: SSO and SCIM match it exactly, case included, so
// it is never trimmed, folded or normalised here.
func CheckUsername(u string) error {
	switch {
	case u == "":
		return refuse(CodeInvalidUsername, "administrator username is required")
	case len(u) > maxUsernameLen:
		return refuse(CodeInvalidUsername, "administrator username is longer than %d bytes", maxUsernameLen)
	case !utf8.ValidString(u):
		return refuse(CodeInvalidUsername, "administrator username is not valid UTF-8")
	case strings.IndexFunc(u, unicode.IsControl) >= 0:
		return refuse(CodeInvalidUsername, "administrator username %q contains control characters", u)
	case strings.IndexFunc(u, isBidiControl) >= 0:
		return refuse(CodeInvalidUsername, "administrator username %q contains bidirectional control characters (U+202A to U+202E, U+2066 to U+2069)", u)
	}
	first, _ := utf8.DecodeRuneInString(u)
	last, _ := utf8.DecodeLastRuneInString(u)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return refuse(CodeInvalidUsername, "administrator username %q starts or ends with white space", u)
	}
	return nil
}

// isBidiControl reports the embedding, override and isolate controls: in a
// username they make one name display as another ("admin\u202Enimda"
// shows as "adminadmin") in the console, the audit log and the IdP.
func isBidiControl(r rune) bool {
	return r >= '\u202A' && r <= '\u202E' || r >= '\u2066' && r <= '\u2069'
}

// CheckEmail requires a bare address (no display name, no angle brackets),
// on every path that sets one,
// whose domain, when the organization registers domains, is one of them.
func CheckEmail(email string, domains []string) error {
	if email == "" {
		return refuse(CodeInvalidEmail, "administrator email is required")
	}
	if len(email) > maxEmailLen {
		return refuse(CodeInvalidEmail, "administrator email is longer than %d bytes", maxEmailLen)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return refuse(CodeInvalidEmail, "invalid administrator email %q: give a bare address such as jane@example.com", email)
	}
	if len(domains) == 0 {
		return nil
	}
	at := strings.LastIndexByte(email, '@')
	// Registered domains are ASCII, so only ASCII letters are folded:
	// Unicode case folding would match "exampl\u212A.com" (Kelvin sign)
	// with "example.com".
	domain := asciiLower(email[at+1:])
	for _, d := range domains {
		if domain == d {
			return nil
		}
	}
	return refuse(CodeDomainNotRegistered, "administrator email %q is not in a registered domain of the organization (%s)",
		email, strings.Join(domains, ", "))
}

// normalizeDomain lower-cases a registered domain and checks it is a DNS
// host name in ASCII form (internationalised names in their xn-- form),
// with at least two labels, as an email domain has.
func normalizeDomain(d string) (string, error) {
	bad := func(why string) error { return refuse(CodeInvalidDomain, "invalid domain %q: %s", d, why) }
	n := asciiLower(d)
	if n == "" {
		return "", bad("empty")
	}
	if len(n) > 253 {
		return "", bad("longer than 253 characters")
	}
	labels := strings.Split(n, ".")
	if len(labels) < 2 {
		return "", bad("give a full domain such as example.com")
	}
	for _, l := range labels {
		if l == "" {
			return "", bad("empty label")
		}
		if len(l) > 63 {
			return "", bad("label longer than 63 characters")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", bad("use letters, digits and hyphens (internationalised names in xn-- form)")
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", bad("a label starts or ends with a hyphen")
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", bad("not a domain name")
	}
	return n, nil
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
