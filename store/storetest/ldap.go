package storetest

import (
	"errors"
	"sync"
	"testing"

	"gatehouse/store"
)

func testLDAP(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "ldap")
	other, _ := newOrg(t, s, "ldap-other")
	_, err := s.LDAPConnection(ctx, o.ID)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteLDAPConnection(ctx, o.ID), store.ErrNotFound)
	_, err = s.PutLDAPConnection(ctx, "no-such-org", func(c *store.LDAPConnection) error { return nil })
	wantErr(t, err, store.ErrNotFound)

	set := func(c *store.LDAPConnection) error {
		c.URL, c.CAPEM, c.BindDN, c.BindPassword = "ldaps://dir.example", "-----BEGIN CERTIFICATE-----", "cn=svc", "v1.sealed-pw"
		c.BaseDN, c.UserFilter, c.UsernameAttribute, c.TimeoutMS, c.Enabled = "dc=example", "(uid={username})", "uid", 5000, true
		return nil
	}
	// Invalid: nothing written.
	if _, err := s.PutLDAPConnection(ctx, o.ID, func(c *store.LDAPConnection) error { c.URL = "ldaps://x"; return nil }); err == nil {
		t.Fatal("a connection without filter was stored")
	}
	refused := errors.New("refused")
	if _, err := s.PutLDAPConnection(ctx, o.ID, func(c *store.LDAPConnection) error { _ = set(c); return refused }); !errors.Is(err, refused) {
		t.Fatalf("fn's error: %v", err)
	}
	_, err = s.LDAPConnection(ctx, o.ID)
	wantErr(t, err, store.ErrNotFound)

	c, err := s.PutLDAPConnection(ctx, o.ID, set)
	if err != nil || c.Version != 1 || c.OrgID != o.ID {
		t.Fatalf("create %+v, %v", c, err)
	}
	got, err := s.LDAPConnection(ctx, o.ID)
	if err != nil || got.BindPassword != "v1.sealed-pw" || got.UserFilter != "(uid={username})" || got.TimeoutMS != 5000 || !got.Enabled {
		t.Fatalf("read back %+v, %v", got, err)
	}
	_, err = s.LDAPConnection(ctx, other.ID)
	wantErr(t, err, store.ErrNotFound)
	up, err := s.PutLDAPConnection(ctx, o.ID, func(c *store.LDAPConnection) error {
		if c.BindPassword != "v1.sealed-pw" {
			t.Errorf("fn got %+v", c)
		}
		c.BindPassword, c.Enabled, c.StartTLS = "v1.new-pw", false, true
		return nil
	})
	if err != nil || up.Version != 2 || up.Enabled || !up.StartTLS || !up.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("update %+v, %v", up, err)
	}
	log, _ := s.AuditLog(ctx, o.ID, store.AuditQuery{TargetID: o.ID})
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action)
		if containsAny(string(e.Before)+string(e.After), "v1.sealed-pw", "v1.new-pw") {
			t.Fatalf("a sealed password is in the audit log: %+v", e)
		}
	}
	if len(actions) < 2 || actions[0] != store.AuditLDAPConnectionUpdate || actions[1] != store.AuditLDAPConnectionCreate ||
		!containsAny(string(log[0].After), `"bindPassword":"replaced"`) {
		t.Fatalf("audit %v %s", actions, log[0].After)
	}

	// LDAP users: a credentials flag, listed per organization.
	a := mustCreate(t, s, store.Administrator{OrgID: o.ID, UserName: "jane", Role: store.RoleAdministrator, Status: store.StatusActive})
	if _, err := s.UpdateCredentials(ctx, o.ID, a.ID, store.CredentialsChange{Action: store.AuditCredentialsUpdate,
		Update: func(c *store.Credentials) error { c.LDAPUser = true; return nil }}); err != nil {
		t.Fatal(err)
	}
	if cr, _ := s.Credentials(ctx, o.ID, a.ID); !cr.LDAPUser {
		t.Fatal("the LDAP flag was not stored")
	}
	if cr, _ := s.Credentials(ctx, o.ID, owner.ID); cr.LDAPUser {
		t.Fatal("an administrator without credentials is an LDAP user")
	}
	users, n, err := s.LDAPUsers(ctx, o.ID, 10)
	if err != nil || n != 1 || len(users) != 1 || users[0].UserName != "jane" {
		t.Fatalf("LDAPUsers %+v %d %v", users, n, err)
	}
	if users, n, _ := s.LDAPUsers(ctx, other.ID, 10); n != 0 || len(users) != 0 {
		t.Fatalf("other organization's LDAP users %+v", users)
	}

	// Delete keeps the users marked.
	if err := s.DeleteLDAPConnection(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.LDAPConnection(ctx, o.ID)
	wantErr(t, err, store.ErrNotFound)
	if _, n, _ := s.LDAPUsers(ctx, o.ID, 10); n != 1 {
		t.Fatal("deleting the connection unmarked its users")
	}

	// Concurrent first creations: one connection, each call either wins
	// or is ErrConflict (never a second row, never another error).
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.PutLDAPConnection(ctx, other.ID, set)
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("concurrent put: %v", err)
		}
	}
	if c, err := s.LDAPConnection(ctx, other.ID); err != nil || wins == 0 || c.Version != int64(wins) {
		t.Fatalf("after concurrent puts: %+v %v, %d wins", c, err, wins)
	}
}
