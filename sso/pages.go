package sso

import (
	"errors"
	"html/template"
	"net/http"
	"strconv"

	"gatehouse/admin"
	"gatehouse/store"
)

// pageData fills the sign-in pages. Every value is escaped by
// html/template; none holds a secret.
type pageData struct {
	Next     string
	Username string
	// Org is the organization's slug on the password form; OrgFixed
	// sends it as a hidden field (the sign-in page or link named it)
	// instead of asking for it.
	Org       string
	OrgFixed  bool
	Message   string
	Reference string
	AskTOTP   bool
	Test      *TestResult
}

const pageHead = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="referrer" content="no-referrer"><title>gatehouse</title>
<style>body{font:16px system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem}label,input,button{display:block;margin:.4rem 0}
input{width:100%;padding:.4rem}.msg{padding:.6rem;background:#fee}code{background:#eee}table{border-collapse:collapse}td{border:1px solid #ccc;padding:.2rem .4rem;vertical-align:top}</style>
</head><body>`

var (
	loginTemplate = template.Must(template.New("login").Parse(pageHead + `<h1>Sign in</h1>
{{with .Message}}<p class="msg">{{.}}</p>{{end}}
<form method="post" action="/login"><label for="u">Username@organization, or your work email</label>
<input id="u" name="username" autocomplete="username" autofocus required value="{{.Username}}">
{{with .Org}}<input type="hidden" name="organization" value="{{.}}">{{end}}
<input type="hidden" name="next" value="{{.Next}}"><button>Continue</button></form>
<p><a href="/login/password?{{with .Org}}org={{.}}&amp;{{end}}next={{.Next}}">Sign in with a password</a></p></body></html>`))

	passwordTemplate = template.Must(template.New("password").Parse(pageHead + `<h1>Sign in{{if .OrgFixed}} to {{.Org}}{{end}}</h1>
{{with .Message}}<p class="msg">{{.}}</p>{{end}}
<form method="post" action="/login/password">
{{if .OrgFixed}}<input type="hidden" name="organization" value="{{.Org}}"><input type="hidden" name="org_fixed" value="1">
{{else}}<label for="o">Organization</label><input id="o" name="organization" autocomplete="organization" required value="{{.Org}}">{{end}}
<label for="u">Username</label>
<input id="u" name="username" autocomplete="username" required value="{{.Username}}">
<label for="p">Password</label><input id="p" name="password" type="password" autocomplete="current-password" required autofocus>
{{if .AskTOTP}}<label for="t">Code from your authenticator app</label><input id="t" name="totp" inputmode="numeric" autocomplete="one-time-code">{{end}}
<input type="hidden" name="next" value="{{.Next}}"><button>Sign in</button></form></body></html>`))

	messageTemplate = template.Must(template.New("message").Parse(pageHead + `<h1>Sign in</h1><p class="msg">{{.Message}}</p>
{{with .Reference}}<p>Reference: <code>{{.}}</code>. Give it to your administrator: it names what went wrong.</p>{{end}}
<p><a href="/login">Back to sign-in</a></p></body></html>`))

	testTemplate = template.Must(template.New("test").Parse(pageHead + `{{with .Test}}<h1>Test of {{.Connection}}</h1>
{{if .Succeeded}}<p>Matched administrator <code>{{.Administrator}}</code> ({{.Status}}). No session was created.</p>
{{else}}<p class="msg">No sign-in: {{.Reason}}</p>{{end}}
<table><tr><td>Username sent</td><td><code>{{.Username}}</code></td></tr><tr><td>Subject</td><td><code>{{.Subject}}</code></td></tr>
<tr><td>Issuer</td><td>{{.Issuer}}</td></tr><tr><td>Certificate</td><td>{{.Certificate}}</td></tr>
<tr><td>Issued</td><td>{{with .IssuedAt}}{{.}}{{end}}</td></tr><tr><td>Valid</td><td>{{with .NotBefore}}{{.}}{{end}} – {{with .NotOnOrAfter}}{{.}}{{end}}</td></tr>
{{range $k, $v := .Attributes}}<tr><td>{{$k}}</td><td>{{range $v}}<code>{{.}}</code> {{end}}</td></tr>{{end}}</table>{{end}}</body></html>`))
)

func render(w http.ResponseWriter, status int, t *template.Template, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	t.Execute(w, d)
}

// serverError answers a failure that is not the visitor's: the 503 page
// while the database is unavailable, else a 500 page, the cause going to
// the log under what.
func (f *Flow) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if f.unavailable(w, r, err) {
		return
	}
	f.logger(r).Error(what, "err", err)
	f.message(w, r, http.StatusInternalServerError, pageData{Message: "Sign-in is unavailable. Try again later."})
}

// unavailable answers a 503 page with Retry-After, and reports true, when
// err says the database is unavailable (store.ErrUnavailable): the
// sign-in may well work a few seconds later, unlike one that failed. Every
// page that renders a failure checks it first; nothing is recorded, since
// the audit log is in that database too.
func (f *Flow) unavailable(w http.ResponseWriter, r *http.Request, err error) bool {
	if !errors.Is(err, store.ErrUnavailable) {
		return false
	}
	f.logger(r).Warn("sign-in: database unavailable", "err", err)
	w.Header().Set("Retry-After", strconv.Itoa(admin.RetryAfterUnavailable))
	f.message(w, r, http.StatusServiceUnavailable, pageData{Message: "Sign-in is unavailable for a moment. Try again in a few seconds."})
	return true
}
