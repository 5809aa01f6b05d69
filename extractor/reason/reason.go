// Package reason names why a document could not be extracted.
//
// Parsers run in a worker process and their failures cross a process
// boundary as a stable class slug plus a message a user understands. The
// classes are the ones the corpus manifest expects (expect.reason_class), so
// a document.failed event means the same thing whichever parser failed.
package reason

import (
	"errors"
	"fmt"
)

// Stable reason classes. They end up in document.failed events: never
// rename one, only add.
const (
	Empty           = "empty"            // zero bytes or only whitespace
	TooLarge        = "too-large"        // input over the configured size
	UnsupportedType = "unsupported-type" // not a format we read (decided by content)
	NotOOXML        = "not-ooxml"        // a ZIP that is not a Word or Excel document
	LegacyFormat    = "legacy-format"    // Word/Excel 97-2003 binary (OLE2)
	MacroEnabled    = "macro-enabled"    // .docm/.xlsm content or a vbaProject part
	Encrypted       = "encrypted"        // needs a password to open
	ZipBomb         = "zip-bomb"         // inflates beyond the size or ratio caps
	ZipEntries      = "zip-entries"      // too many entries in the archive
	XMLDoctype      = "xml-doctype"      // a DOCTYPE in OOXML (entity expansion, XXE)
	XMLDepth        = "xml-depth"        // element nesting beyond the cap
	CorruptPDF      = "corrupt-pdf"      // PDF that cannot be parsed
	CorruptDOCX     = "corrupt-docx"     // Word document that cannot be parsed
	CorruptXLSX     = "corrupt-xlsx"     // Excel workbook that cannot be parsed
	CorruptZip      = "corrupt-zip"      // damaged ZIP container
	PDFLimits       = "pdf-limits"       // too many pages or objects
	NeedsOCR        = "needs-ocr"        // PDF without a text layer
	Timeout         = "timeout"          // the worker ran out of wall-clock time (before cpu-limit was added, CPU time too)
	OutOfMemory     = "out-of-memory"    // the worker hit its memory limit
	WorkerCrashed   = "worker-crashed"   // the worker died (panic, stack overflow, signal)
	OutputTooLarge  = "output-too-large" // the worker wrote more than its output cap
	Internal        = "internal"         // a bug or environment problem, not the document
	CPULimit        = "cpu-limit"        // the worker used up its CPU time (RLIMIT_CPU)
)

// Error is a failure with a class. The message is meant for the user.
type Error struct {
	Class string
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New returns an error of class with a formatted message.
func New(class, format string, args ...any) error {
	return &Error{Class: class, Err: fmt.Errorf(format, args...)}
}

// Wrap classifies err. A nil err stays nil; an err that already carries a
// class keeps it, since the innermost parser knows best what went wrong.
func Wrap(class string, err error) error {
	if err == nil {
		return nil
	}
	var re *Error
	if errors.As(err, &re) {
		return err
	}
	return &Error{Class: class, Err: err}
}

// ClassOf returns the class of err, or def when it has none.
func ClassOf(err error, def string) string {
	var re *Error
	if errors.As(err, &re) {
		return re.Class
	}
	return def
}
