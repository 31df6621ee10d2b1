package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
)

// The operator's commands ("contact support" in seed 001): what the
// management API refuses everyone, done from the command line and audited
// as the operator.

// orgCommand is a command on one organization (--org SLUG) taking exactly
// the positional arguments named in args.
type orgCommand struct {
	name  string   // "domain add"
	args  []string // names of the positional arguments, for the usage line
	about string
	flags func(fs *flag.FlagSet)
	run   func(ctx context.Context, c *cli, s *store.SQL, org store.Org, pos []string) error
}

func (oc orgCommand) runner() func(context.Context, *cli, []string) error {
	return func(ctx context.Context, c *cli, args []string) error {
		fs := newFlagSet(oc.name)
		slug := fs.String("org", "", "the organization's slug (required)")
		db := dbFlag(fs)
		if oc.flags != nil {
			oc.flags(fs)
		}
		usage := "--org SLUG"
		for _, a := range oc.args {
			usage += " " + a
		}
		pos, err := c.parse(fs, usage+" [flags]", oc.about, args)
		if err != nil {
			return err
		}
		if *slug == "" || len(pos) != len(oc.args) {
			return usagef("%s: usage: gatehouse %s %s (see 'gatehouse %s --help')", oc.name, oc.name, usage, oc.name)
		}
		s, err := c.openDB(ctx, fs, db)
		if err != nil {
			return err
		}
		defer s.Close()
		c.dsn = *db
		org, err := (&admin.Orgs{Store: s}).BySlug(ctx, *slug)
		if err != nil {
			return err
		}
		return oc.run(ctx, c, s, org, pos)
	}
}

// operator is the principal of an operator command on org.
func operator(ctx context.Context, org store.Org, override bool) admin.Principal {
	actor, _ := store.ActorFrom(ctx) // run names the operator; without it the writes are refused (store.ErrNoActor)
	return admin.Principal{OrgID: org.ID, Operator: true, OverrideSCIMLock: override, Actor: actor}
}

// overrideFlag is the audited break-glass override of the SCIM lock.
func overrideFlag(dst *bool) func(fs *flag.FlagSet) {
	return func(fs *flag.FlagSet) {
		fs.BoolVar(dst, "override-scim-lock", false, "act even though SCIM is on for the organization (break glass; recorded in the audit log)")
	}
}

// recordOverride writes the break-glass use to the audit log before the
// change it allows.
func recordOverride(ctx context.Context, s *store.SQL, org store.Org, action, username string) error {
	if !org.SCIMEnabled {
		return nil
	}
	after, _ := json.Marshal(map[string]string{"action": action, "username": username})
	return s.RecordAudit(ctx, store.AuditEntry{OrgID: org.ID, Action: "scim_lock.override", TargetKind: "administrator",
		TargetName: username, After: after})
}

func administratorStatusCommand(verb string) orgCommand {
	var override bool
	return orgCommand{
		name: "administrator " + verb,
		args: []string{"USERNAME"},
		about: fmt.Sprintf("%s an administrator, Super Administrators included (the management API\n"+
			"refuses that for a Super Administrator). The organization keeps at least one\n"+
			"Super Administrator (Pending or Active). USERNAME is matched exactly.", upperFirst(verb)+"s"),
		flags: overrideFlag(&override),
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, pos []string) error {
			a, err := s.AdministratorByUsername(ctx, org.ID, pos[0])
			if err != nil {
				return fmt.Errorf("administrator %q of organization %q: %w", pos[0], org.Slug, err)
			}
			p := operator(ctx, org, override)
			svc := &admin.Administrators{Store: s}
			if override {
				if err := recordOverride(ctx, s, org, "administrator."+verb, a.UserName); err != nil {
					return err
				}
			}
			if verb == "deactivate" {
				a, err = svc.Deactivate(ctx, p, a.ID)
			} else {
				a, err = svc.Reactivate(ctx, p, a.ID)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "administrator %q of organization %q: %s\n", a.UserName, org.Slug, a.Status)
			return nil
		},
	}
}

// credentialCommand is an operator command on an administrator's
// credentials: reset-totp (a lost phone) or unlock (end a lockout).
func credentialCommand(verb, about string, do func(si *admin.SignIn, ctx context.Context, org, id string) error) orgCommand {
	return orgCommand{
		name:  "administrator " + verb,
		args:  []string{"USERNAME"},
		about: about + " USERNAME is matched exactly; the change is audited.",
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, pos []string) error {
			a, err := s.AdministratorByUsername(ctx, org.ID, pos[0])
			if err != nil {
				return fmt.Errorf("administrator %q of organization %q: %w", pos[0], org.Slug, err)
			}
			if err := do(&admin.SignIn{Store: s}, ctx, org.ID, a.ID); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "administrator %q of organization %q: %s done\n", a.UserName, org.Slug, verb)
			return nil
		},
	}
}

func domainCommands() []*command {
	add := orgCommand{name: "domain add", args: []string{"DOMAIN"},
		about: "Registers an email domain: invitations and email changes must then use one of\nthe organization's registered domains.",
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, pos []string) error {
			d, err := (&admin.Orgs{Store: s}).AddDomain(ctx, org.ID, pos[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "domain %s registered for organization %q\n", d, org.Slug)
			return nil
		}}
	remove := orgCommand{name: "domain remove", args: []string{"DOMAIN"},
		about: "Unregisters an email domain. Administrators keep their addresses.",
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, pos []string) error {
			if err := (&admin.Orgs{Store: s}).RemoveDomain(ctx, org.ID, pos[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "domain %s unregistered for organization %q\n", strings.ToLower(pos[0]), org.Slug)
			return nil
		}}
	list := orgCommand{name: "domain list", about: "Lists the organization's registered email domains, one a line.",
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, _ []string) error {
			ds, err := s.RegisteredDomains(ctx, org.ID)
			if err != nil {
				return err
			}
			for _, d := range ds {
				fmt.Fprintln(c.stdout, d.Domain)
			}
			return nil
		}}
	return []*command{
		{name: "add", summary: "register an email domain", run: add.runner()},
		{name: "remove", summary: "unregister an email domain", run: remove.runner()},
		{name: "list", summary: "list the registered email domains", run: list.runner()},
	}
}

func apiKeyCreateCommand() orgCommand {
	var name, role string
	var expires lifetime
	return orgCommand{
		name: "api-key create",
		about: "Creates a management API key (Authorization: Bearer ...) and prints it once on\n" +
			"stdout; only its hash is stored.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "what the key is for (required)")
			fs.StringVar(&role, "role", string(store.RoleSuperAdministrator), `the role requests with the key act with: "Administrator" or "Super Administrator"`)
			fs.Var(&expires, "expires", "lifetime: days with a d suffix (90d) or a Go duration (720h); 0 or empty: never expires")
		},
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, _ []string) error {
			secret, key, err := (&admin.APIKeys{Store: s}).Create(ctx, operator(ctx, org, false),
				admin.APIKeySpec{Name: name, Role: store.Role(role), TTL: time.Duration(expires)})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, secret)
			fmt.Fprintf(c.stderr, "API key %s (prefix %s, role %s) created for organization %q.\n", key.Name, key.Prefix, key.Role, org.Slug)
			fmt.Fprintln(c.stderr, "Copy the key now: it will not be shown again.")
			return nil
		},
	}
}

// administratorRoleCommand sets an administrator's role: how support
// restores a Super Administrator to an organization the IdP left without
// one (the flag org show prints).
func administratorRoleCommand() orgCommand {
	var override bool
	return orgCommand{
		name: "administrator set-role",
		args: []string{"USERNAME", "ROLE"},
		about: "Sets an administrator's role: \"Administrator\" or \"Super Administrator\". The\n" +
			"role is the administrator's from then on, also for one the IdP provisioned, until\n" +
			"the IdP next writes it. The organization keeps at least one Super Administrator.\n" +
			"USERNAME is matched exactly; the change is audited.",
		flags: overrideFlag(&override),
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, pos []string) error {
			a, err := s.AdministratorByUsername(ctx, org.ID, pos[0])
			if err != nil {
				return fmt.Errorf("administrator %q of organization %q: %w", pos[0], org.Slug, err)
			}
			if override {
				if err := recordOverride(ctx, s, org, "administrator.set-role", a.UserName); err != nil {
					return err
				}
			}
			role := store.Role(pos[1])
			a, err = (&admin.Administrators{Store: s}).Update(ctx, operator(ctx, org, override), a.ID, admin.Edit{Role: &role})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "administrator %q of organization %q: %s\n", a.UserName, org.Slug, a.Role)
			return nil
		},
	}
}

// orgShowCommand prints an organization's settings and whether it lacks a
// Super Administrator.
func orgShowCommand() orgCommand {
	return orgCommand{
		name:  "org show",
		about: "Prints the organization's settings, one \"name: value\" a line, and whether the\nIdP left it without a Super Administrator (super-admin-missing-since).",
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, _ []string) error {
			missing := "-"
			if org.SuperAdminMissingSince != nil {
				missing = org.SuperAdminMissingSince.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(c.stdout, "slug: %s\nname: %s\nid: %s\nscim: %t\nscim-super-admin-group: %s\nrequire-totp: %t\nrequire-sso: %t\nsuper-admin-missing-since: %s\n",
				org.Slug, org.Name, org.ID, org.SCIMEnabled, org.SuperAdminGroup, org.RequireTOTP, org.RequireSSO, missing)
			if org.SuperAdminMissingSince != nil {
				fmt.Fprintf(c.stderr, "organization %q has no Super Administrator: restore one with 'gatehouse administrator set-role' or 'reactivate'\n", org.Slug)
			}
			return nil
		},
	}
}
