package api

import (
	"context"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/platform/quota"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

// Accounts are what the API authenticates with in token mode: users and
// API tokens in PostgreSQL, sessions and the sign-in throttle in JetStream
// KV, all owned by the accounts module. Build them with OpenAccounts.
type Accounts struct {
	Users    *accounts.Users
	Tokens   *accounts.Tokens
	Sessions *accounts.Sessions // nil: no sign-in, API tokens only
	Throttle *accounts.Throttle // nil: no sign-in
	// Preferences are the users' settings of the web application.
	Preferences *accounts.Preferences
}

// AccountsOptions are what OpenAccounts takes besides the configuration.
type AccountsOptions struct {
	// Now is the clock of session lifetimes and sign-in delays; nil =
	// time.Now. Tests move it.
	Now func() time.Time
}

// BucketConfigs are the key-value buckets the API binds, sized by
// replicas: `prism setup` creates them.
func BucketConfigs(cfg Config, replicas int) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		accounts.SessionsBucketConfig(sessionConfig(cfg, replicas, nil)),
		accounts.ThrottleBucketConfig(accounts.ThrottleConfig{Replicas: replicas}),
		quota.BucketConfig("", replicas),
	}
}

func sessionConfig(cfg Config, replicas int, now func() time.Time) accounts.SessionConfig {
	return accounts.SessionConfig{Idle: cfg.SessionIdle, Max: cfg.SessionMax, Replicas: replicas, Now: now}
}

// OpenAccounts opens the accounts on the process's connections, binding
// the sessions and throttle buckets (BucketConfigs). Every API replica
// calls it at start.
func OpenAccounts(ctx context.Context, cfg Config, js jetstream.JetStream, pool *pgxpool.Pool, o AccountsOptions) (Accounts, error) {
	users := accounts.NewUsers(pool, accounts.DefaultParams())
	sessions, err := accounts.OpenSessions(ctx, js, users, sessionConfig(cfg, 0, o.Now))
	if err != nil {
		return Accounts{}, err
	}
	throttle, err := accounts.OpenThrottle(ctx, js, accounts.ThrottleConfig{Now: o.Now})
	if err != nil {
		return Accounts{}, err
	}
	return Accounts{Users: users, Tokens: accounts.NewTokens(pool), Sessions: sessions, Throttle: throttle,
		Preferences: accounts.NewPreferences(pool)}, nil
}

// withDefaults fills in users, tokens and preferences from pool when the caller gave
// none, so a server built with a database alone still takes API tokens.
func (a Accounts) withDefaults(pool *pgxpool.Pool) Accounts {
	if a.Users == nil && pool != nil {
		a.Users = accounts.NewUsers(pool, accounts.DefaultParams())
	}
	if a.Tokens == nil && pool != nil {
		a.Tokens = accounts.NewTokens(pool)
	}
	if a.Preferences == nil && pool != nil {
		a.Preferences = accounts.NewPreferences(pool)
	}
	return a
}
