// Package detect decides what an upload is from its bytes alone.
//
// The file name and the client's content type are claims; a PNG named
// .pdf, a Word 97 file named .docx or a macro-enabled package named .docx
// are everyday uploads. Detection sniffs the content with
// gabriel-vasile/mimetype, then confirms ZIP-based Office documents by
// their parts and tells legacy OLE2 files from encrypted OOXML (which
// Office also wraps in OLE2) by their directory.
package detect

import (
	"bytes"
	"slices"
	"strings"

	"github.com/aiprism/prism/extractor/ooxml"
	"github.com/aiprism/prism/extractor/reason"
	"github.com/gabriel-vasile/mimetype"
)

// Formats the extractor reads.
const (
	PDF  = "pdf"
	DOCX = "docx"
	XLSX = "xlsx"
	HTML = "html"
	Text = "text" // plain text, CSV or Markdown: textfmt decides which
)

// Result is a detected document.
type Result struct {
	Format string
	MIME   string         // what the content sniffer said
	Pkg    *ooxml.Package // the opened package for DOCX and XLSX
	Main   string         // the main part of a DOCX or XLSX
}

// Detect classifies raw. Files the extractor does not read fail with a
// reason a user understands: empty, legacy-format, encrypted,
// macro-enabled, not-ooxml, zip-entries, zip-bomb or unsupported-type.
func Detect(raw []byte, zipLimits ooxml.Limits) (Result, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return Result{}, reason.New(reason.Empty, "the document is empty")
	}
	mt := mimetype.Detect(raw)
	res := Result{MIME: mt.String()}
	switch {
	case bytes.HasPrefix(raw, cfbMagic):
		return res, classifyCFB(raw)
	case strings.HasPrefix(mt.String(), "application/vnd.oasis.opendocument."):
		return res, reason.New(reason.UnsupportedType, "OpenDocument files (%s) are not supported; save it as .docx, .xlsx or PDF and upload it again", strings.ToUpper(strings.TrimPrefix(mt.Extension(), ".")))
	case ooxml.IsZip(raw):
		pkg, err := ooxml.Open(raw, zipLimits)
		if err != nil {
			return res, err
		}
		kind, main, err := pkg.Identify()
		if err != nil {
			return res, err
		}
		res.Pkg, res.Main = pkg, main
		switch kind {
		case ooxml.Word:
			res.Format = DOCX
		case ooxml.Excel:
			res.Format = XLSX
		default:
			return res, reason.New(reason.NotOOXML, "the ZIP archive is not a Word or Excel document")
		}
		return res, nil
	case mt.Is("application/pdf") || bytes.HasPrefix(raw, []byte("%PDF-")):
		res.Format = PDF
		return res, nil
	case mt.Is("text/html") || mt.Is("application/xhtml+xml"):
		res.Format = HTML
		return res, nil
	case isText(mt):
		res.Format = Text
		return res, nil
	}
	return res, reason.New(reason.UnsupportedType, "%s files are not supported (detected from the content as %s); upload a PDF, Word (.docx), Excel (.xlsx), text, CSV, Markdown or HTML document", describe(mt), mt.String())
}

// isText accepts anything mimetype places under text/plain (CSV, JSON,
// source code, text in UTF-16 with a byte-order mark, ...) except formats
// whose text is markup a reader would not want verbatim.
func isText(mt *mimetype.MIME) bool {
	for _, no := range []string{"text/rtf", "image/svg+xml"} {
		if mt.Is(no) {
			return false
		}
	}
	for m := mt; m != nil; m = m.Parent() {
		if m.Is("text/plain") {
			return true
		}
	}
	return false
}

func describe(mt *mimetype.MIME) string {
	s := mt.String()
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	switch {
	case strings.HasPrefix(s, "image/"):
		return "Image (" + strings.ToUpper(strings.TrimPrefix(s, "image/")) + ")"
	case slices.Contains([]string{"application/x-executable", "application/x-elf", "application/x-sharedlib", "application/vnd.microsoft.portable-executable", "application/x-mach-binary"}, s):
		return "Executable"
	case s == "application/octet-stream":
		return "Binary"
	}
	return strings.ToUpper(strings.TrimPrefix(mt.Extension(), "."))
}

// classifyCFB names an OLE2 compound file: encrypted OOXML carries
// EncryptionInfo and EncryptedPackage streams; everything else is a
// legacy binary Office format.
func classifyCFB(raw []byte) error {
	names, err := cfbNames(raw)
	if err != nil {
		return reason.New(reason.LegacyFormat, "the file is an OLE2 compound file (a legacy Office format) that cannot be read: %v", err)
	}
	has := func(n string) bool {
		return slices.ContainsFunc(names, func(s string) bool { return strings.EqualFold(s, n) })
	}
	switch {
	case has("EncryptionInfo") || has("EncryptedPackage"):
		return reason.New(reason.Encrypted, "the Office document is protected by a password; remove the password (File > Info > Protect) and upload it again")
	case has("WordDocument"):
		return reason.New(reason.LegacyFormat, "Word 97-2003 documents (.doc) are not supported; save it as .docx or PDF and upload it again")
	case has("Workbook") || has("Book"):
		return reason.New(reason.LegacyFormat, "Excel 97-2003 workbooks (.xls) are not supported; save it as .xlsx and upload it again")
	case has("PowerPoint Document"):
		return reason.New(reason.LegacyFormat, "PowerPoint 97-2003 presentations (.ppt) are not supported; upload a PDF export instead")
	}
	return reason.New(reason.LegacyFormat, "the file is a legacy OLE2 compound document, which is not supported; save it as .docx, .xlsx or PDF")
}
