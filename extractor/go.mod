module github.com/aiprism/prism/extractor

go 1.26.0

replace github.com/aiprism/prism/streams => ../streams

replace github.com/aiprism/prism/platform => ../platform
