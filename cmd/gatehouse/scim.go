package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gatehouse/admin"
)

func runSCIMTokenCreate(ctx context.Context, c *cli, args []string) error {
	fs := newFlagSet("scim token create")
	slug := fs.String("org", "", "the organization's slug (required)")
	description := fs.String("description", "", "what the token is for, e.g. the identity provider")
	var expires lifetime
	fs.Var(&expires, "expires", "lifetime: days with a d suffix (90d) or a Go duration (720h); 0 or empty: never expires")
	db := dbFlag(fs)
	pos, err := c.parse(fs, "--org SLUG [flags]",
		"Creates a bearer token for the organization's SCIM endpoint (<base-url>/scim/v2)\n"+
			"and prints it on stdout. Only its hash is stored: it cannot be shown again.", args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("scim token create: unexpected argument %q", pos[0])
	}
	if *slug == "" {
		return usagef("scim token create: --org is required (see 'gatehouse scim token create --help')")
	}
	s, err := c.openDB(ctx, fs, db)
	if err != nil {
		return err
	}
	defer s.Close()
	org, err := (&admin.Orgs{Store: s}).BySlug(ctx, *slug)
	if err != nil {
		return err
	}
	secret, tok, err := (&admin.SCIMTokens{Store: s}).Create(ctx, org.ID, *description, time.Duration(expires))
	if err != nil {
		return err
	}
	// The token alone on stdout, so TOKEN=$(gatehouse scim token create ...)
	// works; everything else on stderr.
	fmt.Fprintln(c.stdout, secret)
	expiry := "never"
	if tok.ExpiresAt != nil {
		expiry = tok.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(c.stderr, "SCIM token %s (prefix %s) created for organization %q; expires: %s.\n", tok.ID, tok.Prefix, org.Slug, expiry)
	fmt.Fprintln(c.stderr, "Copy the token now: it will not be shown again.")
	return nil
}

func runSCIMSwitch(enabled bool) func(context.Context, *cli, []string) error {
	verb := map[bool]string{true: "enable", false: "disable"}[enabled]
	return func(ctx context.Context, c *cli, args []string) error {
		name := "scim " + verb
		fs := newFlagSet(name)
		slug := fs.String("org", "", "the organization's slug (required)")
		db := dbFlag(fs)
		about := "Turns SCIM provisioning off: administrators are managed by hand again."
		if enabled {
			about = "Turns SCIM provisioning on: the organization's identity provider then owns\n" +
				"its administrators, and adding, editing, disabling and reactivating them by\n" +
				"hand is locked until SCIM is turned off."
		}
		pos, err := c.parse(fs, "--org SLUG [flags]", about, args)
		if err != nil {
			return err
		}
		if len(pos) > 0 {
			return usagef("%s: unexpected argument %q", name, pos[0])
		}
		if *slug == "" {
			return usagef("%s: --org is required (see 'gatehouse %s --help')", name, name)
		}
		s, err := c.openDB(ctx, fs, db)
		if err != nil {
			return err
		}
		defer s.Close()
		orgs := &admin.Orgs{Store: s}
		org, err := orgs.BySlug(ctx, *slug)
		if err != nil {
			return err
		}
		org, err = orgs.SetSCIM(ctx, org.ID, enabled)
		if err != nil {
			return err
		}
		state := "disabled"
		if org.SCIMEnabled {
			state = "enabled"
		}
		fmt.Fprintf(c.stdout, "SCIM %s for organization %q\n", state, org.Slug)
		return nil
	}
}

func runSCIMSuperAdminGroup(ctx context.Context, c *cli, args []string) error {
	fs := newFlagSet("scim super-admin-group")
	slug := fs.String("org", "", "the organization's slug (required)")
	group := fs.String("group", "", "the group's displayName, exactly as the identity provider pushes it")
	none := fs.Bool("none", false, "designate no group: roles come from the SCIM roles attribute only")
	db := dbFlag(fs)
	pos, err := c.parse(fs, "--org SLUG (--group NAME | --none) [flags]",
		"Designates the SCIM group whose members are Super Administrators. A SCIM-provisioned\n"+
			"administrator is a Super Administrator when its roles attribute holds the value\n"+
			"\"Super Administrator\" or it is a member of this group; otherwise an Administrator.\n"+
			"Roles of the group's members are recomputed at once.", args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("scim super-admin-group: unexpected argument %q", pos[0])
	}
	if *slug == "" || (*group == "") == !*none {
		return usagef("scim super-admin-group: give --org and one of --group or --none (see 'gatehouse scim super-admin-group --help')")
	}
	s, err := c.openDB(ctx, fs, db)
	if err != nil {
		return err
	}
	defer s.Close()
	orgs := &admin.Orgs{Store: s}
	org, err := orgs.BySlug(ctx, *slug)
	if err != nil {
		return err
	}
	if org, err = orgs.SetSuperAdminGroup(ctx, org.ID, *group); err != nil {
		return err
	}
	if org.SuperAdminGroup == "" {
		fmt.Fprintf(c.stdout, "organization %q designates no super-administrator group\n", org.Slug)
	} else {
		fmt.Fprintf(c.stdout, "members of SCIM group %q are Super Administrators of organization %q\n", org.SuperAdminGroup, org.Slug)
	}
	return nil
}

// lifetime is a token lifetime flag: "90d" (days) or a Go duration
// ("720h", "1h30m"); "0" or "" means no expiry.
type lifetime time.Duration

func (l *lifetime) String() string { return time.Duration(*l).String() }

func (l *lifetime) Set(v string) error {
	d, err := parseLifetime(v)
	if err != nil {
		return err
	}
	*l = lifetime(d)
	return nil
}

// maxLifetimeDays keeps day counts far from time.Duration's limit (292 years).
const maxLifetimeDays = 100 * 365

func parseLifetime(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > maxLifetimeDays {
			return 0, fmt.Errorf("%q: give whole days from 0 to %d, like 90d", v, maxLifetimeDays)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("give days like 90d or a duration like 720h")
	}
	if d < 0 {
		return 0, errors.New("the lifetime is negative")
	}
	return d, nil
}
