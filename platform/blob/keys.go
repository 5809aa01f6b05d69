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
// together. The owner segment is the owner id itself (see ownerSegment);
// documentID follows the character rules of SafeFilename ("/" becomes
// "_", empty becomes "unknown"), so a hostile value cannot add path levels
// or escape the prefix. The filename is kept, sanitized, because downloads
// present it to users.
func Key(owner, documentID, filename string, t time.Time) string {
	return "uploads/" + t.UTC().Format("2006/01/02") + "/" +
		ownerSegment(owner) + "/" +
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
		ownerSegment(owner) + "/" +
		safeSegment(documentID, "unknown", maxSegmentBytes) + "/" +
		safeSegment(version, "unknown", maxSegmentBytes) + ".txt"
}

// ExportKey returns the object key of an export written on request:
//
//	exports/<owner>/<YYYYMMDDTHHMMSSZ>-<export-id>.<ext>
//
// sanitized as in Key.
func ExportKey(owner, exportID, ext string, t time.Time) string {
	return "exports/" + ownerSegment(owner) + "/" +
		t.UTC().Format("20060102T150405Z") + "-" + safeSegment(exportID, "unknown", maxSegmentBytes) + "." + ext
}

// OwnedBy reports whether key is an object of owner: a key Key, TextKey
// or ExportKey built for that owner. It is the one rule every consumer of
// a key that arrived in an event or a row applies before reading or
// deleting the object, so a forged event cannot point a stage or a
// download at another owner's bytes. An owner that is not a valid id owns
// nothing.
func OwnedBy(key, owner string) bool {
	seg, ok := keyOwner(key)
	return ok && validOwner(owner) && seg == owner
}

// keyOwner returns the owner segment of a key of one of the shapes above.
// Keys with empty, "." or ".." segments have no owner: some S3-compatible
// stores and proxies normalise such paths.
func keyOwner(key string) (string, bool) {
	parts := strings.Split(key, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return "", false
		}
	}
	switch {
	case len(parts) == 7 && parts[0] == "uploads": // uploads/YYYY/MM/DD/<owner>/<document>/<file>
		return parts[4], true
	case len(parts) == 4 && parts[0] == "text": // text/<owner>/<document>/<version>.txt
		return parts[1], true
	case len(parts) == 3 && parts[0] == "exports": // exports/<owner>/<stamp>-<id>.<ext>
		return parts[1], true
	}
	return "", false
}

// ownerSegment is the owner's segment of its keys: the owner id itself,
// so two owners never share one (sanitizing would map "a__b" and "a_b",
// or "_x" and "x", to the same segment). Owner ids are checked everywhere
// they enter (streams.ValidToken); a value that is not one gets a
// sanitized segment with a leading "~", which no valid id has, so no
// owner holds its objects.
func ownerSegment(owner string) string {
	if validOwner(owner) {
		return owner
	}
	return "~" + safeSegment(owner, "unknown", maxSegmentBytes)
}

// validOwner is streams.ValidToken's rule (1 to 64 of [A-Za-z0-9_-]),
// restated because streams builds on this module, not the reverse; a
// streams test holds the two to the same answers.
func validOwner(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
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
