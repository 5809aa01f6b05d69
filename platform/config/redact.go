package config

import (
	"regexp"
	"strings"
)

// Hidden replaces a credential in anything Redact returns.
const Hidden = "xxxxx"

var (
	// The start of a URL, up to its authority.
	urlScheme = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.\-]*://`)
	// key=value pairs whose key names a credential, as in libpq
	// connection strings (password='a b'), URL queries (?token=...) and
	// console log lines.
	secretPair = regexp.MustCompile(`(?i)\b([a-z0-9_.\-]*(?:password|passwd|secret|token)[a-z0-9_.\-]*)=('(?:[^'\\]|\\.)*'|[^\s&;,"']+)`)
)

// Redact returns s with every credential it recognises hidden: the
// userinfo of URLs (the password of user:password@, or the whole of a
// lone user part, which NATS reads as a token) and the values of
// password=, secret= and token= pairs. Connection strings (NATS_URL,
// DATABASE_URL, S3_ENDPOINT) and errors that may quote them pass through
// it before they reach a log line, an error or a banner.
func Redact(s string) string {
	if !strings.Contains(s, "@") && !strings.Contains(s, "=") {
		return s // nothing to hide: the common case, and cheap
	}
	return secretPair.ReplaceAllString(redactUserinfo(s), "${1}="+Hidden)
}

// redactUserinfo hides the userinfo of every URL in s. A URL's authority
// ends where Go's url package ends it, at characters no valid userinfo
// holds (so a URL quoted in JSON stops at its quote), or where the next
// URL of a list such as NATS_URL's begins; its userinfo runs to its last
// '@', as a password may hold one.
func redactUserinfo(s string) string {
	starts := urlScheme.FindAllStringIndex(s, -1)
	if len(starts) == 0 {
		return s
	}
	var b strings.Builder
	done := 0
	for i, m := range starts {
		end := len(s)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		if stop := strings.IndexAny(s[m[1]:end], " \t\r\n/?#\"\\<>"); stop >= 0 {
			end = m[1] + stop
		}
		at := strings.LastIndexByte(s[m[1]:end], '@')
		if at < 0 {
			continue
		}
		b.WriteString(s[done:m[1]])
		if user, _, hasPassword := strings.Cut(s[m[1]:m[1]+at], ":"); hasPassword {
			b.WriteString(user + ":" + Hidden)
		} else {
			b.WriteString(Hidden)
		}
		done = m[1] + at
	}
	b.WriteString(s[done:])
	return b.String()
}

// secretName reports whether a variable holds a credential by its name,
// so that the Loader never repeats its value: *SECRET*, *PASSWORD*,
// *TOKEN*, *KEY* (a key id too: better hidden than guessed), DATABASE_URL
// and *_DSN. Other values are shown through Redact, which hides the
// userinfo of a URL such as NATS_URL.
func secretName(name string) bool {
	n := strings.ToUpper(name)
	for _, word := range []string{"SECRET", "PASSWORD", "PASSWD", "TOKEN", "KEY"} {
		if strings.Contains(n, word) {
			return true
		}
	}
	return n == "DATABASE_URL" || strings.HasSuffix(n, "_DSN")
}
