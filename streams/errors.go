package streams

import (
	"errors"
	"fmt"
	"time"
)

// PermanentError marks a failure that no retry will fix: bad input, an
// unsupported format, a document too large for every model. The runner
// terminates the message and, for stages, publishes document.failed.
type PermanentError struct {
	Class string // stable slug, e.g. invalid-utf8
	Err   error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as permanent with a reason class.
func Permanent(class string, err error) error { return &PermanentError{Class: class, Err: err} }

// Permanentf is Permanent with a formatted error.
func Permanentf(class, format string, args ...any) error {
	return &PermanentError{Class: class, Err: fmt.Errorf(format, args...)}
}

// RetryError asks for redelivery after a specific delay, e.g. when every
// model is busy until its bucket refills. It is not a failure of the
// document: the status says it waits.
type RetryError struct {
	After time.Duration
	Err   error
}

func (e *RetryError) Error() string { return fmt.Sprintf("retry in %s: %v", e.After, e.Err) }
func (e *RetryError) Unwrap() error { return e.Err }

// RetryAfter asks for redelivery after d.
func RetryAfter(d time.Duration, err error) error { return &RetryError{After: d, Err: err} }

// classify splits an error into permanent (with class) or retryable (with
// the delay it asks for, zero = use backoff).
func classify(err error) (permanent bool, class string, after time.Duration) {
	var pe *PermanentError
	if errors.As(err, &pe) {
		return true, pe.Class, 0
	}
	var re *RetryError
	if errors.As(err, &re) {
		return false, "", re.After
	}
	return false, "", 0
}
