package scim

import (
	"context"
	"time"

	"gatehouse/store"
)

// Store is what the SCIM server reads and writes directly: the methods of
// store.Store it calls, and nothing else. Users are written only through
// admin.Lifecycle, which holds the administrator rules. *store.SQL (any
// store.Store) satisfies it.
type Store interface {
	TokenStore
	OrgStore
	UserStore
	GroupStore
}

// TokenStore authenticates a bearer token (see Server.guard).
type TokenStore interface {
	// SCIMTokenByHash finds a token of any organization by the hash of
	// its secret, revoked and expired ones included.
	SCIMTokenByHash(ctx context.Context, hash []byte) (store.SCIMToken, error)
	TouchSCIMToken(ctx context.Context, id string, at time.Time) error
}

// OrgStore reads the token's organization: its SCIM switch, and the
// registered domains a User's emails must be in.
type OrgStore interface {
	Org(ctx context.Context, id string) (store.Org, error)
	RegisteredDomains(ctx context.Context, org string) ([]store.RegisteredDomain, error)
}

// UserStore reads Users: one by id (GET /Users/{id}: the administrator and
// its groups in one query) and lists.
type UserStore interface {
	Administrator(ctx context.Context, org, id string) (store.Administrator, error)
	AdministratorWithGroups(ctx context.Context, org, id string) (store.Administrator, []store.GroupRef, error)
	QueryAdministrators(ctx context.Context, org string, q store.Query) (store.Result[store.Administrator], error)
}

// GroupStore reads and writes Groups.
type GroupStore interface {
	CreateGroup(ctx context.Context, g store.Group, members ...string) (store.Group, error)
	Group(ctx context.Context, org, id string) (store.Group, error)
	PatchGroup(ctx context.Context, org, id string, p store.GroupPatch) (store.Group, error)
	DeleteGroup(ctx context.Context, org, id string, check func(store.Group) error) error
	GroupMembers(ctx context.Context, org, group string, p store.Page) ([]store.GroupMember, int, error)
	QueryGroups(ctx context.Context, org string, q store.Query) (store.Result[store.Group], error)
}

var _ Store = store.Store(nil)
