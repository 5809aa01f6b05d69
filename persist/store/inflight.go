package store

import (
	"context"
	"fmt"

	"github.com/aiprism/prism/streams"
)

// unfinished are the statuses of a document whose latest run is not over.
var unfinished = func() []string {
	var out []string
	for _, s := range streams.Statuses() {
		if streams.StatusRank(s) < streams.StatusRank(streams.StatusAnalyzed) {
			out = append(out, s)
		}
	}
	return out
}()

// InFlight counts owner's documents in flight: live ones whose latest run
// is not yet analyzed or failed, plus the runs of recent (documents just
// submitted: ids[i] at runs[i]) that the read model has not seen yet (no
// row, or a row of an earlier run). It returns the indexes in recent of
// those not seen. One statement, on the owner's live-status index.
//
// The read model is what the pipeline's events made it, and applying an
// event twice changes nothing, so this count stays exact under
// redeliveries and crashes where a counter bumped at upload and lowered
// at the outcome would drift with every lost or repeated bump.
func (s *Store) InFlight(ctx context.Context, owner string, ids []string, runs []int) (int, []int, error) {
	var n int
	var unseen []int
	err := s.db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM documents WHERE owner = $1 AND deleted_at IS NULL AND status = ANY($2::text[])),
		ARRAY(SELECT (p.i - 1)::int FROM unnest($3::text[], $4::int[]) WITH ORDINALITY AS p(id, run, i)
			WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = p.id AND d.owner = $1 AND d.run >= p.run))`,
		owner, unfinished, ids, runs).Scan(&n, &unseen)
	if err != nil {
		return 0, nil, fmt.Errorf("documents in flight of %s: %w", owner, err)
	}
	return n + len(unseen), unseen, nil
}
