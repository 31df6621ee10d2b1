package admin_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

var clock = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return clock }

func validSpec(slug string) admin.OrgSpec {
	return admin.OrgSpec{
		Slug:    slug,
		Name:    "Acme Corporation",
		Domains: []string{"example.com"},
		Owner: admin.OwnerSpec{
			UserName:   "Jane.Doe",
			Email:      "jane.doe@example.com",
			GivenName:  "Jane",
			FamilyName: "Doe",
		},
	}
}

func TestCreateOrg(t *testing.T) {
	tests := []struct {
		name        string
		spec        admin.OrgSpec
		ttl         time.Duration
		wantDomains []string
	}{
		{
			name:        "domains are lower-cased, the email's domain matches without regard to case",
			spec:        admin.OrgSpec{Slug: "acme", Name: "Acme", Domains: []string{"Example.COM", "example.org"}, Owner: admin.OwnerSpec{UserName: "Jane.Doe", Email: "Jane.Doe@EXAMPLE.com", GivenName: "Jane", FamilyName: "Doe"}},
			wantDomains: []string{"example.com", "example.org"},
		},
		{
			name:        "no domains: any email; username kept exactly, inner spaces and Unicode included",
			spec:        admin.OrgSpec{Slug: "0", Name: "Zero", Owner: admin.OwnerSpec{UserName: "Zoë van Dijk", Email: "zoe@anywhere.test", GivenName: "Zoë", FamilyName: "van Dijk", Phone: "+31 20 123 4567"}},
			ttl:         48 * time.Hour,
			wantDomains: []string{},
		},
		{
			name:        "longest slug, internationalised domain in xn-- form",
			spec:        admin.OrgSpec{Slug: strings.Repeat("a", 62) + "9", Name: strings.Repeat("é", 200), Domains: []string{"xn--bcher-kva.de"}, Owner: admin.OwnerSpec{UserName: strings.Repeat("u", 256), Email: "u@xn--bcher-kva.de", GivenName: "U", FamilyName: "V"}},
			wantDomains: []string{"xn--bcher-kva.de"},
		},
	}
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				orgs := &admin.Orgs{Store: s, BaseURL: "https://id.example.net/", Now: fixedClock, InvitationTTL: tt.ttl}
				org, owner, link, err := orgs.Create(ctx, tt.spec)
				if err != nil {
					t.Fatal(err)
				}

				got, err := s.OrgBySlug(ctx, tt.spec.Slug)
				if err != nil {
					t.Fatal(err)
				}
				if got.ID != org.ID || got.Name != tt.spec.Name || got.SCIMEnabled {
					t.Errorf("stored org %+v, returned %+v", got, org)
				}
				domains, err := s.RegisteredDomains(ctx, org.ID)
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, d := range domains {
					names = append(names, d.Domain)
				}
				if !slices.Equal(names, tt.wantDomains) && !(len(names) == 0 && len(tt.wantDomains) == 0) {
					t.Errorf("domains %v, want %v", names, tt.wantDomains)
				}

				a, err := s.AdministratorByUsername(ctx, org.ID, tt.spec.Owner.UserName)
				if err != nil {
					t.Fatalf("owner not found by exact username: %v", err)
				}
				if a.ID != owner.ID || a.Role != store.RoleSuperAdministrator || a.Status != store.StatusPending ||
					a.Email != tt.spec.Owner.Email || a.GivenName != tt.spec.Owner.GivenName ||
					a.FamilyName != tt.spec.Owner.FamilyName || a.Phone != tt.spec.Owner.Phone {
					t.Errorf("stored owner %+v", a)
				}
				if upper := strings.ToUpper(tt.spec.Owner.UserName); upper != tt.spec.Owner.UserName {
					_, err := s.AdministratorByUsername(ctx, org.ID, upper)
					mustNotFound(t, err)
				}

				// The link is BaseURL without its trailing slash, /activate,
				// and the secret; the store holds only the secret's SHA-256.
				const prefix = "https://id.example.net/activate?token="
				if !strings.HasPrefix(link, prefix) {
					t.Fatalf("activation link %q does not start with %q", link, prefix)
				}
				u, err := url.Parse(link)
				if err != nil {
					t.Fatal(err)
				}
				secret := u.Query().Get("token")
				if link != prefix+secret {
					t.Errorf("activation link %q needs escaping; want a URL-safe secret", link)
				}
				raw := decodeSecret(t, secret)
				inv, err := s.InvitationByHash(ctx, sha(secret))
				if err != nil {
					t.Fatalf("no invitation under sha256(secret): %v", err)
				}
				if !slices.Equal(inv.Hash, admin.HashSecret(secret)) {
					t.Errorf("HashSecret disagrees with sha256")
				}
				ttl := tt.ttl
				if ttl == 0 {
					ttl = 7 * 24 * time.Hour
				}
				if inv.OrgID != org.ID || inv.AdministratorID != owner.ID || !inv.ExpiresAt.Equal(clock.Add(ttl)) || inv.UsedAt != nil {
					t.Errorf("invitation %+v, want expiry %v", inv, clock.Add(ttl))
				}
				assertNotStored(t, s, secret, raw)
			})
		}

		t.Run("two links differ", func(t *testing.T) {
			orgs := &admin.Orgs{Store: s, BaseURL: "http://localhost:8080"}
			_, _, l1, err := orgs.Create(ctx, validSpec("twin-1"))
			if err != nil {
				t.Fatal(err)
			}
			_, _, l2, err := orgs.Create(ctx, validSpec("twin-2"))
			if err != nil {
				t.Fatal(err)
			}
			if l1 == l2 {
				t.Fatal("two organizations got the same activation secret")
			}
		})
	})
}

func TestCreateOrgRefused(t *testing.T) {
	with := func(f func(*admin.OrgSpec)) admin.OrgSpec {
		s := validSpec("refused")
		f(&s)
		return s
	}
	tests := []struct {
		name string
		spec admin.OrgSpec
		code string
	}{
		{"empty slug", with(func(s *admin.OrgSpec) { s.Slug = "" }), admin.CodeInvalidSlug},
		{"upper-case slug", with(func(s *admin.OrgSpec) { s.Slug = "Acme" }), admin.CodeInvalidSlug},
		{"slug starts with hyphen", with(func(s *admin.OrgSpec) { s.Slug = "-acme" }), admin.CodeInvalidSlug},
		{"slug ends with hyphen", with(func(s *admin.OrgSpec) { s.Slug = "acme-" }), admin.CodeInvalidSlug},
		{"slug with underscore", with(func(s *admin.OrgSpec) { s.Slug = "ac_me" }), admin.CodeInvalidSlug},
		{"slug of 64 characters", with(func(s *admin.OrgSpec) { s.Slug = strings.Repeat("a", 64) }), admin.CodeInvalidSlug},
		{"slug with non-ASCII letter", with(func(s *admin.OrgSpec) { s.Slug = "acmé" }), admin.CodeInvalidSlug},
		{"slug with newline", with(func(s *admin.OrgSpec) { s.Slug = "acme\n" }), admin.CodeInvalidSlug},

		{"empty name", with(func(s *admin.OrgSpec) { s.Name = "" }), admin.CodeInvalidName},
		{"blank name", with(func(s *admin.OrgSpec) { s.Name = "  \t" }), admin.CodeInvalidName},
		{"name of 201 characters", with(func(s *admin.OrgSpec) { s.Name = strings.Repeat("é", 201) }), admin.CodeInvalidName},
		{"name with control character", with(func(s *admin.OrgSpec) { s.Name = "Acme\x1b[31m" }), admin.CodeInvalidName},

		{"empty domain", with(func(s *admin.OrgSpec) { s.Domains = []string{""} }), admin.CodeInvalidDomain},
		{"single-label domain", with(func(s *admin.OrgSpec) { s.Domains = []string{"localhost"} }), admin.CodeInvalidDomain},
		{"domain with space", with(func(s *admin.OrgSpec) { s.Domains = []string{"exa mple.com"} }), admin.CodeInvalidDomain},
		{"domain label starts with hyphen", with(func(s *admin.OrgSpec) { s.Domains = []string{"-example.com"} }), admin.CodeInvalidDomain},
		{"domain with empty label", with(func(s *admin.OrgSpec) { s.Domains = []string{"example..com"} }), admin.CodeInvalidDomain},
		{"domain with trailing dot", with(func(s *admin.OrgSpec) { s.Domains = []string{"example.com."} }), admin.CodeInvalidDomain},
		{"IP address as domain", with(func(s *admin.OrgSpec) { s.Domains = []string{"192.0.2.1"} }), admin.CodeInvalidDomain},
		{"Unicode domain", with(func(s *admin.OrgSpec) { s.Domains = []string{"bücher.de"} }), admin.CodeInvalidDomain},
		{"domain label of 64 characters", with(func(s *admin.OrgSpec) { s.Domains = []string{strings.Repeat("a", 64) + ".com"} }), admin.CodeInvalidDomain},
		{"domain given twice in different case", with(func(s *admin.OrgSpec) { s.Domains = []string{"example.com", "EXAMPLE.com"} }), admin.CodeInvalidDomain},
		{"valid domain then invalid one", with(func(s *admin.OrgSpec) { s.Domains = []string{"example.com", "bad_domain.com"} }), admin.CodeInvalidDomain},

		{"empty username", with(func(s *admin.OrgSpec) { s.Owner.UserName = "" }), admin.CodeInvalidUsername},
		{"username with leading space", with(func(s *admin.OrgSpec) { s.Owner.UserName = " jane" }), admin.CodeInvalidUsername},
		{"username with trailing space", with(func(s *admin.OrgSpec) { s.Owner.UserName = "jane " }), admin.CodeInvalidUsername},
		{"username with trailing no-break space", with(func(s *admin.OrgSpec) { s.Owner.UserName = "jane\u00a0" }), admin.CodeInvalidUsername},
		{"username with leading ideographic space", with(func(s *admin.OrgSpec) { s.Owner.UserName = "\u3000jane" }), admin.CodeInvalidUsername},
		{"username with NUL", with(func(s *admin.OrgSpec) { s.Owner.UserName = "ja\x00ne" }), admin.CodeInvalidUsername},
		{"username with tab", with(func(s *admin.OrgSpec) { s.Owner.UserName = "ja\tne" }), admin.CodeInvalidUsername},
		{"username with DEL", with(func(s *admin.OrgSpec) { s.Owner.UserName = "jane\x7f" }), admin.CodeInvalidUsername},
		{"username not UTF-8", with(func(s *admin.OrgSpec) { s.Owner.UserName = "jane\xff" }), admin.CodeInvalidUsername},
		{"username of 257 bytes", with(func(s *admin.OrgSpec) { s.Owner.UserName = strings.Repeat("u", 257) }), admin.CodeInvalidUsername},

		{"empty email", with(func(s *admin.OrgSpec) { s.Owner.Email = "" }), admin.CodeInvalidEmail},
		{"email without @", with(func(s *admin.OrgSpec) { s.Owner.Email = "jane" }), admin.CodeInvalidEmail},
		{"email with display name", with(func(s *admin.OrgSpec) { s.Owner.Email = "Jane <jane@example.com>" }), admin.CodeInvalidEmail},
		{"email in angle brackets", with(func(s *admin.OrgSpec) { s.Owner.Email = "<jane@example.com>" }), admin.CodeInvalidEmail},
		{"email with trailing space", with(func(s *admin.OrgSpec) { s.Owner.Email = "jane@example.com " }), admin.CodeInvalidEmail},
		{"two emails", with(func(s *admin.OrgSpec) { s.Owner.Email = "jane@example.com, joe@example.com" }), admin.CodeInvalidEmail},
		{"email too long", with(func(s *admin.OrgSpec) { s.Owner.Email = strings.Repeat("j", 243) + "@example.com" }), admin.CodeInvalidEmail},

		{"email outside the domains", with(func(s *admin.OrgSpec) { s.Owner.Email = "jane@other.com" }), admin.CodeDomainNotRegistered},
		{"email in a subdomain", with(func(s *admin.OrgSpec) { s.Owner.Email = "jane@mail.example.com" }), admin.CodeDomainNotRegistered},
		{"email domain a suffix of a registered one", with(func(s *admin.OrgSpec) { s.Owner.Email = "jane@ample.com" }), admin.CodeDomainNotRegistered},
		{"email domain with Kelvin sign", with(func(s *admin.OrgSpec) {
			s.Domains = []string{"kk.com"}
			s.Owner.Email = "jane@\u212Ak.com"
		}), admin.CodeDomainNotRegistered},

		{"no first name", with(func(s *admin.OrgSpec) { s.Owner.GivenName = "" }), admin.CodeInvalidGivenName},
		{"blank last name", with(func(s *admin.OrgSpec) { s.Owner.FamilyName = " " }), admin.CodeInvalidFamilyName},
		{"phone with newline", with(func(s *admin.OrgSpec) { s.Owner.Phone = "+1 555\n0100" }), admin.CodeInvalidPhone},
	}
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		orgs := &admin.Orgs{Store: s, BaseURL: "http://localhost:8080", Now: fixedClock}
		before := storetest.TakeSnapshot(t, s)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				org, owner, link, err := orgs.Create(ctx, tt.spec)
				assertCode(t, err, tt.code)
				if org.ID != "" || owner.ID != "" || link != "" {
					t.Errorf("refusal returned org %q, owner %q, link %q", org.ID, owner.ID, link)
				}
				_, err = s.OrgBySlug(ctx, tt.spec.Slug)
				mustNotFound(t, err)
				storetest.AssertUnchanged(t, s, before)
			})
		}

		t.Run("slug taken", func(t *testing.T) {
			first, _, _, err := orgs.Create(ctx, validSpec("taken"))
			if err != nil {
				t.Fatal(err)
			}
			before := storetest.TakeSnapshot(t, s)
			second := validSpec("taken")
			second.Name = "Another"
			second.Domains = []string{"another.test"}
			second.Owner.UserName = "someone-else"
			second.Owner.Email = "someone@another.test"
			_, _, link, err := orgs.Create(ctx, second)
			assertCode(t, err, admin.CodeOrgExists)
			if !errors.Is(err, store.ErrAlreadyExists) || !strings.Contains(err.Error(), `"taken"`) {
				t.Errorf("error %v should wrap store.ErrAlreadyExists and name the slug", err)
			}
			if link != "" {
				t.Errorf("refusal returned a link")
			}
			storetest.AssertUnchanged(t, s, before)
			got, err := s.OrgBySlug(ctx, "taken")
			if err != nil || got.ID != first.ID || got.Name != "Acme Corporation" {
				t.Errorf("first organization changed: %+v %v", got, err)
			}
			_, err = s.AdministratorByUsername(ctx, first.ID, "someone-else")
			mustNotFound(t, err)
		})
	})
}

func TestOrgsBySlug(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		orgs := &admin.Orgs{Store: s, BaseURL: "http://localhost:8080"}
		created, _, _, err := orgs.Create(ctx, validSpec("acme"))
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			slug string
			code string
		}{
			{"acme", ""},
			{"ACME", admin.CodeOrgNotFound},
			{"missing", admin.CodeOrgNotFound},
			{"", admin.CodeOrgNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.slug, func(t *testing.T) {
				org, err := orgs.BySlug(ctx, tt.slug)
				if tt.code == "" {
					if err != nil || org.ID != created.ID {
						t.Fatalf("got %+v, %v", org, err)
					}
					return
				}
				assertCode(t, err, tt.code)
				mustNotFound(t, err)
				if want := `organization "` + tt.slug + `" not found`; err.(*admin.Error).Message != want {
					t.Errorf("message %q, want %q", err.(*admin.Error).Message, want)
				}
			})
		}
	})
}

func TestOrgsSetSCIM(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		orgs := &admin.Orgs{Store: s, BaseURL: "http://localhost:8080"}
		org, _, _, err := orgs.Create(ctx, validSpec("acme"))
		if err != nil {
			t.Fatal(err)
		}
		if org.SCIMEnabled {
			t.Fatal("a new organization starts with SCIM on")
		}
		for _, enabled := range []bool{true, true, false} {
			got, err := orgs.SetSCIM(ctx, org.ID, enabled)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := s.Org(ctx, org.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.SCIMEnabled != enabled || stored.SCIMEnabled != enabled || stored.Version != got.Version {
				t.Errorf("SetSCIM(%v) returned %+v, stored %+v", enabled, got, stored)
			}
		}
		_, err = orgs.SetSCIM(ctx, "no-such-id", true)
		assertCode(t, err, admin.CodeOrgNotFound)
	})
}

func TestOrgsNeedBaseURL(t *testing.T) {
	s := storetest.SQLite(t)
	orgs := &admin.Orgs{Store: s}
	if _, _, _, err := orgs.Create(storetest.Context(context.Background()), validSpec("acme")); err == nil {
		t.Fatal("Create without BaseURL gave no error")
	}
	_, err := s.OrgBySlug(context.Background(), "acme")
	mustNotFound(t, err)
}

func TestErrorText(t *testing.T) {
	cause := errors.New("cause")
	e := &admin.Error{Code: "x", Message: "organization \"a\" not found", Err: cause}
	if e.Error() != `admin: organization "a" not found: cause` || !errors.Is(e, cause) {
		t.Errorf("Error() = %q, Is(cause) = %v", e.Error(), errors.Is(e, cause))
	}
	e.Err = nil
	if e.Error() != `admin: organization "a" not found` || e.Unwrap() != nil {
		t.Errorf("Error() = %q", e.Error())
	}
}
