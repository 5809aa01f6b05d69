package streams

import (
	"errors"
	"fmt"
	"time"
)

// PermanentError marks a failure that no retry will fix: bad input, an
// unsupported format, a document too large for every model. The runner
// terminates the message and, for stages, publishes document.failed.
//
// Users are told Reason, never Err: an error's text may carry S3,
// PostgreSQL or Bedrock internals, so it goes to the logs only.
type PermanentError struct {
	Class string // stable slug, e.g. invalid-utf8
	// Reason is the sentence users are told, one of ours; "" means the
	// class's own (ClassReason).
	Reason string
	Err    error // the cause, for logs
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// UserReason is what users are told about e.
func (e *PermanentError) UserReason() string {
	if e.Reason != "" {
		return e.Reason
	}
	return ClassReason(e.Class)
}

// Permanent wraps err as permanent with a reason class. Users are told the
// class's sentence; err is logged.
func Permanent(class string, err error) error { return &PermanentError{Class: class, Err: err} }

// Permanentf is a permanent failure whose message is a sentence of ours,
// told to users as it is (e.g. "document is 12 bytes; the limit is 10").
// A message formatted from an error may carry another system's internals:
// when any argument is an error, users are told the class's sentence
// instead, and the message goes to the logs only.
func Permanentf(class, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	for _, a := range args {
		if _, ok := a.(error); ok {
			return &PermanentError{Class: class, Err: err}
		}
	}
	return &PermanentError{Class: class, Reason: err.Error(), Err: err}
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

// classify splits an error into permanent (with its class and what users
// are told) or retryable (with the delay it asks for, zero = use backoff).
func classify(err error) (permanent bool, class, reason string, after time.Duration) {
	var pe *PermanentError
	if errors.As(err, &pe) {
		return true, pe.Class, pe.UserReason(), 0
	}
	var re *RetryError
	if errors.As(err, &re) {
		return false, "", "", re.After
	}
	return false, "", "", 0
}
