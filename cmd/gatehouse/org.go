package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"gatehouse/admin"
)

func runOrgCreate(ctx context.Context, c *cli, args []string) error {
	fs := newFlagSet("org create")
	var spec admin.OrgSpec
	var domains domainList
	fs.StringVar(&spec.Name, "name", "", "the organization's name (required)")
	fs.Var(&domains, "domain", "a registered email domain; repeat the flag or separate domains with commas")
	fs.StringVar(&spec.Owner.UserName, "admin-username", "", "the first administrator's username, kept exactly as given: usernames are case-sensitive (required)")
	fs.StringVar(&spec.Owner.Email, "admin-email", "", "the first administrator's email; in one of the domains when any are given (required)")
	fs.StringVar(&spec.Owner.GivenName, "admin-first-name", "", "the first administrator's first name (required)")
	fs.StringVar(&spec.Owner.FamilyName, "admin-last-name", "", "the first administrator's last name (required)")
	fs.StringVar(&spec.Owner.Phone, "admin-phone", "", "the first administrator's phone number")
	db := dbFlag(fs)
	baseURL := fs.String("base-url", "", "public URL of the server, for the activation link (env GATEHOUSE_BASE_URL; default: the URL gatehouse serve last started with on this database)")
	pos, err := c.parse(fs, "SLUG --name NAME --admin-username U --admin-email E --admin-first-name F --admin-last-name L [flags]",
		"Creates an organization and its first administrator, a super administrator who\n"+
			"stays Pending until they open the printed activation link. The link is shown\n"+
			"only once. SLUG: 1 to 63 lower-case letters, digits and hyphens.", args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef("org create: missing SLUG argument (see 'gatehouse org create --help')")
	case len(pos) > 1:
		return usagef("org create: unexpected argument %q after SLUG %q", pos[1], pos[0])
	}
	spec.Slug = pos[0]
	spec.Domains = domains
	for _, required := range []string{"name", "admin-username", "admin-email", "admin-first-name", "admin-last-name"} {
		if fs.Lookup(required).Value.String() == "" {
			return usagef("org create: --%s is required (see 'gatehouse org create --help')", required)
		}
	}
	if err := c.fromEnv(fs, map[string]string{"base-url": "GATEHOUSE_BASE_URL"}); err != nil {
		return err
	}
	if *baseURL != "" {
		if err := checkBaseURL(*baseURL); err != nil {
			return err
		}
	}

	s, err := c.openDB(ctx, fs, db)
	if err != nil {
		return err
	}
	defer s.Close()
	// The activation link is shown once and its secret is not stored: an
	// organization created without a link its owner can open would have no
	// way in, so without a known URL nothing is created.
	if *baseURL, err = c.publicBaseURL(ctx, s, *baseURL); err != nil {
		return err
	}
	if *baseURL == "" {
		return noBaseURL("org create")
	}
	orgs := &admin.Orgs{Store: s, BaseURL: *baseURL}
	org, owner, link, err := orgs.Create(ctx, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "organization id: %s\n", org.ID)
	fmt.Fprintf(c.stdout, "administrator id: %s\n", owner.ID)
	fmt.Fprintf(c.stdout, "activation link: %s\n", link)
	fmt.Fprintf(c.stderr, "Organization %q created. Send the activation link to %s: it is valid for %d days and will not be shown again.\n",
		org.Slug, owner.Email, admin.DefaultInvitationTTL/(24*time.Hour))
	return nil
}

// domainList is a repeatable flag whose values may also be comma-separated.
type domainList []string

func (d *domainList) String() string { return strings.Join(*d, ",") }

func (d *domainList) Set(v string) error {
	n := len(*d)
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*d = append(*d, part)
		}
	}
	if len(*d) == n {
		return errors.New("empty domain")
	}
	return nil
}

var _ flag.Value = (*domainList)(nil)
