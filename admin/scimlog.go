package admin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gatehouse/store"
)

// ProvisioningLog reads an organization's provisioning log: the SCIM
// requests of its identity provider and gatehouse's answers, which
// package scim/provlog writes. Only a Super Administrator reads it: its
// entries show what the identity provider sends about every
// administrator.
type ProvisioningLog struct {
	Store store.Store
}

func superForSCIMLog(p Principal) error {
	if !p.Super() {
		return refuse(CodeForbidden, "only a Super Administrator may read the provisioning log")
	}
	return nil
}

// Page returns a page of p's organization's log, newest first, without
// the bodies.
func (l *ProvisioningLog) Page(ctx context.Context, p Principal, q store.SCIMLogQuery) ([]store.SCIMExchange, error) {
	if err := superForSCIMLog(p); err != nil {
		return nil, err
	}
	if q.Limit < 0 || q.Limit > 1000 {
		return nil, refuse(CodeInvalidQuery, "limit must be 1 to 1000")
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return nil, refuse(CodeInvalidQuery, "the end of the time range is not after its start")
	}
	return l.Store.SCIMLog(ctx, p.OrgID, q)
}

// Entry returns one entry of p's organization's log with its bodies.
func (l *ProvisioningLog) Entry(ctx context.Context, p Principal, seq int64) (store.SCIMExchange, error) {
	if err := superForSCIMLog(p); err != nil {
		return store.SCIMExchange{}, err
	}
	e, err := l.Store.SCIMLogEntry(ctx, p.OrgID, seq)
	if errors.Is(err, store.ErrNotFound) {
		return e, &Error{Code: CodeNotFound, Message: fmt.Sprintf("no provisioning log entry %d: it never was, or was pruned", seq), Err: err}
	}
	return e, err
}

// ParseStatusFilter reads the provisioning log's status filter: a status
// ("404") or a class ("4xx"); "" filters nothing.
func ParseStatusFilter(v string, q *store.SCIMLogQuery) error {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	if len(v) == 3 && strings.EqualFold(v[1:], "xx") && '1' <= v[0] && v[0] <= '5' {
		q.StatusClass = int(v[0] - '0')
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 100 || n > 599 {
		return refuse(CodeInvalidQuery, "the status filter is an HTTP status such as 404, or a class such as 4xx")
	}
	q.Status = n
	return nil
}
