package ooxml

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aiprism/prism/extractor/reason"
)

type entry struct {
	name    string
	content []byte
	// declare overrides the uncompressed size written in the headers.
	declare uint64
}

func makeZip(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		var comp bytes.Buffer
		fw, _ := flate.NewWriter(&comp, flate.BestCompression)
		fw.Write(e.content)
		fw.Close()
		size := uint64(len(e.content))
		if e.declare > 0 {
			size = e.declare
		}
		w, err := zw.CreateRaw(&zip.FileHeader{Name: e.name, Method: zip.Deflate, CompressedSize64: uint64(comp.Len()), UncompressedSize64: size})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(comp.Bytes())
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readPart(p *Package, name string) error {
	rc, err := p.Open(name)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

func TestEntryCountBeforeDirectory(t *testing.T) {
	var es []entry
	for i := 0; i < 30; i++ {
		es = append(es, entry{name: fmt.Sprintf("f%d", i), content: []byte("x")})
	}
	_, err := Open(makeZip(t, es...), Limits{MaxEntries: 20})
	if reason.ClassOf(err, "") != reason.ZipEntries {
		t.Fatalf("got %v", err)
	}
}

func TestDeclaredSizeAndRatio(t *testing.T) {
	big := bytes.Repeat([]byte{' '}, 4<<20) // compresses ~1000:1
	_, err := Open(makeZip(t, entry{name: "word/document.xml", content: big}), Limits{})
	if reason.ClassOf(err, "") != reason.ZipBomb || !strings.Contains(err.Error(), ":1") {
		t.Fatalf("ratio: %v", err)
	}
	_, err = Open(makeZip(t, entry{name: "a", content: big}), Limits{MaxEntryBytes: 1 << 20, MaxRatio: 10000})
	if reason.ClassOf(err, "") != reason.ZipBomb {
		t.Fatalf("entry size: %v", err)
	}
	_, err = Open(makeZip(t, entry{name: "a", content: big[:3<<20]}, entry{name: "b", content: big[:3<<20]}), Limits{MaxTotalBytes: 5 << 20, MaxRatio: 10000})
	if reason.ClassOf(err, "") != reason.ZipBomb {
		t.Fatalf("total size: %v", err)
	}
}

// TestUnderstatedSize is the lying-header bomb: the check before inflating
// passes, the guard stops the inflation right after the declared size.
func TestUnderstatedSize(t *testing.T) {
	raw := makeZip(t, entry{name: "word/document.xml", content: bytes.Repeat([]byte{' '}, 8<<20), declare: 1000})
	p, err := Open(raw, Limits{})
	if err != nil {
		t.Fatalf("pre-check should pass: %v", err)
	}
	err = readPart(p, "word/document.xml")
	if reason.ClassOf(err, "") != reason.ZipBomb || !strings.Contains(err.Error(), "declares") {
		t.Fatalf("got %v", err)
	}
	if p.inflated > 1000+64<<10 {
		t.Fatalf("inflated %d bytes before stopping", p.inflated)
	}
	if err := p.Verify(); reason.ClassOf(err, "") != reason.ZipBomb {
		t.Fatalf("Verify: %v", err)
	}
}

func TestGoodPackage(t *testing.T) {
	raw := makeZip(t,
		entry{name: "[Content_Types].xml", content: []byte(`<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>`)},
		entry{name: "xl/workbook.xml", content: []byte(`<workbook><!-- a <!comment> --><sheets a="x>y"/><![CDATA[<!DOCTYPE not really>]]></workbook>`)},
		entry{name: "xl/_rels/workbook.xml.rels", content: []byte(`<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/><Relationship Id="rId2" Type="x/hyperlink" Target="http://example.com" TargetMode="External"/></Relationships>`)},
		entry{name: "xl/styles.xml", content: []byte(`<styleSheet/>`)},
		entry{name: "docProps/core.xml", content: []byte(`<cp:coreProperties xmlns:cp="c" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Risk register</dc:title><dc:creator>Risk Office</dc:creator></cp:coreProperties>`)},
	)
	p, err := Open(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	kind, main, err := p.Identify()
	if err != nil || kind != Excel || main != "xl/workbook.xml" {
		t.Fatalf("Identify = %v %q %v", kind, main, err)
	}
	if err := p.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got := p.RelTarget("xl/workbook.xml", "/styles"); got != "xl/styles.xml" {
		t.Fatalf("RelTarget = %q", got)
	}
	if title, author := p.Core(); title != "Risk register" || author != "Risk Office" {
		t.Fatalf("Core = %q %q", title, author)
	}
}

func TestXMLScan(t *testing.T) {
	for _, c := range []struct {
		xml   string
		class string
	}{
		{`<?xml version="1.0"?><a><b/><c x="/>"></c></a>`, ""},
		{`<a><!-- <!DOCTYPE x> --><![CDATA[ <!ENTITY y> ]]></a>`, ""},
		{`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>`, reason.XMLDoctype},
		{`<a><!ENTITY x "y"></a>`, reason.XMLDoctype},
		{strings.Repeat("<a>", 11) + strings.Repeat("</a>", 11), reason.XMLDepth},
		{strings.Repeat("<a/>", 100), ""},
	} {
		// Byte by byte: state must survive any chunk boundary.
		s := &xmlScan{name: "p", maxDepth: 10}
		var err error
		for i := 0; i < len(c.xml) && err == nil; i++ {
			err = s.feed([]byte{c.xml[i]})
		}
		if got := reason.ClassOf(err, ""); got != c.class {
			t.Errorf("%.40q: class %q (%v), want %q", c.xml, got, err, c.class)
		}
	}
}

func TestDecoder(t *testing.T) {
	d := NewDecoder(strings.NewReader(`<?xml version="1.0"?><!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>`), "p", 0)
	var err error
	for err == nil {
		_, err = d.Token()
	}
	if reason.ClassOf(err, "") != reason.XMLDoctype {
		t.Fatalf("doctype: %v", err)
	}
	d = NewDecoder(strings.NewReader(strings.Repeat("<a>", 20)+strings.Repeat("</a>", 20)), "p", 10)
	for err = nil; err == nil; {
		_, err = d.Token()
	}
	if reason.ClassOf(err, "") != reason.XMLDepth {
		t.Fatalf("depth: %v", err)
	}
	d = NewDecoder(strings.NewReader(`<a>&lol;</a>`), "p", 0)
	for err = nil; err == nil; {
		_, err = d.Token()
	}
	var xe *xmlError
	var se *xml.SyntaxError
	if !errors.As(err, &xe) || !errors.As(err, &se) {
		t.Fatalf("undefined entity: %v", err)
	}
}
