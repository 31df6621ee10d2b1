package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"gatehouse/admin"
	"gatehouse/store"
)

// Preferences → Provisioning log: the SCIM requests of the
// organization's identity provider and gatehouse's answers, newest
// first, filtered by status (404, 4xx), userName and date, paged as
// GET /api/v1/scim-log pages; each entry opens on a page of its own with
// the bodies as kept (secrets redacted, cut at 16 KiB). Super
// Administrators only, as through the API.

// PathSCIMLog is the provisioning log's page; PathSCIMLog/{seq} an
// entry's.
const PathSCIMLog = "/preferences/scim-log"

// scimLogPage is how many entries a page lists.
const scimLogPage = 50

type scimLogData struct {
	// The filters as typed.
	Status, UserName, From, To string
	Entries                    []scimLogRow
	// Next is the next (older) page's URL, "" on the last; First the
	// first page's with the same filters, "" on the first.
	Next, First string
	Filtered    bool
	// Entry is the entry shown whole on its own page; Back the list it
	// was opened from.
	Entry *scimLogEntry
	Back  string
}

type scimLogRow struct {
	Seq                  int64
	When                 string
	Method, Path, Filter string
	Status               int
	OK                   bool // 1xx to 3xx
	SCIMType, Detail     string
	Subject, ResourceID  string
	Duration             string
	TokenPrefix          string
	Link                 string
}

type scimLogEntry struct {
	scimLogRow
	Bodies []body // the request's, the response's
}

// body is a kept request or response body on the entry's page.
type body struct {
	Kind      string // "request" or "response"
	Text      string // indented when it is whole JSON
	Size      int    // as sent
	Truncated bool
	// NotKept: the body was not JSON (its secrets could not be found) or,
	// for a response, too large to copy.
	NotKept bool
}

func (c *Console) scimLog(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	d := &scimLogData{Status: q.Get("status"), UserName: q.Get("userName"), From: q.Get("from"), To: q.Get("to")}
	pg := &page{Title: msg("Provisioning log"), Me: &me, Org: &org, Nav: "preferences", Tab: "scim-log", Data: d}
	fields := map[string]string{}
	lq := store.SCIMLogQuery{Limit: scimLogPage, UserName: d.UserName}
	if err := admin.ParseStatusFilter(d.Status, &lq); err != nil {
		fields["status"] = msg("Give an HTTP status such as 404, or a class such as 4xx.")
	}
	lq.Since, lq.Until, lq.Before = logRange(q, fields)
	if len(fields) > 0 && admin.PrincipalOf(me).Super() {
		pg.Fields = fields
		if text, ok := fields["before"]; ok {
			pg.Error = text
		}
		c.render(w, r, http.StatusBadRequest, "scimlog", pg)
		return
	}
	entries, err := c.SCIMLog.Page(r.Context(), admin.PrincipalOf(me), lq)
	if c.scimLogRefused(w, r, pg, err) {
		return
	}
	d.Filtered = d.Status != "" || d.UserName != "" || d.From != "" || d.To != ""
	filters := url.Values{}
	for k, v := range map[string]string{"status": d.Status, "userName": d.UserName, "from": d.From, "to": d.To} {
		if v != "" {
			filters.Set(k, v)
		}
	}
	here := PathSCIMLog + "?" + filters.Encode()
	if lq.Before > 0 {
		d.First = here
		here += "&before=" + strconv.FormatInt(lq.Before, 10)
	}
	if len(entries) == lq.Limit {
		next := url.Values{}
		for k, v := range filters {
			next[k] = v
		}
		next.Set("before", strconv.FormatInt(entries[len(entries)-1].Seq, 10))
		d.Next = PathSCIMLog + "?" + next.Encode()
	}
	for _, e := range entries {
		row := scimLogRowOf(e)
		row.Link = PathSCIMLog + "/" + strconv.FormatInt(e.Seq, 10) + "?" + url.Values{"back": {here}}.Encode()
		d.Entries = append(d.Entries, row)
	}
	c.render(w, r, http.StatusOK, "scimlog", pg)
}

func (c *Console) scimLogEntry(w http.ResponseWriter, r *http.Request) {
	me, org, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	d := &scimLogData{Back: PathSCIMLog}
	// Back to the page of the list it was opened from, never elsewhere.
	if b := r.URL.Query().Get("back"); len(b) > len(PathSCIMLog) && b[:len(PathSCIMLog)+1] == PathSCIMLog+"?" {
		d.Back = b
	}
	pg := &page{Title: msg("Provisioning log entry"), Me: &me, Org: &org, Nav: "preferences", Tab: "scim-log", Data: d}
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq < 1 {
		c.NotFound(w, r)
		return
	}
	e, err := c.SCIMLog.Entry(r.Context(), admin.PrincipalOf(me), seq)
	if c.scimLogRefused(w, r, pg, err) {
		return
	}
	d.Entry = &scimLogEntry{scimLogRow: scimLogRowOf(e), Bodies: []body{
		bodyOf("request", e.Request, e.RequestSize, e.RequestTruncated),
		bodyOf("response", e.Response, e.ResponseSize, e.ResponseTruncated)}}
	c.render(w, r, http.StatusOK, "scimlog-entry", pg)
}

// scimLogRefused answers err, if any: a refusal (not a Super
// Administrator, an entry pruned) on its page, anything else as a
// failure.
func (c *Console) scimLogRefused(w http.ResponseWriter, r *http.Request, pg *page, err error) bool {
	if err == nil {
		return false
	}
	e := refusal(err)
	switch {
	case e == nil:
		c.failure(w, r, err)
	case e.Code == admin.CodeNotFound:
		c.render(w, r, http.StatusNotFound, "error", &page{Title: msg("Entry not found"), Me: pg.Me, Org: pg.Org, Nav: pg.Nav,
			Message: msg("This entry of the provisioning log is not kept any more: the log keeps each organization's latest requests only.")})
	case e.Code == admin.CodeForbidden:
		c.render(w, r, http.StatusForbidden, "error", &page{Title: msg("Super Administrators only"), Me: pg.Me, Org: pg.Org, Nav: pg.Nav,
			Message: msg("Only a Super Administrator may read the provisioning log.")})
	default:
		pg.Error = e.Message
		c.render(w, r, http.StatusBadRequest, "scimlog", pg)
	}
	return true
}

func scimLogRowOf(e store.SCIMExchange) scimLogRow {
	row := scimLogRow{Seq: e.Seq, When: e.At.UTC().Format("2006-01-02 15:04:05 UTC"), Method: e.Method, Path: e.Path,
		Filter: e.Filter, Status: e.Status, OK: e.Status < 400, SCIMType: e.SCIMType, Detail: e.Detail,
		Subject: e.UserName, ResourceID: e.ResourceID, TokenPrefix: e.TokenPrefix,
		Duration: strconv.FormatFloat(float64(e.DurationMicros)/1000, 'f', 1, 64) + " ms"}
	if row.Subject == "" {
		row.Subject = e.DisplayName
	}
	return row
}

func bodyOf(kind, text string, size int, truncated bool) body {
	b := body{Kind: kind, Text: text, Size: size, Truncated: truncated, NotKept: text == "" && size > 0}
	if !truncated && text != "" {
		var out bytes.Buffer
		if json.Indent(&out, []byte(text), "", "  ") == nil {
			b.Text = out.String()
		}
	}
	return b
}
