package blob

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits for key segments. S3 allows 1024-byte keys; these keep a full key
// far below that and readable in consoles and logs.
const (
	maxFilenameBytes = 120
	maxSegmentBytes  = 100
	maxExtBytes      = 16
)

// Key returns the object key for an uploaded original:
//
//	uploads/YYYY/MM/DD/<owner>/<document-id>/<safe-filename>
//
// The date (UTC of t) comes first so lifecycle rules and audits can select
// by upload day; owner and document id keep one document's objects
// together. owner and documentID follow the character rules of
// SafeFilename ("/" becomes "_", empty becomes "unknown"), so a hostile
// value cannot add path levels or escape the prefix. The filename is kept,
// sanitized, because downloads present it to users.
func Key(owner, documentID, filename string, t time.Time) string {
	return "uploads/" + t.UTC().Format("2006/01/02") + "/" +
		safeSegment(owner, "unknown", maxSegmentBytes) + "/" +
		safeSegment(documentID, "unknown", maxSegmentBytes) + "/" +
		SafeFilename(filename)
}

// TextKey returns the object key for text extracted from a document:
//
//	text/<owner>/<document-id>/<version>.txt
//
// version is the SHA-256 of the extracted text or the extraction run id, so
// re-running extraction writes a new object instead of overwriting one a
// reader may be using, and identical output maps to the same key. All parts
// are sanitized as in Key.
func TextKey(owner, documentID, version string) string {
	return "text/" +
		safeSegment(owner, "unknown", maxSegmentBytes) + "/" +
		safeSegment(documentID, "unknown", maxSegmentBytes) + "/" +
		safeSegment(version, "unknown", maxSegmentBytes) + ".txt"
}

// ExportKey returns the object key of an export written on request:
//
//	exports/<owner>/<YYYYMMDDTHHMMSSZ>-<export-id>.<ext>
//
// sanitized as in Key.
func ExportKey(owner, exportID, ext string, t time.Time) string {
	return "exports/" + safeSegment(owner, "unknown", maxSegmentBytes) + "/" +
		t.UTC().Format("20060102T150405Z") + "-" + safeSegment(exportID, "unknown", maxSegmentBytes) + "." + ext
}

// SafeFilename reduces a client-supplied filename to one safe key segment:
//   - only the last element of a / or \ separated path is kept;
//   - control and invisible formatting characters (e.g. right-to-left
//     overrides used to disguise extensions) are dropped;
//   - anything but letters, digits and . _ - ( ) (the characters S3
//     documents as safe in keys) becomes "_" and runs of "_" collapse, so
//     spaces and shell or URL metacharacters vanish;
//   - leading and trailing dots, underscores and hyphens are trimmed, so
//     "." and ".." (and hidden files) cannot occur;
//   - the result is capped at 120 bytes on a rune boundary, keeping a short
//     extension;
//   - an empty result becomes "file".
func SafeFilename(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return safeSegment(name, "file", maxFilenameBytes)
}

func safeSegment(s, fallback string, limit int) string {
	var b strings.Builder
	lastUnderscore := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			// Tabs and newlines separate words like spaces: fall to "_".
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			continue // invalid UTF-8, control and formatting characters
		case unicode.IsLetter(r), unicode.IsDigit(r), strings.ContainsRune(".-()", r):
			b.WriteRune(r)
			lastUnderscore = false
			continue
		}
		// "_", whitespace, separators, punctuation and symbols.
		if !lastUnderscore {
			b.WriteByte('_')
			lastUnderscore = true
		}
	}
	out := strings.Trim(b.String(), "._-")
	out = capBytes(out, limit)
	if out == "" {
		return fallback
	}
	return out
}

// capBytes shortens s to at most limit bytes without splitting a rune,
// keeping a short extension so the content type stays recognizable.
func capBytes(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	ext := ""
	if i := strings.LastIndexByte(s, '.'); i > 0 && len(s)-i <= maxExtBytes {
		ext = s[i:]
		s = s[:i]
	}
	keep := limit - len(ext)
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return strings.TrimRight(s[:keep], "._-") + ext
}
