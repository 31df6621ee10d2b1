package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Actor is who makes a change: every audited write of the store records
// it in the audit log, in the transaction of the change. It travels in the
// context (WithActor), so every path — management API, console, CLI,
// SCIM, sign-in — is audited by the same code. It is required: an audited
// write whose context names no actor is refused with ErrNoActor and writes
// nothing, so a caller that forgot to say who acts is found by its first
// test instead of being logged as gatehouse itself. Code that does act as
// gatehouse (pruning, the outbox sender, start-up, an SSO answer before
// anyone is known) says so with WithActor(ctx, System).
type Actor struct {
	Kind string // one of the Actor* kinds
	ID   string // the administrator's, API key's or SCIM token's id; "" for the operator and the system
	Name string // what a reader of the log recognises: a username, a key's name, a token's prefix
}

// Kinds of Actor.
const (
	ActorAdministrator = "administrator" // signed in to the console or the API with a session
	ActorAPIKey        = "api_key"
	ActorSCIM          = "scim"     // an identity provider with a SCIM token
	ActorOperator      = "operator" // the gatehouse command line ("contact support")
	ActorSystem        = "system"   // gatehouse itself, named explicitly (System)
)

// System is gatehouse itself as the actor of a write.
var System = Actor{Kind: ActorSystem}

// ErrNoActor is the error of an audited write whose context carries no
// actor (see WithActor).
var ErrNoActor = errors.New("store: audited write without an actor: the caller must name one with store.WithActor")

type actorKey struct{}

// WithActor returns ctx carrying the actor of the writes made with it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor ctx carries, and whether it carries one.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok && a.Kind != ""
}

// actorOf is the actor of an audited write made with ctx, or ErrNoActor.
func actorOf(ctx context.Context) (Actor, error) {
	if a, ok := ActorFrom(ctx); ok {
		return a, nil
	}
	return Actor{}, ErrNoActor
}

// AuditEntry is one change in the audit log. Before and After are JSON
// objects holding the fields the change touched (absent on a create or a
// delete respectively); secrets never appear in them.
type AuditEntry struct {
	Seq        int64     `db:"seq" json:"seq"`
	OrgID      string    `db:"org_id" json:"-"`
	At         time.Time `db:"at" json:"at"`
	ActorKind  string    `db:"actor_kind" json:"actorKind"`
	ActorID    string    `db:"actor_id" json:"actorId,omitempty"`
	ActorName  string    `db:"actor_name" json:"actorName,omitempty"`
	Action     string    `db:"action" json:"action"`
	TargetKind string    `db:"target_kind" json:"targetKind,omitempty"`
	TargetID   string    `db:"target_id" json:"targetId,omitempty"`
	TargetName string    `db:"target_name" json:"targetName,omitempty"`
	Before     RawJSON   `db:"before" json:"before,omitempty"`
	After      RawJSON   `db:"after" json:"after,omitempty"`
}

// AuditQuery selects entries of one organization's audit log, newest
// first. Empty fields select everything.
type AuditQuery struct {
	ActorID  string
	TargetID string
	Action   string // exact, or a prefix ending in "." ("administrator.")
	Since    time.Time
	Until    time.Time // exclusive
	Before   int64     // continue below this Seq (the previous page's last); 0 starts at the newest
	Limit    int       // 1..1000; 0 means 100
}

// change is one audited write: what the store puts in the audit log in the
// transaction that makes it. before and after are the audit views of the
// record (see the *View functions) or nil.
type change struct {
	action     string
	targetKind string
	targetID   string
	targetName string
	before     map[string]any
	after      map[string]any
}

// Audit actions. Part of the management API's contract: keep them.
const (
	AuditOrgCreate = "organization.create"
	AuditOrgUpdate = "organization.update"
	// AuditOrgSuperAdminMissing: the organization lost its last Super
	// Administrator (to the IdP); AuditOrgSuperAdminRestored: it has one again.
	AuditOrgSuperAdminMissing  = "organization.super_admin_missing"
	AuditOrgSuperAdminRestored = "organization.super_admin_restored"
	AuditDomainAdd             = "domain.add"
	AuditDomainRemove          = "domain.remove"
	AuditAdministratorCreate   = "administrator.create"
	AuditAdministratorUpdate   = "administrator.update"
	AuditAdministratorDelete   = "administrator.delete"
	AuditGroupCreate           = "group.create"
	AuditGroupUpdate           = "group.update"
	AuditGroupDelete           = "group.delete"
	AuditGroupMembers          = "group.members"
	AuditSCIMTokenCreate       = "scim_token.create"
	AuditSCIMTokenRevoke       = "scim_token.revoke"
	AuditInvitationCreate      = "invitation.create"
	AuditInvitationUse         = "invitation.use"
	AuditAPIKeyCreate          = "api_key.create"
	AuditAPIKeyRevoke          = "api_key.revoke"
)

// audit writes c to the audit log of org inside tx, with the actor of ctx.
// Fields equal before and after are left out of both; an update that
// changed nothing writes no entry.
// Without an actor in ctx it fails with ErrNoActor, which rolls back the
// write it belongs to.
func (s *SQL) audit(ctx context.Context, tx *sqlx.Tx, org string, c change) error {
	actor, err := actorOf(ctx)
	if err != nil {
		return err
	}
	return s.auditAll(ctx, tx, []pendingAudit{{actor: actor, org: org, change: c}})
}

// pendingAudit is one entry of a batch written by auditAll.
type pendingAudit struct {
	actor Actor
	org   string
	change
}

// auditInsertColumns are the columns of auditRow's arguments.
const (
	auditInsertColumns = `org_id, at, actor_kind, actor_id, actor_name, action, target_kind, target_id, target_name, before, after`
	auditColumns       = 11
)

// insertAuditSQL writes one audit entry (auditRow's arguments).
var insertAuditSQL = `INSERT INTO audit_log (` + auditInsertColumns + `) VALUES ` + placeholders(1, auditColumns)

// auditRow is the arguments of one entry's row, or false for an update
// that changed nothing.
func auditRow(e pendingAudit, now time.Time) ([]any, bool) {
	before, after := diff(e.before, e.after)
	if e.before != nil && e.after != nil && before == nil && after == nil {
		return nil, false
	}
	return []any{e.org, now, e.actor.Kind, e.actor.ID, e.actor.Name, e.action, e.targetKind, e.targetID, e.targetName,
		before, after}, true
}

// auditAll writes entries in multi-row statements (a batch of member
// changes, role changes, seeded administrators).
func (s *SQL) auditAll(ctx context.Context, tx *sqlx.Tx, entries []pendingAudit) error {
	now := s.timestamp()
	args := make([]any, 0, len(entries)*auditColumns)
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		_, err := s.exec(ctx, tx, `INSERT INTO audit_log (`+auditInsertColumns+`) VALUES `+placeholders(n, auditColumns), args...)
		args, n = args[:0], 0
		if err != nil {
			return fmt.Errorf("store: audit: %w", err)
		}
		return nil
	}
	for _, e := range entries {
		if e.actor.Kind == "" {
			return ErrNoActor
		}
		row, ok := auditRow(e, now)
		if !ok {
			continue
		}
		args = append(args, row...)
		if n++; n == 400 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// RecordAudit writes an entry that no other write carries (a refused
// sign-in, a break-glass override) with the actor of ctx. Seq, At and the
// actor are filled in.
func (s *SQL) RecordAudit(ctx context.Context, e AuditEntry) error {
	if e.OrgID == "" || e.Action == "" {
		return fmt.Errorf("store: audit entry needs an organization and an action")
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		c := change{action: e.Action, targetKind: e.TargetKind, targetID: e.TargetID, targetName: e.TargetName}
		if len(e.Before) > 0 {
			if err := json.Unmarshal(e.Before, &c.before); err != nil {
				return fmt.Errorf("store: audit before: %w", err)
			}
		}
		if len(e.After) > 0 {
			if err := json.Unmarshal(e.After, &c.after); err != nil {
				return fmt.Errorf("store: audit after: %w", err)
			}
		}
		return s.audit(ctx, tx, e.OrgID, c)
	})
}

// AuditLog returns a page of org's audit log, newest first.
func (s *SQL) AuditLog(ctx context.Context, org string, q AuditQuery) ([]AuditEntry, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Limit > 1000 {
		return nil, fmt.Errorf("%w: at most 1000 audit entries a page", ErrInvalidQuery)
	}
	f := newLogFilter(org)
	if q.ActorID != "" {
		f.add(`actor_id = ?`, q.ActorID)
	}
	if q.TargetID != "" {
		f.add(`target_id = ?`, q.TargetID)
	}
	if prefix, ok := strings.CutSuffix(q.Action, "."); ok && prefix != "" {
		f.add("substr(action, 1, ?) = ?", len(q.Action), q.Action)
	} else if q.Action != "" {
		f.add(`action = ?`, q.Action)
	}
	where, args := f.page(q.Since, q.Until, q.Before, q.Limit)
	out := []AuditEntry{}
	// The text depends only on which filters are set: a few dozen shapes,
	// each prepared once.
	err := s.selectAll(ctx, s.reader, &out, `SELECT seq, org_id, at, actor_kind, actor_id, actor_name, action, target_kind, target_id,
		target_name, before, after FROM audit_log WHERE `+where+` ORDER BY seq DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: audit log: %w", err)
	}
	return out, nil
}

// logFilter is the WHERE clause of a page of a log (the audit log, the
// provisioning log): one organization's entries, newest first by seq.
type logFilter struct {
	where strings.Builder
	args  []any
}

func newLogFilter(org string) *logFilter {
	f := &logFilter{args: []any{org}}
	f.where.WriteString(`org_id = ?`)
	return f
}

func (f *logFilter) add(cond string, args ...any) {
	f.where.WriteString(" AND " + cond)
	f.args = append(f.args, args...)
}

// page adds the time range (until exclusive) and the cursor, and returns
// the clause and its arguments, the limit last.
func (f *logFilter) page(since, until time.Time, before int64, limit int) (string, []any) {
	if !since.IsZero() {
		f.add(`at >= ?`, since.UTC())
	}
	if !until.IsZero() {
		f.add(`at < ?`, until.UTC())
	}
	if before > 0 {
		f.add(`seq < ?`, before)
	}
	return f.where.String(), append(f.args, limit)
}

// diff returns the fields of before and after that differ, as JSON objects
// (nil when a side has none). A nil map is a record that does not exist
// (create, delete): every field of the other side is kept.
func diff(before, after map[string]any) (RawJSON, RawJSON) {
	b, a := map[string]any{}, map[string]any{}
	for k, v := range before {
		if w, ok := after[k]; !ok || !reflect.DeepEqual(v, w) {
			b[k] = v
		}
	}
	for k, v := range after {
		if w, ok := before[k]; !ok || !reflect.DeepEqual(v, w) {
			a[k] = v
		}
	}
	return encodeView(b), encodeView(a)
}

func encodeView(m map[string]any) RawJSON {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		// Views hold strings, numbers, booleans, times and JSON documents
		// already checked on write: this cannot fail.
		panic(fmt.Sprintf("store: audit view: %v", err))
	}
	return b
}

// administratorView is what the audit log shows of an administrator.
func administratorView(a *Administrator) map[string]any {
	if a == nil {
		return nil
	}
	v := map[string]any{
		"userName":    a.UserName,
		"externalId":  a.ExternalID,
		"givenName":   a.GivenName,
		"familyName":  a.FamilyName,
		"email":       a.Email,
		"phone":       a.Phone,
		"role":        string(a.Role),
		"status":      string(a.Status),
		"scimManaged": a.SCIMManaged,
		"scimRole":    string(a.SCIMRole),
	}
	if a.Language != "" {
		v["language"] = a.Language
	}
	if len(a.Emails) > 0 {
		v["emails"] = jsonText(a.Emails)
	}
	if a.LastLoginAt != nil {
		v["lastLoginAt"] = a.LastLoginAt.UTC().Format(time.RFC3339Nano)
	}
	if len(a.Attributes) > 0 {
		v["attributes"] = string(a.Attributes)
	}
	return v
}

func orgView(o *Org) map[string]any {
	if o == nil {
		return nil
	}
	return map[string]any{
		"slug":            o.Slug,
		"name":            o.Name,
		"scimEnabled":     o.SCIMEnabled,
		"superAdminGroup": o.SuperAdminGroup,
		"requireTotp":     o.RequireTOTP,
		"requireSso":      o.RequireSSO,
	}
}

func groupView(g *Group) map[string]any {
	if g == nil {
		return nil
	}
	v := map[string]any{"displayName": g.DisplayName, "externalId": g.ExternalID}
	if len(g.Attributes) > 0 {
		v["attributes"] = string(g.Attributes)
	}
	return v
}

// jsonText is v as compact JSON text, for views that compare documents.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("store: audit view: %v", err))
	}
	return string(b)
}
