package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
)

const (
	defaultAddr = "127.0.0.1:8080"
	defaultDB   = "data/gatehouse.db"
	// openTimeout bounds the first contact with the database, so an
	// unreachable one fails the command instead of hanging it; migrations
	// are not cut short by it.
	openTimeout = 10 * time.Second
)

// run is the whole command line: it returns the exit status. 0: success or
// help shown; 1: the command failed (database unreachable, organization
// unknown, input refused); 2: the command line is wrong (unknown command or
// flag, missing argument). Every failure is one line on stderr starting
// "gatehouse: ".
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdout: stdout, stderr: stderr, getenv: getenv}
	// Changes made from the command line are the operator's ("contact
	// support" in seed 001) in the audit log, named by the login running it.
	ctx = store.WithActor(ctx, store.Actor{Kind: store.ActorOperator, Name: operatorName(getenv)})
	err := c.dispatch(ctx, commandTree(), "gatehouse", args)
	var usage usageError
	var refused *admin.Error
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintln(stderr, "gatehouse: "+oneLine(usage.msg))
		return 2
	case errors.As(err, &refused):
		// The message names the offending value and is meant for the
		// operator; the wrapped cause (a store sentinel) adds nothing.
		fmt.Fprintln(stderr, "gatehouse: "+oneLine(refused.Message))
		return 1
	default:
		fmt.Fprintln(stderr, "gatehouse: "+oneLine(err.Error()))
		return 1
	}
}

// operatorName is who runs the command, as the audit log shows it.
func operatorName(getenv func(string) string) string {
	for _, v := range []string{"GATEHOUSE_OPERATOR", "SUDO_USER", "USER", "LOGNAME"} {
		if name := getenv(v); name != "" {
			return name
		}
	}
	return "cli"
}

type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	dsn            string // the database an org command opened
}

// publicBaseURL is the server's public URL for a command that prints
// links: the flag, else GATEHOUSE_BASE_URL, else the URL gatehouse serve
// recorded in the database when it last started; "" when none is known
// (the caller then prints no link: a guessed one would point elsewhere).
func (c *cli) publicBaseURL(ctx context.Context, s store.Store, flag string) (string, error) {
	if flag == "" {
		flag = c.getenv("GATEHOUSE_BASE_URL")
	}
	if flag != "" {
		return flag, checkBaseURL(flag)
	}
	u, err := s.BaseURL(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return u, err
}

// noBaseURL refuses a command whose output needs the server's public URL
// when none is known.
func noBaseURL(command string) error {
	return usagef("%s: the server's public URL is unknown, so its link cannot be printed: give --base-url "+
		"(or GATEHOUSE_BASE_URL), or start gatehouse serve once on this database (it records the URL it serves at)", command)
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// command is a node of the command tree: a group (sub) or a leaf (run).
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, c *cli, args []string) error
	sub     []*command
}

func commandTree() *command {
	return &command{name: "gatehouse", summary: "identity service for administrator accounts: SCIM 2.0, administration, SSO", sub: []*command{
		{name: "serve", summary: "run the HTTP server", run: runServe},
		{name: "org", summary: "manage organizations", sub: []*command{
			{name: "create", summary: "create an organization and its first super administrator", run: runOrgCreate},
			{name: "show", summary: "print an organization's settings and whether it lacks a Super Administrator", run: orgShowCommand().runner()},
		}},
		{name: "scim", summary: "manage SCIM provisioning", sub: []*command{
			{name: "token", summary: "manage SCIM bearer tokens", sub: []*command{
				{name: "create", summary: "create a SCIM bearer token and print it once", run: runSCIMTokenCreate},
			}},
			{name: "enable", summary: "turn SCIM provisioning on for an organization", run: runSCIMSwitch(true)},
			{name: "disable", summary: "turn SCIM provisioning off for an organization", run: runSCIMSwitch(false)},
			{name: "super-admin-group", summary: "name the SCIM group whose members are Super Administrators", run: runSCIMSuperAdminGroup},
		}},
		{name: "administrator", summary: "what only support may do to an administrator", sub: []*command{
			{name: "deactivate", summary: "deactivate an administrator, Super Administrators included", run: administratorStatusCommand("deactivate").runner()},
			{name: "reactivate", summary: "reactivate an administrator, Super Administrators included", run: administratorStatusCommand("reactivate").runner()},
			{name: "set-role", summary: "set an administrator's role (restore a Super Administrator)", run: administratorRoleCommand().runner()},
			{name: "reset-totp", summary: "remove an administrator's second factor (a lost phone)", run: credentialCommand("reset-totp",
				"Removes the administrator's TOTP second factor; when the organization requires\none, the administrator enrols again at the next sign-in.", (*admin.SignIn).ResetTOTP).runner()},
			{name: "unlock", summary: "end an administrator's sign-in lockout", run: credentialCommand("unlock",
				"Ends the administrator's lockout after repeated failed sign-ins.", (*admin.SignIn).Unlock).runner()},
		}},
		{name: "domain", summary: "manage an organization's registered email domains", sub: domainCommands()},
		{name: "sso", summary: "manage an organization's SSO connections (SAML, OIDC)", sub: []*command{
			{name: "create", summary: "create a SAML or OIDC connection", run: ssoCreateCommand().runner()},
			{name: "list", summary: "list the connections", run: ssoListCommand().runner()},
			{name: "update", summary: "change a connection: enable, disable, rename, username source, IdP-initiated, clock skew", run: ssoUpdateCommand().runner()},
			{name: "delete", summary: "delete a connection", run: ssoDeleteCommand().runner()},
			{name: "require", summary: "require SSO for sign-in (or --off)", run: ssoRequireCommand().runner()},
			{name: "break-glass", summary: "let a Super Administrator keep a password while SSO is required", run: ssoBreakGlassCommand().runner()},
		}},
		{name: "ldap", summary: "manage an organization's LDAP connection and LDAP users", sub: ldapCommands()},
		{name: "oidc", summary: "manage the OpenID Provider's signing keys and client applications", sub: oidcCommands()},
		{name: "api-key", summary: "manage management API keys", sub: []*command{
			{name: "create", summary: "create a management API key and print it once", run: apiKeyCreateCommand().runner()},
		}},
	}}
}

func (c *cli) dispatch(ctx context.Context, cmd *command, path string, args []string) error {
	if cmd.run != nil {
		return cmd.run(ctx, c, args)
	}
	where := strings.TrimPrefix(strings.TrimPrefix(path, "gatehouse"), " ")
	if where != "" {
		where += ": "
	}
	if len(args) == 0 {
		return usagef("%smissing command (see '%s --help')", where, path)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(c.stdout, "Usage: %s COMMAND [flags]\n\n%s.\n\nCommands:\n", path, upperFirst(cmd.summary))
		for _, s := range cmd.sub {
			fmt.Fprintf(c.stdout, "  %-10s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(c.stdout, "\nRun '%s COMMAND --help' for a command's flags.\n", path)
		return flag.ErrHelp
	}
	for _, s := range cmd.sub {
		if s.name == args[0] {
			return c.dispatch(ctx, s, path+" "+s.name, args[1:])
		}
	}
	return usagef("%sunknown command %q (see '%s --help')", where, args[0], path)
}

// newFlagSet returns a flag set that reports errors to its caller instead
// of printing them.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("gatehouse "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses flags and positional arguments in any order (flag stops at
// the first positional one, so parsing resumes after each). On --help it
// prints the command's usage to stdout and returns flag.ErrHelp.
func (c *cli) parse(fs *flag.FlagSet, synopsis, about string, args []string) ([]string, error) {
	name := strings.TrimPrefix(fs.Name(), "gatehouse ")
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.printUsage(fs, synopsis, about)
				return nil, err
			}
			return nil, usagef("%s: %v (see '%s --help')", name, err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func (c *cli) printUsage(fs *flag.FlagSet, synopsis, about string) {
	w := c.stdout
	fmt.Fprintf(w, "Usage: %s %s\n\n%s\n\nFlags:\n", fs.Name(), synopsis, about)
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if typ != "" {
			fmt.Fprintf(w, " %s", typ)
		}
		fmt.Fprintf(w, "\n      %s", usage)
		if f.DefValue != "" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
	fmt.Fprintln(w, "  --help\n      show this help")
}

// fromEnv gives every flag of env that the command line did not set the
// value of its environment variable, when that is set: flags win over the
// environment, which wins over the defaults.
func (c *cli) fromEnv(fs *flag.FlagSet, env map[string]string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, variable := range env {
		v := c.getenv(variable)
		if set[name] || v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return usagef("%s: %v", variable, err)
		}
	}
	return nil
}

// checkDSN refuses database URLs of other kinds before store.Open would
// take them for SQLite file names. Only the scheme is echoed: the rest may
// hold a password.
func checkDSN(flagName, dsn string) error {
	scheme, _, ok := strings.Cut(dsn, "://")
	if !ok {
		return nil
	}
	switch scheme {
	case "postgres", "postgresql", "sqlite":
		return nil
	}
	return usagef("--%s: unsupported database %q: give a SQLite file path, sqlite:PATH or a postgres:// URL", flagName, scheme+"://")
}

// checkBaseURL requires an absolute http(s) URL without query or fragment.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return usagef("--base-url: %q is not an absolute http:// or https:// URL without query, fragment or credentials", raw)
	}
	return nil
}

// defaultBaseURL is the base URL when none is configured: http:// and the
// listen address, with "localhost" when that has no host.
func defaultBaseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// openStore opens (and migrates) the database, giving up on reaching it
// after openTimeout.
func openStore(ctx context.Context, dsn string, opt store.Options) (*store.SQL, error) {
	opt.ConnectTimeout = openTimeout
	s, err := store.Open(ctx, dsn, opt)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return s, nil
}

// dbFlag is the --db flag every command has; openDB resolves it like
// serve does: flag, then GATEHOUSE_DB, then the default.
func dbFlag(fs *flag.FlagSet) *string {
	return fs.String("db", defaultDB, "database: a SQLite file path, sqlite:PATH, or a postgres:// URL (env GATEHOUSE_DB)")
}

func (c *cli) openDB(ctx context.Context, fs *flag.FlagSet, dsn *string) (*store.SQL, error) {
	if err := c.fromEnv(fs, map[string]string{"db": "GATEHOUSE_DB"}); err != nil {
		return nil, err
	}
	if err := checkDSN("db", *dsn); err != nil {
		return nil, err
	}
	return openStore(ctx, *dsn, store.Options{})
}

// oneLine folds a message onto one line (driver errors can span several).
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
