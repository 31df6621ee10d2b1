package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
			{name: "update", summary: "change an application's name, URIs, organizations or first-party mark", run: oidcClientUpdateCommand().runner()},
			{name: "secret", summary: "manage an application's secret", sub: []*command{
				{name: "rotate", summary: "give a confidential application a new secret, printed once; the old one stops at once", run: oidcClientRotateCommand().runner()},
			}},
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

// operatorClients is the command line's principal on the server's
// clients: the operator, who manages every one of them.
func operatorClients(ctx context.Context) admin.Principal {
	return operator(ctx, store.Org{}, false)
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
	var uris, logout, orgs repeated
	return serverCommand{
		name: "oidc client create",
		about: "Registers an application that signs administrators in through gatehouse's\n" +
			"OpenID Provider. Prints the client id on stdout and, for a confidential client,\n" +
			"its secret on the next line, once: only its hash is stored. Redirect URIs are\n" +
			"matched exactly: absolute https URLs (http only for 127.0.0.1, [::1] and\n" +
			"localhost), without fragment or wildcard; so are post-logout redirect URIs.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&spec.Name, "name", "", "the application's name (required)")
			fs.Var(&uris, "redirect-uri", "a redirect URI (required; repeat for several)")
			fs.Var(&logout, "post-logout-redirect-uri", "where RP-initiated logout may return the browser (optional; repeat for several)")
			fs.BoolVar(&spec.Public, "public", false, "a public client (single-page or native app): no secret, PKCE required")
			fs.StringVar(&spec.BackchannelLogoutURI, "backchannel-logout-uri", "", "where OIDC back-channel logout tokens go (optional)")
			fs.Var(&orgs, "org", "slug of an organization whose administrators may sign in (repeat for several; default: every organization)")
			fs.BoolVar(&spec.FirstParty, "first-party", false, "the product's own application: consent is skipped")
		},
		run: func(ctx context.Context, c *cli, s *store.SQL, _ []string) error {
			spec.RedirectURIs, spec.PostLogoutRedirectURIs, spec.Orgs = uris, logout, orgs
			secret, client, err := (&admin.OIDCClients{Store: s}).Create(ctx, operatorClients(ctx), spec)
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
			"first-party, organizations (all, or slugs), disabled, redirect URIs, and\n" +
			"post-logout=URIs (- for none).",
		run: func(ctx context.Context, c *cli, s *store.SQL, _ []string) error {
			list, err := (&admin.OIDCClients{Store: s}).List(ctx, operatorClients(ctx))
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
				logout := "-"
				if len(x.PostLogoutRedirectURIs) > 0 {
					logout = strings.Join(x.PostLogoutRedirectURIs, " ")
				}
				fmt.Fprintf(c.stdout, "%s\t%s\t%s\tfirst-party=%t\torgs=%s\tdisabled=%t\t%s\tpost-logout=%s\n", x.ID, x.Name, kind, x.FirstParty, orgs,
					x.Disabled, strings.Join(x.RedirectURIs, " "), logout)
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
			if err := (&admin.OIDCClients{Store: s}).Delete(ctx, operatorClients(ctx), pos[0]); err != nil {
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
			client, err := (&admin.OIDCClients{Store: s}).SetDisabled(ctx, operatorClients(ctx), pos[0], disable)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "OIDC client %s: disabled=%t\n", client.ID, client.Disabled)
			return nil
		},
	}
}

func oidcClientUpdateCommand() serverCommand {
	var set *flag.FlagSet
	var name, bcl string
	var uris, logout, orgs repeated
	var allOrgs, firstParty bool
	return serverCommand{
		name: "oidc client update",
		args: []string{"CLIENT_ID"},
		about: "Changes what the flags given name; the rest stays. A URI flag replaces the whole\n" +
			"list (repeat it for several); --post-logout-redirect-uri= (empty) removes them\n" +
			"all, --backchannel-logout-uri= removes it. --org replaces the organizations,\n" +
			"--all-orgs opens the application to every organization. Audited.",
		flags: func(fs *flag.FlagSet) {
			set = fs
			fs.StringVar(&name, "name", "", "the application's new name")
			fs.Var(&uris, "redirect-uri", "a redirect URI (replaces the list; repeat for several)")
			fs.Var(&logout, "post-logout-redirect-uri", "a post-logout redirect URI (replaces the list; repeat; empty: none)")
			fs.StringVar(&bcl, "backchannel-logout-uri", "", "where back-channel logout tokens go (empty: none)")
			fs.Var(&orgs, "org", "slug of an organization whose administrators may sign in (replaces the list; repeat for several)")
			fs.BoolVar(&allOrgs, "all-orgs", false, "administrators of every organization may sign in")
			fs.BoolVar(&firstParty, "first-party", false, "the product's own application: consent is skipped (--first-party=false: asked)")
		},
		run: func(ctx context.Context, c *cli, s *store.SQL, pos []string) error {
			var edit admin.OIDCClientEdit
			given := map[string]bool{}
			set.Visit(func(f *flag.Flag) { given[f.Name] = true })
			if given["org"] && given["all-orgs"] {
				return usagef("oidc client update: give --org or --all-orgs, not both")
			}
			if given["name"] {
				edit.Name = &name
			}
			if given["redirect-uri"] {
				list := []string(uris)
				edit.RedirectURIs = &list
			}
			if given["post-logout-redirect-uri"] {
				list := slices.DeleteFunc(slices.Clone([]string(logout)), func(u string) bool { return u == "" })
				edit.PostLogoutRedirectURIs = &list
			}
			if given["backchannel-logout-uri"] {
				edit.BackchannelLogoutURI = &bcl
			}
			if given["org"] {
				list := []string(orgs)
				edit.Orgs = &list
			}
			if given["all-orgs"] {
				if !allOrgs {
					return usagef("oidc client update: --all-orgs=false: name the organizations with --org instead")
				}
				edit.Orgs = &[]string{}
			}
			if given["first-party"] {
				edit.FirstParty = &firstParty
			}
			if len(given) == 0 || len(given) == 1 && given["db"] {
				return usagef("oidc client update: nothing to change: give at least one of the flags (see 'gatehouse oidc client update --help')")
			}
			client, err := (&admin.OIDCClients{Store: s}).Update(ctx, operatorClients(ctx), pos[0], edit)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "OIDC client %s updated\n", client.ID)
			return nil
		},
	}
}

func oidcClientRotateCommand() serverCommand {
	return serverCommand{
		name: "oidc client secret rotate",
		args: []string{"CLIENT_ID"},
		about: "Gives a confidential application a new secret and prints it on stdout, once:\n" +
			"only its hash is stored. The old secret stops authenticating at once (no grace\n" +
			"period: rotation is what a leaked secret calls for), so give the application\n" +
			"the new one right away. Audited.",
		run: func(ctx context.Context, c *cli, s *store.SQL, pos []string) error {
			secret, client, err := (&admin.OIDCClients{Store: s}).RotateSecret(ctx, operatorClients(ctx), pos[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, secret)
			fmt.Fprintf(c.stderr, "New secret of %q: copy it now, it will not be shown again. The old one no longer works.\n", client.Name)
			return nil
		},
	}
}
