// Package xlsx extracts the cell values of Excel workbooks (.xlsx).
//
// Cells are read with excelize/v2's streaming Rows iterator, which
// decodes one row at a time and spills worksheets larger than
// UnzipXMLSizeLimit to a temporary file instead of memory. excelize
// trusts ZIP headers, so the package is first verified by extractor/ooxml
// (real inflated sizes, ratio, DOCTYPE and depth) and excelize's own
// limits are lowered to the same budget.
//
// Each sheet becomes "## Sheet: Name (A1:F20)" followed by one line per
// non-empty row, cells separated by " | " from column A, so the cell
// range of every value can be recovered.
package xlsx

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/aiprism/prism/extractor/ooxml"
	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/extractor/textbuf"
	"github.com/xuri/excelize/v2"
)

// Limits bound one workbook beyond the package limits.
type Limits struct {
	// XMLMemoryBytes is excelize's UnzipXMLSizeLimit: worksheets and
	// shared strings larger than this are streamed from a temporary file.
	XMLMemoryBytes int64
	// TmpDir is where those files go; empty means os.TempDir.
	TmpDir string
	// MaxSheets caps the sheets read.
	MaxSheets int
}

// Doc describes an extracted workbook.
type Doc struct {
	Title  string
	Author string
	Sheets []string
	Rows   int
}

// Extract verifies the package and writes the workbook's cells to out.
func Extract(raw []byte, pkg *ooxml.Package, out *textbuf.Builder, lim Limits) (Doc, error) {
	var doc Doc
	if err := pkg.Verify(); err != nil {
		return doc, reason.Wrap(reason.CorruptXLSX, err)
	}
	if lim.XMLMemoryBytes <= 0 {
		lim.XMLMemoryBytes = 8 << 20
	}
	total := pkg.Limits().MaxTotalBytes
	f, err := excelize.OpenReader(bytes.NewReader(raw), excelize.Options{
		UnzipSizeLimit:    total,
		UnzipXMLSizeLimit: min(lim.XMLMemoryBytes, total),
		TmpDir:            lim.TmpDir,
	})
	if err != nil {
		return doc, reason.New(reason.CorruptXLSX, "the workbook cannot be read: %v", err)
	}
	defer f.Close()
	if props, err := f.GetDocProps(); err == nil {
		doc.Title, doc.Author = strings.TrimSpace(props.Title), strings.TrimSpace(props.Creator)
	}
	sheets := f.GetSheetList()
	if lim.MaxSheets > 0 && len(sheets) > lim.MaxSheets {
		return doc, reason.New(reason.CorruptXLSX, "the workbook has %d sheets; the limit is %d", len(sheets), lim.MaxSheets)
	}
	for _, name := range sheets {
		if out.Full() {
			out.MarkTruncated()
			break
		}
		n, err := sheet(f, name, out)
		if err != nil {
			return doc, err
		}
		doc.Sheets = append(doc.Sheets, name)
		doc.Rows += n
	}
	return doc, nil
}

// sheet streams one sheet into a buffer bounded by what is left of out,
// then writes its header (which needs the range) and the rows.
func sheet(f *excelize.File, name string, out *textbuf.Builder) (int, error) {
	rows, err := f.Rows(name)
	if err != nil {
		// Chart sheets and dialog sheets have no cells.
		return 0, nil
	}
	defer rows.Close()
	body := textbuf.New(max(out.Remaining()-len(name)-64, 1))
	var (
		rowNum, count          int
		minRow, maxRow, maxCol int
		minCol                 = 1 << 30
		line                   strings.Builder
	)
	for rows.Next() {
		rowNum++
		cells, err := rows.Columns()
		if err != nil {
			return count, reason.New(reason.CorruptXLSX, "sheet %q row %d cannot be read: %v", name, rowNum, err)
		}
		last := len(cells) - 1
		for last >= 0 && strings.TrimSpace(cells[last]) == "" {
			last--
		}
		if last < 0 {
			continue
		}
		first := 0
		for strings.TrimSpace(cells[first]) == "" {
			first++
		}
		if minRow == 0 {
			minRow = rowNum
		}
		maxRow = rowNum
		minCol, maxCol = min(minCol, first+1), max(maxCol, last+1)
		count++
		line.Reset()
		for i, c := range cells[:last+1] {
			if i > 0 {
				line.WriteString(" | ")
			}
			line.WriteString(cellText(c))
		}
		body.Line(line.String())
		if body.Full() {
			break
		}
	}
	if err := rows.Error(); err != nil {
		return count, reason.New(reason.CorruptXLSX, "sheet %q cannot be read: %v", name, err)
	}
	hidden := ""
	if visible, err := f.GetSheetVisible(name); err == nil && !visible {
		hidden = ", hidden"
	}
	if count == 0 {
		out.Line(fmt.Sprintf("## Sheet: %s (empty%s)", name, hidden))
		return 0, nil
	}
	out.Line(fmt.Sprintf("## Sheet: %s (%s%d:%s%d%s)", name, column(minCol), minRow, column(maxCol), maxRow, hidden))
	out.WriteString(body.String())
	if body.Truncated() {
		out.MarkTruncated()
	}
	return count, nil
}

// cellText keeps a cell on its line.
func cellText(s string) string {
	if strings.ContainsAny(s, "\r\n\t") {
		return strings.Join(strings.Fields(s), " ")
	}
	return strings.TrimSpace(s)
}

// column names a 1-based column number: 1 A, 27 AA.
func column(n int) string {
	s := ""
	for n > 0 {
		n--
		s = string(rune('A'+n%26)) + s
		n /= 26
	}
	return s
}
