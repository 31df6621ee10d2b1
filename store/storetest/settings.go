package storetest

import (
	"errors"
	"testing"

	"gatehouse/store"
)

// testBaseURL: the public URL serve records is read back by any
// connection to the database, and the last one recorded wins.
func testBaseURL(t *testing.T, s store.Store) {
	if _, err := s.BaseURL(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("BaseURL before any is recorded: %v, want ErrNotFound", err)
	}
	for _, u := range []string{"http://127.0.0.1:8080", "https://id.example.com/gatehouse"} {
		if err := s.SetBaseURL(ctx, u); err != nil {
			t.Fatal(err)
		}
		if got, err := s.BaseURL(ctx); err != nil || got != u {
			t.Fatalf("BaseURL = %q, %v; want %q", got, err, u)
		}
	}
}
