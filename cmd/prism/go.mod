module github.com/aiprism/prism/cmd/prism

go 1.26.0

replace github.com/aiprism/prism/streams => ../../streams

replace github.com/aiprism/prism/platform => ../../platform

replace github.com/aiprism/prism/ingest => ../../ingest

replace github.com/aiprism/prism/extractor => ../../extractor

replace github.com/aiprism/prism/analyzer => ../../analyzer

replace github.com/aiprism/prism/persist => ../../persist

replace github.com/aiprism/prism/notifier => ../../notifier

replace github.com/aiprism/prism/api => ../../api

require (
	github.com/jackc/pgx/v5 v5.12.0
	github.com/rs/zerolog v1.35.1
	golang.org/x/sync v0.25.0 // indirect
)
