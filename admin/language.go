package admin

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Languages an administrator may choose (seed 002's "Language": Russian or
// English), as the codes stored and sent by the management API.
var Languages = []string{"en", "ru"}

// CheckLanguage refuses a language gatehouse does not offer.
func CheckLanguage(lang string) error {
	for _, l := range Languages {
		if lang == l {
			return nil
		}
	}
	return refuse(CodeInvalidLanguage, "unknown language %q: use %q (English) or %q (Russian)", lang, "en", "ru")
}

// LanguageOfTag is the language gatehouse offers for a language tag
// (BCP 47, as SCIM's preferredLanguage, RFC 7643 §4.1.2, or an
// Accept-Language entry): "ru" for Russian in any region ("ru",
// "ru-RU", "ru_RU"), "en" for any other non-empty tag (English is the
// only other language there is), "" for none.
func LanguageOfTag(tag string) string {
	tag = strings.TrimSpace(tag)
	if tag == "" {
		return ""
	}
	base, _, _ := strings.Cut(strings.ToLower(strings.ReplaceAll(tag, "_", "-")), "-")
	if base == "ru" {
		return "ru"
	}
	return "en"
}

// mailLanguage is the language of an email sent to an administrator whose
// own language is lang: lang, else the language of the administrator who
// acts (p), else English.
func (s *Administrators) mailLanguage(ctx context.Context, p Principal, lang string) string {
	if lang != "" {
		return lang
	}
	if p.AdministratorID != "" {
		if a, err := s.Store.Administrator(ctx, p.OrgID, p.AdministratorID); err == nil && a.Language != "" {
			return a.Language
		}
	}
	return "en"
}

// mailText is one email's subject and body, formats of fmt.
type mailText struct{ subject, body string }

// mailCatalogue holds the emails gatehouse sends, in one language.
type mailCatalogue struct {
	// invitation: the organization's name; the body: the organization's
	// name, the username, the activation link, its expiry.
	invitation mailText
	// access: the organization's name; the body: the organization's name,
	// the base URL, the username.
	access mailText
	// reset: the body: the given name, the username, the link's lifetime,
	// the link.
	reset mailText
}

var mails = map[string]mailCatalogue{
	"en": {
		invitation: mailText{"Your administrator account for %s",
			"You have been invited to administer %s.\n\nYour username: %s\n\nFinish your account (set a password) here:\n%s\n\n" +
				"The link works once and expires on %s.\n"},
		access: mailText{"Your access to %s",
			"You can sign in to administer %s.\n\nSign in at: %s/login\nYour username: %s\n\nYour password is given to you separately.\n"},
		reset: mailText{"Reset your gatehouse password",
			"Hello %s,\n\nSomeone asked to reset the password of your gatehouse account %q.\n" +
				"To choose a new password, open this link within %s:\n\n%s\n\n" +
				"If it was not you, ignore this email: your password does not change.\n"},
	},
	"ru": {
		invitation: mailText{"Ваша учётная запись администратора в %s",
			"Вас пригласили администрировать %s.\n\nВаше имя пользователя: %s\n\nЗавершите создание учётной записи (задайте пароль) по ссылке:\n%s\n\n" +
				"Ссылка действует один раз, до %s.\n"},
		access: mailText{"Ваш доступ к %s",
			"Вы можете войти, чтобы администрировать %s.\n\nАдрес для входа: %s/login\nВаше имя пользователя: %s\n\nПароль вам сообщат отдельно.\n"},
		reset: mailText{"Сброс пароля gatehouse",
			"Здравствуйте, %s!\n\nКто-то запросил сброс пароля вашей учётной записи gatehouse %q.\n" +
				"Чтобы задать новый пароль, откройте эту ссылку в течение %s:\n\n%s\n\n" +
				"Если это были не вы, просто проигнорируйте это письмо: ваш пароль не изменится.\n"},
	},
}

// mailTexts is the catalogue of lang, English for any other.
func mailTexts(lang string) mailCatalogue {
	if m, ok := mails[lang]; ok {
		return m
	}
	return mails["en"]
}

// ttlText is a link's lifetime in words: whole hours, else minutes.
func ttlText(d time.Duration, lang string) string {
	n, unit := int(d/time.Minute), "minute"
	if d >= time.Hour && d%time.Hour == 0 {
		n, unit = int(d/time.Hour), "hour"
	}
	if lang != "ru" {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	forms := map[string][3]string{"minute": {"минуты", "минут", "минут"}, "hour": {"часа", "часов", "часов"}}[unit]
	// "в течение" takes the genitive: 1 часа, 2 часов, 21 часа.
	if n%10 == 1 && n%100 != 11 {
		return fmt.Sprintf("%d %s", n, forms[0])
	}
	return fmt.Sprintf("%d %s", n, forms[1])
}
