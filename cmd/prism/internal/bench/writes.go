package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

// writeCounts are the durable writes the servers report, read before and
// after a round: their difference is what the round wrote.
type writeCounts struct {
	// stored is the last sequence of each stream (a KV bucket is the
	// stream KV_<bucket>): every message stored, deletes and purge markers
	// included, each one fsynced with SyncAlways.
	stored map[string]uint64
	// acks is each acknowledging consumer's deliveries minus those still
	// pending, as "<stream>/<consumer>". The server writes a consumer's
	// state file (with O_SYNC) at most about ten times a second, whatever
	// the number of acks.
	acks map[string]uint64
	// memory are the streams in memory storage: their messages are never
	// fsynced.
	memory map[string]bool
	pg     pgCounts
}

// pgCounts are PostgreSQL's cumulative statistics of WAL and commits.
type pgCounts struct {
	commits, walSyncs, walWrites, walRecords int64
}

// countWrites reads the streams' and consumers' state and PostgreSQL's
// statistics (pool nil: none).
func countWrites(ctx context.Context, js jetstream.JetStream, pool *pgxpool.Pool) (writeCounts, error) {
	w := writeCounts{stored: map[string]uint64{}, acks: map[string]uint64{}, memory: map[string]bool{}}
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return w, fmt.Errorf("stream %s: %w", name, err)
		}
		info := s.CachedInfo()
		w.stored[name] = info.State.LastSeq
		w.memory[name] = info.Config.Storage == jetstream.MemoryStorage
		cons := s.ListConsumers(ctx)
		for ci := range cons.Info() {
			if ci.Config.AckPolicy == jetstream.AckNonePolicy {
				continue // ordered consumers (SSE, watchers): nothing stored
			}
			w.acks[name+"/"+ci.Name] = ci.Delivered.Consumer - uint64(ci.NumAckPending)
		}
		if err := cons.Err(); err != nil {
			return w, fmt.Errorf("consumers of %s: %w", name, err)
		}
	}
	if err := names.Err(); err != nil {
		return w, fmt.Errorf("streams: %w", err)
	}
	if pool == nil {
		return w, nil
	}
	// A new transaction's snapshot of the statistics, not a cached one.
	err := pool.QueryRow(ctx, `SELECT
		(SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
		wal_sync, wal_write, wal_records FROM pg_stat_wal`).Scan(&w.pg.commits, &w.pg.walSyncs, &w.pg.walWrites, &w.pg.walRecords)
	if err != nil {
		return w, fmt.Errorf("postgres statistics: %w", err)
	}
	return w, nil
}

// WritesPerDoc are the durable writes of a round per document completed.
type WritesPerDoc struct {
	// Stored is messages stored per file-backed stream or KV bucket;
	// StoredTotal their sum: each is an fsync of a message block with
	// SyncAlways. InMemory is the same for streams in memory storage.
	Stored      map[string]float64 `json:"stored"`
	StoredTotal float64            `json:"stored_total"`
	InMemory    map[string]float64 `json:"stored_in_memory,omitempty"`
	// Acks is acknowledgements per durable consumer; AckTotal their sum.
	// Not each an fsync: see writeCounts.acks.
	Acks     map[string]float64 `json:"acks"`
	AckTotal float64            `json:"ack_total"`
	// JetStream is StoredTotal plus AckTotal: the writes the issue counts.
	JetStream float64 `json:"jetstream"`
	// PostgreSQL: commits, WAL syncs (fsyncs of the WAL, by the backends
	// and the WAL writer), WAL writes and records. The server's statistics
	// cover every database on it: other users of a shared server count too.
	PGCommits    float64 `json:"pg_commits"`
	PGWALSyncs   float64 `json:"pg_wal_syncs"`
	PGWALWrites  float64 `json:"pg_wal_writes"`
	PGWALRecords float64 `json:"pg_wal_records"`
}

// perDoc is what was written between before and after for docs documents.
func perDoc(before, after writeCounts, docs int) WritesPerDoc {
	n := float64(max(docs, 1))
	w := WritesPerDoc{Stored: deltas(before.stored, after.stored, n), Acks: deltas(before.acks, after.acks, n), InMemory: map[string]float64{}}
	for k, v := range w.Stored {
		if after.memory[k] {
			w.InMemory[k] = v
			delete(w.Stored, k)
		}
	}
	w.StoredTotal, w.AckTotal = sum(w.Stored), sum(w.Acks)
	w.JetStream = w.StoredTotal + w.AckTotal
	w.PGCommits = float64(after.pg.commits-before.pg.commits) / n
	w.PGWALSyncs = float64(after.pg.walSyncs-before.pg.walSyncs) / n
	w.PGWALWrites = float64(after.pg.walWrites-before.pg.walWrites) / n
	w.PGWALRecords = float64(after.pg.walRecords-before.pg.walRecords) / n
	return w
}

// deltas is after minus before per key, divided by n, leaving out keys
// that did not move.
func deltas(before, after map[string]uint64, n float64) map[string]float64 {
	out := map[string]float64{}
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if d := after[k] - min(before[k], after[k]); d > 0 {
			out[k] = float64(d) / n
		}
	}
	return out
}
