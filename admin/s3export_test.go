package admin_test

import (
	"context"
	"strings"
	"testing"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// TestS3ExportSettings: only a Super Administrator reads or sets the
// export; every malformed field is refused with its value named (never
// the secret's), writing nothing; the secret is sealed, never shown, kept
// when left empty.
func TestS3ExportSettings(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		org, _, _, err := (&admin.Orgs{Store: s, BaseURL: "http://localhost:8080"}).Create(ctx, validSpec("acme"))
		if err != nil {
			t.Fatal(err)
		}
		x := &admin.S3Exports{Store: s, Sealer: testSealer(t)}
		super := admin.Principal{OrgID: org.ID, Role: store.RoleSuperAdministrator, Actor: store.Actor{Kind: store.ActorAdministrator, Name: "owner"}}
		plain := admin.Principal{OrgID: org.ID, Role: store.RoleAdministrator, Actor: store.Actor{Kind: store.ActorAdministrator, Name: "ann"}}
		const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
		good := admin.S3ExportSpec{Enabled: true, Endpoint: "https://s3.eu-west-1.amazonaws.com/", Region: "eu-west-1",
			Bucket: "acme-logs", Prefix: "/gatehouse/", AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: secret}

		if v, err := x.Get(ctx, super); err != nil || v.Status != admin.S3ExportNotConfigured {
			t.Fatalf("before: %+v, %v", v, err)
		}
		before := storetest.TakeSnapshot(t, s)
		_, err = x.Get(ctx, plain)
		assertCode(t, err, admin.CodeForbidden)
		_, err = x.Set(ctx, plain, good)
		assertCode(t, err, admin.CodeForbidden)
		for _, tc := range []struct {
			name string
			edit func(*admin.S3ExportSpec)
			want string
		}{
			{"no endpoint", func(s *admin.S3ExportSpec) { s.Endpoint = "" }, "give the endpoint"},
			{"ftp", func(s *admin.S3ExportSpec) { s.Endpoint = "ftp://s3.example.com" }, `"ftp://s3.example.com"`},
			{"a path", func(s *admin.S3ExportSpec) { s.Endpoint = "https://s3.example.com/bucket" }, "host alone"},
			{"user info", func(s *admin.S3ExportSpec) { s.Endpoint = "https://me:pw@s3.example.com" }, "host alone"},
			{"region", func(s *admin.S3ExportSpec) { s.Region = "EU West" }, `"EU West"`},
			{"bucket case", func(s *admin.S3ExportSpec) { s.Bucket = "Acme" }, `"Acme"`},
			{"bucket dots", func(s *admin.S3ExportSpec) { s.Bucket = "a..b" }, `"a..b"`},
			{"prefix dot-dot", func(s *admin.S3ExportSpec) { s.Prefix = "logs/../other" }, "prefix"},
			{"prefix control", func(s *admin.S3ExportSpec) { s.Prefix = "logs\nx" }, "prefix"},
			{"access key", func(s *admin.S3ExportSpec) { s.AccessKeyID = "a b" }, "access key id"},
			{"secret control", func(s *admin.S3ExportSpec) { s.SecretAccessKey = "abc\x00def" }, "secret access key is not"},
			{"no secret", func(s *admin.S3ExportSpec) { s.SecretAccessKey = "" }, "give the secret access key"},
		} {
			spec := good
			tc.edit(&spec)
			_, err := x.Set(ctx, super, spec)
			assertCode(t, err, admin.CodeInvalidS3Export)
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secret) {
				t.Errorf("%s: %v, want it to name %s", tc.name, err, tc.want)
			}
		}
		storetest.AssertUnchanged(t, s, before)

		v, err := x.Set(ctx, super, good)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != admin.S3ExportPending || v.Endpoint != "https://s3.eu-west-1.amazonaws.com" || v.Prefix != "gatehouse" ||
			!v.SecretAccessKeySet {
			t.Fatalf("saved %+v", v)
		}
		stored, _ := s.S3Export(ctx, org.ID)
		if strings.Contains(stored.SecretAccessKey, secret) {
			t.Fatal("the secret is stored in clear")
		}
		if plainText, err := x.Sealer.Open(stored.SecretAccessKey, admin.S3ExportSecretContext(org.ID)); err != nil || plainText != secret {
			t.Fatalf("the sealed secret opens to %q, %v", plainText, err)
		}
		if _, err := x.Sealer.Open(stored.SecretAccessKey, admin.S3ExportSecretContext("another-org")); err == nil {
			t.Fatal("the sealed secret opens for another organization")
		}
		good.SecretAccessKey, good.Enabled = "", false
		if v, err = x.Set(ctx, super, good); err != nil || v.Status != admin.S3ExportDisabled {
			t.Fatalf("disabled: %+v, %v", v, err)
		}
		if again, _ := s.S3Export(ctx, org.ID); again.SecretAccessKey != stored.SecretAccessKey {
			t.Fatal("an empty secret replaced the stored one")
		}
	})
}
