package ooxml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"

	"github.com/aiprism/prism/extractor/reason"
	"golang.org/x/net/html/charset"
)

// Decoder is a streaming XML tokenizer for OOXML parts that refuses
// DOCTYPE declarations and caps element depth. Go's encoding/xml never
// fetches external entities and does not expand DTD entities, but a
// DOCTYPE in OOXML has no legitimate use, so it is rejected outright and
// the user learns why.
type Decoder struct {
	d        *xml.Decoder
	part     string
	depth    int
	maxDepth int
}

// NewDecoder reads the part's XML from r. maxDepth <= 0 means the default.
func NewDecoder(r io.Reader, part string, maxDepth int) *Decoder {
	if maxDepth <= 0 {
		maxDepth = DefaultLimits().MaxDepth
	}
	d := xml.NewDecoder(r)
	d.Strict = true
	d.CharsetReader = charset.NewReaderLabel
	return &Decoder{d: d, part: part, maxDepth: maxDepth}
}

// Depth is the current element depth (1 inside the root element).
func (d *Decoder) Depth() int { return d.depth }

// Token returns the next token with namespaces resolved. Failures of the
// document's XML are classified; io.EOF ends the part.
func (d *Decoder) Token() (xml.Token, error) {
	tok, err := d.d.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		var re *reason.Error
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, &xmlError{part: d.part, err: err}
	}
	switch t := tok.(type) {
	case xml.StartElement:
		d.depth++
		if d.depth > d.maxDepth {
			return nil, reason.New(reason.XMLDepth, "the part %s nests elements deeper than %d levels", d.part, d.maxDepth)
		}
	case xml.EndElement:
		d.depth--
	case xml.Directive:
		return nil, reason.New(reason.XMLDoctype, "the part %s declares a DOCTYPE (%.20s...); Office documents never do, it is refused to prevent entity-expansion and external-entity attacks", d.part, bytes.TrimSpace(t))
	}
	return tok, nil
}

// Skip discards the rest of the current element.
func (d *Decoder) Skip() error {
	for depth := 1; depth > 0; {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

// xmlError is malformed XML; callers classify it as a corrupt document.
type xmlError struct {
	part string
	err  error
}

func (e *xmlError) Error() string {
	return "the part " + e.part + " is not well-formed XML: " + e.err.Error()
}
func (e *xmlError) Unwrap() error { return e.err }

// xmlScan checks XML bytes for a DOCTYPE (any <!X other than a comment or
// CDATA) and for element depth, as they stream past; it builds nothing.
type xmlScan struct {
	name      string
	maxDepth  int
	depth     int
	state     scanState
	quote     byte
	prev      byte
	run       int // consecutive '-' in a comment or ']' in CDATA
	bangChars int
}

type scanState uint8

const (
	sText scanState = iota
	sLT
	sStart
	sEnd
	sPI
	sBang
	sComment
	sCDATA
)

func (s *xmlScan) feed(b []byte) error {
	for _, c := range b {
		switch s.state {
		case sText:
			if c == '<' {
				s.state = sLT
			}
		case sLT:
			switch c {
			case '/':
				s.state = sEnd
				s.depth--
			case '?':
				s.state, s.prev = sPI, 0
			case '!':
				s.state, s.bangChars = sBang, 0
			default:
				s.state, s.prev, s.quote = sStart, c, 0
				if s.depth++; s.depth > s.maxDepth {
					return reason.New(reason.XMLDepth, "the part %s nests elements deeper than %d levels", s.name, s.maxDepth)
				}
			}
		case sStart:
			switch {
			case s.quote != 0:
				if c == s.quote {
					s.quote = 0
				}
			case c == '"' || c == '\'':
				s.quote = c
			case c == '>':
				if s.prev == '/' {
					s.depth--
				}
				s.state = sText
			}
			s.prev = c
		case sEnd:
			if c == '>' {
				s.state = sText
			}
		case sPI:
			if c == '>' && s.prev == '?' {
				s.state = sText
			}
			s.prev = c
		case sBang:
			s.bangChars++
			switch {
			case c == '-' && s.bangChars <= 2:
				if s.bangChars == 2 {
					s.state, s.run = sComment, 0
				}
			case c == '[' && s.bangChars == 1:
				s.state, s.run = sCDATA, 0
			default:
				return reason.New(reason.XMLDoctype, "the part %s declares a DOCTYPE; Office documents never do, it is refused to prevent entity-expansion and external-entity attacks", s.name)
			}
		case sComment:
			if c == '-' {
				s.run++
			} else {
				if c == '>' && s.run >= 2 {
					s.state = sText
				}
				s.run = 0
			}
		case sCDATA:
			if c == ']' {
				s.run++
			} else {
				if c == '>' && s.run >= 2 {
					s.state = sText
				}
				s.run = 0
			}
		}
	}
	return nil
}
