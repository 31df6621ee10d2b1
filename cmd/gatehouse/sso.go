package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"gatehouse/admin"
	"gatehouse/sso"
	"gatehouse/sso/fetch"
	"gatehouse/store"
)

// The SSO connections of an organization from the command line, with the
// rules the management API applies (sso.Manager), as the operator.

// ssoManager is the Manager the commands use: the server's secret key
// (the same flags and environment as serve) seals the connection secrets.
func ssoManager(c *cli, s *store.SQL, keyFlags *secretKeyFlags, dsn, baseURL string) (*sso.Manager, error) {
	key, file := keyFlags.key, keyFlags.file
	if key == "" {
		key = c.getenv("GATEHOUSE_SECRET_KEY")
	}
	if file == "" {
		file = c.getenv("GATEHOUSE_SECRET_KEY_FILE")
	}
	sealer, err := loadSealer(key, file, dsn, newLogger(c.stderr, c.stderr, "text"))
	if err != nil {
		return nil, err
	}
	return &sso.Manager{Store: s, Sealer: sealer, BaseURL: baseURL, Fetch: fetch.NewClient(fetch.Options{AllowLoopback: true})}, nil
}

// secretKeyFlags are serve's --secret-key and --secret-key-file.
type secretKeyFlags struct{ key, file string }

func (k *secretKeyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.key, "secret-key", "", "the server's secret key, as serve takes it (env GATEHOUSE_SECRET_KEY)")
	fs.StringVar(&k.file, "secret-key-file", "", "the server's secret key file, as serve takes it (env GATEHOUSE_SECRET_KEY_FILE)")
}

func ssoCreateCommand() orgCommand {
	var spec admin.SSOConnectionSpec
	var metadataFile, secretEnv, scopes, baseURL string
	var keys secretKeyFlags
	var idpInitiated, sha1 bool
	return orgCommand{
		name: "sso create",
		about: "Creates an SSO connection. SAML: --kind saml with --metadata-url (https or loopback)\n" +
			"or --metadata-file, and --username-from nameid or attribute:NAME. OIDC: --kind oidc\n" +
			"with --issuer, --client-id, the client secret in the environment variable named by\n" +
			"--client-secret-env, and --username-from claim:NAME. Prints the connection's id and\n" +
			"the endpoints to give the identity provider.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&spec.Kind, "kind", "", "saml or oidc (required)")
			fs.StringVar(&spec.Name, "name", "", "the connection's name (required)")
			fs.StringVar(&spec.UsernameFrom, "username-from", "", "where the username comes from: nameid, attribute:NAME (SAML), claim:NAME (OIDC)")
			fs.StringVar(&spec.IdPMetadataURL, "metadata-url", "", "SAML: the IdP metadata URL, fetched now and refreshed")
			fs.StringVar(&metadataFile, "metadata-file", "", "SAML: a file holding the IdP metadata XML")
			fs.BoolVar(&idpInitiated, "allow-idp-initiated", false, "SAML: accept IdP-initiated sign-ins")
			fs.BoolVar(&sha1, "allow-sha1", false, "SAML: accept SHA-1 signatures (old IdPs only)")
			fs.StringVar(&spec.Issuer, "issuer", "", "OIDC: the issuer URL")
			fs.StringVar(&spec.ClientID, "client-id", "", "OIDC: the client ID")
			fs.StringVar(&secretEnv, "client-secret-env", "", "OIDC: the environment variable holding the client secret")
			fs.StringVar(&scopes, "scopes", "", "OIDC: scopes, comma-separated (default openid,email,profile)")
			fs.StringVar(&baseURL, "base-url", "", "the server's public URL, for the endpoints printed (env GATEHOUSE_BASE_URL; default: the URL gatehouse serve last started with on this database)")
			keys.register(fs)
		},
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, _ []string) error {
			if metadataFile != "" {
				b, err := os.ReadFile(metadataFile)
				if err != nil {
					return err
				}
				spec.IdPMetadataXML = string(b)
			}
			if secretEnv != "" {
				spec.ClientSecret = c.getenv(secretEnv)
				if spec.ClientSecret == "" {
					return usagef("sso create: the environment variable %s is empty", secretEnv)
				}
			}
			if scopes != "" {
				spec.Scopes = strings.Split(scopes, ",")
			}
			if idpInitiated {
				spec.AllowIdPInitiated = &idpInitiated
			}
			if sha1 {
				spec.AllowSHA1 = &sha1
			}
			// The endpoints printed are what the IdP is given: without the
			// server's real URL they would be wrong, so nothing is created.
			base, err := c.publicBaseURL(ctx, s, baseURL)
			if err != nil {
				return err
			}
			if base == "" {
				return noBaseURL("sso create")
			}
			m, err := ssoManager(c, s, &keys, c.dsn, base)
			if err != nil {
				return err
			}
			v, err := m.Create(ctx, operator(ctx, org, false), spec)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, v.ID)
			for k, u := range v.Endpoints {
				fmt.Fprintf(c.stderr, "%s: %s\n", k, u)
			}
			return nil
		},
	}
}

func ssoListCommand() orgCommand {
	return orgCommand{
		name:  "sso list",
		about: "Lists the organization's SSO connections: id, kind, name, enabled, username source.",
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, _ []string) error {
			cs, err := s.SSOConnections(ctx, org.ID)
			if err != nil {
				return err
			}
			for _, x := range cs {
				fmt.Fprintf(c.stdout, "%s\t%s\t%s\tenabled=%t\t%s\n", x.ID, x.Kind, x.Name, x.Enabled, x.UsernameFrom)
			}
			return nil
		},
	}
}

func ssoUpdateCommand() orgCommand {
	var spec admin.SSOConnectionSpec
	var enable, disable bool
	var idpInitiated optionalBool
	var skew optionalSeconds
	return orgCommand{
		name: "sso update", args: []string{"CONNECTION"},
		about: "Changes an SSO connection, named by its id or by its name: --disable stops its\n" +
			"sign-ins without deleting it (refused while the organization requires SSO and it\n" +
			"is the last enabled one), --enable resumes them. Only the settings given change;\n" +
			"the change is audited.",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&enable, "enable", false, "accept sign-ins through the connection")
			fs.BoolVar(&disable, "disable", false, "refuse sign-ins through the connection")
			fs.StringVar(&spec.Name, "name", "", "a new name")
			fs.StringVar(&spec.UsernameFrom, "username-from", "", "where the username comes from: nameid, attribute:NAME (SAML), claim:NAME (OIDC)")
			fs.Var(&idpInitiated, "allow-idp-initiated", "SAML: accept IdP-initiated sign-ins (true or false)")
			fs.Var(&skew, "clock-skew", "the tolerated difference between the IdP's clock and ours, whole seconds (90s, 2m)")
		},
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, pos []string) error {
			if enable && disable {
				return usagef("sso update: --enable and --disable exclude each other")
			}
			if enable || disable {
				spec.Enabled = &enable
			}
			spec.AllowIdPInitiated, spec.ClockSkewSeconds = idpInitiated.v, skew.v
			if spec.Name == "" && spec.UsernameFrom == "" && spec.Enabled == nil && spec.AllowIdPInitiated == nil && spec.ClockSkewSeconds == nil {
				return usagef("sso update: nothing to change (see 'gatehouse sso update --help')")
			}
			conn, err := ssoConnectionNamed(ctx, s, org, pos[0])
			if err != nil {
				return err
			}
			// No sealer, no base URL: these settings need neither the
			// secrets nor the identity provider, and no link is printed.
			m := &sso.Manager{Store: s}
			v, err := m.Update(ctx, operator(ctx, org, false), conn.ID, spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%s\t%s\t%s\tenabled=%t\t%s\n", v.ID, v.Kind, v.Name, v.Enabled, v.UsernameFrom)
			return nil
		},
	}
}

// ssoConnectionNamed finds a connection of org by its id, else by its
// exact name; a name two connections share is refused.
func ssoConnectionNamed(ctx context.Context, s *store.SQL, org store.Org, idOrName string) (store.SSOConnection, error) {
	cs, err := s.SSOConnections(ctx, org.ID)
	if err != nil {
		return store.SSOConnection{}, err
	}
	var named []store.SSOConnection
	for _, x := range cs {
		if x.ID == idOrName {
			return x, nil
		}
		if x.Name == idOrName {
			named = append(named, x)
		}
	}
	switch len(named) {
	case 0:
		return store.SSOConnection{}, &admin.Error{Code: admin.CodeNotFound,
			Message: fmt.Sprintf("organization %q has no SSO connection with the id or name %q (see 'gatehouse sso list')", org.Slug, idOrName)}
	case 1:
		return named[0], nil
	}
	return store.SSOConnection{}, &admin.Error{Code: admin.CodeNotFound,
		Message: fmt.Sprintf("%d SSO connections of organization %q are named %q: give the id (see 'gatehouse sso list')", len(named), org.Slug, idOrName)}
}

// optionalBool is a boolean flag that may be left unset: --flag,
// --flag=true or --flag=false.
type optionalBool struct{ v *bool }

func (b *optionalBool) String() string {
	if b == nil || b.v == nil {
		return ""
	}
	return strconv.FormatBool(*b.v)
}

func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("give true or false")
	}
	b.v = &v
	return nil
}

func (b *optionalBool) IsBoolFlag() bool { return true }

// optionalSeconds is a duration flag of whole seconds that may be left
// unset.
type optionalSeconds struct{ v *int }

func (d *optionalSeconds) String() string {
	if d == nil || d.v == nil {
		return ""
	}
	return (time.Duration(*d.v) * time.Second).String()
}

func (d *optionalSeconds) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 || v%time.Second != 0 {
		return errors.New("give whole seconds, as 90s or 2m")
	}
	n := int(v / time.Second)
	d.v = &n
	return nil
}

func ssoDeleteCommand() orgCommand {
	return orgCommand{
		name: "sso delete", args: []string{"CONNECTION_ID"},
		about: "Deletes an SSO connection (refused while the organization requires SSO and it is the last enabled one).",
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, pos []string) error {
			m := &sso.Manager{Store: s}
			if err := m.Delete(ctx, operator(ctx, org, false), pos[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "SSO connection %s deleted\n", pos[0])
			return nil
		},
	}
}

func ssoRequireCommand() orgCommand {
	var off bool
	return orgCommand{
		name: "sso require",
		about: "Requires SSO for the organization's sign-ins (passwords refused except for the\n" +
			"break-glass Super Administrators named with 'gatehouse sso break-glass'); --off lifts it.",
		flags: func(fs *flag.FlagSet) { fs.BoolVar(&off, "off", false, "stop requiring SSO") },
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, _ []string) error {
			on := !off
			o, err := (&admin.Orgs{Store: s}).SetPreferences(ctx, operator(ctx, org, false), admin.Preferences{RequireSSO: &on})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "organization %q requires SSO: %t\n", o.Slug, o.RequireSSO)
			return nil
		},
	}
}

func ssoBreakGlassCommand() orgCommand {
	var off bool
	return orgCommand{
		name: "sso break-glass", args: []string{"USERNAME"},
		about: "Names a Super Administrator who may still sign in with a password while the\n" +
			"organization requires SSO; --off stops naming them. USERNAME is matched exactly.",
		flags: func(fs *flag.FlagSet) { fs.BoolVar(&off, "off", false, "stop naming the administrator") },
		run: func(ctx context.Context, c *cli, s *store.SQL, org store.Org, pos []string) error {
			a, err := s.AdministratorByUsername(ctx, org.ID, pos[0])
			if err != nil {
				return fmt.Errorf("administrator %q of organization %q: %w", pos[0], org.Slug, err)
			}
			if !off && a.Role != store.RoleSuperAdministrator {
				return &admin.Error{Code: admin.CodeInvalidRole, Message: fmt.Sprintf("%q is not a Super Administrator", a.UserName)}
			}
			if err := (&admin.SignIn{Store: s}).SetBreakGlass(ctx, org.ID, a.ID, !off); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "administrator %q break-glass: %t\n", a.UserName, !off)
			return nil
		},
	}
}
