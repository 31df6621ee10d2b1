package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
)

// The organization's LDAP connection and LDAP users from the command
// line, with the rules the management API applies (admin.LDAP), as the
// operator.

func ldapCommands() []*command {
	return []*command{
		{name: "set", summary: "set or change the LDAP connection", run: ldapSetCommand().runner()},
		{name: "show", summary: "print the LDAP connection (never its bind password) and its users", run: ldapShowCommand().runner()},
		{name: "delete", summary: "remove the LDAP connection (its users stay marked and cannot sign in)", run: ldapDeleteCommand().runner()},
		{name: "test", summary: "connect, bind as the service account, and find a user's entry", run: ldapTestCommand().runner()},
		{name: "user", summary: "mark an administrator as an LDAP user (or --off)", run: ldapUserCommand().runner()},
	}
}

// ldapService is the LDAP service the commands use: the server's secret
// key (the same flags and environment as serve) seals the bind password.
func ldapService(c *cli, s *store.SQL, keys *secretKeyFlags) (*admin.LDAP, error) {
	key, file := keys.key, keys.file
	if key == "" {
		key = c.getenv("GATEHOUSE_SECRET_KEY")
	}
	if file == "" {
		file = c.getenv("GATEHOUSE_SECRET_KEY_FILE")
	}
	sealer, err := loadSealer(key, file, c.dsn, newLogger(c.stderr, c.stderr, "text"))
	if err != nil {
		return nil, err
	}
	return &admin.LDAP{Store: s, Sealer: sealer}, nil
}

func ldapSetCommand() orgCommand {
	var spec admin.LDAPSpec
	var caFile, passwordEnv, timeout string
	var startTLS, enable, disable bool
	var keys secretKeyFlags
	return orgCommand{
		name: "ldap set",
		about: "Sets the organization's LDAP connection, or changes it (flags not given keep\n" +
			"their value). The first time: --url, --ca-file, --bind-dn, --bind-password-env and\n" +
			"--base-dn. The user filter names {username}, replaced by the typed username escaped\n" +
			"per RFC 4515; the username attribute of the entry found must equal the username\n" +
			"exactly. The bind password is read from the environment variable named by\n" +
			"--bind-password-env and stored sealed with the server's secret key.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&spec.URL, "url", "", "ldaps://host[:port], or ldap://host[:port] with --starttls")
			fs.BoolVar(&startTLS, "starttls", false, "use StartTLS on an ldap:// URL")
			fs.StringVar(&caFile, "ca-file", "", "a PEM file of the CA certificates the directory's certificate chains to")
			fs.StringVar(&spec.BindDN, "bind-dn", "", "the service account's DN")
			fs.StringVar(&passwordEnv, "bind-password-env", "", "the environment variable holding the service account's password")
			fs.StringVar(&spec.BaseDN, "base-dn", "", "where users are searched (the whole subtree)")
			fs.StringVar(&spec.UserFilter, "filter", "", "the user filter (default (uid={username}))")
			fs.StringVar(&spec.UsernameAttribute, "username-attribute", "", "the attribute equal to the username (default uid)")
			fs.StringVar(&timeout, "timeout", "", "the directory's time to answer, e.g. 5s (default 5s)")
			fs.BoolVar(&enable, "enable", false, "enable the connection")
			fs.BoolVar(&disable, "disable", false, "disable the connection (its users cannot sign in)")
			keys.register(fs)
		},
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, _ []string) error {
			if caFile != "" {
				b, err := os.ReadFile(caFile)
				if err != nil {
					return err
				}
				spec.CACertificate = string(b)
			}
			if passwordEnv != "" {
				if spec.BindPassword = c.getenv(passwordEnv); spec.BindPassword == "" {
					return usagef("ldap set: the environment variable %s is empty", passwordEnv)
				}
			}
			if timeout != "" {
				d, err := time.ParseDuration(timeout)
				if err != nil {
					return usagef("ldap set: --timeout %q is not a duration such as 5s", timeout)
				}
				spec.Timeout = &d
			}
			if enable && disable {
				return usagef("ldap set: --enable or --disable, not both")
			}
			if enable || disable {
				spec.Enabled = &enable
			}
			if startTLS {
				spec.StartTLS = &startTLS
			}
			l, err := ldapService(c, s, &keys)
			if err != nil {
				return err
			}
			v, err := l.Set(ctx, operator(ctx, org, false), spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "LDAP connection of %q: %s, enabled=%t\n", org.Slug, v.URL, v.Enabled)
			return nil
		},
	}
}

func ldapShowCommand() orgCommand {
	return orgCommand{
		name:  "ldap show",
		about: "Prints the organization's LDAP connection as JSON (never its bind password) and its\nLDAP users, one username a line.",
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, _ []string) error {
			l := &admin.LDAP{Store: s}
			v, err := l.Get(ctx, operator(ctx, org, false))
			if err != nil {
				return err
			}
			b, _ := json.MarshalIndent(v, "", "  ")
			fmt.Fprintln(c.stdout, string(b))
			users, n, err := l.Users(ctx, operator(ctx, org, false))
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "LDAP users: %d\n", n)
			for _, u := range users {
				fmt.Fprintln(c.stdout, u.UserName)
			}
			return nil
		},
	}
}

func ldapDeleteCommand() orgCommand {
	return orgCommand{
		name:  "ldap delete",
		about: "Removes the organization's LDAP connection. Its LDAP users stay marked and cannot\nsign in with a password until a connection is set again.",
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, _ []string) error {
			if err := (&admin.LDAP{Store: s}).Delete(ctx, operator(ctx, org, false)); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "LDAP connection of %q deleted\n", org.Slug)
			return nil
		},
	}
}

func ldapTestCommand() orgCommand {
	var username string
	var keys secretKeyFlags
	return orgCommand{
		name:  "ldap test",
		about: "Connects with the stored settings (TLS verified with the connection's CA), binds as\nthe service account and, with --username, finds that user's entry as a sign-in would.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&username, "username", "", "a username to look up (exactly)")
			keys.register(fs)
		},
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, _ []string) error {
			l, err := ldapService(c, s, &keys)
			if err != nil {
				return err
			}
			r, err := l.Test(ctx, operator(ctx, org, false), username)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, "connected: TLS verified, service account bound")
			switch {
			case username == "":
			case r.DN != "":
				fmt.Fprintf(c.stdout, "%q: %s\n", username, r.DN)
			default:
				return fmt.Errorf("%q: %s", username, r.Problem)
			}
			return nil
		},
	}
}

func ldapUserCommand() orgCommand {
	var off bool
	return orgCommand{
		name: "ldap user", args: []string{"USERNAME"},
		about: "Marks an administrator as an LDAP user: their password is checked by a bind to the\n" +
			"directory, and their local password is removed. --off unmarks them (they then have no\n" +
			"password until one is set or reset). USERNAME is matched exactly.",
		flags: func(fs *flag.FlagSet) { fs.BoolVar(&off, "off", false, "unmark the administrator") },
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, pos []string) error {
			a, err := s.AdministratorByUsername(ctx, org.ID, pos[0])
			if errors.Is(err, store.ErrNotFound) {
				return &admin.Error{Code: admin.CodeNotFound, Message: fmt.Sprintf("no administrator %q in organization %q", pos[0], org.Slug)}
			}
			if err != nil {
				return err
			}
			if err := (&admin.LDAP{Store: s}).SetUser(ctx, operator(ctx, org, false), a.ID, !off); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "administrator %q LDAP user: %t\n", a.UserName, !off)
			return nil
		},
	}
}
