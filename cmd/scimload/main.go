// Command scimload measures gatehouse's SCIM 2.0 endpoints (RFC 7644):
// "seed" writes many administrators and two groups straight into the
// database, and "run" drives a gatehouse on this machine with them and sets
// every figure beside the ceiling of a bare net/http server. load.sh does a
// whole measured run. "op" and "logout" measure the OpenID Provider (code
// exchange, introspection, back-channel logout after a SCIM deactivation);
// op.sh does their measured run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gatehouse/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command line; it returns the exit status. 0: success or
// help shown; 1: the command failed (run: also when any scenario failed or
// counted an error, after the results are printed); 2: the command line is
// wrong. Every failure is one line on stderr starting "scimload: ".
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout)
	var usage usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintln(stderr, "scimload: "+oneLine(err.Error()))
		return 2
	default:
		fmt.Fprintln(stderr, "scimload: "+oneLine(err.Error()))
		return 1
	}
}

func dispatch(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("missing command (see 'scimload --help')")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, "Usage: scimload COMMAND [flags]\n\n"+
			"Load tool for gatehouse's SCIM 2.0 endpoints and OpenID Provider.\n\nCommands:\n"+
			"  seed       write load users and groups straight into the database\n"+
			"  run        drive a gatehouse on this machine and report its figures\n"+
			"  op         measure its OpenID Provider: code exchange and introspection\n"+
			"  logout     measure the delay from a SCIM deactivation to the back-channel logout\n\n"+
			"Run 'scimload COMMAND --help' for a command's flags.\n")
		return flag.ErrHelp
	case "seed":
		return runSeed(ctx, args[1:], stdout)
	case "run":
		return runLoad(ctx, args[1:], stdout)
	case "op":
		return runOP(ctx, args[1:], stdout)
	case "logout":
		return runLogout(ctx, args[1:], stdout)
	case "bare-serve": // not listed: run's bare-process scenario starts it
		return bareServe()
	}
	return usagef("unknown command %q (see 'scimload --help')", args[0])
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// newFlagSet returns a flag set that reports errors to its caller instead
// of printing them.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("scimload "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses the flags; no command takes positional arguments. On --help
// it prints the usage to stdout and returns flag.ErrHelp.
func parse(fs *flag.FlagSet, stdout io.Writer, synopsis, about string, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "Usage: %s %s\n\n%s\n\nFlags:\n", fs.Name(), synopsis, about)
			fs.VisitAll(func(f *flag.Flag) {
				typ, usage := flag.UnquoteUsage(f)
				fmt.Fprintf(stdout, "  --%s %s\n      %s", f.Name, typ, usage)
				if f.DefValue != "" && f.DefValue != "0" {
					fmt.Fprintf(stdout, " (default %q)", f.DefValue)
				}
				fmt.Fprintln(stdout)
			})
			fmt.Fprintln(stdout, "  --help\n      show this help")
			return err
		}
		return usagef("%v (see '%s --help')", err, fs.Name())
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (see '%s --help')", fs.Arg(0), fs.Name())
	}
	return nil
}

// oneLine folds a message onto one line (driver errors and response
// bodies can span several).
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

const (
	// seedBatch bounds one CreateAdministrators or PatchGroup
	// transaction.
	seedBatch = 5000
	// maxLoadUsers keeps load user numbers within their seven digits.
	maxLoadUsers = 9_999_999
	bigGroup     = "load-big"
	smallGroup   = "load-small"
	addGroup     = "load-add"
)

func runSeed(ctx context.Context, args []string, stdout io.Writer) error {
	// The seed writes directly to the database, as the operator would: its
	// entries in the audit log say so.
	ctx = asOperator(ctx)
	fs := newFlagSet("seed")
	dsn := fs.String("db", "", "database: a SQLite file path, sqlite:PATH, or a postgres:// URL (required)")
	slug := fs.String("org", "", "slug of an existing organization (required)")
	users := fs.Int("users", 0, fmt.Sprintf("how many load users the organization gets, 1 to %d (required)", maxLoadUsers))
	big := fs.Int("group-members", 100_000, "members of group "+bigGroup+": the first N load users")
	small := fs.Int("small-group", 100, "members of group "+smallGroup+": the first N load users")
	add := fs.Int("add-group-members", 10_000, "members of group "+addGroup+" (run's member-add adds others): the first N load users")
	err := parse(fs, stdout, "--db DSN --org SLUG --users N [flags]",
		"Writes load users load-user-0000001@example.com ... (active, SCIM-managed\n"+
			"administrators) and the groups "+bigGroup+", "+smallGroup+" and "+addGroup+" straight into the\n"+
			"database, in transactions of 5,000 rows. It resumes where an earlier seed\n"+
			"stopped and does nothing when everything is there. SQLite is opened with\n"+
			"synchronous=NORMAL: a seed lost in a machine crash is simply run again.", args)
	if err != nil {
		return err
	}
	switch {
	case *dsn == "":
		return usagef("seed: --db is required (see 'scimload seed --help')")
	case *slug == "":
		return usagef("seed: --org is required (see 'scimload seed --help')")
	case *users < 1 || *users > maxLoadUsers:
		return usagef("seed: --users must be from 1 to %d", maxLoadUsers)
	case *big < 0 || *small < 0 || *add < 0:
		return usagef("seed: --group-members, --small-group and --add-group-members cannot be negative")
	}

	start := time.Now()
	// NORMAL rather than the server's FULL for speed: durability against a
	// power cut buys nothing here, since a lost seed is redone by the next.
	s, err := store.Open(ctx, *dsn, store.Options{SQLiteSynchronous: "NORMAL", ConnectTimeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer s.Close()
	org, err := s.OrgBySlug(ctx, *slug)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("organization %q does not exist (create it with gatehouse org create)", *slug)
	}
	if err != nil {
		return err
	}
	sd := seeder{store: s, org: org.ID, batch: seedBatch, out: stdout}
	if err := sd.users(ctx, *users); err != nil {
		return err
	}
	if err := sd.group(ctx, bigGroup, min(*big, *users)); err != nil {
		return err
	}
	if err := sd.group(ctx, smallGroup, min(*small, *users)); err != nil {
		return err
	}
	if err := sd.group(ctx, addGroup, min(*add, *users)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seed of organization %q done in %s\n", *slug, time.Since(start).Round(time.Millisecond))
	return nil
}

// seedStore is what seeding needs of the store: the Store, and the bulk
// insert of administrators the SQL stores offer beside it.
type seedStore interface {
	store.Store
	CreateAdministrators(ctx context.Context, as []store.Administrator) error
}

// seeder writes the load data of one organization.
type seeder struct {
	store seedStore
	org   string
	batch int // rows per transaction
	out   io.Writer
}

func loadUserName(i int) string { return fmt.Sprintf("load-user-%07d@example.com", i) }

// loadUserNumber is the inverse of loadUserName; 0 for other usernames.
func loadUserNumber(username string) int {
	digits := strings.TrimSuffix(strings.TrimPrefix(username, "load-user-"), "@example.com")
	i, err := strconv.Atoi(digits)
	if err != nil || i < 1 || loadUserName(i) != username {
		return 0
	}
	return i
}

func loadUser(org string, i int) store.Administrator {
	name := loadUserName(i)
	return store.Administrator{
		OrgID:       org,
		UserName:    name,
		ExternalID:  fmt.Sprintf("ext-%07d", i),
		GivenName:   "User",
		FamilyName:  fmt.Sprintf("%07d", i),
		Email:       name,
		Emails:      []store.Email{{Value: name, Type: "work", Primary: true}},
		Role:        store.RoleAdministrator,
		Status:      store.StatusActive,
		SCIMManaged: true,
		Attributes:  store.RawJSON(fmt.Sprintf(`{"displayName":"User %07d","title":"Engineer"}`, i)),
	}
}

// users makes sure load users 1..n exist. Batches are inserted in order and
// each is all-or-nothing, so the load users present are always 1..k: a
// binary search finds k and the insert resumes after it. (Counting the
// organization's administrators would not do: its owner and the users the
// create scenario adds are counted too.)
func (sd *seeder) users(ctx context.Context, n int) error {
	start := time.Now()
	have, err := sd.present(ctx, n)
	if err != nil {
		return err
	}
	if have == n {
		fmt.Fprintf(sd.out, "users: all %d load users already present\n", n)
		return nil
	}
	for lo := have + 1; lo <= n; lo += sd.batch {
		hi := min(lo+sd.batch-1, n)
		as := make([]store.Administrator, 0, hi-lo+1)
		for i := lo; i <= hi; i++ {
			as = append(as, loadUser(sd.org, i))
		}
		if err := sd.store.CreateAdministrators(ctx, as); err != nil {
			return fmt.Errorf("insert load users %d to %d: %w", lo, hi, err)
		}
	}
	took := time.Since(start)
	fmt.Fprintf(sd.out, "users: inserted %d load users (%d already present) in %s, %.0f/s\n",
		n-have, have, took.Round(time.Millisecond), float64(n-have)/took.Seconds())
	return nil
}

// present returns k, the number of load users already there (at most n).
func (sd *seeder) present(ctx context.Context, n int) (int, error) {
	lo, hi := 0, n // k is in [lo, hi]
	for lo < hi {
		mid := (lo + hi + 1) / 2
		_, err := sd.store.AdministratorByUsername(ctx, sd.org, loadUserName(mid))
		switch {
		case err == nil:
			lo = mid
		case errors.Is(err, store.ErrNotFound):
			hi = mid - 1
		default:
			return 0, fmt.Errorf("look up load user %d: %w", mid, err)
		}
	}
	return lo, nil
}

// group makes sure the group exists with load users 1..m as members.
// Adding members already there is a no-op, so an interrupted seed is
// completed by the next one.
func (sd *seeder) group(ctx context.Context, name string, m int) error {
	start := time.Now()
	g, found, err := sd.findGroup(ctx, name)
	if err != nil {
		return err
	}
	if !found {
		if g, err = sd.store.CreateGroup(ctx, store.Group{OrgID: sd.org, DisplayName: name}); err != nil {
			return fmt.Errorf("create group %s: %w", name, err)
		}
	}
	_, have, err := sd.store.GroupMembers(ctx, sd.org, g.ID, store.Page{})
	if err != nil {
		return fmt.Errorf("group %s: %w", name, err)
	}
	if have >= m {
		fmt.Fprintf(sd.out, "group %s: already present with %d members\n", name, have)
		return nil
	}
	ids, err := sd.memberIDs(ctx, m)
	if err != nil {
		return fmt.Errorf("group %s: %w", name, err)
	}
	for chunk := range slices.Chunk(ids, sd.batch) {
		if _, err := sd.store.PatchGroup(ctx, sd.org, g.ID, store.GroupPatch{Add: chunk}); err != nil {
			return fmt.Errorf("group %s: add members: %w", name, err)
		}
	}
	_, now, err := sd.store.GroupMembers(ctx, sd.org, g.ID, store.Page{})
	if err != nil {
		return fmt.Errorf("group %s: %w", name, err)
	}
	fmt.Fprintf(sd.out, "group %s: %d members added (now %d) in %s\n", name, now-have, now, time.Since(start).Round(time.Millisecond))
	return nil
}

// findGroup looks the group up by its display name, exactly (the oldest
// if there are several).
func (sd *seeder) findGroup(ctx context.Context, name string) (store.Group, bool, error) {
	res, err := sd.store.QueryGroups(ctx, sd.org, store.Query{
		Where: store.Compare{Field: store.GroupDisplayName, Op: store.OpEq, Value: name}, Page: store.Page{Limit: 1}})
	if err != nil {
		return store.Group{}, false, fmt.Errorf("find group: %w", err)
	}
	if len(res.Items) == 0 {
		return store.Group{}, false, nil
	}
	return res.Items[0], true, nil
}

// memberIDs returns the ids of load users 1..m, read back in creation order
// (the organization's other administrators are skipped).
func (sd *seeder) memberIDs(ctx context.Context, m int) ([]string, error) {
	ids := make([]string, m)
	found := 0
	// A seek walk (Query.Seek): each page continues after the last row
	// of the one before, whatever its depth.
	q := store.Query{Seek: true, Page: store.Page{Limit: sd.batch}}
	for found < m {
		res, err := sd.store.QueryAdministrators(ctx, sd.org, q)
		if err != nil {
			return nil, fmt.Errorf("list administrators: %w", err)
		}
		for _, a := range res.Items {
			if i := loadUserNumber(a.UserName); i >= 1 && i <= m && ids[i-1] == "" {
				ids[i-1] = a.ID
				found++
			}
		}
		if res.Next == "" {
			break
		}
		q.After = res.Next
	}
	if found < m {
		return nil, fmt.Errorf("only %d of load users 1 to %d found", found, m)
	}
	return ids, nil
}
