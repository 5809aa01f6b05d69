package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"golang.org/x/term"
)

const userUsage = `usage:
  prism user add EMAIL [--admin] [--name NAME] [--password-file FILE]
                        add a user (prints the new user's id)
  prism user list       list the users
  prism user disable EMAIL
                        stop a user signing in and using API tokens, and
                        end their sessions
  prism user passwd EMAIL [--password-file FILE]
                        set a user's password, and end their sessions

A password is read from FILE (its first line), or else typed at the
terminal without echo, or else read as one line of standard input. It is
never taken as an argument. Passwords are 12 to 1024 bytes.

disable and passwd need NATS (NATS_URL) besides DATABASE_URL: sessions
live there.
`

const tokenUsage = `usage:
  prism token create --user EMAIL --name NAME [--scope read,write] [--expires 720h]
                        make an API token and print it, alone, on standard
                        output: it is shown this once and stored only hashed
  prism token list [--user EMAIL]
  prism token revoke ID
  prism token revoke --user EMAIL --all
`

// Account commands use DATABASE_URL alone, except those that end a
// user's sessions, which live in NATS.
var (
	accountNeeds = system.Needs{Postgres: true}
	sessionNeeds = system.Needs{Postgres: true, NATS: true}
)

// accountStores are the users and tokens of DATABASE_URL.
type accountStores struct {
	users  *accounts.Users
	tokens *accounts.Tokens
	in     *system.Infra
}

// withAccounts runs f on the users and tokens of DATABASE_URL, and on
// NATS if needs says so.
func withAccounts(ctx context.Context, env config.Getenv, stderr io.Writer, name string, needs system.Needs, f func(*accountStores) error) error {
	log, err := logger(env, stderr, name)
	if err != nil {
		return err
	}
	in, err := system.Open(ctx, env, needs, obs.NewRegistry(), log, name)
	if err != nil {
		return err
	}
	defer in.Close()
	return f(&accountStores{users: accounts.NewUsers(in.Pool, accounts.DefaultParams()), tokens: accounts.NewTokens(in.Pool), in: in})
}

// endSessions ends every session of u, on every API replica, and says so.
func (s *accountStores) endSessions(ctx context.Context, u accounts.User, stderr io.Writer) error {
	n, err := accounts.EndUserSessions(ctx, s.in.JS, "", u.ID)
	if err != nil {
		return fmt.Errorf("%s: the change is made, but their sessions could not all be ended (run the command again): %w", u.Email, err)
	}
	fmt.Fprintf(stderr, "ended %d session(s) of %s\n", n, u.Email)
	return nil
}

// runUser runs `prism user ...`. stdin is where a password is read from
// when no file is given.
func runUser(ctx context.Context, args []string, env config.Getenv, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := refusePasswordArgs(args); err != nil {
		return err
	}
	sub, args, err := subcommand(args, userUsage, stdout, stderr)
	if sub == "" {
		return err
	}
	switch sub {
	case "add":
		return userAdd(ctx, args, env, stdin, stdout, stderr)
	case "list":
		return userList(ctx, args, env, stdout, stderr)
	case "disable":
		return userDisable(ctx, args, env, stderr)
	case "passwd":
		return userPasswd(ctx, args, env, stdin, stderr)
	}
	fmt.Fprint(stderr, userUsage)
	return fmt.Errorf("prism user: unknown command %q", sub)
}

// runToken runs `prism token ...`.
func runToken(ctx context.Context, args []string, env config.Getenv, stdout, stderr io.Writer) error {
	sub, args, err := subcommand(args, tokenUsage, stdout, stderr)
	if sub == "" {
		return err
	}
	switch sub {
	case "create":
		return tokenCreate(ctx, args, env, stdout, stderr)
	case "list":
		return tokenList(ctx, args, env, stdout, stderr)
	case "revoke":
		return tokenRevoke(ctx, args, env, stderr)
	}
	fmt.Fprint(stderr, tokenUsage)
	return fmt.Errorf("prism token: unknown command %q", sub)
}

// subcommand splits off the subcommand; "" means there is none to run
// (help was shown, or nothing was given and err says so).
func subcommand(args []string, usage string, stdout, stderr io.Writer) (string, []string, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return "", nil, errors.New("no command given")
	}
	if slices.Contains([]string{"help", "-h", "--help"}, args[0]) {
		fmt.Fprint(stdout, usage)
		return "", nil, nil
	}
	return args[0], args[1:], nil
}

// refusePasswordArgs stops a password given as an argument before
// anything else happens: other users' processes can read arguments and
// shells keep them in their history. The value is not repeated.
func refusePasswordArgs(args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && slices.Contains([]string{"password", "passwd", "pass", "pw", "p"}, name) {
			return fmt.Errorf("%s: passwords are never taken as arguments (other processes can read them, and shells keep them): use --password-file FILE, or type it when asked", strings.SplitN(a, "=", 2)[0])
		}
	}
	return nil
}

// parseFlags parses fs from args, allowing flags after the positional
// arguments (prism user add EMAIL --admin), and returns the positional
// arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if args = fs.Args(); len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// parseArgs is parseFlags for a command taking exactly want positional
// arguments.
func parseArgs(fs *flag.FlagSet, args []string, want int) ([]string, error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	return pos, wantArgs(fs, pos, want)
}

func wantArgs(fs *flag.FlagSet, pos []string, want int) error {
	if len(pos) != want {
		// Not quoted back: a misplaced argument may be a password.
		return fmt.Errorf("%s: takes %d argument(s) besides flags, got %d", fs.Name(), want, len(pos))
	}
	return nil
}

func newFlags(name string, stderr io.Writer, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	return fs
}

// quietHelp makes -h a success: the usage was shown.
func quietHelp(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func userAdd(ctx context.Context, args []string, env config.Getenv, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("prism user add", stderr, userUsage)
	admin := fs.Bool("admin", false, "make the user an admin")
	name := fs.String("name", "", "display name")
	passwordFile := fs.String("password-file", "", "read the password from this file")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return quietHelp(err)
	}
	email, err := accounts.NormalizeEmail(pos[0])
	if err != nil {
		return err
	}
	role := accounts.RoleUser
	if *admin {
		role = accounts.RoleAdmin
	}
	return withAccounts(ctx, env, stderr, "user", accountNeeds, func(s *accountStores) error {
		if _, err := s.users.Get(ctx, email); !errors.Is(err, accounts.ErrUserNotFound) {
			if err == nil {
				err = fmt.Errorf("%w: %s", accounts.ErrEmailTaken, email)
			}
			return err // before asking for a password that cannot be used
		}
		password, err := readPassword(*passwordFile, stdin, stderr)
		if err != nil {
			return err
		}
		u, err := s.users.Add(ctx, accounts.NewUser{Email: email, DisplayName: *name, Role: role, Password: password})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, u.ID)
		fmt.Fprintf(stderr, "added %s %s (id %s)\n", u.Role, u.Email, u.ID)
		return nil
	})
}

func userList(ctx context.Context, args []string, env config.Getenv, stdout, stderr io.Writer) error {
	if _, err := parseArgs(newFlags("prism user list", stderr, userUsage), args, 0); err != nil {
		return quietHelp(err)
	}
	return withAccounts(ctx, env, stderr, "user", accountNeeds, func(s *accountStores) error {
		users, err := s.users.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tEMAIL\tROLE\tSTATUS\tCREATED\tNAME")
		for _, u := range users {
			status := "active"
			if u.Disabled() {
				status = "disabled " + stamp(u.DisabledAt)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Role, status, stamp(&u.CreatedAt), u.DisplayName)
		}
		return w.Flush()
	})
}

// userDisable disables a user: they cannot sign in, their API tokens
// stop working and their sessions end.
func userDisable(ctx context.Context, args []string, env config.Getenv, stderr io.Writer) error {
	pos, err := parseArgs(newFlags("prism user disable", stderr, userUsage), args, 1)
	if err != nil {
		return quietHelp(err)
	}
	return withAccounts(ctx, env, stderr, "user", sessionNeeds, func(s *accountStores) error {
		u, err := s.users.Disable(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "disabled %s: they can no longer sign in, and their API tokens no longer work\n", u.Email)
		return s.endSessions(ctx, u, stderr)
	})
}

// userPasswd sets a user's password and ends their sessions.
func userPasswd(ctx context.Context, args []string, env config.Getenv, stdin io.Reader, stderr io.Writer) error {
	fs := newFlags("prism user passwd", stderr, userUsage)
	passwordFile := fs.String("password-file", "", "read the password from this file")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return quietHelp(err)
	}
	return withAccounts(ctx, env, stderr, "user", sessionNeeds, func(s *accountStores) error {
		if _, err := s.users.Get(ctx, pos[0]); err != nil {
			return err // before asking for a password that cannot be used
		}
		password, err := readPassword(*passwordFile, stdin, stderr)
		if err != nil {
			return err
		}
		u, err := s.users.SetPassword(ctx, pos[0], password)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "changed the password of %s\n", u.Email)
		return s.endSessions(ctx, u, stderr)
	})
}

// readPassword reads a new password from file, or else from the terminal
// without echo (typed twice), or else as one line of stdin.
func readPassword(file string, stdin io.Reader, stderr io.Writer) (string, error) {
	if file != "" {
		return readPasswordFile(file)
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return promptPassword(int(f.Fd()), stderr)
	}
	p, err := accounts.ReadPassword(stdin)
	if err != nil {
		return "", fmt.Errorf("password from standard input: %w", err)
	}
	return p, nil
}

func readPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	defer f.Close()
	p, err := accounts.ReadPassword(f)
	if err != nil {
		return "", fmt.Errorf("password file %s: %w", path, err)
	}
	return p, nil
}

func promptPassword(fd int, stderr io.Writer) (string, error) {
	read := func(prompt string) (string, error) {
		fmt.Fprint(stderr, prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password from the terminal: %w", err)
		}
		return string(b), nil
	}
	p, err := read("New password: ")
	if err != nil {
		return "", err
	}
	if err := accounts.CheckPassword(p); err != nil {
		return "", err
	}
	again, err := read("Repeat it: ")
	if err != nil {
		return "", err
	}
	if again != p {
		return "", errors.New("the passwords typed differ")
	}
	return p, nil
}

func tokenCreate(ctx context.Context, args []string, env config.Getenv, stdout, stderr io.Writer) error {
	fs := newFlags("prism token create", stderr, tokenUsage)
	email := fs.String("user", "", "the email of the token's user")
	name := fs.String("name", "", "what the token is for")
	scope := fs.String("scope", "read,write", "scopes, comma-separated: read, write")
	expires := fs.Duration("expires", 0, "lifetime, e.g. 720h (0: never expires)")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return quietHelp(err)
	}
	if *email == "" || *name == "" {
		fs.Usage()
		return errors.New("prism token create: --user and --name are required")
	}
	scopes, err := accounts.ParseScopes(*scope)
	if err != nil {
		return err
	}
	if *expires < 0 {
		return fmt.Errorf("%w: --expires %s", accounts.ErrInvalidExpiry, *expires)
	}
	return withAccounts(ctx, env, stderr, "token", accountNeeds, func(s *accountStores) error {
		u, err := s.users.Get(ctx, *email)
		if err != nil {
			return err
		}
		nt := accounts.NewToken{UserID: u.ID, Name: *name, Scopes: scopes}
		if *expires > 0 {
			nt.ExpiresAt = time.Now().Add(*expires)
		}
		secret, t, err := s.tokens.Create(ctx, nt)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, secret) // alone on stdout, so TOKEN=$(prism token create ...) works
		fmt.Fprintf(stderr, "created token %s %q for %s (scopes %s, expires %s); it is not shown again\n",
			t.ID, t.Name, u.Email, joinScopes(t.Scopes), orNever(t.ExpiresAt))
		return nil
	})
}

func tokenList(ctx context.Context, args []string, env config.Getenv, stdout, stderr io.Writer) error {
	fs := newFlags("prism token list", stderr, tokenUsage)
	email := fs.String("user", "", "only this user's tokens")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return quietHelp(err)
	}
	return withAccounts(ctx, env, stderr, "token", accountNeeds, func(s *accountStores) error {
		users, err := s.users.List(ctx)
		if err != nil {
			return err
		}
		byID := map[string]accounts.User{}
		var userID string
		for _, u := range users {
			byID[u.ID] = u
		}
		if *email != "" {
			u, err := s.users.Get(ctx, *email)
			if err != nil {
				return err
			}
			userID = u.ID
		}
		tokens, err := s.tokens.List(ctx, userID)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tUSER\tNAME\tSCOPES\tSTATUS\tCREATED\tLAST USED\tEXPIRES")
		now := time.Now()
		for _, t := range tokens {
			u := byID[t.UserID]
			status := "active"
			switch {
			case t.RevokedAt != nil:
				status = "revoked " + stamp(t.RevokedAt)
			case t.ExpiresAt != nil && !t.ExpiresAt.After(now):
				status = "expired"
			case u.Disabled():
				status = "user disabled"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, u.Email, t.Name, joinScopes(t.Scopes), status,
				stamp(&t.CreatedAt), stamp(t.LastUsedAt), orNever(t.ExpiresAt))
		}
		return w.Flush()
	})
}

func tokenRevoke(ctx context.Context, args []string, env config.Getenv, stderr io.Writer) error {
	fs := newFlags("prism token revoke", stderr, tokenUsage)
	email := fs.String("user", "", "with --all: the user whose tokens to revoke")
	all := fs.Bool("all", false, "revoke every token of --user")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return quietHelp(err)
	}
	want := 1 // the token's ID
	if *all {
		want = 0
	}
	if err := wantArgs(fs, pos, want); err != nil {
		return err
	}
	if *all != (*email != "") {
		fs.Usage()
		return errors.New("prism token revoke: give a token ID, or --user EMAIL --all")
	}
	return withAccounts(ctx, env, stderr, "token", accountNeeds, func(s *accountStores) error {
		if !*all {
			if err := s.tokens.Revoke(ctx, pos[0]); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "revoked token %s\n", pos[0])
			return nil
		}
		u, err := s.users.Get(ctx, *email)
		if err != nil {
			return err
		}
		n, err := s.tokens.RevokeAll(ctx, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "revoked %d token(s) of %s\n", n, u.Email)
		return nil
	})
}

func joinScopes(scopes []accounts.Scope) string {
	s := make([]string, len(scopes))
	for i, sc := range scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, ",")
}

// stamp formats a time for a table, "-" for none.
func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orNever(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return stamp(t)
}

// adminBootstrap is the first admin named in the environment.
type adminBootstrap struct{ email, passwordFile string }

// adminFromEnv reads PRISM_ADMIN_EMAIL and PRISM_ADMIN_PASSWORD_FILE,
// which come together or not at all.
func adminFromEnv(env config.Getenv) (adminBootstrap, error) {
	l := config.New(env)
	a := adminBootstrap{email: l.String("PRISM_ADMIN_EMAIL", ""), passwordFile: l.String("PRISM_ADMIN_PASSWORD_FILE", "")}
	l.Check((a.email == "") == (a.passwordFile == ""), "PRISM_ADMIN_EMAIL",
		"PRISM_ADMIN_EMAIL and PRISM_ADMIN_PASSWORD_FILE set together (the file holds the first admin's password), or neither")
	if a.email != "" {
		_, err := accounts.NormalizeEmail(a.email)
		l.Check(err == nil, "PRISM_ADMIN_EMAIL", "an email address")
	}
	return a, l.Err()
}

// ensure creates the admin unless a user with that email exists; it never
// changes an existing user, so it runs at every start.
func (a adminBootstrap) ensure(ctx context.Context, pool *pgxpool.Pool, log zerolog.Logger) error {
	if a.email == "" {
		return nil
	}
	password, err := readPasswordFile(a.passwordFile)
	if err != nil {
		return fmt.Errorf("PRISM_ADMIN_PASSWORD_FILE: %w", err)
	}
	created, err := accounts.NewUsers(pool, accounts.DefaultParams()).EnsureAdmin(ctx, a.email, password)
	if err != nil {
		return fmt.Errorf("bootstrap admin %s: %w", a.email, err)
	}
	if created {
		log.Info().Str("email", a.email).Msg("created the first admin from PRISM_ADMIN_EMAIL")
	} else {
		log.Info().Str("email", a.email).Msg("PRISM_ADMIN_EMAIL exists already; left as it is")
	}
	return nil
}
