package bench

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// markPDF appends an incremental update (ISO 32000-1, 7.5.6) to a PDF that
// adds a last page showing text in the standard Helvetica font. The
// original bytes stay as they are. A new page, rather than more content
// on an existing one, needs no change to resources that pages inherit or
// share: only the root of the page tree is rewritten. Only classic
// cross-reference tables are read (every PDF of the corpus has them); a
// PDF with cross-reference streams is refused, and LoadCorpus skips it.
func markPDF(raw []byte, text string) ([]byte, error) {
	x, err := readXref(raw)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(x.trailer, []byte("/Encrypt")) {
		return nil, errors.New("the PDF is encrypted")
	}
	root, err := dictRef(x.trailer, rootKey)
	if err != nil {
		return nil, fmt.Errorf("trailer: %w", err)
	}
	size, err := dictInt(x.trailer, sizeKey)
	if err != nil {
		return nil, fmt.Errorf("trailer: %w", err)
	}
	catalog, err := x.object(raw, root)
	if err != nil {
		return nil, err
	}
	pagesRef, err := dictRef(catalog, pagesKey)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	pages, err := x.object(raw, pagesRef)
	if err != nil {
		return nil, err
	}
	page, content := pdfRef{num: size}, pdfRef{num: size + 1}
	if pages, err = addKid(pages, page); err != nil {
		return nil, fmt.Errorf("page tree %s: %w", pagesRef, err)
	}

	u := pdfUpdate{buf: bytes.NewBuffer(make([]byte, 0, len(raw)+1024))}
	u.buf.Write(raw)
	if !bytes.HasSuffix(raw, []byte("\n")) {
		u.buf.WriteByte('\n')
	}
	u.object(pagesRef, string(bytes.TrimSpace(pages)))
	u.object(page, fmt.Sprintf("<< /Type /Page /Parent %s /MediaBox [0 0 612 792] "+
		"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >> >> >> "+
		"/Contents %s >>", pagesRef, content))
	stream := fmt.Sprintf("BT /F1 12 Tf 72 720 Td (%s) Tj ET", pdfString.Replace(text))
	u.object(content, fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(stream), stream))
	// The trailer carries the document's /Info and /ID over, as an update must.
	carried := ""
	for _, re := range []*regexp.Regexp{infoEntry, idEntry} {
		if m := re.Find(x.trailer); m != nil {
			carried += " " + string(m)
		}
	}
	u.finish(fmt.Sprintf("/Size %d /Root %s /Prev %d%s", size+2, root, x.at, carried))
	return u.buf.Bytes(), nil
}

// pdfRef is an indirect reference.
type pdfRef struct{ num, gen int }

func (r pdfRef) String() string { return fmt.Sprintf("%d %d R", r.num, r.gen) }

// Patterns for the few dictionary entries an update needs. The
// dictionaries they are applied to (trailer, catalog, page tree root) hold
// no nested dictionary with these keys.
var (
	rootKey   = regexp.MustCompile(`/Root\s+(\d+)\s+(\d+)\s+R`)
	pagesKey  = regexp.MustCompile(`/Pages\s+(\d+)\s+(\d+)\s+R`)
	sizeKey   = regexp.MustCompile(`/Size\s+(\d+)`)
	prevKey   = regexp.MustCompile(`/Prev\s+(\d+)`)
	countKey  = regexp.MustCompile(`/Count\s+(\d+)`)
	kidsKey   = regexp.MustCompile(`/Kids\s*\[[^\]]*`)
	infoEntry = regexp.MustCompile(`/Info\s+\d+\s+\d+\s+R`)
	idEntry   = regexp.MustCompile(`/ID\s*\[[^\]]*\]`)
	objHead   = regexp.MustCompile(`^\s*(\d+)\s+(\d+)\s+obj\b`)
	startXref = regexp.MustCompile(`startxref\s+(\d+)\s+%%EOF\s*$`)
	pdfString = strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`)
)

func dictRef(dict []byte, key *regexp.Regexp) (pdfRef, error) {
	m := key.FindSubmatch(dict)
	if m == nil {
		return pdfRef{}, fmt.Errorf("no %s", key)
	}
	num, _ := strconv.Atoi(string(m[1]))
	gen, _ := strconv.Atoi(string(m[2]))
	return pdfRef{num: num, gen: gen}, nil
}

func dictInt(dict []byte, key *regexp.Regexp) (int, error) {
	m := key.FindSubmatch(dict)
	if m == nil {
		return 0, fmt.Errorf("no %s", key)
	}
	return strconv.Atoi(string(m[1]))
}

// addKid appends page to the /Kids of a page tree node and counts it.
func addKid(node []byte, page pdfRef) ([]byte, error) {
	k := kidsKey.FindIndex(node)
	if k == nil {
		return nil, errors.New("no /Kids array")
	}
	node = splice(node, k[1], []byte(" "+page.String()+" "))
	c := countKey.FindSubmatchIndex(node)
	if c == nil {
		return nil, errors.New("no /Count")
	}
	count, _ := strconv.Atoi(string(node[c[2]:c[3]]))
	out := append([]byte{}, node[:c[2]]...)
	out = strconv.AppendInt(out, int64(count+1), 10)
	return append(out, node[c[3]:]...), nil
}

// pdfXref is what an update needs from a PDF's cross-reference sections.
type pdfXref struct {
	at      int         // offset of the latest section
	offsets map[int]int // object number to offset, -1 for a free object
	trailer []byte      // the latest trailer dictionary
}

// readXref reads the latest cross-reference table and those it
// supersedes (/Prev), newest entries first.
func readXref(raw []byte) (pdfXref, error) {
	m := startXref.FindSubmatch(raw[max(0, len(raw)-1024):])
	if m == nil {
		return pdfXref{}, errors.New("no startxref at the end")
	}
	x := pdfXref{offsets: map[int]int{}}
	x.at, _ = strconv.Atoi(string(m[1]))
	seen := map[int]bool{}
	off := x.at
	for {
		if seen[off] {
			return pdfXref{}, fmt.Errorf("cross-reference sections loop at %d", off)
		}
		seen[off] = true
		trailer, err := readXrefSection(raw, off, x.offsets)
		if err != nil {
			return pdfXref{}, err
		}
		if x.trailer == nil {
			x.trailer = trailer
		}
		if off, err = dictInt(trailer, prevKey); err != nil {
			return x, nil
		}
	}
}

// readXrefSection adds the entries of the table at off that no newer
// section gave to offsets, and returns the table's trailer dictionary.
func readXrefSection(raw []byte, off int, offsets map[int]int) ([]byte, error) {
	if off < 0 || off >= len(raw) || !bytes.HasPrefix(raw[off:], []byte("xref")) {
		return nil, fmt.Errorf("no cross-reference table at %d (cross-reference streams are not supported)", off)
	}
	body := raw[off+len("xref"):]
	end := bytes.Index(body, []byte("trailer"))
	if end < 0 {
		return nil, fmt.Errorf("cross-reference table at %d has no trailer", off)
	}
	fields := strings.Fields(string(body[:end]))
	for len(fields) > 0 {
		if len(fields) < 2 {
			return nil, fmt.Errorf("malformed cross-reference table at %d", off)
		}
		first, err1 := strconv.Atoi(fields[0])
		count, err2 := strconv.Atoi(fields[1])
		if err1 != nil || err2 != nil || count < 0 || len(fields) < 2+3*count {
			return nil, fmt.Errorf("malformed cross-reference table at %d", off)
		}
		for i := range count {
			entry := fields[2+3*i:]
			if _, newer := offsets[first+i]; newer {
				continue
			}
			offsets[first+i] = -1
			if entry[2] == "n" {
				offsets[first+i], _ = strconv.Atoi(entry[0])
			}
		}
		fields = fields[2+3*count:]
	}
	trailer := body[end+len("trailer"):]
	if i := bytes.Index(trailer, []byte("startxref")); i >= 0 {
		trailer = trailer[:i]
	}
	return trailer, nil
}

// object returns the body of an object stored outside object streams.
func (x pdfXref) object(raw []byte, ref pdfRef) ([]byte, error) {
	off, ok := x.offsets[ref.num]
	if !ok || off < 0 || off >= len(raw) {
		return nil, fmt.Errorf("object %s is not in the cross-reference table", ref)
	}
	obj := raw[off:]
	head := objHead.FindSubmatchIndex(obj)
	if head == nil || string(obj[head[2]:head[3]]) != strconv.Itoa(ref.num) {
		return nil, fmt.Errorf("object %s is not at offset %d", ref, off)
	}
	obj = obj[head[1]:]
	end := bytes.Index(obj, []byte("endobj"))
	if end < 0 {
		return nil, fmt.Errorf("object %s has no endobj", ref)
	}
	return obj[:end], nil
}

// pdfUpdate writes the objects of an incremental update after the
// original bytes, then its cross-reference table and trailer.
type pdfUpdate struct {
	buf     *bytes.Buffer
	written []pdfRef
	offsets []int
}

func (u *pdfUpdate) object(ref pdfRef, body string) {
	u.written = append(u.written, ref)
	u.offsets = append(u.offsets, u.buf.Len())
	fmt.Fprintf(u.buf, "%d %d obj\n%s\nendobj\n", ref.num, ref.gen, body)
}

// finish writes one subsection per object (each entry is exactly 20
// bytes, as the format requires) and a trailer with the given entries.
func (u *pdfUpdate) finish(trailer string) {
	at := u.buf.Len()
	u.buf.WriteString("xref\n")
	for i, ref := range u.written {
		fmt.Fprintf(u.buf, "%d 1\n%010d %05d n \n", ref.num, u.offsets[i], ref.gen)
	}
	fmt.Fprintf(u.buf, "trailer\n<< %s >>\nstartxref\n%d\n%%%%EOF\n", trailer, at)
}
