package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// recordingMail keeps the emails a service makes.
type recordingMail struct{ subjects, bodies []string }

func (m *recordingMail) Message(orgID, to, subject, body string) (store.OutboxMessage, error) {
	m.subjects, m.bodies = append(m.subjects, subject), append(m.bodies, body)
	return store.OutboxMessage{OrgID: orgID, Recipient: to, Subject: subject, Body: body}, nil
}

// TestAdministratorLanguage: the language is checked wherever it is set;
// an invitation without one is in the inviting administrator's language;
// one's own language changes while SCIM is on, another's does not.
func TestAdministratorLanguage(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
		e := newSignInEnv(t, s)
		mail := &recordingMail{}
		adm := &admin.Administrators{Store: s, Mail: mail, BaseURL: "https://gatehouse.example"}
		owner := admin.PrincipalOf(e.owner)
		code := func(err error) string {
			var ae *admin.Error
			if errors.As(err, &ae) {
				return ae.Code
			}
			return ""
		}

		if _, err := adm.Invite(ctx, owner, admin.InviteSpec{UserName: "x", Email: "x@acme.example", GivenName: "X", FamilyName: "Y", Language: "de"}); code(err) != admin.CodeInvalidLanguage {
			t.Fatalf("invite in German: %v", err)
		}
		ru := "ru"
		if _, err := adm.Update(ctx, owner, e.owner.ID, admin.Edit{Language: &ru}); err != nil {
			t.Fatal(err)
		}
		// The inviting administrator is Russian: so is the invitation of
		// one without a language, who stays without one.
		a, err := adm.Invite(ctx, owner, admin.InviteSpec{UserName: "anna", Email: "anna@acme.example", GivenName: "Anna", FamilyName: "K"})
		if err != nil {
			t.Fatal(err)
		}
		if a.Language != "" || len(mail.bodies) != 1 || !strings.Contains(mail.bodies[0], "Вас пригласили") {
			t.Fatalf("language %q, emails %q", a.Language, mail.bodies)
		}
		// The invitee's own language wins.
		en := "en"
		if _, err := adm.Update(ctx, owner, a.ID, admin.Edit{Language: &en}); err != nil {
			t.Fatal(err)
		}
		if err := adm.Resend(ctx, owner, a.ID); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(mail.bodies[1], "You have been invited") {
			t.Fatalf("resend to an English administrator: %s", mail.bodies[1])
		}
		bad := "english"
		if _, err := adm.Update(ctx, owner, a.ID, admin.Edit{Language: &bad}); code(err) != admin.CodeInvalidLanguage {
			t.Fatalf("edit to %q: %v", bad, err)
		}

		// SCIM on: one's own language still changes; another's does not,
		// nor one's own name.
		if _, err := e.orgs.SetSCIM(owner.Context(ctx), e.org.ID, true); err != nil {
			t.Fatal(err)
		}
		if got, err := adm.Update(ctx, owner, e.owner.ID, admin.Edit{Language: &en}); err != nil || got.Language != "en" {
			t.Fatalf("own language while SCIM is on: %v", err)
		}
		if _, err := adm.Update(ctx, owner, a.ID, admin.Edit{Language: &ru}); code(err) != admin.CodeSCIMEnabled {
			t.Fatalf("another's language while SCIM is on: %v", err)
		}
		name := "Olga"
		if _, err := adm.Update(ctx, owner, e.owner.ID, admin.Edit{Language: &ru, GivenName: &name}); code(err) != admin.CodeSCIMEnabled {
			t.Fatalf("own language and name while SCIM is on: %v", err)
		}
		if got, _ := s.Administrator(ctx, e.org.ID, a.ID); got.Language != "en" {
			t.Fatalf("after refusals: %q", got.Language)
		}
	})
}

func TestLanguageOfTag(t *testing.T) {
	for tag, want := range map[string]string{"": "", "ru": "ru", "ru-RU": "ru", "RU_ru": "ru", "en-US": "en", "de": "en", "russian": "en"} {
		if got := admin.LanguageOfTag(tag); got != want {
			t.Errorf("LanguageOfTag(%q) = %q, want %q", tag, got, want)
		}
	}
}
