// Package config reads typed configuration from environment variables.
//
// Each role declares one struct and fills it with a Loader. The Loader never
// stops at the first problem: it records every bad or missing variable and
// Err reports them together, each on its own line naming the variable and
// what is expected, so an operator fixes a deployment in one pass. It
// never repeats a credential: see Redact and secretName.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Getenv looks a variable up; it is os.Getenv in main and a map in tests, so
// no code reads the process environment behind its caller's back.
type Getenv func(string) string

// MapEnv adapts a map to Getenv (tests, and `prism dev` overrides).
func MapEnv(m map[string]string) Getenv {
	return func(k string) string { return m[k] }
}

// Overlay returns a Getenv that prefers over and falls back to base.
func Overlay(base Getenv, over map[string]string) Getenv {
	return func(k string) string {
		if v, ok := over[k]; ok {
			return v
		}
		return base(k)
	}
}

// Loader collects values and problems.
type Loader struct {
	env  Getenv
	errs []error
}

// New returns a Loader over env.
func New(env Getenv) *Loader { return &Loader{env: env} }

// fail records a bad value. The value is repeated so that the operator
// sees the typo, unless the variable holds a credential (secretName), and
// never with the userinfo of a URL in it.
func (l *Loader) fail(name, expected, got string) {
	if secretName(name) {
		l.errs = append(l.errs, fmt.Errorf("%s: expected %s (the value is a secret and not repeated)", name, expected))
		return
	}
	l.errs = append(l.errs, fmt.Errorf("%s: expected %s, got %q", name, expected, Redact(got)))
}

func (l *Loader) lookup(name string) (string, bool) {
	v := strings.TrimSpace(l.env(name))
	return v, v != ""
}

// String returns the variable or def when unset.
func (l *Loader) String(name, def string) string {
	if v, ok := l.lookup(name); ok {
		return v
	}
	return def
}

// Required returns the variable and records a problem when it is unset.
func (l *Loader) Required(name, expected string) string {
	v, ok := l.lookup(name)
	if !ok {
		l.errs = append(l.errs, fmt.Errorf("%s: required, expected %s", name, expected))
	}
	return v
}

// Int returns an integer within [min, max].
func (l *Loader) Int(name string, def, min, max int) int {
	v, ok := l.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		l.fail(name, fmt.Sprintf("an integer from %d to %d", min, max), v)
		return def
	}
	return n
}

// Int64 returns a 64-bit integer within [min, max]; it accepts size suffixes
// KiB, MiB and GiB so limits read naturally ("25MiB").
func (l *Loader) Int64(name string, def, min, max int64) int64 {
	v, ok := l.lookup(name)
	if !ok {
		return def
	}
	n, err := parseSize(v)
	if err != nil || n < min || n > max {
		l.fail(name, fmt.Sprintf("a number from %d to %d (suffixes KiB, MiB, GiB allowed)", min, max), v)
		return def
	}
	return n
}

func parseSize(v string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(v, suffix) {
			mult, v = m, strings.TrimSpace(strings.TrimSuffix(v, suffix))
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n * mult, err
}

// Float returns a float within [min, max].
func (l *Loader) Float(name string, def, min, max float64) float64 {
	v, ok := l.lookup(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < min || f > max {
		l.fail(name, fmt.Sprintf("a number from %g to %g", min, max), v)
		return def
	}
	return f
}

// Bool accepts true/false, 1/0, yes/no, on/off.
func (l *Loader) Bool(name string, def bool) bool {
	v, ok := l.lookup(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	l.fail(name, "true or false", v)
	return def
}

// Duration parses a Go duration ("30s", "5m") within [min, max].
func (l *Loader) Duration(name string, def, min, max time.Duration) time.Duration {
	v, ok := l.lookup(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min || d > max {
		l.fail(name, fmt.Sprintf("a duration from %s to %s (e.g. 30s)", min, max), v)
		return def
	}
	return d
}

// OneOf returns the variable if it is one of allowed.
func (l *Loader) OneOf(name, def string, allowed ...string) string {
	v, ok := l.lookup(name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	l.fail(name, "one of "+strings.Join(allowed, ", "), v)
	return def
}

// URL returns an absolute URL with one of the given schemes.
func (l *Loader) URL(name, def string, schemes ...string) string {
	v, ok := l.lookup(name)
	if !ok {
		return def
	}
	u, err := url.Parse(v)
	if err == nil && u.Host != "" {
		for _, s := range schemes {
			if u.Scheme == s {
				return v
			}
		}
	}
	l.fail(name, "a URL with scheme "+strings.Join(schemes, " or "), v)
	return def
}

// Check records a problem found by cross-field validation.
func (l *Loader) Check(ok bool, name, expected string) {
	if !ok {
		l.errs = append(l.errs, fmt.Errorf("%s: expected %s", name, expected))
	}
}

// Err returns every recorded problem, joined, or nil.
func (l *Loader) Err() error { return errors.Join(l.errs...) }
