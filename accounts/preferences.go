package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MaxPreferencesBytes bounds one user's stored preferences (the table's
// CHECK says the same).
const MaxPreferencesBytes = 4 << 10

// ErrInvalidPreferences is a preferences document that is not a JSON
// object of at most MaxPreferencesBytes, or of an owner that is not an id.
var ErrInvalidPreferences = errors.New("preferences must be a JSON object of at most 4 KiB")

// Preferences keeps each user's preferences of the web application in
// PostgreSQL (table user_preferences), one JSON object per owner. Their
// shape is the API's, which validates them; this store only keeps them,
// bounded, and never lets one owner reach another's: every method is keyed
// by the owner.
type Preferences struct{ pool *pgxpool.Pool }

// NewPreferences returns the preferences stored in pool.
func NewPreferences(pool *pgxpool.Pool) *Preferences { return &Preferences{pool: pool} }

// Get returns the owner's preferences, nil when they never saved any.
func (p *Preferences) Get(ctx context.Context, owner string) (json.RawMessage, error) {
	var doc []byte
	err := p.pool.QueryRow(ctx, `SELECT preferences FROM user_preferences WHERE owner = $1`, owner).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("preferences of %s: %w", owner, err)
	}
	return doc, nil
}

// Put replaces the owner's preferences with doc.
func (p *Preferences) Put(ctx context.Context, owner string, doc json.RawMessage) error {
	var obj map[string]json.RawMessage
	if streams.ValidToken(owner) != nil || len(doc) > MaxPreferencesBytes || json.Unmarshal(doc, &obj) != nil || obj == nil {
		return fmt.Errorf("%w (owner %q, %d bytes)", ErrInvalidPreferences, owner, len(doc))
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO user_preferences (owner, preferences) VALUES ($1, $2)
		ON CONFLICT (owner) DO UPDATE SET preferences = EXCLUDED.preferences, updated_at = now()`, owner, doc)
	if err != nil {
		return fmt.Errorf("save the preferences of %s: %w", owner, err)
	}
	return nil
}
