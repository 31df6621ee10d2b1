package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"gatehouse/store"
)

// The audit log: the organization's changes, newest first, filtered by
// actor, target, action and time, paged as GET /api/v1/audit pages (a
// cursor: the last entry's sequence number, before=). Each entry reads
// as who did what to whom, when, and the fields it changed from before
// to after. Every administrator reads it, as through the API.

// PathAudit is the audit log's page.
const PathAudit = "/audit"

// auditPage is the number of entries a page shows: 30 entries of a
// busy log (an invitation lists a dozen fields) keep the page under
// 100 KB; 50 did not.
const auditPage = 30

type auditData struct {
	// The filters as typed.
	Actor, Target, Action, From, To string
	Actions                         []actionGroup
	Entries                         []auditRow
	// Next is the URL of the next (older) page, "" on the last; First
	// the first page's with the same filters, "" on the first.
	Next, First string
	Filtered    bool
}

type actionGroup struct {
	Label   string
	Prefix  string
	Actions []option
}

type auditRow struct {
	Seq                          int64
	When                         string
	Actor, ActorKind, ActorLink  string
	Action, ActionCode           string
	Target, TargetKind, TargetLn string
	Changes                      []fieldChange
	Created, Deleted             bool
}

type fieldChange struct {
	Field               string
	Before, After       value
	HasBefore, HasAfter bool
}

// value is a field's value in the log; a Word (yes, no, a role, a
// status...) is translated, any other text is shown as written.
type value struct {
	Text string
	Word bool
}

// actionLabels name the audit actions (store.Audit*), by their group.
var actionLabels = []actionGroup{
	{msg("Organization"), "organization.", []option{
		{store.AuditOrgCreate, msg("Organization created")},
		{store.AuditOrgUpdate, msg("Organization preferences changed")},
		{store.AuditOrgSuperAdminMissing, msg("Last Super Administrator removed by the identity provider")},
		{store.AuditOrgSuperAdminRestored, msg("Super Administrator restored")},
		{store.AuditDomainAdd, msg("Domain registered")},
		{store.AuditDomainRemove, msg("Domain unregistered")}}},
	{msg("Administrators"), "administrator.", []option{
		{store.AuditAdministratorCreate, msg("Administrator added")},
		{store.AuditAdministratorUpdate, msg("Administrator changed")},
		{store.AuditAdministratorDelete, msg("Administrator deleted")},
		{store.AuditInvitationCreate, msg("Invitation sent")},
		{store.AuditInvitationUse, msg("Invitation accepted")}}},
	{msg("Sign-in"), "signin.", []option{
		{store.AuditSignInSuccess, msg("Signed in")},
		{store.AuditSignInFailure, msg("Sign-in refused")},
		{store.AuditSignInLockout, msg("Account locked after failed sign-ins")},
		{store.AuditSignOut, msg("Signed out")},
		{store.AuditSessionsEnd, msg("All sessions ended")}}},
	{msg("Passwords and two-factor"), "credentials.", []option{
		{store.AuditCredentialsUpdate, msg("Sign-in settings changed")},
		{store.AuditPasswordChange, msg("Own password changed")},
		{store.AuditPasswordSet, msg("Password set by another administrator")},
		{store.AuditTOTPEnrol, msg("Two-factor enrolled")},
		{store.AuditTOTPReset, msg("Two-factor reset")},
		{store.AuditTOTPReplace, msg("Two-factor moved to a new app")},
		{store.AuditCredentialsUnlock, msg("Account unlocked")}}},
	{msg("SCIM"), "", []option{
		{store.AuditSCIMTokenCreate, msg("SCIM token created")},
		{store.AuditSCIMTokenRevoke, msg("SCIM token revoked")},
		{store.AuditGroupCreate, msg("SCIM group created")},
		{store.AuditGroupUpdate, msg("SCIM group changed")},
		{store.AuditGroupMembers, msg("SCIM group members changed")},
		{store.AuditGroupDelete, msg("SCIM group deleted")}}},
	{msg("API keys"), "api_key.", []option{
		{store.AuditAPIKeyCreate, msg("API key created")},
		{store.AuditAPIKeyRevoke, msg("API key revoked")}}},
	{msg("SSO connections"), "sso_connection.", []option{
		{store.AuditSSOConnectionCreate, msg("SSO connection created")},
		{store.AuditSSOConnectionUpdate, msg("SSO connection changed")},
		{store.AuditSSOConnectionDelete, msg("SSO connection deleted")}}},
	{msg("Applications"), "oidc_client.", []option{
		{store.AuditOIDCClientCreate, msg("Application registered")},
		{store.AuditOIDCClientUpdate, msg("Application changed")},
		{store.AuditOIDCClientDelete, msg("Application deleted")}}},
	{msg("S3 export"), "s3_export.", []option{
		{store.AuditS3ExportCreate, msg("S3 export set up")},
		{store.AuditS3ExportUpdate, msg("S3 export changed")}}},
}

// fieldLabels name the fields of the audit views (store's *View).
var fieldLabels = map[string]string{
	"userName": msg("Username"), "givenName": msg("First name"), "familyName": msg("Last name"), "email": msg("Email"),
	"phone": msg("Phone"), "role": msg("Role"), "status": msg("Status"), "scimManaged": msg("Managed by SCIM"),
	"scimRole": msg("Role from SCIM"), "externalId": msg("External ID"), "lastLoginAt": msg("Last login"),
	"scimEnabled": msg("SCIM"), "requireTotp": msg("Two-factor required"), "requireSso": msg("SSO required"),
	"superAdminGroup": msg("Super Administrator group"), "name": msg("Record name"), "slug": msg("Slug"),
	"displayName": msg("Display name"), "revoked": msg("Revoked"), "description": msg("Description"),
	"prefix": msg("Prefix"), "expiresAt": msg("Expires"), "createdBy": msg("Created by"),
	"ip": msg("IP address"), "method": msg("Method"), "result": msg("Result"), "stage": msg("Session stage"),
	"passwordChangedAt": msg("Password changed at"), "passwordSet": msg("Password set"), "purpose": msg("Purpose"),
	"used": msg("Used"), "domain": msg("Domain"), "lockedUntil": msg("Locked until"), "sessions": msg("Sessions"),
	"unlocked": msg("Unlocked"), "breakGlass": msg("Break-glass sign-in"), "config": msg("Configuration"),
	"enabled": msg("Enabled"), "kind": msg("Kind"), "mustChangePassword": msg("Must change password"),
	"secretSet": msg("Secret set"), "totpEnabled": msg("Two-factor enrolled"), "usernameFrom": msg("Username from"),
	"superAdministratorMissingSince": msg("Without a Super Administrator since"), "attributes": msg("Attributes"),
	"emails": msg("Email addresses"), "public": msg("Public"), "redirectUris": msg("Redirect URIs"),
	"postLogoutRedirectUris": msg("Post-logout redirect URIs"), "backchannelLogoutUri": msg("Back-channel logout URI"),
	"allOrgs": msg("Every organization"), "otherOrganizations": msg("Other organizations too"), "firstParty": msg("First-party"),
	"disabled": msg("Disabled"), "secret": msg("Secret"),
	"endpoint": msg("Endpoint"), "region": msg("Region"), "bucket": msg("Bucket"), "accessKeyId": msg("Access key ID"),
	"pathStyle": msg("Path-style addressing"), "secretAccessKey": msg("Secret access key"),
}

// actorKinds name the kinds of actor.
var actorKinds = map[string]string{
	store.ActorAdministrator: msg("administrator"), store.ActorAPIKey: msg("API key"), store.ActorSCIM: msg("SCIM token"),
	store.ActorOperator: msg("support"), store.ActorSystem: msg("gatehouse"),
}

func actionLabel(action string) string {
	for _, g := range actionLabels {
		for _, a := range g.Actions {
			if a.Value == action {
				return a.Label
			}
		}
	}
	return action
}

// knownAction reports whether v is an action or a group's prefix the
// filter offers.
func knownAction(v string) bool {
	for _, g := range actionLabels {
		if g.Prefix != "" && g.Prefix == v {
			return true
		}
		for _, a := range g.Actions {
			if a.Value == v {
				return true
			}
		}
	}
	return false
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	d := &auditData{Actor: strings.TrimSpace(q.Get("actor")), Target: strings.TrimSpace(q.Get("target")), Action: q.Get("action"),
		From: q.Get("from"), To: q.Get("to"), Actions: actionLabels}
	pg := &page{Title: msg("Audit log"), Me: &me, Org: &org, Nav: "audit", Data: d}
	fields := map[string]string{}
	aq := store.AuditQuery{Limit: auditPage}
	ctx := r.Context()
	// Actor and target: a username, or the id of the log's entries.
	var err error
	if aq.ActorID, err = c.auditSubject(r, org.ID, d.Actor); err != nil {
		c.failure(w, r, err)
		return
	}
	if aq.TargetID, err = c.auditSubject(r, org.ID, d.Target); err != nil {
		c.failure(w, r, err)
		return
	}
	if d.Action != "" {
		if knownAction(d.Action) {
			aq.Action = d.Action
		} else {
			fields["action"] = msg("Choose an action from the list.")
		}
	}
	aq.Since, aq.Until, aq.Before = logRange(q, fields)
	if len(fields) > 0 {
		pg.Fields = fields
		if msgText, ok := fields["before"]; ok {
			pg.Error = msgText
		}
		c.render(w, r, http.StatusBadRequest, "audit", pg)
		return
	}
	d.Filtered = d.Actor != "" || d.Target != "" || d.Action != "" || d.From != "" || d.To != ""
	entries, err := c.Store.AuditLog(ctx, org.ID, aq)
	if err != nil {
		c.failure(w, r, err)
		return
	}
	filters := url.Values{}
	for k, v := range map[string]string{"actor": d.Actor, "target": d.Target, "action": d.Action, "from": d.From, "to": d.To} {
		if v != "" {
			filters.Set(k, v)
		}
	}
	if aq.Before > 0 {
		d.First = PathAudit + "?" + filters.Encode()
	}
	if len(entries) == aq.Limit {
		next := url.Values{}
		for k, v := range filters {
			next[k] = v
		}
		next.Set("before", strconv.FormatInt(entries[len(entries)-1].Seq, 10))
		d.Next = PathAudit + "?" + next.Encode()
	}
	for _, e := range entries {
		d.Entries = append(d.Entries, auditEntry(e))
	}
	c.render(w, r, http.StatusOK, "audit", pg)
}

// logRange reads the days and the page of a log's page (the audit log,
// the provisioning log): from and to are days, to inclusive; before is the
// previous page's last sequence number. Refusals go to fields, by name.
func logRange(q url.Values, fields map[string]string) (since, until time.Time, before int64) {
	for _, f := range []struct {
		name string
		dst  *time.Time
		end  bool
	}{{"from", &since, false}, {"to", &until, true}} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		day, err := time.Parse("2006-01-02", v)
		if err != nil {
			fields[f.name] = msg("Give a date such as 2026-12-31.")
			continue
		}
		if f.end {
			day = day.AddDate(0, 0, 1) // to the end of that day
		}
		*f.dst = day
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		fields["to"] = msg("The end date is before the start date.")
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			fields["before"] = msg("This page of the log does not exist: start from the newest entries.")
		}
		before = n
	}
	return since, until, before
}

// auditSubject is the id to filter by for what was typed: the
// administrator with that username (exact, as usernames are), else the
// text itself (an id, as the log's links give).
func (c *Console) auditSubject(r *http.Request, orgID, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	a, err := c.Store.AdministratorByUsername(r.Context(), orgID, v)
	if errors.Is(err, store.ErrNotFound) {
		return v, nil
	}
	if err != nil {
		return "", err
	}
	return a.ID, nil
}

func auditEntry(e store.AuditEntry) auditRow {
	row := auditRow{Seq: e.Seq, When: e.At.UTC().Format("2006-01-02 15:04:05 UTC"), Actor: e.ActorName,
		ActorKind: actorKinds[e.ActorKind], Action: actionLabel(e.Action), ActionCode: e.Action, Target: e.TargetName,
		TargetKind: e.TargetKind}
	if row.ActorKind == "" {
		row.ActorKind = e.ActorKind
	}
	if e.ActorID != "" {
		row.ActorLink = PathAudit + "?" + url.Values{"actor": {e.ActorID}}.Encode()
	}
	if e.TargetID != "" {
		row.TargetLn = PathAudit + "?" + url.Values{"target": {e.TargetID}}.Encode()
	}
	if row.Target == "" {
		row.Target = e.TargetID
	}
	before, after := decodeView(e.Before), decodeView(e.After)
	row.Created, row.Deleted = before == nil && after != nil, after == nil && before != nil
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fc := fieldChange{Field: fieldLabels[k]}
		if fc.Field == "" {
			fc.Field = k
		}
		var v any
		if v, fc.HasBefore = before[k]; fc.HasBefore {
			fc.Before = valueOf(k, v)
		}
		if v, fc.HasAfter = after[k]; fc.HasAfter {
			fc.After = valueOf(k, v)
		}
		row.Changes = append(row.Changes, fc)
	}
	return row
}

// wordFields hold a value from a short list that the console translates.
var wordFields = map[string]bool{"role": true, "scimRole": true, "status": true}

func valueOf(field string, v any) value {
	switch x := v.(type) {
	case nil, bool:
		return value{Text: readable(v), Word: true}
	case string:
		return value{Text: readable(v), Word: x == "" || wordFields[field]}
	}
	return value{Text: readable(v)}
}

func decodeView(raw store.RawJSON) map[string]any {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return map[string]any{"?": string(raw)}
	}
	return m
}

// readable is a view's value as a person reads it: yes/no for a switch,
// "(empty)" for an empty text, a list's values separated by commas, an
// object's as "name: value" pairs.
func readable(v any) string {
	switch v := v.(type) {
	case nil:
		return msg("(none)")
	case bool:
		if v {
			return msg("yes")
		}
		return msg("no")
	case string:
		if v == "" {
			return msg("(empty)")
		}
		// A JSON document kept as text (emails, attributes): its values.
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		if (strings.HasPrefix(v, "[") || strings.HasPrefix(v, "{")) && json.Valid([]byte(v)) {
			var x any
			if json.Unmarshal([]byte(v), &x) == nil {
				return readable(x)
			}
		}
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = readable(x)
		}
		if len(parts) == 0 {
			return msg("(empty)")
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + readable(v[k])
		}
		return strings.Join(parts, "; ")
	}
	return fmt.Sprint(v)
}
