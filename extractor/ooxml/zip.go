// Package ooxml opens Office Open XML packages (DOCX, XLSX) from untrusted
// uploads without trusting them.
//
// A ZIP can promise little and deliver a lot: millions of entries, entries
// that inflate a thousandfold, and headers that understate the real size.
// Open checks the entry count from the end-of-central-directory record
// before the directory is even parsed, then the declared sizes and ratios;
// every read inflates through a counter that enforces the real size, so a
// lying header is caught while inflating. XML parts are read by a token
// decoder that refuses DOCTYPE (OOXML never has one: it only serves entity
// expansion and external entities) and caps element depth.
package ooxml

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/aiprism/prism/extractor/reason"
)

// Limits bound what a package may cost. Zero fields take the defaults.
type Limits struct {
	MaxEntries    int   // entries in the archive
	MaxEntryBytes int64 // inflated size of one entry
	MaxTotalBytes int64 // inflated size of all entries read
	MaxRatio      int64 // inflated:compressed ratio of one entry...
	RatioFloor    int64 // ...checked once the entry is larger than this
	MaxDepth      int   // XML element nesting
}

// DefaultLimits are sane for office documents: a 100 MB workbook inflates
// to well under 1 GiB, real XML compresses 5-30:1 and nests a few dozen
// deep.
func DefaultLimits() Limits {
	return Limits{
		MaxEntries:    5000,
		MaxEntryBytes: 256 << 20,
		MaxTotalBytes: 512 << 20,
		MaxRatio:      200,
		RatioFloor:    1 << 20,
		MaxDepth:      256,
	}
}

// WithDefaults fills zero fields from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxEntries > 0 {
		d.MaxEntries = l.MaxEntries
	}
	if l.MaxEntryBytes > 0 {
		d.MaxEntryBytes = l.MaxEntryBytes
	}
	if l.MaxTotalBytes > 0 {
		d.MaxTotalBytes = l.MaxTotalBytes
	}
	if l.MaxRatio > 0 {
		d.MaxRatio = l.MaxRatio
	}
	if l.RatioFloor > 0 {
		d.RatioFloor = l.RatioFloor
	}
	if l.MaxDepth > 0 {
		d.MaxDepth = l.MaxDepth
	}
	return d
}

// Package is an opened, size-checked archive.
type Package struct {
	zr       *zip.Reader
	parts    map[string]*zip.File // by lower-cased part name without leading slash
	lim      Limits
	inflated int64 // bytes inflated so far by all reads
}

// IsZip reports whether raw starts with a ZIP local file header.
func IsZip(raw []byte) bool { return bytes.HasPrefix(raw, []byte("PK\x03\x04")) }

// Open checks raw's entry count, declared sizes and ratios and opens it.
func Open(raw []byte, lim Limits) (*Package, error) {
	lim = lim.WithDefaults()
	n, err := entryCount(raw)
	if err != nil {
		return nil, reason.New(reason.CorruptZip, "the file is a damaged ZIP archive: %v", err)
	}
	if n > uint64(lim.MaxEntries) {
		return nil, reason.New(reason.ZipEntries, "the archive has %d entries; the limit is %d", n, lim.MaxEntries)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, reason.New(reason.CorruptZip, "the file is a damaged ZIP archive: %v", err)
	}
	if len(zr.File) > lim.MaxEntries {
		return nil, reason.New(reason.ZipEntries, "the archive has %d entries; the limit is %d", len(zr.File), lim.MaxEntries)
	}
	p := &Package{zr: zr, parts: make(map[string]*zip.File, len(zr.File)), lim: lim}
	var total uint64
	for _, f := range zr.File {
		size := f.UncompressedSize64
		if size > uint64(lim.MaxEntryBytes) {
			return nil, reason.New(reason.ZipBomb, "the part %s inflates to %d bytes; the limit is %d", f.Name, size, lim.MaxEntryBytes)
		}
		if total += size; total > uint64(lim.MaxTotalBytes) {
			return nil, reason.New(reason.ZipBomb, "the archive inflates to more than %d bytes", lim.MaxTotalBytes)
		}
		if size > uint64(lim.RatioFloor) && size > f.CompressedSize64*uint64(lim.MaxRatio) {
			return nil, reason.New(reason.ZipBomb, "the part %s inflates %d:1 (%d bytes from %d); the limit is %d:1",
				f.Name, size/max(f.CompressedSize64, 1), size, f.CompressedSize64, lim.MaxRatio)
		}
		p.parts[partKey(f.Name)] = f
	}
	return p, nil
}

func partKey(name string) string {
	return strings.ToLower(strings.TrimPrefix(strings.ReplaceAll(name, "\\", "/"), "/"))
}

// Has reports whether the package has the part (OPC part names are
// case-insensitive).
func (p *Package) Has(name string) bool {
	_, ok := p.parts[partKey(name)]
	return ok
}

// Names returns the part names, sorted.
func (p *Package) Names() []string {
	out := make([]string, 0, len(p.parts))
	for _, f := range p.zr.File {
		out = append(out, f.Name)
	}
	sort.Strings(out)
	return out
}

// Limits returns the limits in force.
func (p *Package) Limits() Limits { return p.lim }

// Open inflates one part through the size guard.
func (p *Package) Open(name string) (io.ReadCloser, error) {
	f, ok := p.parts[partKey(name)]
	if !ok {
		return nil, fmt.Errorf("part %s: %w", name, errNoPart)
	}
	raw, err := f.OpenRaw()
	if err != nil {
		return nil, reason.New(reason.CorruptZip, "the part %s cannot be read: %v", f.Name, err)
	}
	var rc io.ReadCloser
	switch f.Method {
	case zip.Store:
		rc = io.NopCloser(raw)
	case zip.Deflate:
		rc = flate.NewReader(raw)
	default:
		return nil, reason.New(reason.CorruptZip, "the part %s uses unsupported compression method %d", f.Name, f.Method)
	}
	return &guard{rc: rc, f: f, pkg: p, crc: crc32.NewIEEE()}, nil
}

var errNoPart = errors.New("no such part")

// IsNotExist reports whether err says a part is missing.
func IsNotExist(err error) bool { return errors.Is(err, errNoPart) }

// guard enforces the real inflated size of one entry: at most what its
// header declares, at most MaxEntryBytes, within the ratio, and within the
// package's total.
type guard struct {
	rc  io.ReadCloser
	f   *zip.File
	pkg *Package
	n   int64
	crc interface {
		io.Writer
		Sum32() uint32
	}
}

func (g *guard) Read(b []byte) (int, error) {
	n, err := g.rc.Read(b)
	g.n += int64(n)
	g.pkg.inflated += int64(n)
	g.crc.Write(b[:n])
	lim := g.pkg.lim
	switch {
	case uint64(g.n) > g.f.UncompressedSize64:
		return n, reason.New(reason.ZipBomb, "the part %s inflates beyond the %d bytes its header declares", g.f.Name, g.f.UncompressedSize64)
	case g.n > lim.MaxEntryBytes:
		return n, reason.New(reason.ZipBomb, "the part %s inflates beyond %d bytes", g.f.Name, lim.MaxEntryBytes)
	case g.pkg.inflated > lim.MaxTotalBytes:
		return n, reason.New(reason.ZipBomb, "the archive inflates beyond %d bytes", lim.MaxTotalBytes)
	case g.n > lim.RatioFloor && uint64(g.n) > g.f.CompressedSize64*uint64(lim.MaxRatio):
		return n, reason.New(reason.ZipBomb, "the part %s inflates more than %d:1", g.f.Name, lim.MaxRatio)
	}
	if errors.Is(err, io.EOF) {
		if uint64(g.n) != g.f.UncompressedSize64 {
			return n, reason.New(reason.CorruptZip, "the part %s is shorter than its header declares", g.f.Name)
		}
		if g.f.CRC32 != 0 && g.crc.Sum32() != g.f.CRC32 {
			return n, reason.New(reason.CorruptZip, "the part %s fails its checksum", g.f.Name)
		}
	} else if err != nil {
		return n, reason.New(reason.CorruptZip, "the part %s cannot be inflated: %v", g.f.Name, err)
	}
	return n, err
}

func (g *guard) Close() error { return g.rc.Close() }

// ReadAll reads a small part (content types, relationships, properties)
// fully, capped at max bytes.
func (p *Package) ReadAll(name string, max int64) ([]byte, error) {
	rc, err := p.Open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, reason.New(reason.ZipBomb, "the part %s is larger than %d bytes", name, max)
	}
	return b, nil
}

// Verify inflates every part through the guard and scans XML parts for a
// DOCTYPE and for nesting deeper than MaxDepth, without building anything.
// It is for parts that a third-party parser reads afterwards (excelize),
// which would otherwise trust the headers.
func (p *Package) Verify() error {
	buf := make([]byte, 64<<10)
	for _, f := range p.zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := p.Open(f.Name)
		if err != nil {
			return err
		}
		var sc *xmlScan
		if isXMLName(f.Name) {
			sc = &xmlScan{name: f.Name, maxDepth: p.lim.MaxDepth}
		}
		for {
			n, err := rc.Read(buf)
			if sc != nil && n > 0 {
				if serr := sc.feed(buf[:n]); serr != nil {
					rc.Close()
					return serr
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rc.Close()
				return err
			}
		}
		rc.Close()
	}
	return nil
}

func isXMLName(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".xml", ".rels", ".vml":
		return true
	}
	return false
}

// entryCount reads the number of entries from the end-of-central-directory
// record (or its ZIP64 form) without parsing the directory.
func entryCount(raw []byte) (uint64, error) {
	const eocdLen = 22
	if len(raw) < eocdLen {
		return 0, errors.New("too short for a ZIP archive")
	}
	start := max(0, len(raw)-eocdLen-65535)
	i := bytes.LastIndex(raw[start:], []byte("PK\x05\x06"))
	if i < 0 {
		return 0, errors.New("no end of central directory")
	}
	eocd := raw[start+i:]
	if len(eocd) < eocdLen {
		return 0, errors.New("truncated end of central directory")
	}
	n := uint64(binary.LittleEndian.Uint16(eocd[10:12]))
	if n != 0xFFFF {
		return n, nil
	}
	// ZIP64: the locator sits right before the EOCD record.
	loc := start + i - 20
	if loc < 0 || !bytes.Equal(raw[loc:loc+4], []byte("PK\x06\x07")) {
		return n, nil
	}
	off := binary.LittleEndian.Uint64(raw[loc+8 : loc+16])
	if off > uint64(len(raw)) || uint64(len(raw))-off < 56 || !bytes.Equal(raw[off:off+4], []byte("PK\x06\x06")) {
		return 0, errors.New("bad ZIP64 end of central directory")
	}
	return binary.LittleEndian.Uint64(raw[off+32 : off+40]), nil
}
