package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"gatehouse/store"
)

// The console in English and Russian (issue #13, seed 002's "Language"):
// an administrator's language through the management API, the emails in
// the recipient's language, the signed-out pages' switch, the
// preference of a signed-in administrator, no English left on a Russian
// page, and the sign-in pages at 390 pixels.

// received waits for the inbox's n-th email (from 1) and returns its
// recipient, decoded subject and text.
func received(t *testing.T, in *inbox, n int) (to, subject, text string) {
	t.Helper()
	var raw []byte
	for deadline := time.Now().Add(10 * time.Second); raw == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		in.mu.Lock()
		if len(in.msgs) >= n {
			raw, to = in.msgs[n-1], in.rcpt[n-1]
		}
		in.mu.Unlock()
	}
	if raw == nil {
		t.Fatalf("email %d never reached the SMTP server", n)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	return to, subject, string(b)
}

// TestConsoleI18nLanguageAndEmails, through a real serve and a real SMTP
// server: the management API takes and shows an administrator's
// language and refuses another one, changing nothing; the invitation of
// an administrator invited in Russian is Russian, and so is the
// password-reset email of an administrator whose language is Russian;
// one without a language gets English.
func TestConsoleI18nLanguageAndEmails(t *testing.T) {
	in, port := smtpInbox(t)
	env := map[string]string{"GATEHOUSE_DB": "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")}
	if r := gatehouse(t, env, orgArgs("acme", "--domain", "example.com")...); r.code != 0 {
		t.Fatal(r.stderr)
	}
	key := strings.TrimSpace(gatehouse(t, env, "api-key", "create", "--org", "acme", "--name", "test").stdout)
	addr := freeAddr(t)
	srv := startServe(t, addr, env, "--addr", addr, "--smtp-host", "127.0.0.1", "--smtp-port", port,
		"--smtp-starttls", "none", "--smtp-from", "Acme admin <noreply@example.com>")
	call := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.base+"/api/v1"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		res, b := do(t, req)
		var out map[string]any
		json.Unmarshal([]byte(b), &out)
		return res.StatusCode, out
	}

	// Invited in Russian: the API says so, and the invitation is Russian.
	st, ivan := call("POST", "/administrators", `{"username":"Ivan","firstName":"Иван","lastName":"Петров","email":"ivan@example.com","language":"ru"}`)
	if st != 201 || ivan["language"] != "ru" {
		t.Fatalf("invite in Russian: %d %v", st, ivan)
	}
	id := ivan["id"].(string)
	to, subject, text := received(t, in, 1)
	if to != "ivan@example.com" || !strings.Contains(subject, "Ваша учётная запись администратора") ||
		!strings.Contains(text, "Вас пригласили администрировать") || strings.Contains(text, "You have been invited") {
		t.Fatalf("the invitation of a Russian administrator: to %s, subject %q:\n%s", to, subject, text)
	}
	// Without a language (and an API key, no administrator, inviting):
	// English, and the API shows none chosen.
	st, ann := call("POST", "/administrators", `{"username":"Ann","firstName":"Ann","lastName":"Lee","email":"ann@example.com"}`)
	if st != 201 || ann["language"] != "" {
		t.Fatalf("invite without a language: %d %v", st, ann)
	}
	if _, subject, text := received(t, in, 2); !strings.HasPrefix(subject, "Your administrator account for") || !strings.Contains(text, "You have been invited") {
		t.Fatalf("the invitation without a language: %q\n%s", subject, text)
	}

	// A language gatehouse does not offer: refused, clearly, nothing changed.
	for _, bad := range []string{`"de"`, `"RU"`, `""`, `"ru-RU"`} {
		st, out := call("PATCH", "/administrators/"+id, `{"language":`+bad+`}`)
		if st != 400 || out["code"] != "invalid_language" || !strings.Contains(out["detail"].(string), `"en" (English) or "ru" (Russian)`) {
			t.Errorf("PATCH language %s: %d %v", bad, st, out)
		}
	}
	if st, out := call("POST", "/administrators", `{"username":"Bob","firstName":"Bob","lastName":"Roe","email":"bob@example.com","language":"fr"}`); st != 400 || out["code"] != "invalid_language" {
		t.Errorf("invite in French: %d %v", st, out)
	}
	if st, out := call("GET", "/administrators/"+id, ""); st != 200 || out["language"] != "ru" {
		t.Fatalf("after refused changes: %d %v", st, out)
	}
	if st, out := call("GET", "/administrators", ""); st != 200 || out["total"] != float64(3) || strings.Contains(fmt.Sprint(out), "Bob") {
		t.Fatalf("the refused invitation created Bob: %v", out)
	}

	// Ivan activates; his reset email is Russian.
	_, _, ivanText := received(t, in, 1)
	tok := regexp.MustCompile(`activate\?token=([A-Za-z0-9_-]+)`).FindStringSubmatch(ivanText)
	if tok == nil {
		t.Fatalf("no link in:\n%s", ivanText)
	}
	if a := postJSON(t, srv.base+"/api/v1/activation", `{"token":"`+tok[1]+`","password":"`+consolePassword+`"}`, ""); a.status != 200 {
		t.Fatalf("activation: %d %v", a.status, a.body)
	}
	if a := postJSON(t, srv.base+"/api/v1/password-reset", `{"organization":"acme","username":"Ivan"}`, ""); a.status/100 != 2 {
		t.Fatalf("reset request: %d %v", a.status, a.body)
	}
	to, subject, text = received(t, in, 3)
	if to != "ivan@example.com" || subject != "Сброс пароля gatehouse" || !strings.Contains(text, "Здравствуйте, Иван!") ||
		!strings.Contains(text, "в течение 1 часа") || !strings.Contains(text, "/reset-password?token=") || strings.Contains(text, "Someone asked") {
		t.Fatalf("the reset email of a Russian administrator: to %s, subject %q:\n%s", to, subject, text)
	}
}

// ruCatalogue is the console's Russian catalogue, English → Russian.
func ruCatalogue(t *testing.T) map[string]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "..", "admin", "console", "messages", "ru", "*.json"))
	cat := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var part map[string]string
		if err := json.Unmarshal(b, &part); err != nil {
			t.Fatal(err)
		}
		for k, v := range part {
			cat[k] = v
		}
	}
	if len(cat) < 100 {
		t.Fatalf("the catalogue has %d texts", len(cat))
	}
	return cat
}

// noEnglish fails when the visible text of the page holds an English
// text of the catalogue (whole words; a text its own translation, like
// "API", does not count; a text with verbs is checked by its longest
// fixed part).
func noEnglish(t *testing.T, p *page, cat map[string]string) {
	t.Helper()
	visible, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(visible, "а") && !strings.Contains(visible, "о") {
		t.Fatalf("%s is not in Russian:\n%s", p.location(), visible)
	}
	var left []string
	for en, ru := range cat {
		if en == ru {
			continue
		}
		part := en
		if strings.Contains(en, "%") {
			part = ""
			for _, s := range regexp.MustCompile(`%[a-z]`).Split(en, -1) {
				if len(strings.TrimSpace(s)) > len(part) {
					part = strings.TrimSpace(s)
				}
			}
			if len(part) < 8 {
				continue
			}
		}
		if regexp.MustCompile(`(^|[^\pL])` + regexp.QuoteMeta(part) + `($|[^\pL])`).MatchString(visible) {
			left = append(left, part)
		}
	}
	if len(left) > 0 {
		sort.Strings(left)
		t.Errorf("%s in Russian still shows English: %q\n%s", p.location(), left, visible)
	}
}

// noOverflow fails when the page at 390 pixels is wider than the screen.
func noOverflow(t *testing.T, p *page) { fits(t, p, 390) }

// fits fails when the page at width pixels is wider than the screen (a
// person would have to scroll sideways), naming the widest elements.
func fits(t *testing.T, p *page, width int64) {
	t.Helper()
	p.do(fmt.Sprint(width, " px"), chromedp.EmulateViewport(width, 800))
	defer p.do("1280 px", chromedp.EmulateViewport(1280, 800))
	w, err := chromedp.Run(p.ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
	if err != nil || w > width {
		wide, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const out = [];
			for (const e of document.querySelectorAll("body *")) { const r = e.getBoundingClientRect(); if (r.right > %d) out.push([Math.round(r.right), e.tagName + "." + e.className + (e.id ? "#" + e.id : "")]); }
			return out.sort((a, b) => b[0] - a[0]).slice(0, 8).map(x => x[1] + " " + x[0]).join(", ") })()`, width)))
		t.Errorf("%s at %d px is %d px wide (%v); widest: %s", p.location(), width, w, err, wide)
	}
}

// TestConsoleI18nSignedOut: the signed-out pages' language switch sets
// the cookie and returns to the same page, never to another site; each
// sign-in page in Russian shows no English text of the catalogue and
// fits 390 pixels in both languages; the password reset works end to
// end in Russian.
func TestConsoleI18nSignedOut(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	cat := ruCatalogue(t)
	jane, err := f.store.AdministratorByUsername(context.Background(), f.org.ID, "Jane.Doe")
	if err != nil {
		t.Fatal(err)
	}
	// English by default (headless Chromium asks for en-US).
	p.open(f.srv.base + "/login?org=acme")
	p.expect("h1", "Sign in")
	p.expect("footer", "Русский")
	if href, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main a[href^='/forgot-password']").getAttribute("href")`)); href != "/forgot-password?org=acme" {
		t.Errorf("the forgot link is %q, want /forgot-password?org=acme", href)
	}
	p.shot("i18n-signin-en")
	noOverflow(t, p)

	// The switch: a cookie, and the same page again.
	p.do("click Русский", chromedp.Evaluate[chromedp.Void](`document.documentElement.dataset.old = "1"`),
		chromedp.Click(chromedp.CSS(`footer a[hreflang=ru]`)), chromedp.WaitReady(chromedp.CSS(`html:not([data-old])`)))
	if loc := p.location(); loc != f.srv.base+"/login?org=acme" {
		t.Fatalf("the switch returns to %s, want the same page", loc)
	}
	p.expect("h1", "Войти")
	cookie, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
	if cookie != "ru" {
		t.Fatalf("<html lang> is %q", cookie)
	}
	noEnglish(t, p, cat)
	noOverflow(t, p)
	p.shot("i18n-signin-ru")

	// An open redirect through the switch: refused, the console instead.
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"} {
		res, _ := noRedirectGet(t, f.srv.base+"/language?set=ru&next="+urlQueryEscape(next))
		if loc := res.Header.Get("Location"); res.StatusCode != 303 || loc != "/" {
			t.Errorf("the switch to %q answers %d Location %q, want 303 to /", next, res.StatusCode, loc)
		}
	}
	res, _ := noRedirectGet(t, f.srv.base+"/language?set=ru&next=/forgot-password%3Forg%3Dacme")
	if loc := res.Header.Get("Location"); loc != "/forgot-password?org=acme" || !strings.Contains(res.Header.Get("Set-Cookie"), "gatehouse_lang=ru") {
		t.Errorf("the switch answers Location %q, Set-Cookie %q", loc, res.Header.Get("Set-Cookie"))
	}

	// Every signed-out page in Russian, and at 390 pixels.
	for _, tc := range []struct{ path, h1, shot string }{
		{"/login", "Войти", ""},
		{"/login/password", "Войти", "i18n-password-ru"},
		{"/login/password?org=acme", "Вход в acme", ""},
		{"/forgot-password?org=acme", "Сброс пароля", "i18n-forgot-ru"},
		{"/activate?token=nonsense", "Эта ссылка больше не действует", "i18n-link-ru"},
		{"/reset-password?token=nonsense", "Эта ссылка больше не действует", ""},
		{"/sso/start/nonsense", "Войти", "i18n-sso-message-ru"},
		{"/no/such/page", "Страница не найдена", ""},
		{f.link[len(f.srv.base):], "Активация учётной записи", "i18n-activate-ru"},
	} {
		p.open(f.srv.base + tc.path)
		p.expect("h1", tc.h1)
		noEnglish(t, p, cat)
		noOverflow(t, p)
		if tc.shot != "" {
			p.shot(tc.shot)
		}
	}
	// The activation, refused at its field in Russian, then done.
	p.open(f.link)
	p.submit("form", map[string]string{"#password": consolePassword, "#confirm": consolePassword + "x"})
	p.expect("#confirm-error", "Пароли не совпадают")
	noEnglish(t, p, cat)
	token := f.link[strings.Index(f.link, "token=")+len("token="):]
	if a := postJSON(t, f.srv.base+"/api/v1/activation", `{"token":"`+token+`","password":"`+consolePassword+`"}`, ""); a.status != 200 {
		t.Fatalf("activation: %d %v", a.status, a.body)
	}

	// A refused sign-in: the refusal in Russian at the form.
	p.open(f.srv.base + "/login/password?org=acme")
	p.submit("form", map[string]string{"#u": "Jane.Doe", "#p": "not the password"})
	p.expect(".alert", "Неверное имя пользователя или пароль.")
	noEnglish(t, p, cat)
	noOverflow(t, p)
	p.shot("i18n-password-refused-ru")
	p.open(f.srv.base + "/login")
	p.submit("form", map[string]string{"#u": ""})
	p.expect(".alert", "Введите имя_пользователя@организация")

	// The password reset end to end, in Russian.
	p.open(f.srv.base + "/forgot-password?org=acme")
	p.submit("form", map[string]string{"#username": ""})
	p.expect("#username-error", "Введите имя пользователя")
	p.submit("form", map[string]string{"#username": "Jane.Doe"})
	p.expect("h1", "Проверьте почту")
	noEnglish(t, p, cat)
	reset := lastLink(t, f.srv, "/reset-password")
	p.open(reset)
	p.expect("h1", "Новый пароль")
	noEnglish(t, p, cat)
	noOverflow(t, p)
	p.submit("form", map[string]string{"#password": "short", "#confirm": "short"})
	p.expect("#password-error", "Пароль короче 12 символов.")
	noEnglish(t, p, cat)
	p.shot("i18n-reset-errors-ru")
	p.submit("form", map[string]string{"#password": "another long passphrase", "#confirm": "another long passphrase"})
	p.expect("h1", "Пароль изменён")
	noEnglish(t, p, cat)
	p.open(f.srv.base + "/login/password?org=acme")
	p.submit("form", map[string]string{"#u": "Jane.Doe", "#p": "another long passphrase"})
	if loc := p.location(); loc != f.srv.base+"/administrators" {
		t.Fatalf("sign-in with the new password lands on %s: %s", loc, p.text("body"))
	}
	// Signed in without a language of her own: the cookie's, Russian.
	p.expect("h1", "Администраторы")
	noEnglish(t, p, cat)
	if a, _ := f.store.Administrator(context.Background(), f.org.ID, jane.ID); a.Language != "" {
		t.Fatalf("the cookie changed the stored language: %q", a.Language)
	}
}

func noRedirectGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := noRedirect.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func urlQueryEscape(s string) string {
	return strings.NewReplacer("%", "%25", "&", "%26", "#", "%23", "+", "%2B", "?", "%3F", " ", "%20").Replace(s)
}

// TestConsoleI18nUserPreferences: Preferences → User links the password
// change and the two-factor set-up; the language saved there is stored,
// shows the page in it at once, and follows the administrator to a new
// session in another browser whose cookie asks for English; the signed-
// in pages in Russian show no English; a forged language is refused at
// its field, changing nothing.
func TestConsoleI18nUserPreferences(t *testing.T) {
	ctx := browser(t)
	f := newServeFixture(t, nil)
	p := &page{t: t, ctx: ctx}
	cat := ruCatalogue(t)
	jane, _ := f.store.AdministratorByUsername(context.Background(), f.org.ID, "Jane.Doe")
	token := f.link[strings.Index(f.link, "token=")+len("token="):]
	if a := postJSON(t, f.srv.base+"/api/v1/activation", `{"token":"`+token+`","password":"`+consolePassword+`"}`, ""); a.status != 200 {
		t.Fatalf("activation: %d %v", a.status, a.body)
	}
	stored := func() string {
		t.Helper()
		a, err := f.store.Administrator(context.Background(), f.org.ID, jane.ID)
		if err != nil {
			t.Fatal(err)
		}
		return a.Language
	}

	p.open(f.srv.base + "/login/password?org=acme&next=/preferences/user")
	p.submit("form", map[string]string{"#u": "Jane.Doe", "#p": consolePassword})
	if loc := p.location(); loc != f.srv.base+"/preferences/user" {
		t.Fatalf("sign-in lands on %s", loc)
	}
	p.expect("h1", "Preferences")
	p.expect(".tabs [aria-current=page]", "User")
	p.expect("main", "Not chosen yet")
	p.expect("main", "Off")
	p.shot("i18n-user-en")
	noOverflow(t, p)
	// The links lead to the existing pages, and back.
	p.do("change password", chromedp.Click(chromedp.CSS(`a[href="/account/password"]`)), chromedp.WaitReady(chromedp.CSS(`#current`)))
	p.expect("h1", "Change your password")
	p.expect("main", "Back to your preferences")
	p.open(f.srv.base + "/preferences/user")
	p.do("two-factor", chromedp.Click(chromedp.CSS(`a[href="/account/two-factor"]`)), chromedp.WaitReady(chromedp.CSS(`#totp-secret`)))
	p.expect("h1", "Set up two-factor authentication")

	// A forged value: refused at the field, nothing stored.
	p.open(f.srv.base + "/preferences/user")
	p.do("forge", chromedp.Evaluate[chromedp.Void](`document.querySelector("#language option[value=ru]").value = "de"; document.querySelector("#language").value = "de"`))
	p.submit("main form", nil)
	p.expect("#language-error", "Choose English or Russian.")
	if got := stored(); got != "" {
		t.Fatalf("a refused language was stored: %q", got)
	}

	// Russian: saved, and the page is Russian at once.
	p.open(f.srv.base + "/preferences/user")
	p.do("choose ru", chromedp.SetValue(chromedp.CSS("#language"), "ru"))
	p.submit("main form", nil)
	p.expect("h1", "Настройки")
	p.expect("[role=status]", "Язык сохранён.")
	if got := stored(); got != "ru" {
		t.Fatalf("stored language %q, want ru", got)
	}
	noEnglish(t, p, cat)
	noOverflow(t, p)
	p.shot("i18n-user-ru")
	for path, shot := range map[string]string{"/": "i18n-home-ru", "/account/password": "i18n-change-password-ru", "/account/two-factor": "i18n-twofactor-ru"} {
		p.open(f.srv.base + path)
		noEnglish(t, p, cat)
		p.shot(shot)
		noOverflow(t, p)
	}

	// Another browser, another session, a cookie asking for English: the
	// administrator's language wins once signed in.
	ctx2 := browser(t)
	p2 := &page{t: t, ctx: ctx2}
	p2.open(f.srv.base + "/language?set=en&next=/login/password%3Forg%3Dacme")
	p2.expect("h1", "Sign in to acme")
	p2.submit("form", map[string]string{"#u": "Jane.Doe", "#p": consolePassword})
	p2.expect("h1", "Администраторы")
	p2.expect("nav.nav", "Настройки")
	noEnglish(t, p2, cat)

	// And back to English from the preference.
	p.open(f.srv.base + "/preferences/user")
	p.do("choose en", chromedp.SetValue(chromedp.CSS("#language"), "en"))
	p.submit("main form", nil)
	p.expect("h1", "Preferences")
	p.expect("[role=status]", "Your language is saved.")
	if got := stored(); got != "en" {
		t.Fatalf("stored language %q, want en", got)
	}
	if a, _ := f.store.Administrator(context.Background(), f.org.ID, jane.ID); a.Status != store.StatusActive {
		t.Fatalf("status %q", a.Status)
	}

	// Two-factor from the preferences: set up, then shown as on, then
	// moved to a new app with a code of the app in use.
	p.do("two-factor", chromedp.Click(chromedp.CSS(`a[href="/account/two-factor"]`)), chromedp.WaitReady(chromedp.CSS(`#totp-secret`)))
	secret := p.text("#totp-secret")
	now := time.Now()
	code, _ := totp.GenerateCode(secret, now)
	p.submit("main form", map[string]string{"#code": code})
	if loc := p.location(); loc != f.srv.base+"/administrators" {
		t.Fatalf("after the enrolment: %s: %s", loc, p.text("main"))
	}
	p.open(f.srv.base + "/preferences/user")
	p.expect(".badge.on", "On")
	p.shot("i18n-user-totp-on-en")
	p.do("move", chromedp.Click(chromedp.CSS(`a[href="/account/two-factor"]`)), chromedp.WaitReady(chromedp.CSS(`#current_code`)))
	p.expect("h1", "Move two-factor authentication to a new app")
	newSecret := p.text("#totp-secret")
	if newSecret == secret || len(newSecret) < 16 {
		t.Fatalf("the new key %q", newSecret)
	}
	p.shot("twofactor-replace")
	replaced := func() int {
		es, err := f.store.AuditLog(context.Background(), f.org.ID, store.AuditQuery{Action: store.AuditTOTPReplace})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	newCode, _ := totp.GenerateCode(newSecret, now)
	// The code that confirmed the enrolment cannot prove the app twice.
	p.submit("main form", map[string]string{"#current_code": code, "#code": newCode})
	p.expect("#current_code-error", "incorrect or was already used")
	if n := replaced(); n != 0 {
		t.Fatalf("a refused replacement was recorded %d times", n)
	}
	p.shot("twofactor-replace-error")
	next, _ := totp.GenerateCode(secret, now.Add(30*time.Second))
	p.submit("main form", map[string]string{"#current_code": next, "#code": newCode})
	if loc := p.location(); loc != f.srv.base+"/preferences/user?totp=replaced" {
		t.Fatalf("after the replacement: %s: %s", loc, p.text("main"))
	}
	p.expect("[role=status]", "now uses your new app")
	if n := replaced(); n != 1 {
		t.Fatalf("the replacement was recorded %d times", n)
	}

	// A form on another origin (the same site: the browser sends the
	// session cookie) setting the language: refused, nothing stored.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/preferences/user/language"><input type="hidden" name="language" value="ru"><button type="submit">Win</button></form>`, f.srv.base)
	}))
	t.Cleanup(evil.Close)
	p.open(evil.URL)
	p.submit("form", nil)
	p.expect("h1", "Form refused")
	if got := stored(); got != "en" {
		t.Fatalf("a cross-site post set the language to %q", got)
	}
}
