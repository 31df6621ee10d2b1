package store_test

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

// callEveryMethod calls every method of the Store interface but Close with
// plausible arguments (non-empty strings and lists, so no method returns
// before it asks the database) and returns each method's error.
func callEveryMethod(t *testing.T, s store.Store) map[string]error {
	t.Helper()
	ctx, cancel := context.WithTimeout(storetest.Context(context.Background()), time.Minute)
	defer cancel()
	errType := reflect.TypeFor[error]()
	iface := reflect.TypeFor[store.Store]()
	v := reflect.ValueOf(s)
	out := map[string]error{}
	for i := range iface.NumMethod() {
		m := iface.Method(i)
		if m.Name == "Close" {
			continue
		}
		ft := m.Type
		args := make([]reflect.Value, ft.NumIn())
		for j := range args {
			args[j] = argument(ctx, ft.In(j))
		}
		call := v.MethodByName(m.Name).Call
		if ft.IsVariadic() {
			call = v.MethodByName(m.Name).CallSlice
		}
		res := call(args)
		last := res[len(res)-1]
		if ft.Out(ft.NumOut()-1) != errType {
			t.Fatalf("%s does not end with an error", m.Name)
		}
		err, _ := last.Interface().(error)
		out[m.Name] = err
	}
	return out
}

func argument(ctx context.Context, t reflect.Type) reflect.Value {
	switch t {
	case reflect.TypeFor[context.Context]():
		return reflect.ValueOf(ctx)
	case reflect.TypeFor[store.Role]():
		return reflect.ValueOf(store.RoleAdministrator)
	case reflect.TypeFor[store.ExportStream]():
		return reflect.ValueOf(store.ExportAudit)
	case reflect.TypeFor[store.Status]():
		return reflect.ValueOf(store.StatusActive)
	case reflect.TypeFor[store.RawJSON]():
		return reflect.ValueOf(store.RawJSON(`{}`))
	case reflect.TypeFor[store.Query]():
		// A filter (on an attribute: both kinds of record have them), so the
		// count is a query of its own.
		return reflect.ValueOf(store.Query{Where: store.Compare{Field: store.Field{Attr: []string{"x"}}, Op: store.OpNe, Value: "x"}, Page: store.Page{Limit: 10}})
	case reflect.TypeFor[time.Time]():
		return reflect.ValueOf(time.Now())
	case reflect.TypeFor[time.Duration]():
		return reflect.ValueOf(time.Hour)
	}
	switch {
	case t.Kind() == reflect.String:
		return reflect.ValueOf("x").Convert(t)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return reflect.ValueOf([]byte("x")).Convert(t)
	case t.Kind() == reflect.Slice:
		sl := reflect.MakeSlice(t, 1, 1)
		sl.Index(0).Set(argument(ctx, t.Elem()))
		return sl
	case t.Kind() == reflect.Func:
		// An update function that changes nothing.
		return reflect.MakeFunc(t, func([]reflect.Value) []reflect.Value {
			out := make([]reflect.Value, t.NumOut())
			for i := range out {
				out[i] = reflect.Zero(t.Out(i))
			}
			return out
		})
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return reflect.ValueOf(10).Convert(t)
	case t.Kind() == reflect.Struct:
		// Every field set, so that the checks of required fields pass.
		v := reflect.New(t).Elem()
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				v.Field(i).Set(argument(ctx, f.Type))
			}
		}
		if c, ok := v.Addr().Interface().(*store.SSOConnection); ok {
			c.Kind = store.SSOSAML
		}
		return v
	}
	return reflect.Zero(t)
}

// TestUnavailablePostgres stops PostgreSQL under an open Store: every
// method fails with ErrUnavailable (none with a bare driver error, which
// the protocols would answer with a 500), and the same Store works again
// once the server is back.
func TestUnavailablePostgres(t *testing.T) {
	c := storetest.NewPostgresCluster(t)
	ctx := storetest.Context(context.Background())
	s, err := store.Open(ctx, c.URL(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	org, _, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "acme", Name: "Acme"},
		Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusPending}})
	if err != nil {
		t.Fatal(err)
	}
	// Idle connections in the pool: the first calls after the stop meet
	// the server's goodbye (57P01) on them, later ones a refused connect.
	for range 3 {
		if _, err := s.Org(ctx, org.ID); err != nil {
			t.Fatal(err)
		}
	}
	callEveryMethod(t, s) // statements prepared and kept, as in a server that ran a while
	c.Stop(t)
	for name, err := range callEveryMethod(t, s) {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with PostgreSQL stopped: %v, want ErrUnavailable", name, err)
		}
	}
	c.Start(t)
	if got, err := s.Org(ctx, org.ID); err != nil || got.Slug != "acme" {
		t.Fatalf("after PostgreSQL restarted: %+v, %v", got, err)
	}
}

// TestUnavailableSQLiteBusy holds SQLite's write lock from another
// connection (as another process would) past the busy timeout: every
// method that writes fails with ErrUnavailable; the reads, which WAL mode
// lets through, succeed or find nothing; and writes work once the lock is
// gone.
func TestUnavailableSQLiteBusy(t *testing.T) {
	ctx := storetest.Context(context.Background())
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := store.Open(ctx, path, store.Options{SQLiteBusyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	busy := 0
	for name, err := range callEveryMethod(t, s) {
		switch {
		case errors.Is(err, store.ErrUnavailable):
			busy++
		case err == nil, errors.Is(err, store.ErrNotFound):
		default:
			t.Errorf("%s with the database locked: %v, want ErrUnavailable, ErrNotFound or nil", name, err)
		}
	}
	t.Logf("%d methods met the lock", busy)
	if busy < 20 {
		t.Errorf("only %d methods met the lock", busy)
	}
	// The lock gone, the same Store writes again.
	tx.Rollback()
	if _, _, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "acme", Name: "Acme"},
		Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusPending}}); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
}

// A PostgreSQL server that accepts the TCP connection and then says
// nothing (a frozen host) fails a new connection within the default
// connect_timeout, as ErrUnavailable, instead of holding the caller until
// its own deadline or the operating system's TCP timeout.
func TestPostgresConnectTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	start := time.Now()
	_, err = store.Open(context.Background(), "postgres://gatehouse@"+ln.Addr().String()+"/gatehouse?sslmode=disable",
		store.Options{ConnectTimeout: time.Minute})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("open: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("the connection was given up after %v, want about 5 s", d)
	}
}
