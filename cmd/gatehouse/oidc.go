package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
)

// The OpenID Provider's records from the command line (issue #14): its
// signing keys and its clients. They are the server's, not an
// organization's, so these commands take no --org; their changes are
// audited as the operator in the server's audit log.

// serverCommand is a command on the server's own records taking exactly
// the positional arguments named in args.
type serverCommand struct {
	name  string // "oidc keys list"
	args  []string
	about string
	flags func(fs *flag.FlagSet)
	run   func(ctx context.Context, c *cli, s *store.SQL, pos []string) error
}

func (sc serverCommand) runner() func(context.Context, *cli, []string) error {
	return func(ctx context.Context, c *cli, args []string) error {
		fs := newFlagSet(sc.name)
		db := dbFlag(fs)
		if sc.flags != nil {
			sc.flags(fs)
		}
		usage := ""
		for _, a := range sc.args {
			usage += a + " "
		}
		pos, err := c.parse(fs, usage+"[flags]", sc.about, args)
		if err != nil {
			return err
		}
		if len(pos) != len(sc.args) {
			return usagef("%s: usage: gatehouse %s %s[flags] (see 'gatehouse %s --help')", sc.name, sc.name, usage, sc.name)
		}
		s, err := c.openDB(ctx, fs, db)
		if err != nil {
			return err
		}
		defer s.Close()
		c.dsn = *db
		return sc.run(ctx, c, s, pos)
	}
}

func oidcCommands() []*command {
	return []*command{
		{name: "keys", summary: "manage the signing keys of ID tokens", sub: []*command{
			{name: "rotate", summary: "make a new signing key at once; the previous stays published until its tokens expire", run: oidcKeysRotateCommand().runner()},
			{name: "list", summary: "list the signing keys: kid, algorithm, created, state", run: oidcKeysListCommand().runner()},
		}},
		{name: "client", summary: "manage the applications that sign administrators in", sub: []*command{
			{name: "create", summary: "register an application; prints its client id and, once, its secret", run: oidcClientCreateCommand().runner()},
			{name: "list", summary: "list the applications", run: oidcClientListCommand().runner()},
			{name: "disable", summary: "stop an application from signing administrators in, without removing it", run: oidcClientSwitchCommand(true).runner()},
			{name: "enable", summary: "let a disabled application sign administrators in again", run: oidcClientSwitchCommand(false).runner()},
			{name: "delete", summary: "remove an application", run: oidcClientDeleteCommand().runner()},
		}},
	}
}

// existingSealer is the server key for a command that reads or writes the
// signing keys: given like serve's, but never created: a key this command
// made up would seal a signing key no server can open.
func existingSealer(c *cli, keys *secretKeyFlags) (*admin.Sealer, error) {
	key, file := keys.key, keys.file
	if key == "" {
		key = c.getenv("GATEHOUSE_SECRET_KEY")
	}
	if file == "" {
		file = c.getenv("GATEHOUSE_SECRET_KEY_FILE")
	}
	if key == "" {
		if file == "" {
			file = filepath.Join("data", "secret.key")
			if !strings.HasPrefix(c.dsn, "postgres://") && !strings.HasPrefix(c.dsn, "postgresql://") {
				file = filepath.Join(filepath.Dir(store.SQLitePath(c.dsn)), "secret.key")
			}
		}
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return nil, usagef("the server's secret key file %s does not exist: give the key serve runs with (--secret-key-file, or GATEHOUSE_SECRET_KEY)", file)
		}
	}
	return loadSealer(key, file, c.dsn, newLogger(c.stderr, c.stderr, "text"))
}

func oidcKeysRotateCommand() serverCommand {
	var keys secretKeyFlags
	return serverCommand{
		name: "oidc keys rotate",
		about: "Makes a new key the signing key of ID tokens at once. The key it replaces stays\n" +
			"published (JWKS) until the tokens it signed have expired. Needs the server's\n" +
			"secret key, which seals the private key; the change is audited.",
		flags: keys.register,
		run: func(ctx context.Context, c *cli, s *store.SQL, _ []string) error {
			sealer, err := existingSealer(c, &keys)
			if err != nil {
				return err
			}
			svc := &admin.SigningKeys{Store: s, Sealer: sealer}
			// A key sealed with another server key than the existing ones
			// would leave the server unable to sign: refuse before writing.
			if _, err := svc.Active(ctx); err != nil && !errors.Is(err, admin.ErrNoSigningKey) {
				return err
			}
			k, err := svc.Rotate(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%s\t%s\t%s\t%s\t-\n", k.ID, k.Algorithm, k.CreatedAt.UTC().Format(time.RFC3339), k.State)
			return nil
		},
	}
}

func oidcKeysListCommand() serverCommand {
	return serverCommand{
		name: "oidc keys list",
		about: "Lists the signing keys, newest first, one a line: kid, algorithm, created, state\n" +
			"(signing: signs new tokens; published: replaced, published until the tokens it\n" +
			"signed expire, then retired), and the time it retires (- while signing).",
		run: func(ctx context.Context, c *cli, s *store.SQL, _ []string) error {
			list, err := (&admin.SigningKeys{Store: s}).List(ctx)
			if err != nil {
				return err
			}
			for _, k := range list {
				retire := "-"
				if k.RetireAfter != nil {
					retire = k.RetireAfter.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(c.stdout, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.CreatedAt.UTC().Format(time.RFC3339), k.State, retire)
			}
			return nil
		},
	}
}

// repeated is a repeatable flag keeping each value exactly as given.
type repeated []string

func (r *repeated) String() string { return strings.Join(*r, " ") }

func (r *repeated) Set(v string) error {
	*r = append(*r, v)
	return nil
}

func oidcClientCreateCommand() serverCommand {
	var spec admin.OIDCClientSpec
	var uris, orgs repeated
	return serverCommand{
		name: "oidc client create",
		about: "Registers an application that signs administrators in through gatehouse's\n" +
			"OpenID Provider. Prints the client id on stdout and, for a confidential client,\n" +
			"its secret on the next line, once: only its hash is stored. Redirect URIs are\n" +
			"matched exactly: absolute https URLs (http only for 127.0.0.1, [::1] and\n" +
			"localhost), without fragment or wildcard.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&spec.Name, "name", "", "the application's name (required)")
			fs.Var(&uris, "redirect-uri", "a redirect URI (required; repeat for several)")
			fs.BoolVar(&spec.Public, "public", false, "a public client (single-page or native app): no secret, PKCE required")
			fs.StringVar(&spec.BackchannelLogoutURI, "backchannel-logout-uri", "", "where OIDC back-channel logout tokens go (optional)")
			fs.Var(&orgs, "org", "slug of an organization whose administrators may sign in (repeat for several; default: every organization)")
			fs.BoolVar(&spec.FirstParty, "first-party", false, "the product's own application: consent is skipped")
		},
		run: func(ctx context.Context, c *cli, s *store.SQL, _ []string) error {
			spec.RedirectURIs, spec.Orgs = uris, orgs
			secret, client, err := (&admin.OIDCClients{Store: s}).Create(ctx, spec)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, client.ID)
			if secret != "" {
				fmt.Fprintln(c.stdout, secret)
				fmt.Fprintf(c.stderr, "Confidential client %q created: the first line is its client id, the second its secret.\n", client.Name)
				fmt.Fprintln(c.stderr, "Copy the secret now: it will not be shown again.")
			} else {
				fmt.Fprintf(c.stderr, "Public client %q created (no secret; PKCE required).\n", client.Name)
			}
			return nil
		},
	}
}

func oidcClientListCommand() serverCommand {
	return serverCommand{
		name: "oidc client list",
		about: "Lists the applications, one a line: client id, name, confidential or public,\n" +
			"first-party, organizations (all, or slugs), disabled, redirect URIs.",
		run: func(ctx context.Context, c *cli, s *store.SQL, _ []string) error {
			list, err := (&admin.OIDCClients{Store: s}).List(ctx)
			if err != nil {
				return err
			}
			for _, x := range list {
				kind := "confidential"
				if x.Public {
					kind = "public"
				}
				orgs := "all"
				if !x.AllOrgs {
					var slugs []string
					for _, id := range x.OrgIDs {
						o, err := s.Org(ctx, id)
						if err != nil {
							slugs = append(slugs, id)
							continue
						}
						slugs = append(slugs, o.Slug)
					}
					orgs = strings.Join(slugs, ",")
				}
				fmt.Fprintf(c.stdout, "%s\t%s\t%s\tfirst-party=%t\torgs=%s\tdisabled=%t\t%s\n", x.ID, x.Name, kind, x.FirstParty, orgs,
					x.Disabled, strings.Join(x.RedirectURIs, " "))
			}
			return nil
		},
	}
}

func oidcClientDeleteCommand() serverCommand {
	return serverCommand{
		name:  "oidc client delete",
		args:  []string{"CLIENT_ID"},
		about: "Removes an application: it can no longer sign administrators in. Audited.",
		run: func(ctx context.Context, c *cli, s *store.SQL, pos []string) error {
			if err := (&admin.OIDCClients{Store: s}).Delete(ctx, pos[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "OIDC client %s deleted\n", pos[0])
			return nil
		},
	}
}

func oidcClientSwitchCommand(disable bool) serverCommand {
	verb, about := "enable", "Lets a disabled application sign administrators in again. Audited."
	if disable {
		verb, about = "disable", "Stops an application from signing administrators in, and its secret from\nauthenticating, without removing it. Audited."
	}
	return serverCommand{
		name:  "oidc client " + verb,
		args:  []string{"CLIENT_ID"},
		about: about,
		run: func(ctx context.Context, c *cli, s *store.SQL, pos []string) error {
			client, err := (&admin.OIDCClients{Store: s}).SetDisabled(ctx, pos[0], disable)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "OIDC client %s: disabled=%t\n", client.ID, client.Disabled)
			return nil
		},
	}
}
