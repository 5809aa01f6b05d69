// Package textfmt extracts plain text documents: it checks the encoding and
// normalizes line endings. Richer formats live in their own packages.
package textfmt

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrInvalidUTF8 is returned for bytes that are not valid UTF-8.
var ErrInvalidUTF8 = errors.New("text is not valid UTF-8")

// ErrBinary is returned for data with NUL bytes, which no text document has.
var ErrBinary = errors.New("data is binary, not text")

// Looks reports whether head (the first bytes of a file) looks like text:
// no NUL bytes and valid UTF-8 apart from a rune cut at the end.
func Looks(head []byte) bool {
	if bytes.IndexByte(head, 0) >= 0 {
		return false
	}
	for i := 0; i < len(head); {
		r, n := utf8.DecodeRune(head[i:])
		if r == utf8.RuneError && n == 1 {
			return len(head)-i < utf8.UTFMax && !utf8.FullRune(head[i:])
		}
		i += n
	}
	return true
}

// Decode returns the text of a UTF-8 document: the byte-order mark dropped,
// CRLF and CR turned into LF. It reports the offset of the first invalid
// byte so the user learns where the file is broken.
func Decode(b []byte) (string, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if bytes.IndexByte(b, 0) >= 0 {
		return "", ErrBinary
	}
	if !utf8.Valid(b) {
		return "", &InvalidError{Offset: firstInvalid(b)}
	}
	s := string(b)
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	return s, nil
}

// InvalidError locates invalid UTF-8.
type InvalidError struct{ Offset int }

func (e *InvalidError) Error() string {
	return "text is not valid UTF-8 (first bad byte at offset " + strconv.Itoa(e.Offset) + ")"
}

// Unwrap lets errors.Is(err, ErrInvalidUTF8) match.
func (e *InvalidError) Unwrap() error { return ErrInvalidUTF8 }

func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}
