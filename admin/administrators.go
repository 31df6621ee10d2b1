package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gatehouse/store"
)

// Principal is who makes a management request: an organization, the role
// it acts with (an administrator's, or an API key's) and the actor the
// audit log names.
type Principal struct {
	OrgID string
	Role  store.Role
	Actor store.Actor
	// AdministratorID is the signed-in administrator ("" for an API key or
	// the operator).
	AdministratorID string
	// Operator is the gatehouse command line ("contact support"): it may do
	// what the API refuses everyone (deactivate a Super Administrator), and
	// with OverrideSCIMLock it may write while SCIM is on.
	Operator         bool
	OverrideSCIMLock bool
}

// PrincipalOf is who an administrator's active session acts as (the
// management API's cookie and the console's pages).
func PrincipalOf(a store.Administrator) Principal {
	return Principal{OrgID: a.OrgID, Role: a.Role, AdministratorID: a.ID,
		Actor: store.Actor{Kind: store.ActorAdministrator, ID: a.ID, Name: a.UserName}}
}

// Super reports whether p acts as a Super Administrator.
func (p Principal) Super() bool { return p.Operator || p.Role == store.RoleSuperAdministrator }

// Context returns ctx carrying p's actor for the audit log.
func (p Principal) Context(ctx context.Context) context.Context {
	return store.WithActor(ctx, p.Actor)
}

// Mailer turns an email into an outbox message (body sealed) for a store
// transaction to queue: *outbox.Queue (admin/outbox).
type Mailer interface {
	Message(orgID, to, subject, body string) (store.OutboxMessage, error)
}

// Administrators holds the rules of seed 001 for managing an
// organization's administrators by hand (the non-SCIM path).
type Administrators struct {
	Store store.Store
	Mail  Mailer // nil: no emails (tests)
	// BaseURL is the server's public URL; activation links point under it.
	BaseURL string
	Now     func() time.Time
	// InvitationTTL is how long an activation link is valid; zero means
	// DefaultInvitationTTL.
	InvitationTTL time.Duration
}

// InviteSpec is what inviting an administrator takes (seed 000: first and
// last name, email, phone; seed 001: username, role).
type InviteSpec struct {
	UserName   string
	Email      string
	GivenName  string
	FamilyName string
	Phone      string // optional
	Role       store.Role
	// Language is the administrator's (seed 002): "en", "ru", or "" for
	// none chosen. The invitation email is in it, else in the inviting
	// administrator's language, else in English.
	Language string
}

// Edit is a change of an administrator: nil fields stay as they are.
type Edit struct {
	GivenName  *string
	FamilyName *string
	Email      *string
	Phone      *string
	Role       *store.Role
	Language   *string // "en" or "ru" (see CheckLanguage)
}

// ListOptions select and order a page of administrators.
type ListOptions struct {
	// Search matches a substring of the username, email, first or last
	// name, ignoring case.
	Search     string
	Status     store.Status // "" any
	Role       store.Role   // "" any
	Sort       string       // one of SortFields; "" is creation order
	Descending bool
	Offset     int
	Limit      int // 1..MaxPage; 0 means DefaultPage
	// After is the Next of the page before this one (Offset = its Offset
	// + its length), in creation order only (Sort ""): the store then
	// seeks past that page's last row instead of skipping Offset rows
	// (store.Query.After), so a deep page costs what the first does. The
	// page is the same either way.
	After string
}

// Page sizes of List.
const (
	DefaultPage = 50
	MaxPage     = 500
)

// SortFields are the orders List offers, by name.
var SortFields = map[string]store.Field{
	"name":      store.AdministratorFamilyName,
	"username":  store.AdministratorUserName,
	"email":     store.AdministratorEmail,
	"role":      store.AdministratorRole,
	"status":    store.AdministratorStatus,
	"created":   store.AdministratorCreatedAt,
	"lastLogin": store.AdministratorLastLoginAt,
}

// List returns a page of the organization's administrators and the total
// that match. Every administrator may read the list.
func (s *Administrators) List(ctx context.Context, p Principal, o ListOptions) ([]store.Administrator, int, error) {
	res, err := s.Page(ctx, p, o)
	return res.Items, res.Total, err
}

// Page is List with the cursor of the next page (Result.Next, for
// ListOptions.After; "" unless in creation order and the page is full).
func (s *Administrators) Page(ctx context.Context, p Principal, o ListOptions) (store.Result[store.Administrator], error) {
	var none store.Result[store.Administrator]
	if o.Limit == 0 {
		o.Limit = DefaultPage
	}
	if o.Limit < 1 || o.Limit > MaxPage || o.Offset < 0 {
		return none, refuse(CodeInvalidQuery, "limit must be 1 to %d and offset at least 0", MaxPage)
	}
	if o.After != "" && o.Sort != "" {
		return none, refuse(CodeInvalidQuery, "a cursor continues creation order only, not a sort")
	}
	var where store.And
	if o.Search != "" {
		var any store.Or
		for _, f := range []store.Field{store.AdministratorUserName, store.AdministratorEmail, store.AdministratorGivenName, store.AdministratorFamilyName} {
			any = append(any, store.Compare{Field: f, Op: store.OpCo, Value: o.Search, Fold: true})
		}
		where = append(where, any)
	}
	if o.Status != "" {
		if !o.Status.Valid() {
			return none, refuse(CodeInvalidQuery, "unknown status %q: use Pending, Active or Deactivated", o.Status)
		}
		where = append(where, store.Compare{Field: store.AdministratorStatus, Op: store.OpEq, Value: string(o.Status)})
	}
	if o.Role != "" {
		if !o.Role.Valid() {
			return none, refuse(CodeInvalidQuery, "unknown role %q", o.Role)
		}
		where = append(where, store.Compare{Field: store.AdministratorRole, Op: store.OpEq, Value: string(o.Role)})
	}
	q := store.Query{Where: where, Descending: o.Descending, Page: store.Page{Offset: o.Offset, Limit: o.Limit}, After: o.After}
	if o.Sort != "" {
		f, ok := SortFields[o.Sort]
		if !ok {
			return none, refuse(CodeInvalidQuery, "cannot sort by %q", o.Sort)
		}
		q.SortBy, q.SortFold = f, true // times sort as times whatever SortFold says
	}
	res, err := s.Store.QueryAdministrators(ctx, p.OrgID, q)
	if errors.Is(err, store.ErrInvalidQuery) && o.After != "" {
		return none, refuse(CodeInvalidQuery, "the page's cursor is not one this server gave")
	}
	if err != nil {
		return none, fmt.Errorf("admin: list administrators: %w", err)
	}
	return res, nil
}

// Get returns one administrator of the organization.
func (s *Administrators) Get(ctx context.Context, p Principal, id string) (store.Administrator, error) {
	a, err := s.Store.Administrator(ctx, p.OrgID, id)
	if errors.Is(err, store.ErrNotFound) {
		return a, notFound(id)
	}
	return a, err
}

func notFound(id string) error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf("administrator %q not found", id), Err: store.ErrNotFound}
}

// Invite creates a Pending administrator and queues its activation email.
// Only a Super Administrator may invite a Super Administrator.
func (s *Administrators) Invite(ctx context.Context, p Principal, spec InviteSpec) (store.Administrator, error) {
	if spec.Role == "" {
		spec.Role = store.RoleAdministrator
	}
	if !spec.Role.Valid() {
		return store.Administrator{}, refuse(CodeInvalidRole, "unknown role %q: use %q or %q", spec.Role, store.RoleAdministrator, store.RoleSuperAdministrator)
	}
	if spec.Role == store.RoleSuperAdministrator && !p.Super() {
		return store.Administrator{}, refuse(CodeForbiddenRole, "only a Super Administrator may create a Super Administrator")
	}
	if spec.Language != "" {
		if err := CheckLanguage(spec.Language); err != nil {
			return store.Administrator{}, err
		}
	}
	org, err := s.unlocked(ctx, p)
	if err != nil {
		return store.Administrator{}, err
	}
	domains, err := s.domains(ctx, p.OrgID)
	if err != nil {
		return store.Administrator{}, err
	}
	if err := checkPerson(spec.UserName, spec.Email, spec.GivenName, spec.FamilyName, spec.Phone, domains); err != nil {
		return store.Administrator{}, err
	}
	secret := newSecret()
	inv := store.Invitation{Hash: HashSecret(secret), ExpiresAt: now(s.Now).Add(s.ttl())}
	email := s.invitationEmail(org, spec.Email, spec.UserName, secret, s.mailLanguage(ctx, p, spec.Language))
	a, err := s.Store.InviteAdministrator(p.Context(ctx), store.Administrator{
		OrgID:      p.OrgID,
		UserName:   spec.UserName,
		Email:      spec.Email,
		GivenName:  spec.GivenName,
		FamilyName: spec.FamilyName,
		Phone:      spec.Phone,
		Role:       spec.Role,
		Status:     store.StatusPending,
		Language:   spec.Language,
	}, inv, email)
	if err != nil {
		return store.Administrator{}, writeError(err)
	}
	return a, nil
}

// Resend replaces a Pending administrator's activation link with a new one
// and emails it.
func (s *Administrators) Resend(ctx context.Context, p Principal, id string) error {
	org, err := s.unlocked(ctx, p)
	if err != nil {
		return err
	}
	a, err := s.Get(ctx, p, id)
	if err != nil {
		return err
	}
	if a.Status != store.StatusPending {
		return refuse(CodeNotPending, "administrator %q has finished their account: only a Pending administrator has an invitation", a.UserName)
	}
	if a.Role == store.RoleSuperAdministrator && !p.Super() {
		return refuse(CodeForbiddenRole, "only a Super Administrator may invite a Super Administrator")
	}
	secret := newSecret()
	inv := store.Invitation{Hash: HashSecret(secret), OrgID: p.OrgID, AdministratorID: a.ID, ExpiresAt: now(s.Now).Add(s.ttl())}
	if err := s.Store.CreateInvitation(p.Context(ctx), inv, s.invitationEmail(org, a.Email, a.UserName, secret,
		s.mailLanguage(ctx, p, a.Language))); err != nil {
		return writeError(err)
	}
	return nil
}

func (s *Administrators) ttl() time.Duration {
	if s.InvitationTTL > 0 {
		return s.InvitationTTL
	}
	return DefaultInvitationTTL
}

// ActivationURL is the link an invitation email carries.
func ActivationURL(baseURL, secret string) string {
	return strings.TrimRight(baseURL, "/") + "/activate?token=" + secret
}

func (s *Administrators) invitationEmail(org store.Org, to, username, secret, lang string) *store.OutboxMessage {
	if s.Mail == nil {
		return nil
	}
	e := mailTexts(lang).invitation
	body := fmt.Sprintf(e.body, org.Name, username, ActivationURL(s.BaseURL, secret), now(s.Now).Add(s.ttl()).UTC().Format("2006-01-02 15:04 MST"))
	m, err := s.Mail.Message(org.ID, to, fmt.Sprintf(e.subject, org.Name), body)
	if err != nil {
		// Addresses are checked before this point; a refusal here is a bug.
		panic(fmt.Sprintf("admin: invitation email: %v", err))
	}
	return &m
}

// SendAccess emails an administrator how to sign in: the sign-in address
// and the username, never a password (seed 002's "send an email with
// access").
func (s *Administrators) SendAccess(ctx context.Context, p Principal, a store.Administrator) error {
	if s.Mail == nil {
		return nil
	}
	org, err := s.Store.Org(ctx, p.OrgID)
	if err != nil {
		return fmt.Errorf("admin: organization: %w", err)
	}
	e := mailTexts(s.mailLanguage(ctx, p, a.Language)).access
	body := fmt.Sprintf(e.body, org.Name, strings.TrimRight(s.BaseURL, "/"), a.UserName)
	m, err := s.Mail.Message(org.ID, a.Email, fmt.Sprintf(e.subject, org.Name), body)
	if err != nil {
		return err
	}
	if _, err := s.Store.EnqueueEmail(p.Context(ctx), m); err != nil {
		return fmt.Errorf("admin: queue email: %w", err)
	}
	return nil
}

// lifecycle is the administrator lifecycle the manual paths share with
// SCIM.
func (s *Administrators) lifecycle() *Lifecycle { return &Lifecycle{Store: s.Store} }

func (s *Administrators) unlocked(ctx context.Context, p Principal) (store.Org, error) {
	return s.lifecycle().unlocked(ctx, p)
}

func (s *Administrators) domains(ctx context.Context, org string) ([]string, error) {
	return s.lifecycle().domains(ctx, org)
}

// Update applies an edit: see Lifecycle.Edit.
func (s *Administrators) Update(ctx context.Context, p Principal, id string, e Edit) (store.Administrator, error) {
	return s.lifecycle().Edit(ctx, p, id, e)
}

// Deactivate: see Lifecycle.Deactivate.
func (s *Administrators) Deactivate(ctx context.Context, p Principal, id string) (store.Administrator, error) {
	return s.lifecycle().Deactivate(ctx, p, id)
}

// Reactivate: see Lifecycle.Reactivate.
func (s *Administrators) Reactivate(ctx context.Context, p Principal, id string) (store.Administrator, error) {
	return s.lifecycle().Reactivate(ctx, p, id)
}

// Delete: see Lifecycle.Remove.
func (s *Administrators) Delete(ctx context.Context, p Principal, id string) error {
	return s.lifecycle().Remove(ctx, p, id)
}

// checkPerson validates the fields of an administrator a person enters.
func checkPerson(username, email, given, family, phone string, domains []string) error {
	if err := CheckUsername(username); err != nil {
		return err
	}
	if err := CheckEmail(email, domains); err != nil {
		return err
	}
	if err := checkText(given, maxNameLen, CodeInvalidGivenName, "administrator first name"); err != nil {
		return err
	}
	if err := checkText(family, maxNameLen, CodeInvalidFamilyName, "administrator last name"); err != nil {
		return err
	}
	if phone != "" {
		return checkText(phone, maxPhoneLen, CodeInvalidPhone, "administrator phone")
	}
	return nil
}

// writeError turns the store's refusals into Errors; ids name the record
// for a not-found message.
func writeError(err error, ids ...string) error {
	var exists *store.ExistsError
	var refused *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &refused):
		return err
	case errors.As(err, &exists):
		return &Error{Code: CodeUsernameTaken, Message: fmt.Sprintf("username %q is taken (usernames must differ in more than case)", exists.Existing), Err: err}
	case errors.Is(err, store.ErrLastSuperAdministrator):
		return &Error{Code: CodeLastSuperAdmin, Message: "the organization must keep at least one Super Administrator (Pending or Active): promote another administrator first", Err: err}
	case errors.Is(err, store.ErrNotFound) && len(ids) > 0:
		return notFound(ids[0])
	}
	return fmt.Errorf("admin: %w", err)
}
