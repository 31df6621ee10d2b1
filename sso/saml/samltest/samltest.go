// Package samltest signs in at a real SAML identity provider's HTML pages
// the way a browser without JavaScript would: it reads the IdP's forms,
// posts the username and password, and returns the self-posting form that
// carries the SAMLResponse to the service provider. It serves the tests
// of sso/saml and cmd/gatehouse against SimpleSAMLphp; nothing else
// imports it.
package samltest

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Form is an HTML form: where it goes and its fields' values.
type Form struct {
	Action, Method string
	Values         url.Values
}

// ErrLoginRefused: the IdP showed its login form again (wrong username or
// password).
var ErrLoginRefused = errors.New("samltest: the IdP refused the username or password")

// Login follows authnRedirectURL (where a service provider sent the
// browser, with its AuthnRequest) with client, fills in and posts the
// IdP's username/password form, and returns the form the IdP answers
// with: the SAMLResponse (and RelayState) to post to the service
// provider's ACS. client follows the IdP's own redirects and keeps its
// cookies; when they hold the IdP's session, the IdP answers at once,
// without asking for the password (single sign-on).
func Login(client *http.Client, authnRedirectURL, user, password string) (*Form, error) {
	page, pageURL, err := get(client, authnRedirectURL)
	if err != nil {
		return nil, err
	}
	if post, err := FindForm(page, pageURL, "SAMLResponse"); err == nil {
		return post, nil
	}
	form, err := FindForm(page, pageURL, "password")
	if err != nil {
		return nil, fmt.Errorf("samltest: no login form at %s: %w\n%s", pageURL, err, Tail(page, 2000))
	}
	form.Values.Set("username", user)
	form.Values.Set("password", password)
	resp, err := client.PostForm(form.Action, form.Values)
	if err != nil {
		return nil, err
	}
	page, pageURL, err = read(resp)
	if err != nil {
		return nil, err
	}
	if _, err := FindForm(page, pageURL, "password"); err == nil {
		return nil, ErrLoginRefused
	}
	post, err := FindForm(page, pageURL, "SAMLResponse")
	if err != nil {
		return nil, fmt.Errorf("samltest: no SAMLResponse form at %s: %w\n%s", pageURL, err, Tail(page, 2000))
	}
	return post, nil
}

func get(client *http.Client, u string) (string, *url.URL, error) {
	resp, err := client.Get(u)
	if err != nil {
		return "", nil, err
	}
	return read(resp)
}

func read(resp *http.Response) (string, *url.URL, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("samltest: %s: status %s\n%s", resp.Request.URL, resp.Status, Tail(string(b), 2000))
	}
	return string(b), resp.Request.URL, nil
}

// Tail is the last n bytes of s, for error messages.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// FindForm returns the first form of page with a field named field.
// IdPs' pages are parsed with encoding/xml in its HTML mode (not strict,
// HTML entities, void elements closed).
func FindForm(page string, pageURL *url.URL, field string) (*Form, error) {
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	var cur *Form
	var has bool
	attr := func(se xml.StartElement, name string) string {
		for _, a := range se.Attr {
			if strings.EqualFold(a.Name.Local, name) {
				return a.Value
			}
		}
		return ""
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil, errors.New("no form with a " + field + " field")
		}
		if err != nil {
			return nil, fmt.Errorf("page does not parse: %w", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			switch strings.ToLower(el.Name.Local) {
			case "form":
				action, err := pageURL.Parse(attr(el, "action"))
				if err != nil {
					return nil, err
				}
				cur, has = &Form{Action: action.String(), Method: attr(el, "method"), Values: url.Values{}}, false
			case "input":
				if cur == nil {
					continue
				}
				name := attr(el, "name")
				if name == "" {
					continue
				}
				if name == field {
					has = true
				}
				if typ := strings.ToLower(attr(el, "type")); typ != "submit" && typ != "button" {
					cur.Values.Set(name, attr(el, "value"))
				}
			}
		case xml.EndElement:
			if strings.ToLower(el.Name.Local) == "form" && cur != nil {
				if has {
					return cur, nil
				}
				cur = nil
			}
		}
	}
}
