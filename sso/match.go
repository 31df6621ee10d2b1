package sso

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gatehouse/sso/protocol"
	"gatehouse/store"
)

// Administrators finds administrators by username: exactly, and (for the
// near misses Match names) ignoring case.
type Administrators interface {
	AdministratorByUsername(ctx context.Context, org, username string) (store.Administrator, error)
	QueryAdministrators(ctx context.Context, org string, q store.Query) (store.Result[store.Administrator], error)
}

// Match finds the administrator of org whose username is exactly
// username: byte for byte, no trimming, no case folding (seed 001:
// usernames are case-sensitive and are what SSO matches on). When none is,
// the *protocol.Error's Reason says why for the organization's administrators,
// naming a near miss — an administrator whose username differs only by
// case or by surrounding white space — since that is the usual
// misconfiguration of an identity provider.
func Match(ctx context.Context, st Administrators, org, username string) (store.Administrator, error) {
	if username == "" {
		return store.Administrator{}, protocol.Refuse(nil, "the identity provider sent an empty username")
	}
	a, err := st.AdministratorByUsername(ctx, org, username)
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.Administrator{}, fmt.Errorf("sso: match: %w", err)
	}
	// Near misses: the same name in another case (the fold index finds
	// it), or the name without surrounding white space.
	if trimmed := strings.TrimSpace(username); trimmed != username && trimmed != "" {
		if near, err := st.AdministratorByUsername(ctx, org, trimmed); err == nil {
			return store.Administrator{}, nearMiss(username, near.UserName, fmt.Sprintf("the identity provider sent %q, with white space around it; usernames match exactly; %q exists",
				username, near.UserName))
		}
	}
	res, err := st.QueryAdministrators(ctx, org, store.Query{
		Where: store.Compare{Field: store.AdministratorUserName, Op: store.OpEq, Value: username, Fold: true},
		Page:  store.Page{Limit: 1},
	})
	if err != nil {
		return store.Administrator{}, fmt.Errorf("sso: match: %w", err)
	}
	if len(res.Items) > 0 {
		return store.Administrator{}, nearMiss(username, res.Items[0].UserName, fmt.Sprintf("the identity provider sent %q; usernames are case-sensitive; %q exists",
			username, res.Items[0].UserName))
	}
	return store.Administrator{}, protocol.Refuse(nil, fmt.Sprintf("the identity provider sent %q; no administrator of the organization has that username", username))
}

// NearMiss is Match's refusal when an administrator's username differs
// from the one sent only by case or surrounding white space. It is a
// diagnosis for a connection's test page (which names Existing); the
// sign-in is refused all the same. errors.As finds the *protocol.Error
// it wraps.
type NearMiss struct {
	Sent, Existing string
	refusal        *protocol.Error
}

func nearMiss(sent, existing, reason string) *NearMiss {
	return &NearMiss{Sent: sent, Existing: existing, refusal: protocol.Refuse(nil, reason)}
}

func (n *NearMiss) Error() string { return n.refusal.Error() }
func (n *NearMiss) Unwrap() error { return n.refusal }
